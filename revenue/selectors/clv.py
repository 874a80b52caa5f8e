"""Unit economics of one month: ARPA, CLV, TCV, CAC payback, time to revenue, expansion, revenue mix.

Choices (DOMAIN.md "Metric definitions"):
- ARPA: MRR / customers with MRR at the month's end (revenue.selectors.mrr).
- Gross margin: given by the caller (0..1); when no cost to serve is known it is 1 and
  ``gross_margin_assumed`` is True.
- Churn: the average of the monthly customer churn rates of the six closed months ending with
  ``month`` (months with no customer at their start are skipped).
- Predictive CLV = ARPA × gross margin × lifetime, lifetime = 1 / churn; when churn is 0 the
  lifetime is capped at 60 months and ``lifetime_capped`` is True. None when no month had customers.
- Historical CLV = gross revenue to date per customer, averaged over customers with revenue: from
  finalized and paid invoices (subtotal − discounts, before VAT, less credit notes) when the tenant
  has any, else recognized contract revenue (Σ month-end MRR + one-time fees since the first line).
  ``historical_source`` says which.
- TCV = Σ over non-draft contracts of their value over their terms: recurring and per-seat lines
  at their monthly amount × term months (age in months, remaining days / 30), less discount lines'
  percent of the contract's monthly recurring total over the discount's term, plus one-time fees.
  A line without an end runs to the contract's end; an evergreen contract counts 12 months from
  each open line's start. Converted at the rate on the contract's start date.
- CAC payback (months) = average acquisition cost of customers that have one / (ARPA × gross margin).
- Time to revenue = average months (days × 12 / 365.25) from a customer's first contact to its first
  non-draft contract's start.
- Expansion rate = Σ MRR now / Σ MRR twelve months before − 1 over customers with MRR at both dates.
- Revenue mix over the trailing twelve months: recurring (Σ month-end MRR), one-off (one-time fees),
  usage (invoiced, revenue.selectors.mrr.usage_revenue), and weighted open pipeline; recurring
  ratio = recurring / (recurring + one-off + usage).
All amounts exact Decimals in the reporting currency. Raises MissingExchangeRate.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from customers.models import Contract, ContractLine, Customer, Tenant
from customers.periods import add_months, month_end, month_start, months_between
from revenue.models import Opportunity
from revenue.selectors.common import RateBook
from revenue.selectors.concentration import recognized_revenue, trailing_revenue
from revenue.selectors.mrr import customer_mrr, mrr_series, usage_revenue_range
from revenue.selectors.retention import retention_series

ZERO = Decimal(0)
LIFETIME_CAP = Decimal(60)
EVERGREEN_MONTHS = 12


def shift_months(day: date, months: int) -> date:
    """The same day ``months`` later, clipped to the month's length (Jan 31 + 1 → Feb 28)."""
    target = add_months(day.replace(day=1), months)
    return target.replace(day=min(day.day, month_end(target).day))


def term_months(first: date, last: date) -> Decimal:
    """Months from ``first`` to ``last`` inclusive: whole months, then remaining days / 30."""
    after = last + timedelta(days=1)
    months = (after.year - first.year) * 12 + after.month - first.month
    while months > 0 and shift_months(first, months) > after:
        months -= 1
    return Decimal(months) + Decimal((after - shift_months(first, months)).days) / 30


def contract_value(contract: Contract, lines: list[ContractLine]) -> Decimal:
    """Total value of one contract over its term (see module), in the contract's currency."""

    def span(line):
        end = line.ends_on or contract.end_date
        if contract.end_date and end > contract.end_date:
            end = contract.end_date
        if end is None:
            end = shift_months(line.starts_on, EVERGREEN_MONTHS) - timedelta(days=1)
        return line.starts_on, end

    total = ZERO
    recurring = [line for line in lines if line.kind in (ContractLine.Kind.RECURRING, ContractLine.Kind.PER_SEAT)]
    for line in lines:
        first, last = span(line)
        if last < first:
            continue
        if line.kind in (ContractLine.Kind.RECURRING, ContractLine.Kind.PER_SEAT):
            total += line.quantity * line.unit_price.amount / contract.billing_interval * term_months(first, last)
        elif line.kind == ContractLine.Kind.ONE_TIME:
            total += line.quantity * line.unit_price.amount
        elif line.kind == ContractLine.Kind.DISCOUNT:
            base = sum(
                (r.quantity * r.unit_price.amount / contract.billing_interval for r in recurring
                 if r.starts_on <= first and (r.ends_on is None or r.ends_on >= first)),
                ZERO,
            )
            total -= base * (line.discount_percent or ZERO) / 100 * term_months(first, last)
    return total


