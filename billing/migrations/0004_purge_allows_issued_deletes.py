"""The one delete issued documents allow is a tenant purge, marked by ``Tenant.purge_started_at``.

Migration 0002 let a finalized invoice, its lines and credit notes be deleted when the transaction
set ``portal.purging_tenant`` to their tenant, a setting only the demo's reset wrote. Now the mark is
the tenant row itself: ``customers.purge.tenant_purge`` sets ``purge_started_at`` first, in the
same transaction as its deletes. Everything else the triggers refuse is unchanged.

``FORWARD`` is the current definition of the immutability triggers, and its only copy: tests that
run without migrations install it from here. A later change gets a migration of its own.
"""

import importlib

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION billing_invoice_guard() RETURNS trigger AS $$
BEGIN
    -- Deleting a whole tenant (customers.purge.tenant_purge marks it first) is the one delete
    -- issued documents allow.
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM customers_tenant WHERE id = OLD.tenant_id AND purge_started_at IS NOT NULL
    ) THEN
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
    -- Deleting a whole tenant (customers.purge.tenant_purge marks it first) is the one delete
    -- issued documents allow.
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM customers_tenant WHERE id = OLD.tenant_id AND purge_started_at IS NOT NULL
    ) THEN
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
    -- Deleting a whole tenant (customers.purge.tenant_purge marks it first) is the one delete
    -- issued documents allow.
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM customers_tenant WHERE id = OLD.tenant_id AND purge_started_at IS NOT NULL
    ) THEN
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

REVERSE = importlib.import_module("billing.migrations.0002_finalized_documents_are_immutable").FORWARD

# Dropping the triggers altogether (what 0002 reverses to); for tests that install FORWARD themselves.
DROP = importlib.import_module("billing.migrations.0002_finalized_documents_are_immutable").REVERSE


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_metric_event_code_and_month_end_runs"), ("customers", "0002_tenant_purge_started_at")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
