"""Card payment through the tenant's provider: opening a checkout for an invoice, recording what it paid.

The rules, stated once:

- Card payment is on for a tenant when it has a ``PaymentProviderAccount`` that is enabled with both
  secrets set (``card_payment_account``). Otherwise ``card_checkout_start`` raises ``CardPaymentOff``.
- Only a finalized invoice that still owes something can be paid by card, for exactly its amount due
  (``balance_due``) in its currency; anything else raises ``NothingToPay``.
- A provider event is acted on once per event id (``ProviderEvent``, unique per tenant, provider and
  event id): the same event delivered again changes nothing and says so.
- A completed checkout records a ``Payment`` (method card, reference the provider's payment id,
  received on the day of the event in the tenant's time zone) through ``payment_record``: money
  that arrived is always recorded. It pays the invoice as far as it goes (a partial amount leaves it
  partially paid); more than the invoice owes, an invoice no longer open (paid meanwhile, voided) or
  another currency leaves the rest (or all of it) as the customer's credit. Any such difference is
  flagged: the event's outcome is ``mismatch``, its ``detail`` and the payment's note say what differed,
  and a warning is logged, so finance can refund or allocate it.
- The event must name (in the metadata we sent) this tenant and one of its invoices; otherwise
  ``EventRefused`` (nothing written, the reason logged, the message safe to show anyone).
"""

import logging
from datetime import date
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from billing.models import Invoice, Payment, PaymentProviderAccount, ProviderEvent
from billing.pay_links import pay_link_url
from billing.payment_providers import Checkout, VerifiedEvent, provider_for
from billing.selectors import invoice_with_balance_due
from billing.services.payments import payment_record
from customers.models import Tenant
from customers.periods import tenant_today

logger = logging.getLogger(__name__)


class CardPaymentOff(Exception):
    """The tenant has no card payment set up. ``str()`` is safe to show the customer."""


class NothingToPay(Exception):
    """The invoice is not open for payment (draft, void, paid). ``str()`` is safe to show."""


class EventRefused(Exception):
    """A verified event that names no invoice of this tenant. ``str()`` is safe to show anyone."""


def card_payment_account(*, tenant: Tenant) -> PaymentProviderAccount | None:
    """The tenant's provider account when card payment is on (enabled, both secrets set), else None."""
    for account in PaymentProviderAccount.objects.for_tenant(tenant):
        if account.is_ready:
            return account
    return None


def card_payment_off_reason(tenant: Tenant) -> str:
    """What customers read when the tenant has no card payment (in the active language)."""
    return gettext("Card payment is not set up by %(tenant)s.") % {"tenant": tenant.name}


def invoice_payable_by_card(invoice: Invoice) -> bool:
    """True when ``invoice`` (annotated with ``balance_due``) is finalized and still owes something."""
    return invoice.status == Invoice.Status.FINALIZED and invoice.balance_due > 0


def card_pay_url(invoice: Invoice) -> str:
    """The emailed "Pay now" link of ``invoice`` when the tenant takes cards and it still owes
    something, else "": the payment reminders' pay link (``settings.DUNNING_PAY_URL``)."""
    fresh = invoice_with_balance_due(invoice=invoice)
    if not invoice_payable_by_card(fresh) or card_payment_account(tenant=invoice.tenant) is None:
        return ""
    return pay_link_url(invoice=invoice)


def card_checkout_start(*, tenant: Tenant, invoice: Invoice, success_url: str, cancel_url: str) -> Checkout:
    """Open a provider checkout for what ``invoice`` owes now; returns the page to send the customer to.

    Writes nothing (the provider keeps the session; its completion comes back as an event).
    Raises ``CardPaymentOff`` when the tenant has no card payment, ``NothingToPay`` for an invoice
    that is not finalized or owes nothing, ``ValueError`` for another tenant's invoice, and
    ``billing.payment_providers.ProviderUnavailable`` when the provider does not open one.
    """
    if invoice.tenant_id != tenant.pk:
        raise ValueError("The invoice belongs to another tenant.")
    account = card_payment_account(tenant=tenant)
    if account is None:
        raise CardPaymentOff(card_payment_off_reason(tenant))
    invoice = invoice_with_balance_due(invoice=invoice)
    if not invoice_payable_by_card(invoice):
        raise NothingToPay(gettext("Invoice %(number)s has nothing left to pay.") % {"number": invoice.number or ""})
    return provider_for(account).create_checkout(
        invoice=invoice, amount=invoice.balance_due, success_url=success_url, cancel_url=cancel_url
    )


def _received_on(tenant: Tenant, event: VerifiedEvent) -> date:
    # The day the provider took the money, in the tenant's time zone; never after the tenant's today
    # (a provider clock a little ahead must not make payment_record refuse money that arrived).
    day = event.created.astimezone(ZoneInfo(tenant.time_zone)).date()
    return min(day, tenant_today(tenant))


