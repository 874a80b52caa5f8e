"""The invoice lifecycle after the draft run: finalizing (gapless numbers), voiding, marking paid
(a payment of what is owed; payments themselves are ``billing.services.payments``).

Delivery after finalization is queued by task object, ``billing.delivery.invoice_deliver``
(registered as ``billing.tasks.invoice_deliver``), which lives with delivery rather than in
``billing.tasks``: ``billing.tasks`` imports the services and ``billing.month_end`` to call them,
so a service importing ``billing.tasks`` back closed an import circle (services → tasks →
month_end → services). The task a service queues sits below the service in the import graph.
"""

from datetime import date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.delivery import invoice_deliver
from billing.documents import invoice_pdf_refresh_on_commit
from billing.metering import PERIOD_INVOICED
from billing.models import (
    BillingSettings,
    CreditApplication,
    CreditAuditEntry,
    CreditRequest,
    Invoice,
    NumberSequence,
    Payment,
    WebhookEventType,
)
from billing.references import ocr_for_invoice
from billing.services._common import ZERO, _audit, _locked, _next_number, _save
from billing.services.payments import payment_credit_apply, payment_record, payment_release_invoice
from billing.services.webhooks import webhook_invoice_emit
from customers.periods import tenant_today


PERIOD_OPEN = "period_open"


def invoice_period_is_open(*, invoice: Invoice, today: date | None = None) -> bool:
    """True while the invoice's period is still running: its last day is today or later (tenant's time zone)."""
    return invoice.period_end >= (today or tenant_today(invoice.tenant))


def early_close_warning(*, invoice: Invoice) -> str:
    """What finalizing ``invoice`` before its period ends does to later usage, in the reader's language."""
    return _(
        "The period of this invoice runs until %(end)s. Finalizing it now closes the period early: "
        "usage dated later in the period will be refused as “%(reason)s” and never invoiced."
    ) % {"end": invoice.period_end.isoformat(), "reason": PERIOD_INVOICED}


@transaction.atomic
def invoice_finalize(
    *, invoice: Invoice, issue_date: date | None = None, deliver: bool = True, close_early: bool = False
) -> Invoice:
    """Freeze a draft: number it, date it, mark its fully used balance credits applied, and pay it
    from the customer's credit (unallocated payments, ``payments.payment_credit_apply``).

    The number is ``{prefix}{year}-{n:05d}`` with ``n`` the next value of the tenant's gapless
    invoice sequence (taken under a row lock in this transaction). A tenant paid by bankgiro also
    gets the invoice's OCR number from the same year and ``n`` (``billing.references``), stored once. ``issue_date`` defaults to
    today in the tenant's time zone; the due date adds the tenant's payment terms. Returns the
    finalized invoice. Once the transaction commits, ``billing.tasks.invoice_deliver`` renders
    its PDF and emails it; ``deliver=False`` queues nothing (an invoice delivered outside the
    portal, e.g. historical ones loaded later: its PDF is rendered when first downloaded).

    An invoice whose period has not ended yet (``invoice_period_is_open``) is finalized only with
    ``close_early=True``: once it is final, usage dated later in its period is refused as
    ``period already invoiced``. Without it the call raises ValidationError (code ``period_open``)
    with ``early_close_warning``.
    Raises ValidationError if the invoice is not a draft.
    """
    invoice = _locked(invoice)
    if invoice.status != Invoice.Status.DRAFT:
        raise ValidationError(f"Invoice {invoice} is {invoice.status}; only a draft can be finalized.")
    tenant = invoice.tenant
    if invoice_period_is_open(invoice=invoice) and not close_early:
        raise ValidationError(
            "%s %s" % (early_close_warning(invoice=invoice), _("Choose “close this period early” to finalize it now.")),
            code=PERIOD_OPEN,
        )
    issue_date = issue_date or tenant_today(tenant)
    sequence_number = _next_number(tenant=tenant, kind=NumberSequence.Kind.INVOICE)
    invoice.sequence_number = sequence_number
    invoice.number = f"{tenant.invoice_number_prefix}{issue_date.year}-{sequence_number:05d}"
    if BillingSettings.objects.for_tenant(tenant).filter(payment_method=BillingSettings.PaymentMethod.BANKGIRO).exists():
        invoice.ocr_reference = ocr_for_invoice(year=issue_date.year, sequence_number=sequence_number)
    invoice.status = Invoice.Status.FINALIZED
    invoice.issue_date = issue_date
    invoice.due_date = issue_date + timedelta(days=tenant.payment_terms_days)
    invoice.finalized_at = timezone.now()
    _save(invoice)
    webhook_invoice_emit(invoice=invoice, type=WebhookEventType.INVOICE_FINALIZED)
    _mark_used_credits_applied(invoice)
    payment_credit_apply(invoice=invoice)
    if deliver:
        transaction.on_commit(partial(invoice_deliver.delay, tenant.pk, invoice.pk))
    return invoice


