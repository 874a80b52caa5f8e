"""Credit notes against issued invoices, and manual credit requests with their approvals."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing import pricing
from billing.documents import invoice_pdf_refresh_on_commit
from billing.models import (
    CreditAuditEntry,
    CreditNote,
    CreditNoteLine,
    CreditRequest,
    Invoice,
    InvoiceLine,
    NumberSequence,
)
from billing.selectors import invoice_creditable_amount
from billing.services._common import ZERO, _audit, _locked, _next_number, _save
from billing.services.payments import payment_release_overpayment
from billing.services.webhooks import webhook_credit_note_emit
from customers.models import Customer, Membership, Role, Tenant
from customers.periods import tenant_today

# --- credit notes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditNoteLineSpec:
    """One line of a credit note: ``quantity × unit_price`` excluding VAT, positive, in the invoice's currency."""

    description: str
    unit_price: Decimal
    quantity: Decimal = Decimal(1)
    invoice_line: InvoiceLine | None = None


@transaction.atomic
def credit_note_issue(
    *, invoice: Invoice, lines: Sequence[CreditNoteLineSpec], reason: str, created_by=None
) -> CreditNote:
    """Issue a numbered credit note against a finalized or paid invoice.

    Each line is rounded to the minor unit (ROUND_HALF_UP); VAT is the invoice's rate on their sum
    (0 under reverse charge), rounded once. The total (VAT included) may not exceed what the invoice
    still has creditable (its total less earlier credit notes). The number is
    ``{prefix}CN-{year}-{n:05d}`` from the tenant's own gapless credit-note sequence.
    Raises ValidationError for a draft/void invoice, no lines, non-positive amounts, lines of
    another invoice, a blank reason or a total above the creditable amount.

    When payments already cover more than the invoice now asks, the excess becomes the customer's
    credit again (``payment_release_overpayment``): the next invoice uses it, or finance refunds it.
    """
    invoice = _locked(invoice)
    tenant, currency = invoice.tenant, invoice.currency
    if invoice.status not in (Invoice.Status.FINALIZED, Invoice.Status.PAID):
        raise ValidationError(f"Invoice {invoice} is {invoice.status}; only a finalized or paid invoice can be credited.")
    if not reason or not reason.strip():
        raise ValidationError({"reason": "A credit note needs a reason."})
    if not lines:
        raise ValidationError("A credit note needs at least one line.")
    priced = []
    for spec in lines:
        if spec.invoice_line is not None and spec.invoice_line.invoice_id != invoice.pk:
            raise ValidationError(f"Line {spec.invoice_line} belongs to another invoice.")
        try:
            line = pricing.per_unit(spec.quantity, unit_price=spec.unit_price, currency=currency, description=spec.description)
        except pricing.PricingError as exc:
            raise ValidationError(str(exc)) from None
        if not line or line[0].amount <= 0:
            raise ValidationError(f"Credit note line {spec.description!r} must credit a positive amount.")
        priced.append((spec, line[0]))
    subtotal = sum((line.amount for _, line in priced), ZERO)
    vat_amount = pricing.round_money(Fraction(subtotal) * Fraction(invoice.vat_rate) / 100, currency)
    total = subtotal + vat_amount
    creditable = invoice_creditable_amount(invoice=invoice)
    if total > creditable:
        raise ValidationError(
            f"This credit note ({total} {currency}) exceeds what invoice {invoice.number} still has creditable "
            f"({creditable} {currency})."
        )
    issue_date = tenant_today(tenant)
    sequence_number = _next_number(tenant=tenant, kind=NumberSequence.Kind.CREDIT_NOTE)
    note = _save(
        CreditNote(
            tenant=tenant,
            invoice=invoice,
            customer_id=invoice.customer_id,
            number=f"{tenant.invoice_number_prefix}CN-{issue_date.year}-{sequence_number:05d}",
            sequence_number=sequence_number,
            currency=currency,
            reason=reason.strip(),
            issue_date=issue_date,
            subtotal=subtotal,
            vat_rate=invoice.vat_rate,
            vat_amount=vat_amount,
            total=total,
            created_by=created_by,
        )
    )
    for position, (spec, line) in enumerate(priced, start=1):
        _save(
            CreditNoteLine(
                tenant=tenant,
                credit_note=note,
                position=position,
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.amount,
                invoice_line=spec.invoice_line,
            )
        )
    payment_release_overpayment(invoice=invoice)
    webhook_credit_note_emit(note=note)
    invoice_pdf_refresh_on_commit(invoice=invoice)
    return note


# --- credit requests -------------------------------------------------------------------------


MANAGER_ROLES = {Role.OWNER, Role.ACCOUNT_MANAGER, Role.FINANCE}
DIRECTOR_ROLES = {Role.OWNER}
ANY_STAFF_LIMIT = Decimal(100)
MANAGER_LIMIT = Decimal(1000)


