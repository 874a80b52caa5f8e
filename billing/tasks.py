"""Thin Celery tasks for billing: they take ids (always the tenant's) and call a service.

This module is the top of billing's import graph: it imports ``billing.month_end`` and the
services, and nothing in billing imports it back (only the admin, which sits above it). The two
tasks that billing's own services queue are therefore defined beside those services, below them
in the graph, and re-exported here: ``invoice_deliver`` (queued by ``invoice_finalize``) in
``billing.delivery`` and ``month_end_chunk`` (queued by a month-end run) in ``billing.month_end``.
Both keep their registered names, ``billing.tasks.<name>``.
"""

from datetime import date

from celery import shared_task
from django.db import OperationalError

from billing.delivery import invoice_deliver, invoice_send
from billing.services.dunning import dunning_run, dunning_tenant_ids
from billing.models import BillingRun, Invoice, InvoiceDelivery
from billing.partitions import usage_partitions_ensure
from billing.month_end import (
    billing_run_advance,
    billing_run_retry_failed,
    billing_run_start,
    month_end_chunk,
    month_end_due,
    month_end_stalled,
)
from billing.services.webhooks import webhook_overdue_announce, webhook_overdue_tenants
from billing.webhook_delivery import webhook_deliver, webhook_deliveries_lost, webhook_endpoint_disabled_notify
from billing.metering import usage_store
from customers.models import Tenant
from customers.tenancy import tenant_scope

__all__ = [
    "dunning_run_tenant", "dunning_tick", "invoice_deliver", "invoice_resend", "month_end_advance", "month_end_chunk", "month_end_resume_stalled",
    "month_end_retry_failed", "month_end_start", "month_end_tick", "usage_partitions_maintain", "usage_store_flush",
    "webhook_deliver", "webhook_endpoint_disabled_notify", "webhook_overdue_sweep", "webhook_overdue_sweep_all_tenants",
    "webhook_requeue_lost",
]


# --- month-end runs (billing.month_end): thin tasks, ids in, a service call ---------------------


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def month_end_start(
    tenant_id: int, period_start: str, finalize: bool = False, started_by_id: int | None = None, chunk_size: int = 200
) -> str:
    """Start (or resume) the tenant's month-end run for the month of ``period_start`` (ISO date)."""
    from django.contrib.auth import get_user_model

    tenant = Tenant.objects.get(pk=tenant_id)
    started_by = get_user_model().objects.filter(pk=started_by_id).first() if started_by_id else None
    with tenant_scope(tenant):
        run = billing_run_start(
            tenant=tenant, period_start=date.fromisoformat(period_start), finalize=finalize, started_by=started_by,
            chunk_size=chunk_size,
        )
    return f"{tenant.slug} {run.period_start:%Y-%m} {run.status}"


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def month_end_advance(tenant_id: int, run_id: int) -> str:
    """Advance a run: finalize its drafts once the grace period is over, or re-queue its open items."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        run = billing_run_advance(run=BillingRun.objects.for_tenant(tenant).get(pk=run_id))
    return run.status


@shared_task(acks_late=True)
def month_end_tick() -> dict:
    """Hourly (beat): start each tenant's run when its month has just begun in its time zone, and
    finalize the drafts whose grace period is over. Fans out one task per tenant and run."""
    due = month_end_due()
    for tenant_id, period_start in due["start"]:
        month_end_start.delay(tenant_id, period_start.isoformat())
    for tenant_id, run_id in due["advance"]:
        month_end_advance.delay(tenant_id, run_id)
    return {"started": len(due["start"]), "advanced": len(due["advance"])}


@shared_task(acks_late=True)
def month_end_resume_stalled() -> int:
    """Every few minutes (beat): re-queue the open items of runs whose worker died (``month_end_stalled``)."""
    stalled = month_end_stalled()
    for tenant_id, run_id in stalled:
        month_end_advance.delay(tenant_id, run_id)
    return len(stalled)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def month_end_retry_failed(tenant_id: int, run_id: int, item_ids: list[int] | None = None) -> int:
    """Put a run's failed items (all, or ``item_ids``) back in the queue (the admin's retry actions)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        run = BillingRun.objects.for_tenant(tenant).select_related("tenant").get(pk=run_id)
        return billing_run_retry_failed(run=run, item_ids=item_ids)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def invoice_resend(tenant_id: int, invoice_id: int) -> int:
    """Email a finalized invoice again to all its billing addresses (the admin's resend); returns how
    many were sent. Each recipient's outcome is on its InvoiceDelivery row."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        invoice = Invoice.objects.for_tenant(tenant).select_related("tenant", "customer").get(pk=invoice_id)
        rows = invoice_send(invoice=invoice, resend=True)
    return sum(row.status == InvoiceDelivery.Status.SENT for row in rows)


# --- payment reminders (billing.services.dunning) ------------------------------------------------


@shared_task(acks_late=True)
def dunning_tick() -> int:
    """Daily (beat): queue each tenant's reminder run; returns how many were queued."""
    tenant_ids = dunning_tenant_ids()
    for tenant_id in tenant_ids:
        dunning_run_tenant.delay(tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def dunning_run_tenant(tenant_id: int) -> dict:
    """Send the tenant's due payment reminders (``dunning_run``). Idempotent: each step goes out once per invoice."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        return dunning_run(tenant=tenant)


# --- outgoing webhooks (billing.services.webhooks, billing.webhook_delivery) ------------------------


@shared_task(acks_late=True)
def webhook_overdue_sweep_all_tenants() -> int:
    """Daily (beat): one ``webhook_overdue_sweep`` per tenant with an ``invoice.overdue`` endpoint."""
    tenant_ids = webhook_overdue_tenants()
    for tenant_id in tenant_ids:
        webhook_overdue_sweep.delay(tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def webhook_overdue_sweep(tenant_id: int) -> int:
    """Announce the tenant's newly overdue invoices, each once (``webhook_overdue_announce``)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        return webhook_overdue_announce(tenant=tenant)


@shared_task(acks_late=True)
def webhook_requeue_lost() -> int:
    """Every few minutes (beat): queue again the webhook retries whose task the broker lost."""
    lost = webhook_deliveries_lost()
    for tenant_id, delivery_id in lost:
        webhook_deliver.delay(tenant_id, delivery_id)
    return len(lost)


# --- usage-event store (billing.usage_store) ------------------------------------------------------


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def usage_store_flush(tenant_id: int | None = None) -> int:
    """Write the usage batches pending for the event store (all tenants', or one's); how many.

    Idempotent: a written batch is deleted, and ClickHouse drops a batch it already holds."""
    tenant = Tenant.objects.get(pk=tenant_id) if tenant_id is not None else None
    return usage_store().pending_flush(tenant=tenant)


# --- usage event partitions (billing.partitions) ----------------------------------------------


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def usage_partitions_maintain() -> str:
    """Make this month's and the next two months' usage event partitions, and those of stragglers.

    Platform-wide, so no tenant id: the partitions hold every tenant's rows. Idempotent."""
    made = usage_partitions_ensure()
    return f"made {', '.join(made)}" if made else "nothing to make"
