"""Reads for billing that are more than a filter: usage aggregates, what is creditable, credit balances.

Every selector takes ``tenant=`` explicitly and returns only that tenant's rows.
"""

import zoneinfo
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce

from billing.metering import usage_store, usage_totals
from billing.models import (
    BillableMetric,
    CreditNote,
    CreditRequest,
    DunningReminder,
    Invoice,
    Payment,
    PendingCharge,
)
from customers.models import Customer, Tenant
from customers.periods import tenant_today

ZERO = Decimal(0)


def metric_totals(
    *, tenant: Tenant, metrics: list[BillableMetric], period_start: date, period_end: date
) -> dict[tuple[int, str], Decimal]:
    """Each customer's billable quantity of ``metrics`` over the inclusive dates.

    ``{(customer_id, metric_code): Decimal}`` without zero entries, from
    ``billing.metering.usage_totals`` (one aggregate query per metric, grouped by customer).
    """
    if not metrics:
        return {}
    wanted = {metric.code for metric in metrics}
    totals = usage_totals(tenant=tenant, period_start=period_start, period_end=period_end)
    return {key: value for key, value in totals.items() if key[1] in wanted and value}


def metric_event_amounts(
    *, tenant: Tenant, metric: BillableMetric, period_start: date, period_end: date, customer_ids=None
) -> dict[int, list[Decimal]]:
    """Every customer's (or only ``customer_ids``') measured amounts of one metric, event by event
    in time order (one query).

    For percentage pricing with per-event fees, minimums or maximums, where a sum is not enough.
    The metric's filters and time window read events as ``usage_totals`` does; an event without
    a numeric value measures 0. Read from the usage-event store (``billing.usage_store``).
    """
    zone = zoneinfo.ZoneInfo(tenant.time_zone)
    start = datetime.combine(period_start, time.min, tzinfo=zone)
    end = datetime.combine(period_end + timedelta(days=1), time.min, tzinfo=zone)
    return usage_store().event_amounts(tenant=tenant, metric=metric, start=start, end=end, customer_ids=customer_ids)


def invoice_credited_total(*, invoice: Invoice) -> Decimal:
    """What credit notes have given back on ``invoice`` so far (VAT included)."""
    credited = CreditNote.objects.for_tenant(invoice.tenant).filter(invoice=invoice).aggregate(s=Sum("total"))["s"]
    return credited or ZERO


def invoice_with_balance_due(*, invoice: Invoice) -> Invoice:
    """``invoice`` read again with ``credited_total``, ``paid_total`` and ``balance_due`` (one query).

    ``balance_due`` is the amount due everywhere (``Invoice.objects.with_balance_due``): total less
    credit applied, credit notes and payment; 0 for paid and void invoices. The customer and
    tenant come along (documents and emails need both).
    """
    return (
        Invoice.objects.for_tenant(invoice.tenant)
        .with_balance_due()
        .select_related("tenant", "customer")
        .get(pk=invoice.pk)
    )


def invoice_creditable_amount(*, invoice: Invoice) -> Decimal:
    """What a new credit note on ``invoice`` may still give back: its total less earlier credit notes.

    Zero for drafts and void invoices, which cannot be credited.
    """
    if invoice.status not in (Invoice.Status.FINALIZED, Invoice.Status.PAID):
        return ZERO
    return max(ZERO, invoice.total - invoice_credited_total(invoice=invoice))


def balance_credit_remaining(*, tenant: Tenant, exclude_draft_period_start: date | None = None) -> dict[int, Decimal]:
    """Approved balance credits (no invoice) still unused, by credit request id.

    Used means taken off a non-void invoice; the drafts of ``exclude_draft_period_start`` are left
    out because the draft run is about to rebuild them.
    """
    requests = CreditRequest.objects.for_tenant(tenant).filter(
        status=CreditRequest.Status.APPROVED, invoice__isnull=True
    )
    used = Q(applications__invoice__status__in=[Invoice.Status.DRAFT, Invoice.Status.FINALIZED, Invoice.Status.PAID])
    if exclude_draft_period_start is not None:
        used &= ~Q(
            applications__invoice__status=Invoice.Status.DRAFT,
            applications__invoice__period_start=exclude_draft_period_start,
        )
    rows = requests.annotate(used=Coalesce(Sum("applications__amount", filter=used), ZERO)).values_list(
        "id", "amount", "used"
    )
    return {request_id: amount - used for request_id, amount, used in rows if amount > used}


