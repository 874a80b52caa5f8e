"""The AI-usage roll-up (``billing.models.AiUsageDay``): rebuilt for a tenant whose time zone changes.

The roll-up's day is the tenant's calendar day when the events arrived; the database triggers
(migration 0005, see the model) keep it equal to the events' sum, and the ClickHouse store adds the
calls it keeps in the transaction that claims their keys (``billing.usage_store.clickhouse``). A new
time zone moves events across days, so the tenant's rows are made again from its events, in the
same transaction as the change: ``BillingConfig.ready`` connects ``rebuild_on_new_time_zone`` to
``customers.signals.tenant_time_zone_changed``, which ``customers.services`` sends.
"""

from billing.metering import usage_store
from customers.models import Tenant


def ai_usage_rebuild(*, tenant: Tenant) -> int:
    """Make ``tenant``'s roll-up again from its usage events, in the configured store; returns the rows
    made. In PostgreSQL one statement (``billing_ai_usage_rebuild``), set-wise; with ClickHouse the
    calls are summed there and the rows replaced in PostgreSQL."""
    return usage_store().ai_usage_rebuild(tenant=tenant)


def rebuild_on_new_time_zone(sender, *, tenant: Tenant, **kwargs) -> None:
    """Receiver of ``tenant_time_zone_changed``: the tenant's days moved, so its roll-up is made again."""
    ai_usage_rebuild(tenant=tenant)