def total_contract_value(*, tenant: Tenant, book: RateBook | None = None) -> Decimal:
    """TCV of every non-draft contract of the tenant (see module). Raises MissingExchangeRate."""
    book = book or RateBook(tenant)
    lines: dict[int, list] = {}
    for line in ContractLine.objects.for_tenant(tenant).exclude(contract__status=Contract.Status.DRAFT):
        lines.setdefault(line.contract_id, []).append(line)
    total = ZERO
    for contract in Contract.objects.for_tenant(tenant).exclude(status=Contract.Status.DRAFT):
        value = contract_value(contract, lines.get(contract.pk, []))
        total += book.convert(value, contract.currency, contract.start_date)
    return total


def historical_revenue(*, tenant: Tenant, month: date) -> tuple[dict[int, Decimal], str]:
    """Gross revenue to the end of ``month`` per customer and its source (``invoices`` or ``contracts``)."""
    from billing.models import CreditNote, Invoice

    last = month_end(month)
    invoices = Invoice.objects.for_tenant(tenant).filter(
        status__in=[Invoice.Status.FINALIZED, Invoice.Status.PAID], period_end__lte=last
    )
    if not invoices.exists():
        first_line = ContractLine.objects.for_tenant(tenant).order_by("starts_on").values_list("starts_on", flat=True).first()
        if first_line is None:
            return {}, "contracts"
        return recognized_revenue(tenant=tenant, first=first_line, last=month), "contracts"
    book = RateBook(tenant)
    revenue: dict[int, Decimal] = {}
    for customer_id, currency, subtotal, discount, period_end in invoices.values_list(
        "customer_id", "currency", "subtotal", "discount_total", "period_end"
    ):
        revenue[customer_id] = revenue.get(customer_id, ZERO) + book.convert(subtotal - discount, currency, period_end)
    for customer_id, currency, subtotal, issued in CreditNote.objects.for_tenant(tenant).filter(
        issue_date__lte=last
    ).values_list("customer_id", "currency", "subtotal", "issue_date"):
        revenue[customer_id] = revenue.get(customer_id, ZERO) - book.convert(subtotal, currency, issued)
    return {k: v for k, v in revenue.items() if v > 0}, "invoices"


def unit_economics(*, tenant: Tenant, month: date, gross_margin: Decimal | None = None) -> dict:
    """The figures of the module docstring for ``month`` (a month start or any day in it)."""
    month = month_start(month)
    book = RateBook(tenant)
    margin = gross_margin if gross_margin is not None else Decimal(1)
    six = retention_series(tenant=tenant, first=add_months(month, -5), last=month)
    rates = [row["customer_churn_rate"] for row in six if row["customer_churn_rate"] is not None]
    churn = sum(rates, ZERO) / len(rates) if rates else None
    arpa = six[-1]["arpa"]
    capped = churn == 0
    lifetime = None if churn is None else (LIFETIME_CAP if capped else 1 / churn)
    predictive = arpa * margin * lifetime if arpa is not None and lifetime is not None else None

    costs = [
        book.convert(cost, str(currency), month_end(month))
        for cost, currency in Customer.objects.for_tenant(tenant)
        .filter(acquisition_cost__isnull=False)
        .values_list("acquisition_cost", "acquisition_cost_currency")
    ]
    cac = sum(costs, ZERO) / len(costs) if costs else None
    payback = cac / (arpa * margin) if cac is not None and arpa and margin else None

    history, source = historical_revenue(tenant=tenant, month=month)

    gaps = []
    firsts = {}
    for customer_id, start in Contract.objects.for_tenant(tenant).exclude(status=Contract.Status.DRAFT).values_list(
        "customer_id", "start_date"
    ):
        firsts[customer_id] = min(start, firsts.get(customer_id, start))
    for customer_id, contact in Customer.objects.for_tenant(tenant).filter(first_contact_on__isnull=False).values_list(
        "pk", "first_contact_on"
    ):
        if customer_id in firsts:
            gaps.append(Decimal((firsts[customer_id] - contact).days) * 12 / Decimal("365.25"))

    now, then = customer_mrr(tenant=tenant, month=month), customer_mrr(tenant=tenant, month=add_months(month, -12))
    both = [c for c in now if c in then]
    base = sum((then[c] for c in both), ZERO)
    expansion = sum((now[c] for c in both), ZERO) / base - 1 if base else None

    window = months_between(add_months(month, -11), month)
    recurring = sum((row["mrr"] for row in mrr_series(tenant=tenant, first=window[0], last=month)), ZERO)
    one_off = sum(trailing_revenue(tenant=tenant, month=month).values(), ZERO) - recurring
    usage_by_month = usage_revenue_range(tenant=tenant, first=window[0], last=month)
    usage = sum((row["usage_revenue"] for row in usage_by_month.values()), ZERO)
    weighted = sum(
        (
            book.convert(o.amount.amount, str(o.amount.currency), month_end(month)) * o.probability / 100
            for o in Opportunity.objects.for_tenant(tenant).open()
        ),
        ZERO,
    )
    earned = recurring + one_off + usage
    return {
        "month": month,
        "arpa": arpa,
        "gross_margin": margin,
        "gross_margin_assumed": gross_margin is None,
        "churn_rate": churn,
        "lifetime_months": lifetime,
        "lifetime_capped": capped,
        "predictive_clv": predictive,
        "historical_clv": sum(history.values(), ZERO) / len(history) if history else None,
        "historical_source": source,
        "tcv": total_contract_value(tenant=tenant, book=book),
        "cac": cac,
        "cac_payback_months": payback,
        "time_to_revenue_months": sum(gaps, ZERO) / len(gaps) if gaps else None,
        "expansion_rate": expansion,
        "revenue_by_category": {"recurring": recurring, "one_off": one_off, "usage": usage, "weighted_pipeline": weighted},
        "recurring_ratio": recurring / earned if earned else None,
    }


