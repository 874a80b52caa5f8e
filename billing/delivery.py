"""Emailing a finalized invoice to the customer's billing addresses, with its PDF attached.

What is attached follows the customer's ``einvoice_format``: the PDF; the PDF and the Peppol BIS
3.0 UBL XML; or the Factur-X PDF (the same PDF as PDF/A-3b with the invoice's CII XML inside) in
place of the plain PDF (``billing.einvoice``).

Each recipient has one ``InvoiceDelivery`` row (an outbox message, unique per tenant, invoice and
recipient) that records the outcome, so sending twice sends once unless ``resend=True``. Callers
queue the send after their own transaction commits (``invoice_send_on_commit``): an email cannot be taken back,
so it must never go out for an invoice whose finalization later rolls back.

``invoice_deliver`` is the Celery task ``invoice_finalize`` queues. It is defined here, beside
what it runs, rather than in ``billing.tasks``: a task a service queues must sit below that
service in the import graph, and ``billing.tasks`` sits above the services (it calls them). It is
registered under its old name, ``billing.tasks.invoice_deliver``, and ``billing.tasks``
re-exports it.
"""

import logging
from email.utils import formataddr

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from billing import formatting
from billing.documents import invoice_render_pdf
from billing.einvoice import EInvoiceError, XML_CONTENT_TYPE, invoice_facturx, invoice_ubl
from billing.models import Invoice, InvoiceDelivery
from billing.outbox import outbox_send
from billing.payment_details import invoice_payment_details
from billing.selectors import invoice_with_balance_due
from billing.services.card_payments import card_pay_url
from customers.models import EInvoiceFormat, Tenant
from customers.tenancy import tenant_scope

logger = logging.getLogger(__name__)

SENDABLE_STATUSES = {Invoice.Status.FINALIZED, Invoice.Status.PAID}


def _recipients(emails: list[str]) -> list[str]:
    # The same address twice (in any case) is one recipient.
    seen, recipients = set(), []
    for email in emails or []:
        address = (email or "").strip()
        if address and address.lower() not in seen:
            seen.add(address.lower())
            recipients.append(address)
    return recipients


def _attachments(invoice: Invoice, pdf_name: str, pdf: bytes) -> list[tuple[str, bytes, str]]:
    """``(filename, content, mimetype)`` of what the invoice email carries, by the customer's choice."""
    plain = (pdf_name.rsplit("/", 1)[-1], pdf, "application/pdf")
    choice = invoice.customer.einvoice_format
    try:
        if choice == EInvoiceFormat.PDF_UBL:
            content, filename = invoice_ubl(invoice=invoice)
            return [plain, (filename, content, XML_CONTENT_TYPE)]
        if choice == EInvoiceFormat.FACTURX:
            content, filename = invoice_facturx(invoice=invoice)
            return [(filename, content, "application/pdf")]
    except EInvoiceError as exc:
        # The PDF is the invoice; the e-invoice is its machine-readable twin. One that cannot be made (an
        # invoice without lines) must not hold the invoice back: the email carries the PDF, and says why in the log.
        logger.warning("Invoice %s emailed as PDF only, not %s: %s", invoice.pk, choice, exc)
    return [plain]


def _message(invoice: Invoice, recipient: str, attachments: list[tuple[str, bytes, str]]) -> EmailMultiAlternatives:
    customer, tenant = invoice.customer, invoice.tenant
    language = customer.language if customer.language in formatting.LOCALES else formatting.DEFAULT_LANGUAGE
    context = {
        "invoice": invoice,
        "tenant": tenant,
        "customer": customer,
        "amount_due": formatting.format_money(invoice.balance_due, invoice.currency, language),
        "total": formatting.format_money(invoice.total, invoice.currency, language),
        "due_date": formatting.format_day(invoice.due_date, language),
        "period_start": formatting.format_day(invoice.period_start, language),
        "period_end": formatting.format_day(invoice.period_end, language),
    }
    # "Pay now" by card only when the tenant has it set up and the invoice still owes something.
    context["pay_url"] = card_pay_url(invoice)
    with translation.override(language):
        context["payment_details"] = invoice_payment_details(invoice=invoice)
        subject = translation.gettext("Invoice %(number)s from %(tenant)s") % {
            "number": invoice.number,
            "tenant": tenant.name,
        }
        text = render_to_string("billing/email/invoice.txt", context)
        html = render_to_string("billing/email/invoice.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=formataddr((tenant.name, settings.DEFAULT_FROM_EMAIL)),
        to=[recipient],
    )
    message.attach_alternative(html, "text/html")
    for filename, content, mimetype in attachments:
        message.attach(filename, content, mimetype)
    return message


def invoice_send(*, invoice: Invoice, resend: bool = False) -> list[InvoiceDelivery]:
    """Email a finalized (or paid) invoice, PDF attached, to each of the customer's billing emails.

    The attachments follow the customer's ``einvoice_format`` (``_attachments``): the PDF, the PDF and
    its UBL XML, or the Factur-X PDF alone; an invoice that has no e-invoice (no lines) carries the PDF,
    with a warning logged.

    Bodies (HTML and plain text) and subject are in the customer's language; the PDF is the
    stored one (rendered now if it is not yet). Each recipient's ``InvoiceDelivery`` row records
    the outcome: ``sent`` with ``sent_at``, or ``failed`` with the server's error; ``attempts``
    counts tries. A recipient already ``sent`` is skipped unless ``resend``. Returns the rows, by
    recipient. Raises ValidationError for a draft or void invoice, or a customer without billing
    emails; a mail server failure is recorded on the row, not raised.

    Sending once per recipient is the outbox's (``billing.outbox.outbox_send``): the rows are created
    in one transaction, then each recipient is sent under a lock on its row and recorded in its own
    transaction, because a sent email cannot be rolled back with a later failure, and a concurrent
    caller must wait and then see ``sent``.
    """
    tenant = invoice.tenant
    invoice = invoice_with_balance_due(invoice=invoice)
    if invoice.status not in SENDABLE_STATUSES:
        raise ValidationError(f"Invoice {invoice} is {invoice.status}; only finalized invoices are emailed.")
    recipients = _recipients(invoice.customer.billing_emails)
    if not recipients:
        raise ValidationError(f"{invoice.customer} has no billing email address.")
    pdf_name = invoice_render_pdf(invoice=invoice)
    with default_storage.open(pdf_name, "rb") as handle:
        pdf = handle.read()
    attachments = _attachments(invoice, pdf_name, pdf)

    rows = [InvoiceDelivery(tenant=tenant, invoice=invoice, recipient=address) for address in recipients]
    return outbox_send(
        tenant=tenant, rows=rows, resend=resend, compose=lambda recipient, _rows: _message(invoice, recipient, attachments)
    )


def invoice_send_on_commit(*, invoice: Invoice, resend: bool = False) -> None:
    """Send ``invoice`` once the caller's transaction commits (at once outside a transaction).

    For ``invoice_finalize``'s callers: a rollback sends nothing. Errors of the send itself are
    recorded on the delivery rows; a refused invoice (draft, no email) is logged.
    """

    def send():
        try:
            invoice_send(invoice=invoice, resend=resend)
        except ValidationError as exc:
            logger.warning("Invoice %s not sent: %s", invoice.pk, "; ".join(exc.messages))

    transaction.on_commit(send)


@shared_task(
    name="billing.tasks.invoice_deliver", acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5
)
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
