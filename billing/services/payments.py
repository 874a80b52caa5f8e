"""Payments: recording money received, allocating it to invoices, voiding it, and customer credit.

The rules, stated once:

- A payment is a positive amount in one currency with at most the currency's minor unit (two
  places at most), received on a date that is not in the future (the tenant's today).
- An allocation pays part of one invoice from one payment. It is refused unless the invoice is
  finalized (not a draft, void or already paid), belongs to the payment's customer, has the
  payment's currency, and still owes at least the amount (``balance_due``); and unless the payment
  is not void and has at least that much unallocated. Amounts are positive and exact (no rounding).
- "Paid" is stored: when an allocation brings an invoice's amount due to 0, the invoice moves to
  ``paid`` (``paid_at`` the day the money was received). "Partially paid" and "overdue" are derived
  by ``Invoice.objects.with_payment_status`` from the allocations and the due date, never stored.
- Overpayment is customer credit: what a payment has not allocated stays on it, and
  ``invoice_finalize`` takes it (``payment_credit_apply``) for the customer's next invoice in that
  currency, oldest payment first. Finance may also allocate it by hand to any open invoice.
- Voiding a payment (it bounced, or was recorded by mistake) keeps the row and its allocations for
  the record, but they stop counting: an invoice it had made paid goes back to ``finalized``.
  Voiding an invoice releases the payments allocated to it: their money is credit again.
- A credit note on an invoice that payments have already covered leaves it paid for more than it
  now asks: ``payment_release_overpayment`` takes the excess off its allocations (the newest
  first), so that money is the customer's credit again, never lost in an allocation.
- Credit can be paid back: ``payment_refund`` records a ``Refund`` out of one payment's
  unallocated money. A payment with refunds cannot be voided (the money went back already).

Every service runs in one transaction and locks the payment and the invoices it touches
(``select_for_update``), so concurrent allocations cannot pay an invoice twice or spend a payment
twice. Each raises ``ValidationError`` with a message finance can act on, and writes nothing then.
"""

from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone

from billing.documents import invoice_pdf_refresh_on_commit
from billing.models import Invoice, Payment, PaymentAllocation, Refund, WebhookEventType
from billing.services._common import ZERO, _save
from billing.services.webhooks import webhook_invoice_emit, webhook_payment_emit
from customers.models import Customer, Tenant
from customers.money import MoneyError, minor_unit
from customers.periods import tenant_today
from customers.tenancy import tenant_scope

AUTO = "auto"


def _owed(invoice: Invoice) -> Decimal:
    """What ``invoice`` still owes from its payments' point of view, whatever its stored status:
    amount due as issued, less credit notes (never below 0), less live allocations. Read after the
    invoice is locked (a query of its own: the lock's query would see the sums as they were before
    it waited for the lock)."""
    amount_due, credited, allocated = (
        Invoice.objects.for_tenant(invoice.tenant).with_balance_due()
        .values_list("amount_due", "credited_total", "allocated_total").get(pk=invoice.pk)
    )
    return max(ZERO, amount_due - credited) - allocated


def _locked_invoices(tenant: Tenant, invoice_ids: Iterable[int]) -> dict[int, Invoice]:
    rows = (
        Invoice.objects.for_tenant(tenant)
        .filter(pk__in=set(invoice_ids))
        .select_related("tenant", "customer")  # the customer for messages and webhooks; only the invoice is locked
        .order_by("pk")  # one lock order everywhere
        .select_for_update(of=("self",))
    )
    return {invoice.pk: invoice for invoice in rows}


def _locked_payment(payment: Payment) -> Payment:
    return (
        Payment.objects.for_tenant(payment.tenant)
        .select_for_update(of=("self",))
        .select_related("tenant", "customer")
        .get(pk=payment.pk)
    )


def _unallocated(payment: Payment) -> Decimal:
    return Payment.objects.for_tenant(payment.tenant).with_unallocated().get(pk=payment.pk).unallocated


def _check_amount(amount, currency: str, field: str = "amount") -> Decimal:
    if isinstance(amount, float) or not isinstance(amount, Decimal | int | str):
        raise ValidationError({field: "Give the amount as a decimal, e.g. 125.50."})
    try:
        amount = Decimal(str(amount))
    except ArithmeticError:
        raise ValidationError({field: "Give the amount as a decimal, e.g. 125.50."}) from None
    if not amount.is_finite() or amount <= 0:
        raise ValidationError({field: "The amount must be greater than zero."})
    try:
        unit = minor_unit(currency)
    except MoneyError as exc:
        raise ValidationError({"currency": str(exc)}) from None
    if amount != amount.quantize(unit) or amount.as_tuple().exponent < -2:
        raise ValidationError({field: f"{amount} has more decimals than {currency} allows ({unit})."})
    return amount.quantize(Decimal("0.01"))