def _invoice_of(tenant: Tenant, event: VerifiedEvent) -> Invoice:
    checkout = event.checkout
    if checkout.tenant_id != str(tenant.pk) or not checkout.invoice_id.isdigit():
        logger.warning(
            "Card event %s for tenant %s names tenant %r invoice %r: refused.",
            event.event_id, tenant.pk, checkout.tenant_id, checkout.invoice_id,
        )
        raise EventRefused("The event names no invoice of this account.")
    invoice = (
        Invoice.objects.for_tenant(tenant).select_related("tenant", "customer").filter(pk=int(checkout.invoice_id)).first()
    )
    if invoice is None:
        logger.warning("Card event %s for tenant %s names unknown invoice %s: refused.", event.event_id, tenant.pk, checkout.invoice_id)
        raise EventRefused("The event names no invoice of this account.")
    return invoice


@transaction.atomic
def card_event_record(*, tenant: Tenant, provider: str, event: VerifiedEvent) -> tuple[ProviderEvent | None, bool]:
    """Act on a verified provider ``event`` of ``tenant``: record the payment a completed checkout made.

    Returns ``(provider_event, created)``: the stored event row and whether this call made it
    (False: the event was already acted on, nothing changed). Returns ``(None, False)`` for an event
    type that pays nothing (ignored, nothing stored). A checkout not paid yet (a delayed method) is
    stored as ``not_paid``; its later ``async_payment_succeeded`` event records the payment.
    Raises ``EventRefused`` (nothing written) for an event naming no invoice of this tenant, or one
    whose money cannot be kept in a payment (e.g. a currency with three decimals).
    """
    if event.checkout is None:
        return None, False
    existing = ProviderEvent.objects.for_tenant(tenant).filter(provider=provider, event_id=event.event_id).first()
    if existing is not None:
        return existing, False
    invoice = _invoice_of(tenant, event)
    checkout = event.checkout
    try:
        with transaction.atomic():  # a concurrent delivery of the same event waits here, then finds ours
            row = ProviderEvent.objects.create(
                tenant=tenant, provider=provider, event_id=event.event_id, event_type=event.event_type,
                invoice=invoice, outcome=ProviderEvent.Outcome.NOT_PAID,
            )
    except IntegrityError:
        return ProviderEvent.objects.for_tenant(tenant).get(provider=provider, event_id=event.event_id), False
    if not checkout.paid:
        row.detail = f"Checkout {checkout.session_id} completed without payment yet."
        row.save(update_fields=["detail"])
        return row, True

    # Lock the invoice so a concurrent payment cannot change what it owes between the check and the allocation.
    Invoice.objects.for_tenant(tenant).select_for_update(of=("self",)).filter(pk=invoice.pk).first()
    invoice = invoice_with_balance_due(invoice=invoice)
    owed = invoice.balance_due
    problems = []
    if checkout.currency != invoice.currency:
        problems.append(f"paid in {checkout.currency}, invoice is in {invoice.currency}")
    elif invoice.status != Invoice.Status.FINALIZED or owed <= 0:
        problems.append(f"invoice {invoice.number} was {invoice.get_status_display().lower()} and owed {owed}")
    elif checkout.amount != owed:
        problems.append(f"paid {checkout.amount} {checkout.currency}, invoice owed {owed}")
    allocate = not problems or (checkout.currency == invoice.currency and invoice.status == Invoice.Status.FINALIZED and owed > 0)
    detail = f"Card payment {checkout.reference}: " + ("; ".join(problems) if problems else "paid in full")
    if problems and checkout.amount > owed and allocate:
        detail += f"; {checkout.amount - owed} {checkout.currency} kept as the customer's credit"
    try:
        payment = payment_record(
            tenant=tenant,
            customer=invoice.customer,
            amount=checkout.amount,
            currency=checkout.currency,
            received_on=_received_on(tenant, event),
            method=Payment.Method.CARD,
            reference=checkout.reference,
            note=(detail if problems else f"Card payment for invoice {invoice.number}")[:300],
            allocations=[(invoice, None)] if allocate else None,
        )
    except ValidationError as exc:
        logger.warning("Card event %s for tenant %s not recorded: %s", event.event_id, tenant.pk, "; ".join(exc.messages))
        raise EventRefused("The event's payment cannot be recorded.") from None
    row.payment = payment
    row.outcome = ProviderEvent.Outcome.MISMATCH if problems else ProviderEvent.Outcome.RECORDED
    row.detail = detail[:500]
    row.save(update_fields=["payment", "outcome", "detail"])
    if problems:
        logger.warning("Card payment flagged for tenant %s, invoice %s: %s", tenant.pk, invoice.pk, detail)
    return row, True
