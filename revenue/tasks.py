"""Thin Celery tasks for the revenue metrics: they take tenant ids and call a service."""

from celery import shared_task

from customers.models import Tenant
from customers.tenancy import tenant_scope


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def snapshot_closed_month(tenant_id: int) -> str:
    """Freeze the tenant's last closed month (idempotent: re-running replaces the same snapshot)."""
    from revenue.selectors.common import last_closed_month
    from revenue.services import snapshot_month

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        month = last_closed_month(tenant)
        snapshot_month(tenant=tenant, month=month)
    return f"{tenant.slug} {month:%Y-%m}"


@shared_task(acks_late=True)
def snapshot_all_tenants() -> int:
    """Monthly fan-out: one snapshot task per tenant."""
    tenant_ids = list(Tenant.objects.values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        snapshot_closed_month.delay(tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def refresh_recent_snapshots(tenant_id: int, months: int = 3) -> int:
    """Daily: re-freeze the last few closed months, so late contract edits reach the snapshots."""
    from revenue.selectors.common import add_months, last_closed_month
    from revenue.services import snapshot_month

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        last = last_closed_month(tenant)
        for back in range(months):
            snapshot_month(tenant=tenant, month=add_months(last, -back))
    return months
