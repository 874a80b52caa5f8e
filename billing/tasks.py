"""Thin Celery tasks for billing: they take ids (always the tenant's) and call a service."""

from celery import shared_task

from billing.delivery import invoice_send
from billing.documents import invoice_render_pdf
from billing.models import Invoice
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
