"""Finalized invoices and credit notes with known lines, for the document, delivery and portal tests.

Invoices are built as drafts with explicit lines and totals (sums of the rounded lines, VAT on
the net), then finalized through ``billing.services.invoice_finalize`` as production does.
"""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from billing.models import Invoice, InvoiceLine, LineKind
from billing.services import CreditNoteLineSpec, credit_note_issue, invoice_finalize
from customers.tenancy import tenant_scope

CENT = Decimal("0.01")


def build_invoice(
    customer,
    *,
    lines=(("Platform fee", "1", "1000.00"),),
    period_start=date(2026, 11, 1),
    period_end=date(2026, 11, 30),
    vat_rate="0",
    credit_applied="0",
    reverse_charge=False,
    finalize=True,
    issue_date=date(2026, 12, 1),
) -> Invoice:
    """An invoice of ``customer`` with ``lines`` of (description, quantity, unit price[, kind]).

    Lines with a negative unit price are discounts. Returns the finalized invoice (or the draft).
    """
    tenant = customer.tenant
    currency = customer.currency
    priced = []
    for position, spec in enumerate(lines, start=1):
        description, quantity, unit_price = spec[:3]
        amount = (Decimal(quantity) * Decimal(unit_price)).quantize(CENT, rounding=ROUND_HALF_UP)
        kind = spec[3] if len(spec) > 3 else (LineKind.DISCOUNT if amount < 0 else LineKind.CHARGE)
        priced.append((position, description, Decimal(quantity), Decimal(unit_price), amount, kind))
    subtotal = sum((amount for *_, amount, _kind in priced if amount > 0), Decimal(0))
    net = sum((amount for *_, amount, _kind in priced), Decimal(0))
    vat_amount = (net * Decimal(vat_rate) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    total = net + vat_amount
    credit = Decimal(credit_applied)
    with tenant_scope(tenant):
        invoice = Invoice.objects.create(
            tenant=tenant,
            customer=customer,
            period_start=period_start,
            period_end=period_end,
            currency=currency,
            subtotal=subtotal,
            discount_total=subtotal - net,
            vat_rate=Decimal(vat_rate),
            vat_amount=vat_amount,
            total=total,
            credit_applied=credit,
            amount_due=max(Decimal(0), total - credit),
            reverse_charge=reverse_charge,
        )
        InvoiceLine.objects.bulk_create(
            InvoiceLine(
                tenant=tenant,
                invoice=invoice,
                position=position,
                description=description,
                kind=kind,
                quantity=quantity,
                unit_price=unit_price,
                amount=amount,
            )
            for position, description, quantity, unit_price, amount, kind in priced
        )
    if finalize:
        invoice = invoice_finalize(invoice=invoice, issue_date=issue_date)
    return invoice


def build_credit_note(invoice, *, amount="100.00", reason="Outage on 12 November"):
    """A one-line credit note against a finalized ``invoice``."""
    return credit_note_issue(
        invoice=invoice,
        lines=[CreditNoteLineSpec(description="Service credit", unit_price=Decimal(amount))],
        reason=reason,
    )
