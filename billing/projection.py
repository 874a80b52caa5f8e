"""The invoice a customer's usage so far projects: priced exactly as the month-end draft, written nowhere.

``invoice_project`` runs ``billing.services.price_period`` (the pricing behind
``invoice_compute_drafts``) for one customer, so the projection and the draft the run then
produces agree to the cent for the same inputs. It reads only: no draft, no settings row, no
numbers are created.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from billing.models import BillingSettings
from billing.services.pricing import price_period
from customers.models import Customer

ZERO = Decimal(0)


@dataclass(frozen=True)
class ProjectedLine:
    description: str
    kind: str  # a billing.pricing.LineKind value: charge, one_time, true_up, discount, credit
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class ProjectedInvoice:
    """One customer's period as an invoice would show it; amounts in ``currency``, rounded as invoiced.

    ``subtotal`` sums the charges, ``discount_total`` what discounts and credits take off it;
    ``total`` = subtotal − discount_total + ``vat_amount``; ``amount_due`` subtracts the customer's
    approved balance credits. ``problems`` says why nothing could be priced (e.g. contracts in
    another currency); a customer with nothing to bill gets no lines and zero totals.
    """

    customer_id: int
    period_start: date
    period_end: date
    currency: str
    lines: list[ProjectedLine] = field(default_factory=list)
    subtotal: Decimal = ZERO
    discount_total: Decimal = ZERO
    vat_rate: Decimal = ZERO
    vat_amount: Decimal = ZERO
    total: Decimal = ZERO
    credit_applied: Decimal = ZERO
    amount_due: Decimal = ZERO
    reverse_charge: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def net(self) -> Decimal:
        return self.subtotal - self.discount_total


def _settings_read(tenant) -> BillingSettings:
    # billing_settings_for would create the row on first use; a projection writes nothing.
    return BillingSettings.objects.for_tenant(tenant).first() or BillingSettings(tenant=tenant)


def invoice_project(*, customer: Customer, period_start: date, period_end: date) -> ProjectedInvoice:
    """Price ``customer``'s invoice for the inclusive period as ``invoice_compute_drafts`` would now.

    Same contract lines, price terms, usage totals (events up to now), minimum charge, VAT and
    balance credits as the draft run; writes nothing and takes no locks. Raises ValueError for a
    period that ends before it starts.
    """
    if period_end < period_start:
        raise ValueError("The period cannot end before it starts.")
    tenant = customer.tenant
    priced = price_period(
        tenant=tenant,
        period_start=period_start,
        period_end=period_end,
        settings=_settings_read(tenant),
        customer_ids=[customer.pk],
    )
    draft = priced.drafts.get(customer.pk)
    if draft is None:
        return ProjectedInvoice(
            customer_id=customer.pk,
            period_start=period_start,
            period_end=period_end,
            currency=customer.currency,
            problems=priced.problems,
        )
    return ProjectedInvoice(
        customer_id=customer.pk,
        period_start=period_start,
        period_end=period_end,
        currency=customer.currency,
        lines=[
            ProjectedLine(
                description=p.line.description,
                kind=str(p.line.kind),
                quantity=p.line.quantity,
                unit_price=p.line.unit_price,
                amount=p.line.amount,
            )
            for p in draft.lines
        ],
        subtotal=draft.subtotal,
        discount_total=draft.discount_total,
        vat_rate=draft.vat_rate,
        vat_amount=draft.vat_amount,
        total=draft.total,
        credit_applied=draft.credit_applied,
        amount_due=draft.amount_due,
        reverse_charge=draft.reverse_charge,
    )