def _paid_moment(tenant: Tenant, received_on: date) -> datetime:
    # The invoice was paid when the money arrived: now if that is today, else midday that day.
    if received_on >= tenant_today(tenant):
        return timezone.now()
    return datetime.combine(received_on, time(12), tzinfo=ZoneInfo(tenant.time_zone))


_LOOK_UP = object()


def _allocate(
    payment: Payment, invoice: Invoice, amount: Decimal, *, paid_at: datetime | None = None,
    owed: Decimal | None = None, existing=_LOOK_UP,
) -> PaymentAllocation:
    """Allocate ``amount`` of a locked, live ``payment`` to a locked ``invoice`` after every check.
    The caller has checked the payment's unallocated amount and that ``amount`` is positive with
    at most two places (``_check_amount``, or the least of such amounts). ``owed`` is what the
    invoice owes when the caller has just read it (``_owed``) with the invoice locked; ``existing``
    the payment's allocation to the invoice (or None) when the caller knows it (a payment it has
    just recorded); else both are read here."""
    number = invoice.number or str(invoice)
    if invoice.customer_id != payment.customer_id:
        raise ValidationError(f"Invoice {number} belongs to another customer than this payment.")
    if invoice.status != Invoice.Status.FINALIZED:
        reason = {
            Invoice.Status.DRAFT: "is a draft; only a finalized invoice can be paid",
            Invoice.Status.VOID: "is void and owes nothing",
            Invoice.Status.PAID: "is already paid",
        }[invoice.status]
        raise ValidationError(f"Invoice {number} {reason}.")
    if invoice.currency != payment.currency:
        raise ValidationError(
            f"Invoice {number} is in {invoice.currency}; this payment is in {payment.currency} "
            "(no conversion is guessed)."
        )
    if owed is None:
        owed = _owed(invoice)
    if amount > owed:
        raise ValidationError(f"Invoice {number} owes {owed} {invoice.currency}; {amount} is more than that.")
    allocations = PaymentAllocation.objects.for_tenant(payment.tenant)
    if existing is _LOOK_UP:
        existing = allocations.filter(payment=payment, invoice=invoice).first()
    if existing is not None:
        # One row per payment and invoice: a second allocation adds to the first.
        allocations.filter(pk=existing.pk).update(amount=existing.amount + amount)
        existing.amount += amount
        allocation = existing
    else:
        # Every rule full_clean would check is checked above, without its queries: the tenant's
        # payment and invoice (both locked), no allocation of this pair yet, a positive amount with
        # two places. The database's constraints stay the last word.
        allocation = PaymentAllocation(tenant=payment.tenant, payment=payment, invoice=invoice, amount=amount)
        allocation.save(force_insert=True)
    if amount == owed:
        invoice.status = Invoice.Status.PAID
        invoice.paid_at = paid_at or _paid_moment(payment.tenant, payment.received_on)
        # finalized → paid, nothing else: the one move Invoice.save's guard would allow, written
        # without reading the row back (it is locked) or validating columns that did not change.
        Invoice.objects.for_tenant(invoice.tenant).filter(pk=invoice.pk).update(
            status=invoice.status, paid_at=invoice.paid_at
        )
        webhook_invoice_emit(invoice=invoice, type=WebhookEventType.INVOICE_PAID)
    invoice_pdf_refresh_on_commit(invoice=invoice)
    return allocation


def payment_open_invoices(*, customer: Customer, currency: str) -> list[Invoice]:
    """The customer's finalized invoices in ``currency`` that still owe something, oldest due first
    (due date, then number), each with ``balance_due``: the order auto-allocation pays them in."""
    invoices = (
        Invoice.objects.for_tenant(customer.tenant)
        .with_balance_due()
        .filter(customer=customer, currency=currency, status=Invoice.Status.FINALIZED, balance_due__gt=0)
        .order_by("due_date", "sequence_number", "pk")
    )
    return list(invoices)


