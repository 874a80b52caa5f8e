"""Thin Celery tasks for the revenue metrics: they take tenant ids and call a service."""

from celery import shared_task

from customers.models import Tenant
from customers.tenancy import tenant_scope


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def snapshot_closed_month(tenant_id: int) -> str:
    """Freeze the tenant's last closed month (idempotent: re-running replaces the same snapshot)."""
    from customers.periods import last_closed_month
    from revenue.services import snapshot_month

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        month = last_closed_month(tenant)
        snapshot_month(tenant=tenant, month=month)
    return f"{tenant.slug} {month:%Y-%m}"


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def refresh_recent_snapshots(tenant_id: int, months: int = 3) -> int:
    """Daily: re-freeze the last few closed months, so late contract edits reach the snapshots."""
    from customers.periods import add_months, last_closed_month
    from revenue.services import snapshot_month

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        last = last_closed_month(tenant)
        for back in range(months):
            snapshot_month(tenant=tenant, month=add_months(last, -back))
    return months


@shared_task(acks_late=True)
def refresh_all_recent_snapshots() -> int:
    """Daily fan-out: one snapshot refresh per tenant (dashboards read snapshots for closed months)."""
    tenant_ids = list(Tenant.objects.values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        refresh_recent_snapshots.delay(tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def rebuild_revenue_facts(tenant_id: int) -> int:
    """Rebuild the tenant's MRR facts and move their horizon (idempotent: a rebuild replaces them all)."""
    from revenue.facts import revenue_facts_rebuild

    return revenue_facts_rebuild(tenant=Tenant.objects.get(pk=tenant_id))


@shared_task(acks_late=True)
def rebuild_all_revenue_facts() -> int:
    """Monthly fan-out: a rebuild per tenant whose facts are on (``revenue.facts``), so their horizon
    stays 60 months ahead; tenants without facts are left to ``manage.py revenue_facts_rebuild``."""
    from customers.tenancy import platform_scope
    from revenue.models import RevenueFactsState

    with platform_scope(reason="tenants whose revenue facts are on"):
        tenant_ids = list(RevenueFactsState.objects.values_list("tenant_id", flat=True))
    for tenant_id in tenant_ids:
        rebuild_revenue_facts.delay(tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def send_monthly_report(tenant_id: int, month: str | None = None, wait_for_month_end: bool = False) -> int:
    """Email the tenant's monthly report for ``month`` (YYYY-MM; default its last closed month).

    With ``wait_for_month_end`` the tenant is skipped while its month-end BillingRun is unfinished
    (the run's completion queues this task again). Idempotent: ReportDelivery sends once per owner.
    """
    from customers.periods import last_closed_month, parse_month
    from revenue.reports import month_end_done, monthly_report_send

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        period = parse_month(month) if month else last_closed_month(tenant)
        if wait_for_month_end and not month_end_done(tenant=tenant, month=period):
            return 0
        return len(monthly_report_send(tenant=tenant, month=period))


@shared_task(acks_late=True)
def send_monthly_reports() -> int:
    """Beat, after month-end: one report task per tenant, each waiting for its month-end run."""
    tenant_ids = list(Tenant.objects.values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        send_monthly_report.delay(tenant_id, wait_for_month_end=True)
    return len(tenant_ids)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def send_weekly_digest(tenant_id: int) -> int:
    """Email the tenant's pipeline keepers their weekly digest (idempotent per ISO week)."""
    from revenue.reports import weekly_digest_send

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        return len(weekly_digest_send(tenant=tenant))


@shared_task(acks_late=True)
def send_weekly_digests() -> int:
    """Beat, Monday morning: one digest task per tenant."""
    tenant_ids = list(Tenant.objects.values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        send_weekly_digest.delay(tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def detect_anomalies_for_tenant(tenant_id: int, day: str | None = None) -> dict:
    """Raise the tenant's usage alerts of ``day`` (ISO date; default yesterday in its time zone), then
    email the new ones. Idempotent: alerts are unique and each is emailed once."""
    from datetime import date, timedelta

    from customers.periods import tenant_today
    from revenue.economics.anomalies import anomaly_alerts_email, detect_anomalies

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        on = date.fromisoformat(day) if day else tenant_today(tenant) - timedelta(days=1)
        result = detect_anomalies(tenant=tenant, day=on)
        result.update(anomaly_alerts_email(tenant=tenant))
    return result


@shared_task(acks_late=True)
def detect_anomalies_all_tenants() -> int:
    """Daily fan-out: one anomaly detection task per tenant."""
    tenant_ids = list(Tenant.objects.values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        detect_anomalies_for_tenant.delay(tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True)
def whatif_compute(tenant_id: int, run_id: int) -> str:
    """A pricing what-if the staff page asked for (revenue.economics.whatif.whatif_run_compute)."""
    from revenue.economics.whatif import whatif_run_compute
    from revenue.models import WhatIfRun

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        run = WhatIfRun.objects.for_tenant(tenant).get(pk=run_id)
        return whatif_run_compute(run=run).status
