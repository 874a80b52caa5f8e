"""Thin Celery tasks for billing: they take ids (always the tenant's) and call a service."""

from datetime import date

from celery import shared_task
from django.db import OperationalError

from billing.delivery import invoice_send
from billing.documents import invoice_render_pdf
from billing.models import Invoice, TransientItemFailures
from customers.models import Tenant
from customers.tenancy import tenant_scope


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def invoice_deliver(tenant_id: int, invoice_id: int) -> None:
    """Render a finalized invoice's PDF (once) and email it to the customer's billing addresses.

    Idempotent: the PDF is stored once and each recipient is emailed once (see ``invoice_send``);
    a recipient the mail server refused is recorded as failed and can be resent from the admin.
    A customer without billing emails gets the PDF in the portal only.
    """
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        invoice = Invoice.objects.for_tenant(tenant).select_related("tenant", "customer").get(pk=invoice_id)
        invoice_render_pdf(invoice=invoice)
        if invoice.customer.billing_emails:
            invoice_send(invoice=invoice)


# --- month-end runs (billing.month_end): thin tasks, ids in, a service call ---------------------


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def month_end_start(
    tenant_id: int, period_start: str, finalize: bool = False, started_by_id: int | None = None, chunk_size: int = 200
) -> str:
    """Start (or resume) the tenant's month-end run for the month of ``period_start`` (ISO date)."""
    from django.contrib.auth import get_user_model

    from billing.month_end import billing_run_start

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
    from billing.month_end import billing_run_advance
    from billing.models import BillingRun

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        run = billing_run_advance(run=BillingRun.objects.for_tenant(tenant).get(pk=run_id))
    return run.status


@shared_task(
    bind=True, acks_late=True, autoretry_for=(OperationalError, TransientItemFailures), retry_backoff=True,
    retry_backoff_max=600, max_retries=6,
)
def month_end_chunk(self, tenant_id: int, run_id: int, item_ids: list[int]) -> dict:
    """Finalize and deliver one chunk of a run's items; transient failures retry with backoff (the
    items already delivered are skipped on the retry), the last attempt records them as failed."""
    from billing.models import BillingRun
    from billing.month_end import billing_run_process_items

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        run = BillingRun.objects.for_tenant(tenant).select_related("tenant").get(pk=run_id)
        # In-process (no broker) nothing would run a retry later: failures are final at once.
        final_attempt = bool(self.request.is_eager) or self.request.retries >= self.max_retries
        return billing_run_process_items(run=run, item_ids=item_ids, final_attempt=final_attempt)


@shared_task(acks_late=True)
def month_end_tick() -> dict:
    """Hourly (beat): start each tenant's run when its month has just begun in its time zone, and
    finalize the drafts whose grace period is over. Fans out one task per tenant and run."""
    from billing.month_end import month_end_due

    due = month_end_due()
    for tenant_id, period_start in due["start"]:
        month_end_start.delay(tenant_id, period_start.isoformat())
    for tenant_id, run_id in due["advance"]:
        month_end_advance.delay(tenant_id, run_id)
    return {"started": len(due["start"]), "advanced": len(due["advance"])}