def _payment_save(payment: Payment) -> Payment:
    """Validate and insert a new payment as ``_save`` would, without the queries that re-check what
    ``payment_record`` has checked already: that its tenant and customer exist (the caller's
    objects, the customer the tenant's), and that the amount is positive (``_check_amount``). The
    fields, ``Payment.clean`` and the one bank reference per payment are still checked."""
    with tenant_scope(payment.tenant):
        payment.full_clean(exclude=["tenant", "customer", "created_by"], validate_constraints=False)
    if payment.bank_reference and (
        Payment.objects.for_tenant(payment.tenant).filter(bank_reference=payment.bank_reference).exists()
    ):
        raise ValidationError({NON_FIELD_ERRORS: [Payment.BANK_REFERENCE_TAKEN]})
    payment.save(force_insert=True)
    return payment


@transaction.atomic
def payment_record(
    *,
    tenant: Tenant,
    customer: Customer,
    amount,
    received_on: date,
    method: str = Payment.Method.BANK_TRANSFER,
    reference: str = "",
    note: str = "",
    currency: str | None = None,
    allocations: Iterable[tuple[Invoice, Decimal]] | str | None = AUTO,
    created_by=None,
    paid_at: datetime | None = None,
    bank_reference: str = "",
) -> Payment:
    """Record money received from ``customer`` and allocate it.

    ``currency`` defaults to the customer's. ``allocations`` is ``AUTO`` (the default: pay the
    customer's open invoices in that currency oldest due first, each as far as the money goes),
    an explicit list of ``(invoice, amount)`` (an amount of ``None``: as much as is left after the
    named amounts, up to what the invoice owes, oldest due first), or ``None``/``[]`` (nothing
    allocated). Whatever is not allocated is the customer's credit (see the module docstring).
    ``paid_at`` overrides when an invoice this payment settles counts as paid (default:
    ``received_on``). ``bank_reference`` is the bank's id of the transaction (a statement import
    sets it): a second payment with the same one is refused.
    Returns the payment. Raises ValidationError for another tenant's customer, an amount that is
    not positive or has too many decimals, an unknown method, a date in the future, or any
    allocation the rules refuse (the message names the invoice); nothing is written then.
    """
    if customer.tenant_id != tenant.pk:
        raise ValidationError({"customer": "The customer belongs to another tenant."})
    currency = (currency or customer.currency).upper()
    amount = _check_amount(amount, currency)
    if method not in Payment.Method.values:
        raise ValidationError({"method": f"Unknown method {method!r}; use one of {', '.join(Payment.Method.values)}."})
    if not isinstance(received_on, date) or isinstance(received_on, datetime):
        raise ValidationError({"received_on": "Give the date the money was received (YYYY-MM-DD)."})
    today = tenant_today(tenant)
    if received_on > today:
        raise ValidationError({"received_on": f"A payment cannot be received in the future (today is {today})."})
    payment = _payment_save(
        Payment(
            tenant=tenant,
            customer=customer,
            amount=amount,
            currency=currency,
            received_on=received_on,
            method=method,
            reference=(reference or "").strip(),
            note=(note or "").strip(),
            bank_reference=(bank_reference or "").strip(),
            created_by=created_by,
        )
    )
    made: list[tuple[Invoice, Decimal]] = []
    # The payment is new: its only allocations are the ones made below.
    mine: dict[int, PaymentAllocation] = {}

    def allocate(invoice: Invoice, share: Decimal, owed: Decimal | None = None) -> None:
        mine[invoice.pk] = _allocate(payment, invoice, share, paid_at=paid_at, owed=owed, existing=mine.get(invoice.pk))
        made.append((invoice, share))

    if allocations == AUTO:
        left = amount
        open_ids = [invoice.pk for invoice in payment_open_invoices(customer=customer, currency=currency)]
        locked = _locked_invoices(tenant, open_ids)
        for invoice_id in open_ids:
            if left <= 0:
                break
            invoice = locked[invoice_id]
            owed = _owed(invoice)
            share = min(left, owed)
            if share > 0:
                allocate(invoice, share, owed)
                left -= share
        webhook_payment_emit(payment=payment, allocations=made)
        return payment
    wanted = [
        (invoice, None if share is None else _check_amount(share, currency, "allocations"))
        for invoice, share in (allocations or [])
    ]
    named = sum((share for _, share in wanted if share is not None), ZERO)
    if named > amount:
        raise ValidationError({"allocations": f"The allocations add up to {named} {currency}, more than the payment ({amount})."})
    for invoice, _share in wanted:
        if invoice.tenant_id != tenant.pk:
            raise ValidationError({"allocations": "An invoice belongs to another tenant."})
    locked = _locked_invoices(tenant, [invoice.pk for invoice, _ in wanted])
    for invoice, share in wanted:
        if share is not None:
            allocate(locked[invoice.pk], share)
    # Invoices named without an amount share what is left, oldest due first, each as far as it goes.
    left = amount - named
    for invoice, _share in sorted(
        ((locked[i.pk], s) for i, s in wanted if s is None), key=lambda pair: (pair[0].due_date, pair[0].pk)
    ):
        if left <= 0:
            raise ValidationError({"allocations": f"Nothing of the payment is left for invoice {invoice.number or invoice}."})
        if invoice.status == Invoice.Status.FINALIZED:
            owed = _owed(invoice)
            allocate(invoice, min(left, owed), owed)
        else:
            allocate(invoice, left)  # refuses drafts, void and paid invoices
        left -= made[-1][1]
    webhook_payment_emit(payment=payment, allocations=made)
    return payment


