"""The one delete issued documents allow is a tenant purge, marked by ``Tenant.purge_started_at``.

Migration 0002 let a finalized invoice, its lines and credit notes be deleted when the transaction
set ``portal.purging_tenant`` to their tenant, a setting only the demo's reset wrote. Now the mark is
on the tenant row itself: ``customers.purge.tenant_purge`` sets ``purge_started_at`` first, in the
same transaction as its deletes. Billing reads the customers table; customers knows nothing of this.

The trigger functions are 0002's, with only that condition replaced: 0002 is frozen history, so
its text is the one copy of the rest of the rule. ``FORWARD`` is therefore the current definition;
tests that run without migrations install it from here (it used to be copied in
``billing.models.invoicing`` for them). A later change gets a migration of its own.
"""

import importlib

from django.db import migrations

_IMMUTABLE = importlib.import_module("billing.migrations.0002_finalized_documents_are_immutable")

_SETTING_ALLOWS = """
    -- Deleting a whole tenant (platform_purge_tenant) is the one delete issued documents allow.
    IF TG_OP = 'DELETE' AND current_setting('portal.purging_tenant', true) = OLD.tenant_id::text THEN"""
_PURGE_ALLOWS = """
    -- Deleting a whole tenant (customers.purge.tenant_purge marks it first) is the one delete
    -- issued documents allow.
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM customers_tenant WHERE id = OLD.tenant_id AND purge_started_at IS NOT NULL
    ) THEN"""

if _IMMUTABLE.FORWARD.count(_SETTING_ALLOWS) != 3:  # the three guard functions
    raise RuntimeError("billing 0002's trigger functions are not the ones this migration rewrites.")

FORWARD = _IMMUTABLE.FORWARD.replace(_SETTING_ALLOWS, _PURGE_ALLOWS)
REVERSE = _IMMUTABLE.FORWARD  # back to the setting
DROP = _IMMUTABLE.REVERSE  # no triggers at all, as before 0002


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_metric_event_code_and_month_end_runs"), ("customers", "0002_tenant_purge_started_at")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
