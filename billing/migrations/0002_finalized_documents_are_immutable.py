"""Finalized invoices, their lines and credit notes cannot be changed, even by raw SQL or .update().

The one change allowed after finalization besides paid/void is naming the rendered PDF once; the
one delete allowed is purging a whole tenant (the setting portal.purging_tenant, per transaction).
The SQL is copied from billing/models/invoicing.py at the time of writing, so this migration stays
what it was if that constant changes later (a later change gets a migration of its own).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION billing_invoice_guard() RETURNS trigger AS $$
BEGIN
    -- Deleting a whole tenant (platform_purge_tenant) is the one delete issued documents allow.
    IF TG_OP = 'DELETE' AND current_setting('portal.purging_tenant', true) = OLD.tenant_id::text THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'invoice % is % and cannot be deleted', OLD.number, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (
        NOT (OLD.status = NEW.status OR (OLD.status, NEW.status) IN (('finalized', 'paid'), ('finalized', 'void')))
        OR (to_jsonb(NEW) - 'status' - 'paid_at' - 'voided_at' - CASE WHEN OLD.pdf = '' THEN 'pdf' ELSE '' END)
           IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'paid_at' - 'voided_at' - CASE WHEN OLD.pdf = '' THEN 'pdf' ELSE '' END)
    ) THEN
        RAISE EXCEPTION 'invoice % is % and cannot be changed', OLD.number, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS billing_invoice_guard ON billing_invoice;
CREATE TRIGGER billing_invoice_guard BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_guard();

CREATE OR REPLACE FUNCTION billing_invoiceline_guard() RETURNS trigger AS $$
DECLARE
    parent_status text;
BEGIN
    -- Deleting a whole tenant (platform_purge_tenant) is the one delete issued documents allow.
    IF TG_OP = 'DELETE' AND current_setting('portal.purging_tenant', true) = OLD.tenant_id::text THEN
        RETURN OLD;
    END IF;
    SELECT status INTO parent_status FROM billing_invoice
        WHERE id = CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END;
    IF parent_status IS NOT NULL AND parent_status <> 'draft' THEN
        RAISE EXCEPTION 'the lines of a % invoice cannot be changed', parent_status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.invoice_id <> OLD.invoice_id THEN
        SELECT status INTO parent_status FROM billing_invoice WHERE id = NEW.invoice_id;
        IF parent_status <> 'draft' THEN
            RAISE EXCEPTION 'a line cannot move to a % invoice', parent_status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS billing_invoiceline_guard ON billing_invoiceline;
CREATE TRIGGER billing_invoiceline_guard BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_guard();

CREATE OR REPLACE FUNCTION billing_issued_document_guard() RETURNS trigger AS $$
BEGIN
    -- Deleting a whole tenant (platform_purge_tenant) is the one delete issued documents allow.
    IF TG_OP = 'DELETE' AND current_setting('portal.purging_tenant', true) = OLD.tenant_id::text THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% rows are issued documents and cannot be changed or deleted', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS billing_creditnote_guard ON billing_creditnote;
CREATE TRIGGER billing_creditnote_guard BEFORE UPDATE OR DELETE ON billing_creditnote
    FOR EACH ROW EXECUTE FUNCTION billing_issued_document_guard();
DROP TRIGGER IF EXISTS billing_creditnoteline_guard ON billing_creditnoteline;
CREATE TRIGGER billing_creditnoteline_guard BEFORE UPDATE OR DELETE ON billing_creditnoteline
    FOR EACH ROW EXECUTE FUNCTION billing_issued_document_guard();
"""

REVERSE = """
DROP TRIGGER IF EXISTS billing_creditnoteline_guard ON billing_creditnoteline;
DROP TRIGGER IF EXISTS billing_creditnote_guard ON billing_creditnote;
DROP FUNCTION IF EXISTS billing_issued_document_guard();
DROP TRIGGER IF EXISTS billing_invoiceline_guard ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_invoiceline_guard();
DROP TRIGGER IF EXISTS billing_invoice_guard ON billing_invoice;
DROP FUNCTION IF EXISTS billing_invoice_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