@transaction.atomic
def payment_allocate(*, payment: Payment, invoice: Invoice, amount=None) -> PaymentAllocation:
    """Allocate ``amount`` (default: as much as both allow) of ``payment``'s unallocated money to
    ``invoice``. Returns the allocation. Raises ValidationError for a void payment, an amount above
    what the payment has unallocated, or anything ``payment_record``'s allocations refuse."""
    payment = _locked_payment(payment)
    if payment.is_void:
        raise ValidationError("This payment is void; it cannot pay anything.")
    if invoice.tenant_id != payment.tenant_id:
        raise ValidationError("The invoice belongs to another tenant.")
    invoice = _locked_invoices(payment.tenant, [invoice.pk])[invoice.pk]
    unallocated = _unallocated(payment)
    if amount is None:
        amount = min(unallocated, _owed(invoice)) if invoice.status == Invoice.Status.FINALIZED else unallocated
        if amount <= 0:
            raise ValidationError("Nothing to allocate: the payment is fully allocated or the invoice owes nothing.")
    amount = _check_amount(amount, payment.currency)
    if amount > unallocated:
        raise ValidationError(
            f"This payment has {unallocated} {payment.currency} unallocated; {amount} is more than that."
        )
    return _allocate(payment, invoice, amount)


@transaction.atomic
def payment_void(*, payment: Payment, reason: str) -> Payment:
    """Void a recorded payment (it bounced, or was recorded by mistake). Nothing is deleted.

    Its allocations stay on record but no longer count; every invoice it had made paid goes back
    to ``finalized`` (its amount due is what the other payments leave). Raises ValidationError for
    a blank reason or a payment that is already void.
    """
    payment = _locked_payment(payment)
    if not reason or not reason.strip():
        raise ValidationError({"void_reason": "Say why the payment is voided (e.g. “returned by the bank”)."})
    if payment.is_void:
        raise ValidationError("This payment is already void.")
    refunded = sum(Refund.objects.for_tenant(payment.tenant).filter(payment=payment).values_list("amount", flat=True), ZERO)
    if refunded:
        raise ValidationError(
            f"{refunded} {payment.currency} of this payment has been refunded to the customer; a refunded payment "
            "cannot be voided."
        )
    invoice_ids = PaymentAllocation.objects.for_tenant(payment.tenant).filter(payment=payment).values_list("invoice_id", flat=True)
    invoices = _locked_invoices(payment.tenant, list(invoice_ids))
    payment.voided_at = timezone.now()
    payment.void_reason = reason.strip()[:300]
    _save(payment)
    for invoice in invoices.values():
        if invoice.status == Invoice.Status.PAID and _owed(invoice) > 0:
            invoice.status = Invoice.Status.FINALIZED
            invoice.paid_at = None
            _save(invoice)
        invoice_pdf_refresh_on_commit(invoice=invoice)
    return payment


