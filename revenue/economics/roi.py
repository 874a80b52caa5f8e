"""Customer ROI for customers billed on savings (the performance-priced optimizer).

Savings evidence is usage events of the metric a contract line prices with the ``percentage``
charge model (``billing.models.PriceTerms``); each event's ``properties`` carry ``baseline`` and
``optimized`` (the AI spend without and with the optimization, in the customer's currency). An
event's savings are ``baseline − optimized``, never negative (``billing.pricing.savings``).

Fees are what the customer was billed: the net lines of their finalized or paid invoices whose
period starts in the month: ``percentage_fee`` from the percentage-priced contract lines,
``platform_fee`` from recurring and per-seat lines, ``other`` for the rest (minimum charges,
discounts, credits), ``fees`` their sum. All in the customer's currency.

Per month and cumulative: ``roi = (savings − fees) / fees`` (None without fees) and
``payback_months = fees / savings`` (months of savings that repay the fees; None without savings).
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal


from billing.metering import usage_store
from billing.models import BillableMetric, ChargeModel, Invoice, InvoiceLine, PriceTerms
from customers.models import ContractLine, Customer, Tenant
from customers.periods import add_months, month_end, month_start, months_between
from revenue.economics.costs import BILLED, ZERO
from revenue.selectors.common import MetricError

MAX_MONTHS = 60


def savings_metrics(*, tenant: Tenant, customer: Customer | None = None) -> dict[str, str]:
    """``{metric code: event code}`` of the metrics priced as a percentage (of savings)."""
    terms = PriceTerms.objects.for_tenant(tenant).filter(charge_model=ChargeModel.PERCENTAGE)
    if customer is not None:
        terms = terms.filter(contract_line__contract__customer=customer)
    codes = set(terms.values_list("metric", flat=True))
    return {
        m.code: m.source_code for m in BillableMetric.objects.for_tenant(tenant).filter(code__in=codes)
    }


def savings_customers(*, tenant: Tenant):
    """Customers with a contract line priced on savings."""
    ids = PriceTerms.objects.for_tenant(tenant).filter(charge_model=ChargeModel.PERCENTAGE).values(
        "contract_line__contract__customer_id"
    )
    return Customer.objects.for_tenant(tenant).filter(pk__in=ids).order_by("name")


def _utc(tenant: Tenant, day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo(tenant.time_zone)).astimezone(dt_timezone.utc)


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return None if denominator <= 0 else numerator / denominator


def _fees(tenant: Tenant, ids: list[int], first: date, last: date) -> dict[int, dict[date, dict[str, Decimal]]]:
    """``{customer id: {month: {"percentage_fee" | "platform_fee" | "other": net billed}}}``."""
    percentage_lines = set(
        PriceTerms.objects.for_tenant(tenant)
        .filter(charge_model=ChargeModel.PERCENTAGE, contract_line__contract__customer_id__in=ids)
        .values_list("contract_line_id", flat=True)
    )
    fees: dict[int, dict[date, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(Decimal)))
    rows = (
        InvoiceLine.objects.for_tenant(tenant)
        .filter(invoice__customer_id__in=ids, invoice__status__in=BILLED,
                invoice__period_start__gte=first, invoice__period_start__lte=month_end(last))
        .values_list("invoice__customer_id", "invoice__period_start", "contract_line_id", "contract_line__kind", "amount")
    )
    for customer_id, period_start, line_id, kind, amount in rows:
        if line_id in percentage_lines:
            key = "percentage_fee"
        elif kind in (ContractLine.Kind.RECURRING, ContractLine.Kind.PER_SEAT):
            key = "platform_fee"
        else:
            key = "other"
        fees[customer_id][month_start(period_start)][key] += amount
    return fees


def customer_roi(*, tenant: Tenant, customer: Customer, first: date, last: date) -> dict:
    """The customer's ROI per month from ``first`` to ``last`` (month starts) and cumulatively.

    Returns ``{"customer", "currency", "months": [...], "cumulative": {...}}``; each figure set has
    ``baseline``, ``optimized``, ``savings``, ``events``, ``percentage_fee``, ``platform_fee``,
    ``other``, ``fees``, ``net_benefit`` (savings − fees), ``roi`` and ``payback_months``.
    Raises MetricError for a customer of another tenant or a bad window.
    """
    if customer.tenant_id != tenant.pk:
        raise MetricError("No such customer.")
    return customers_roi(tenant=tenant, customers=[customer], first=first, last=last)[customer.pk]


def customers_roi(*, tenant: Tenant, customers: list[Customer], first: date, last: date) -> dict[int, dict]:
    """``customer_roi`` of each of ``customers`` (the tenant's), ``{customer id: ROI}``, in the same
    few queries however many customers. Raises MetricError for a bad window."""
    if first > last:
        raise MetricError("'from' must not be after 'to'.")
    months = months_between(first, last)
    if len(months) > MAX_MONTHS:
        raise MetricError(f"Ask for at most {MAX_MONTHS} months at once.")
    ids = [c.pk for c in customers]
    terms = PriceTerms.objects.for_tenant(tenant).filter(
        charge_model=ChargeModel.PERCENTAGE, contract_line__contract__customer_id__in=ids
    ).values_list("contract_line__contract__customer_id", "metric")
    metrics = savings_metrics(tenant=tenant)
    codes: dict[int, set[str]] = defaultdict(set)
    for customer_id, metric in terms:
        if metric in metrics:
            codes[customer_id].add(metrics[metric])
    measured: dict[int, dict[date, list]] = defaultdict(dict)
    all_codes = sorted(set().union(*codes.values()))
    if all_codes:
        # From the usage-event store, one bucket per month (the tenant's calendar): bucket i is months[i - 1].
        bounds = [_utc(tenant, month) for month in months] + [_utc(tenant, add_months(months[-1], 1))]
        found = usage_store().savings_buckets(tenant=tenant, metric_codes=all_codes, bounds=bounds, customer_ids=ids)
        for (customer_id, code, bucket), figures in sorted(found.items()):
            month = months[bucket - 1]
            if code in codes[customer_id]:
                known = measured[customer_id].get(month)
                measured[customer_id][month] = figures if known is None else [
                    a + b for a, b in zip(known, figures, strict=True)
                ]
    fees = _fees(tenant, ids, months[0], months[-1])
    return {
        customer.pk: _roi(customer, months, measured.get(customer.pk, {}), fees.get(customer.pk, {}))
        for customer in customers
    }


def _roi(customer: Customer, months: list[date], measured: dict, fees: dict) -> dict:
    rows, total = [], defaultdict(Decimal)
    for month in months:
        baseline, optimized, saved, events = measured.get(month, (ZERO, ZERO, ZERO, 0))
        paid = fees.get(month, {})
        row = {
            "baseline": baseline, "optimized": optimized, "savings": saved, "events": int(events),
            "percentage_fee": paid.get("percentage_fee", ZERO), "platform_fee": paid.get("platform_fee", ZERO),
            "other": paid.get("other", ZERO),
        }
        row["fees"] = row["percentage_fee"] + row["platform_fee"] + row["other"]
        for key, value in row.items():
            total[key] += value
        rows.append({"month": month, **_derived(row)})
    return {
        "customer": customer.name,
        "currency": customer.currency,
        "months": rows,
        "cumulative": _derived({k: total[k] for k in rows[0] if k != "month"} if rows else {}),
    }


def _derived(row: dict) -> dict:
    row = dict(row)
    row["net_benefit"] = row["savings"] - row["fees"]
    row["roi"] = _ratio(row["savings"] - row["fees"], row["fees"])
    row["payback_months"] = _ratio(row["fees"], row["savings"])
    return row


def savings_evidence(*, tenant: Tenant, invoice_line: InvoiceLine) -> dict:
    """The savings events behind one percentage-priced invoice line, in time order.

    Returns ``{"invoice", "line", "metric", "events": [{"timestamp", "idempotency_key",
    "baseline", "optimized", "savings"}], "savings"}``; ``savings`` is their sum, the quantity the
    line's percentage was taken of. Raises MetricError when the line is not priced on savings.
    """
    terms = (
        PriceTerms.objects.for_tenant(tenant)
        .filter(contract_line_id=invoice_line.contract_line_id, charge_model=ChargeModel.PERCENTAGE)
        .first()
    )
    if terms is None:
        raise MetricError("This invoice line is not priced on savings.")
    metric = BillableMetric.objects.for_tenant(tenant).filter(code=terms.metric).first()
    invoice = Invoice.objects.for_tenant(tenant).get(pk=invoice_line.invoice_id)  # explicit tenant, any scope
    events = usage_store().customer_events(
        tenant=tenant, customer_id=invoice.customer_id, metric_code=metric.source_code if metric else terms.metric,
        start=_utc(tenant, invoice.period_start), end=_utc(tenant, invoice.period_end + timedelta(days=1)),
    )
    listed, total = [], ZERO
    for timestamp, key, properties in events:
        baseline, optimized = _number(properties.get("baseline")), _number(properties.get("optimized"))
        saved = max(ZERO, baseline - optimized)
        total += saved
        listed.append({"timestamp": timestamp, "idempotency_key": key, "baseline": baseline,
                       "optimized": optimized, "savings": saved})
    return {"invoice": invoice.number, "line": invoice_line.description, "metric": terms.metric,
            "events": listed, "savings": total}


def _number(value) -> Decimal:
    try:
        number = Decimal(str(value)) if value is not None and not isinstance(value, bool) else ZERO
    except ArithmeticError:
        return ZERO
    return max(ZERO, number) if number.is_finite() else ZERO
