"""The draft run: write every customer's DRAFT invoice for a period as ``price_period`` prices it."""

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction

from billing.models import CreditApplication, Invoice, InvoiceLine, PendingCharge
from billing.services.price_terms import billing_settings_for
from billing.services.pricing import PricedInvoice, PricedLine, price_period
from billing.metering import usage_store
from customers.models import Tenant

REVERSE_CHARGE_NOTE = "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)."


@transaction.atomic
def invoice_compute_drafts(*, tenant: Tenant, period_start: date, period_end: date) -> dict:
    """Build or refresh the DRAFT invoice of every customer with a billed contract line in the period.

    Dates are inclusive. Set-wise: one query for the period's contract lines (with contracts,
    customers and price terms), one per metric for usage, then bulk writes. A draft whose inputs
    are unchanged is left alone (so a second run writes nothing); a changed one gets new lines and
    totals; a finalized or paid invoice is never touched; a draft whose customer no longer has
    anything to bill is deleted. Pending one-off charges (late fees) are billed as one-time lines
    and linked to the draft that bills them, so exactly one invoice carries each. Concurrent runs of one tenant are serialized. Pricing is
    ``price_period``'s, shared with the customer portal's projection.

    Returns counts: ``created``, ``updated``, ``unchanged``, ``final`` (left as issued), ``removed``,
    ``lines`` (written), ``skipped`` and ``problems`` (why customers were skipped).
    Raises ValidationError for a period that ends before it starts.
    """
    if period_end < period_start:
        raise ValidationError({"period_end": "The period cannot end before it starts."})
    settings = billing_settings_for(tenant=tenant, lock=True)
    # Usage batches a crash left unwritten in the event store count before the month is priced.
    usage_store().pending_flush(tenant=tenant)
    priced_period = price_period(tenant=tenant, period_start=period_start, period_end=period_end, settings=settings)
    drafts = priced_period.drafts
    counts = {"created": 0, "updated": 0, "unchanged": 0, "final": 0, "removed": 0, "lines": 0,
              "skipped": priced_period.skipped}
    problems = priced_period.problems

    existing = {
        invoice.customer_id: invoice
        for invoice in Invoice.objects.for_tenant(tenant)
        .filter(period_start=period_start)
        .exclude(status=Invoice.Status.VOID)
        .only("id", "tenant_id", "customer_id", "status", "inputs_hash")
        .select_for_update()
    }
    to_create, to_update, stale_ids = [], [], []
    for customer_id, draft in drafts.items():
        invoice = existing.get(customer_id)
        if invoice is not None and invoice.status != Invoice.Status.DRAFT:
            counts["final"] += 1
            continue
        if invoice is not None and invoice.inputs_hash == draft.inputs_hash:
            counts["unchanged"] += 1
            continue
        if invoice is None:
            invoice = Invoice(tenant=tenant, customer=draft.customer, period_start=period_start)
            _fill(invoice, draft, period_end)
            to_create.append(invoice)
        else:
            stale_ids.append(invoice.pk)
    # Only the changed drafts are read whole (the lookup above reads four columns of every invoice).
    for invoice in Invoice.objects.for_tenant(tenant).filter(pk__in=stale_ids).select_related("customer"):
        _fill(invoice, drafts[invoice.customer_id], period_end)
        to_update.append(invoice)
    for invoice in to_create + to_update:
        invoice.full_clean(exclude=["tenant", "customer", "contract"], validate_unique=False, validate_constraints=False)

    removed_ids = [
        invoice.pk
        for customer_id, invoice in existing.items()
        if customer_id not in priced_period.billed_customer_ids and invoice.status == Invoice.Status.DRAFT
    ]
    if stale_ids or removed_ids:
        InvoiceLine.objects.for_tenant(tenant).filter(invoice_id__in=stale_ids + removed_ids).delete()
        CreditApplication.objects.for_tenant(tenant).filter(invoice_id__in=stale_ids + removed_ids).delete()
        # Pending charges go back to pending; the rebuilt drafts take theirs again below.
        PendingCharge.objects.for_tenant(tenant).filter(invoice_id__in=stale_ids + removed_ids).update(invoice=None)
    if removed_ids:
        Invoice.objects.for_tenant(tenant).filter(pk__in=removed_ids, status=Invoice.Status.DRAFT).delete()
    Invoice.objects.for_tenant(tenant).bulk_create(to_create, batch_size=2000)
    Invoice.objects.for_tenant(tenant).bulk_update(to_update, fields=_DRAFT_FIELDS, batch_size=1000)

    new_lines, applications = [], []
    for invoice in to_create + to_update:
        draft = drafts[invoice.customer_id]
        for position, priced_line in enumerate(draft.lines, start=1):
            new_lines.append(_invoice_line(tenant, invoice, position, priced_line))
        for request_id, amount in draft.credits:
            applications.append(CreditApplication(tenant=tenant, credit_request_id=request_id, invoice=invoice, amount=amount))
    for line in new_lines:
        line.clean_fields(exclude=["tenant", "invoice", "contract_line"])
    InvoiceLine.objects.for_tenant(tenant).bulk_create(new_lines, batch_size=5000)
    CreditApplication.objects.for_tenant(tenant).bulk_create(applications)
    for invoice in to_create + to_update:
        charge_ids = drafts[invoice.customer_id].charges
        if charge_ids:  # billed by this draft, so no other draft bills them (billing.selectors.pending_charges_open)
            PendingCharge.objects.for_tenant(tenant).filter(pk__in=charge_ids).update(invoice=invoice)

    counts.update(created=len(to_create), updated=len(to_update), removed=len(removed_ids), lines=len(new_lines))
    counts["problems"] = problems
    return counts


_DRAFT_FIELDS = [
    "period_end", "currency", "contract", "subtotal", "discount_total", "vat_rate", "vat_amount", "total",
    "credit_applied", "amount_due", "reverse_charge", "vat_note", "inputs_hash",
]


def _fill(invoice: Invoice, draft: PricedInvoice, period_end: date) -> None:
    invoice.period_end = period_end
    invoice.currency = draft.customer.currency
    invoice.contract_id = draft.contract_id
    invoice.subtotal = draft.subtotal
    invoice.discount_total = draft.discount_total
    invoice.vat_rate = draft.vat_rate
    invoice.vat_amount = draft.vat_amount
    invoice.total = draft.total
    invoice.credit_applied = draft.credit_applied
    invoice.amount_due = draft.amount_due
    invoice.reverse_charge = draft.reverse_charge
    invoice.vat_note = REVERSE_CHARGE_NOTE if draft.reverse_charge else ""
    invoice.inputs_hash = draft.inputs_hash


def _invoice_line(tenant, invoice, position, priced: PricedLine) -> InvoiceLine:
    line = priced.line
    return InvoiceLine(
        tenant=tenant,
        invoice=invoice,
        position=position,
        description=line.description[:300],
        kind=str(line.kind),
        quantity=line.quantity,
        unit_price=line.unit_price,
        proration=str(line.proration),
        amount=line.amount,
        contract_line_id=priced.contract_line_id,
    )