def _mark_used_credits_applied(invoice: Invoice) -> None:
    tenant = invoice.tenant
    request_ids = CreditApplication.objects.for_tenant(tenant).filter(invoice=invoice).values_list("credit_request_id")
    requests = list(
        CreditRequest.objects.for_tenant(tenant)
        .filter(pk__in=request_ids, status=CreditRequest.Status.APPROVED)
        .select_for_update()
    )
    if not requests:
        return
    used = dict(
        CreditApplication.objects.for_tenant(tenant)
        .filter(credit_request__in=requests, invoice__status__in=[Invoice.Status.FINALIZED, Invoice.Status.PAID])
        .values("credit_request_id")
        .annotate(used=Sum("amount"))
        .values_list("credit_request_id", "used")
    )
    for request in requests:
        if used.get(request.pk, ZERO) >= request.amount:
            request.status = CreditRequest.Status.APPLIED
            _save(request)
            _audit(request, CreditAuditEntry.Action.APPLIED, actor=None, note=f"Taken off invoice {invoice.number}")


@transaction.atomic
def invoice_void(*, invoice: Invoice, reason: str = "") -> Invoice:
    """Void a draft or finalized invoice (a status; nothing is deleted).

    Its number stays used; balance credits taken off it return to the customer's balance, and
    payments allocated to it are released (their money is the customer's credit again).
    Raises ValidationError for a paid or already void invoice.
    """
    invoice = _locked(invoice)
    if invoice.status not in (Invoice.Status.DRAFT, Invoice.Status.FINALIZED):
        raise ValidationError(f"Invoice {invoice} is {invoice.status} and cannot be voided.")
    invoice.status = Invoice.Status.VOID
    invoice.voided_at = timezone.now()
    _save(invoice)
    payment_release_invoice(invoice=invoice)
    invoice_pdf_refresh_on_commit(invoice=invoice)
    requests = CreditRequest.objects.for_tenant(invoice.tenant).filter(
        applications__invoice=invoice, status=CreditRequest.Status.APPLIED
    )
    for request in requests:
        request.status = CreditRequest.Status.APPROVED
        _save(request)
        _audit(request, CreditAuditEntry.Action.REOPENED, actor=None, note=f"Invoice {invoice.number} voided. {reason}".strip())
    return invoice


@transaction.atomic
def invoice_mark_paid(*, invoice: Invoice, paid_at: datetime | None = None, created_by=None) -> Invoice:
    """Record that a finalized invoice was paid in full: a payment of what it still owes.

    The payment (method "other", the invoice number as reference) is received on ``paid_at``'s
    day in the tenant's time zone (default today) and allocated to this invoice, which makes it
    paid. An invoice that owes nothing (credit notes covered it) is marked paid without a payment.
    Raises ValidationError for any status but finalized.
    """
    invoice = _locked(invoice)
    if invoice.status != Invoice.Status.FINALIZED:
        raise ValidationError(f"Invoice {invoice} is {invoice.status}; only a finalized invoice can be paid.")
    tenant = invoice.tenant
    owed = Invoice.objects.for_tenant(tenant).with_balance_due().get(pk=invoice.pk).balance_due
    if owed > 0:
        received_on = timezone.localtime(paid_at, ZoneInfo(tenant.time_zone)).date() if paid_at else tenant_today(tenant)
        payment_record(
            tenant=tenant,
            customer=invoice.customer,
            amount=owed,
            currency=invoice.currency,
            received_on=received_on,
            method=Payment.Method.OTHER,
            reference=invoice.number,
            note="Marked paid",
            allocations=[(invoice, owed)],
            created_by=created_by,
            paid_at=paid_at,
        )
        return Invoice.objects.for_tenant(tenant).get(pk=invoice.pk)
    invoice.status = Invoice.Status.PAID
    invoice.paid_at = paid_at or timezone.now()
    _save(invoice)
    webhook_invoice_emit(invoice=invoice, type=WebhookEventType.INVOICE_PAID)
    invoice_pdf_refresh_on_commit(invoice=invoice)
    return invoice