def payment_credit_apply(*, invoice: Invoice) -> Decimal:
    """Pay a just-finalized ``invoice`` from its customer's credit: the unallocated money of live
    payments in the invoice's currency, oldest received first. Returns the amount applied.

    Runs inside ``invoice_finalize``'s transaction, with the invoice locked.
    """
    tenant = invoice.tenant
    payments = list(
        Payment.objects.for_tenant(tenant)
        .filter(customer_id=invoice.customer_id, currency=invoice.currency, voided_at__isnull=True)
        .order_by("received_on", "pk")
        .select_for_update(of=("self",))
    )
    if not payments:
        return ZERO
    unallocated = dict(
        Payment.objects.for_tenant(tenant).with_unallocated().filter(pk__in=[p.pk for p in payments]).values_list("pk", "unallocated")
    )
    applied = ZERO
    for payment in payments:
        owed = _owed(invoice)
        if owed <= 0:
            break
        share = min(owed, unallocated[payment.pk])
        if share > 0:
            _allocate(payment, invoice, share, paid_at=timezone.now(), owed=owed)
            applied += share
    return applied


def payment_release_invoice(*, invoice: Invoice) -> Decimal:
    """Release the allocations to an invoice being voided: their money is the customer's credit
    again. Returns the amount released. Runs inside ``invoice_void``'s transaction."""
    allocations = PaymentAllocation.objects.for_tenant(invoice.tenant).filter(invoice=invoice)
    released = sum((a.amount for a in allocations.filter(payment__voided_at__isnull=True)), ZERO)
    allocations.delete()
    return released


def payment_release_overpayment(*, invoice: Invoice) -> Decimal:
    """Release what ``invoice``'s allocations pay beyond what it now asks (its amount due less its
    credit notes): the newest allocation first, each reduced (deleted at 0), so the money is the
    customer's credit again. Returns the amount released (0 when nothing is over).

    Runs inside ``credit_note_issue``'s transaction, with the invoice locked.
    """
    fresh = Invoice.objects.for_tenant(invoice.tenant).with_balance_due().get(pk=invoice.pk)
    excess = fresh.allocated_total - max(ZERO, fresh.amount_due - fresh.credited_total)
    if excess <= 0:
        return ZERO
    allocations = (
        PaymentAllocation.objects.for_tenant(invoice.tenant)
        .filter(invoice=invoice, payment__voided_at__isnull=True)
        .select_related("payment")
        .order_by("-payment__received_on", "-pk")
        .select_for_update(of=("self",))
    )
    released = ZERO
    for allocation in allocations:
        if released == excess:
            break
        share = min(excess - released, allocation.amount)
        rows = PaymentAllocation.objects.for_tenant(invoice.tenant).filter(pk=allocation.pk)
        if share == allocation.amount:
            rows.delete()
        else:
            rows.update(amount=allocation.amount - share)
        released += share
    return released


@transaction.atomic
def payment_refund(
    *,
    payment: Payment,
    amount,
    refunded_on: date,
    method: str = Payment.Method.BANK_TRANSFER,
    reference: str = "",
    note: str = "",
    created_by=None,
) -> Refund:
    """Pay ``amount`` of ``payment``'s unallocated money (the customer's credit) back to the customer.

    Returns the refund. Raises ValidationError for a void payment, an amount that is not positive,
    has too many decimals or is more than the payment has unallocated, an unknown method, or a date
    in the future or before the money was received; nothing is written then.
    """
    payment = _locked_payment(payment)
    if payment.is_void:
        raise ValidationError("This payment is void; there is nothing of it to refund.")
    amount = _check_amount(amount, payment.currency)
    if method not in Payment.Method.values:
        raise ValidationError({"method": f"Unknown method {method!r}; use one of {', '.join(Payment.Method.values)}."})
    if not isinstance(refunded_on, date) or isinstance(refunded_on, datetime):
        raise ValidationError({"refunded_on": "Give the date the money was paid back (YYYY-MM-DD)."})
    today = tenant_today(payment.tenant)
    if refunded_on > today:
        raise ValidationError({"refunded_on": f"A refund cannot be paid in the future (today is {today})."})
    if refunded_on < payment.received_on:
        raise ValidationError({"refunded_on": f"The money arrived on {payment.received_on}; it cannot be paid back before."})
    unallocated = _unallocated(payment)
    if amount > unallocated:
        raise ValidationError(
            {"amount": f"This payment has {unallocated} {payment.currency} of credit left; {amount} is more than that."}
        )
    return _save(
        Refund(
            tenant=payment.tenant,
            payment=payment,
            customer_id=payment.customer_id,
            amount=amount,
            currency=payment.currency,
            refunded_on=refunded_on,
            method=method,
            reference=(reference or "").strip(),
            note=(note or "").strip(),
            created_by=created_by,
        )
    )