def credit_approver_roles(*, tenant: Tenant, amount: Decimal, currency: str) -> set[str]:
    """Roles that may decide a manual credit of ``amount`` ``currency``.

    DOMAIN: a manager above 100 and a director above 1 000 in the tenant's currency. Up to 100 any
    other member may approve; above 100 an owner, account manager or finance; above 1 000 an owner.
    A credit in another currency than the tenant's needs an owner (no conversion is guessed).
    """
    if currency != tenant.reporting_currency or amount > MANAGER_LIMIT:
        return set(DIRECTOR_ROLES)
    if amount > ANY_STAFF_LIMIT:
        return set(MANAGER_ROLES)
    return set(Role.values)


def _membership(tenant: Tenant, user) -> Membership | None:
    if user is None or not getattr(user, "pk", None):
        return None
    return Membership.objects.for_tenant(tenant).filter(user=user).first()


@transaction.atomic
def credit_request_create(
    *, customer: Customer, amount: Decimal, reason: str, requested_by, invoice: Invoice | None = None
) -> CreditRequest:
    """Ask for a manual credit for ``customer``; it waits for approval (see credit_approver_roles).

    With ``invoice`` (finalized or paid, of this customer) the credit becomes a credit note on
    approval and ``amount`` excludes VAT; without, ``amount`` is a balance taken off the customer's
    next invoices. The requester must be a member of the customer's tenant. The request is audited.
    Raises ValidationError otherwise, or for an amount that is not positive.
    """
    tenant = customer.tenant
    membership = _membership(tenant, requested_by)
    if membership is None:
        raise ValidationError("Only a member of this tenant can request a credit.")
    if invoice is not None:
        if invoice.customer_id != customer.pk:
            raise ValidationError({"invoice": "The invoice belongs to another customer."})
        if invoice.status not in (Invoice.Status.FINALIZED, Invoice.Status.PAID):
            raise ValidationError({"invoice": "Only a finalized or paid invoice can be credited."})
    request = _save(
        CreditRequest(
            tenant=tenant,
            customer=customer,
            invoice=invoice,
            amount=amount,
            currency=invoice.currency if invoice is not None else customer.currency,
            reason=reason,
            requested_by=requested_by,
        )
    )
    _audit(request, CreditAuditEntry.Action.REQUESTED, actor=requested_by, role=membership.role, note=reason)
    return request


def _decide(request: CreditRequest, decider, verb: str) -> Membership:
    request = CreditRequest.objects.for_tenant(request.tenant).select_for_update().get(pk=request.pk)
    if request.status != CreditRequest.Status.REQUESTED:
        raise ValidationError(f"This credit request is already {request.status}.")
    if decider is None or decider.pk == request.requested_by_id:
        raise ValidationError(f"You cannot {verb} your own credit request; another member must.")
    membership = _membership(request.tenant, decider)
    allowed = credit_approver_roles(tenant=request.tenant, amount=request.amount, currency=request.currency)
    if membership is None or membership.role not in allowed:
        names = ", ".join(sorted(Role(role).label.lower() for role in allowed))
        raise ValidationError(
            f"A credit of {request.amount} {request.currency} must be decided by: {names}."
        )
    return membership


@transaction.atomic
def credit_request_approve(*, credit_request: CreditRequest, approver, note: str = "") -> CreditRequest:
    """Approve a requested credit, audited with the approver and their role.

    The approver must be another member than the requester, with a role allowed for the amount.
    An invoice credit is issued at once as a credit note (status ``applied``); a balance credit
    becomes ``approved`` and is taken off the customer's next draft invoices.
    Raises ValidationError when the rules refuse it (nothing is written then).
    """
    membership = _decide(credit_request, approver, "approve")
    request = CreditRequest.objects.for_tenant(credit_request.tenant).get(pk=credit_request.pk)
    request.status = CreditRequest.Status.APPROVED
    request.decided_by = approver
    request.decided_at = timezone.now()
    _save(request)
    _audit(request, CreditAuditEntry.Action.APPROVED, actor=approver, role=membership.role, note=note)
    if request.invoice_id is not None:
        credit_note = credit_note_issue(
            invoice=request.invoice,
            lines=[CreditNoteLineSpec(description=f"Credit: {request.reason}"[:300], unit_price=request.amount)],
            reason=request.reason,
            created_by=approver,
        )
        request.credit_note = credit_note
        request.status = CreditRequest.Status.APPLIED
        _save(request)
        _audit(request, CreditAuditEntry.Action.APPLIED, actor=approver, role=membership.role, note=credit_note.number)
    return request


@transaction.atomic
def credit_request_reject(*, credit_request: CreditRequest, approver, note: str = "") -> CreditRequest:
    """Reject a requested credit; the same people who may approve it may reject it. Audited."""
    membership = _decide(credit_request, approver, "reject")
    request = CreditRequest.objects.for_tenant(credit_request.tenant).get(pk=credit_request.pk)
    request.status = CreditRequest.Status.REJECTED
    request.decided_by = approver
    request.decided_at = timezone.now()
    _save(request)
    _audit(request, CreditAuditEntry.Action.REJECTED, actor=approver, role=membership.role, note=note)
    return request