REVENUE_CATEGORIES = ("recurring", "one_off", "usage")


def revenue_category_shares(revenue_by_category: dict) -> dict[str, Decimal | None]:
    """Each earned category's share of earned revenue (recurring + one-off + usage), from
    ``unit_economics(...)["revenue_by_category"]``: ``{"recurring", "one_off", "usage"}`` as exact
    ratios (0–1, not percentages), all None when nothing was earned. The weighted pipeline is not
    earned revenue and has no share.
    """
    earned = sum((revenue_by_category[key] for key in REVENUE_CATEGORIES), ZERO)
    return {key: revenue_by_category[key] / earned if earned else None for key in REVENUE_CATEGORIES}


def clv_by_segment(
    *, tenant: Tenant, month: date, group_by: str = "segment", gross_margin: Decimal | None = None
) -> list[dict]:
    """Predictive CLV per value of a customer dimension (tier, segment, country, account_manager).

    The rules of ``unit_economics`` within each group, in one SQL statement (mrr_movements grouped):
    ARPA = the group's MRR / its customers with MRR at the end of ``month``; churn = the average of
    the group's monthly customer churn rates over the six months ending with ``month`` (months when
    the group had no customer at the start are skipped); lifetime = 1 / churn, capped at 60 months
    when churn is 0. A customer's group is its *current* value. Returns one dict per group with MRR
    at the month's end or churn in the window, sorted by MRR descending then name: ``segment``,
    ``mrr``, ``customers``, ``arpa``, ``churn_rate``, ``lifetime_months``, ``lifetime_capped``,
    ``predictive_clv`` (None where undefined). Raises MetricError (bad ``group_by``), MissingExchangeRate.
    """
    from revenue.selectors.movements import mrr_movements

    month = month_start(month)
    margin = gross_margin if gross_margin is not None else Decimal(1)
    groups: dict[str, dict] = {}
    for row in mrr_movements(tenant=tenant, first=add_months(month, -5), last=month, group_by=group_by):
        group = groups.setdefault(row["segment"], {"rates": [], "mrr": ZERO, "customers": 0})
        if row["customers_start"]:
            group["rates"].append(Decimal(row["churned_customers"]) / row["customers_start"])
        if row["month"] == month:
            group["mrr"], group["customers"] = row["mrr_end"], row["customers_end"]
    result = []
    for name, group in groups.items():
        churn = sum(group["rates"], ZERO) / len(group["rates"]) if group["rates"] else None
        arpa = group["mrr"] / group["customers"] if group["customers"] else None
        capped = churn == 0
        lifetime = None if churn is None else (LIFETIME_CAP if capped else 1 / churn)
        result.append({
            "segment": name,
            "mrr": group["mrr"],
            "customers": group["customers"],
            "arpa": arpa,
            "churn_rate": churn,
            "lifetime_months": lifetime,
            "lifetime_capped": capped,
            "predictive_clv": arpa * margin * lifetime if arpa is not None and lifetime is not None else None,
        })
    return sorted(result, key=lambda g: (-g["mrr"], g["segment"]))