def pending_charges_open(
    *, tenant: Tenant, period_start: date, customer_ids=None
) -> dict[int, list[PendingCharge]]:
    """One-off charges (late fees) the draft of ``period_start`` should bill, by customer id, oldest first.

    Open means billed on no invoice, on a void one, or on the draft of this very period (which the
    draft run is about to rebuild); a charge on any other invoice is billed already. ``customer_ids``
    limits it to those customers (a projection).
    """
    rows = PendingCharge.objects.for_tenant(tenant).filter(
        Q(invoice__isnull=True)
        | Q(invoice__status=Invoice.Status.VOID)
        | Q(invoice__status=Invoice.Status.DRAFT, invoice__period_start=period_start)
    )
    if customer_ids is not None:
        rows = rows.filter(customer_id__in=list(customer_ids))
    charges: dict[int, list[PendingCharge]] = defaultdict(list)
    for charge in rows.order_by("created_at", "id"):
        charges[charge.customer_id].append(charge)
    return dict(charges)


def customer_payment_credit(*, customer: Customer) -> dict[str, Decimal]:
    """The customer's credit from payments: what live (not void) payments have not allocated, per
    currency, without zero entries. ``invoice_finalize`` spends it on the customer's next invoice."""
    credit: dict[str, Decimal] = {}
    rows = Payment.objects.for_tenant(customer.tenant).with_unallocated().filter(customer=customer, voided_at__isnull=True)
    for currency, unallocated in rows.values_list("currency", "unallocated"):
        if unallocated > 0:
            credit[currency] = credit.get(currency, ZERO) + unallocated
    return credit


def customer_usage(*, tenant: Tenant, customer_id: int, period_start: date, period_end: date) -> list[dict]:
    """Every billable metric of ``tenant`` (by name) with the customer's quantity over the inclusive
    dates: ``[{"metric": BillableMetric, "quantity": Decimal}]``, 0 where there was no usage. From
    ``billing.metering.usage_totals`` (one aggregate query per metric)."""
    totals = usage_totals(tenant=tenant, period_start=period_start, period_end=period_end, customer_ids=[customer_id])
    return [
        {"metric": metric, "quantity": totals.get((customer_id, metric.code), ZERO)}
        for metric in BillableMetric.objects.for_tenant(tenant).order_by("name")
    ]


def invoice_reminders_sent(*, tenant: Tenant, invoice: Invoice) -> list[dict]:
    """The payment reminders that went out for ``invoice``, oldest first, as the customer sees them:
    ``{"day": date sent on the tenant's calendar, "days_overdue": int, "late_fee": Decimal | None,
    "currency": str}``. Skipped, cancelled and failed reminders are not listed (nothing reached the customer)."""
    rows = (
        DunningReminder.objects.for_tenant(tenant)
        .filter(invoice=invoice, status=DunningReminder.Status.SENT, sent_at__isnull=False)
        .order_by("sent_at", "id")
    )
    return [
        {"day": tenant_today(tenant, r.sent_at), "days_overdue": r.days_overdue, "late_fee": r.late_fee,
         "currency": r.currency}
        for r in rows
    ]


def customer_reminders(*, tenant: Tenant, customer: Customer, limit: int) -> list[DunningReminder]:
    """The customer's newest ``limit`` payment reminders (any status), newest first, each with its
    invoice and ``sent_on`` (the day it was sent on the tenant's calendar, or None). One query."""
    rows = list(
        DunningReminder.objects.for_tenant(tenant).filter(customer=customer)
        .select_related("invoice").order_by("-created_at", "-id")[:limit]
    )
    for row in rows:
        row.sent_on = tenant_today(tenant, row.sent_at) if row.sent_at else None
    return rows
