"""Gross margin per customer, tier, feature and month, and the profitability view.

Gross margin = revenue − cost to serve over the *months with cost data* only: a month has cost data
when the tenant has any cost to serve in it (priced or unpriced AI calls, or an entered or imported
cost), and only for customers with cost data (any cost in the window). Revenue without cost data is
shown but earns no margin, so a window in which cost data starts late does not count six months of
cost as 0, and a customer never measured does not show a 100 % margin: its margin is None
(``has_cost_data`` False), as is a month's without cost data. The margin rate is the margin over the
revenue that has cost data (``costed_revenue``; None without such revenue).
Revenue (invoiced revenue, ``revenue.figures``) and cost come from ``revenue.economics.costs`` (reporting currency). A feature's revenue is
the customer's month revenue allocated by the feature's share of the customer's AI calls that month
(revenue is billed per plan, not per feature, so an allocation is the honest way to compare them);
revenue of customers without tagged calls shows under the feature ``""``.

Recommendations for unprofitable and thin-margin customers, first rule that applies:

1. **usage cap**: the customer's calls are at least ``HEAVY_FACTOR`` × the median of their tier,
   so capping at the tier median would remove cost; figures: calls, tier median, cost per call,
   the cost at the cap and the margin it gives.
2. **tier upgrade**: another tier's average revenue per customer-month covers the revenue this
   customer needs for the target margin; figures: required revenue, that tier's average revenue.
3. **price change**: the revenue needed for the target margin and the increase it means.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from statistics import median

from customers.models import Customer, Tenant
from customers.money import money_round
from customers.periods import months_between
from revenue.economics.costs import ZERO, cost_to_serve, revenue_by_customer_month
from revenue.selectors.common import MetricError

THIN_MARGIN = Decimal("0.20")
TARGET_MARGIN = Decimal("0.30")
HEAVY_FACTOR = Decimal(2)
MAX_MONTHS = 36


def margin_rate(revenue: Decimal, cost: Decimal) -> Decimal | None:
    return None if revenue <= 0 else (revenue - cost) / revenue


def _window(first: date, last: date) -> list[date]:
    if first > last:
        raise MetricError("'from' must not be after 'to'.")
    months = months_between(first, last)
    if len(months) > MAX_MONTHS:
        raise MetricError(f"Ask for at most {MAX_MONTHS} months at once.")
    return months


@dataclass
class Figures:
    revenue: Decimal = ZERO
    cost: Decimal = ZERO
    calls: int = 0
    costed_revenue: Decimal = ZERO  # revenue of the months with cost data
    has_cost_data: bool = False

    def add(self, *, revenue: Decimal, cost: Decimal, calls: int, costed: bool) -> None:
        self.revenue += revenue
        self.cost += cost
        self.calls += calls
        if costed:
            self.costed_revenue += revenue
            self.has_cost_data = True

    def as_dict(self) -> dict:
        margin = self.costed_revenue - self.cost if self.has_cost_data else None
        return {
            "revenue": self.revenue,
            "cost": self.cost,
            "costed_revenue": self.costed_revenue if self.has_cost_data else None,
            "margin": margin,
            "margin_rate": margin_rate(self.costed_revenue, self.cost) if self.has_cost_data else None,
            "has_cost_data": self.has_cost_data,
            "calls": self.calls,
        }


def months_with_cost_data(costs: dict, months: list[date]) -> list[date]:
    """The months of ``months`` in which ``cost_to_serve`` found any cost to serve (see the module)."""
    found = {month for _customer, month in costs}
    return [month for month in months if month in found]


def cost_data_months(*, tenant: Tenant, first: date, last: date) -> list[date]:
    """The months from ``first`` to ``last`` (month starts, inclusive) with any cost to serve for ``tenant``."""
    return months_with_cost_data(cost_to_serve(tenant=tenant, first=first, last=last), months_between(first, last))


def margins(*, tenant: Tenant, first: date, last: date, customer_ids: list[int] | None = None) -> dict:
    """Revenue, cost to serve and gross margin from ``first`` to ``last`` (month starts, inclusive).

    Returns ``{"currency", "from", "to", "cost_months", "total", "by_month", "by_tier", "by_feature",
    "customers"}``; ``cost_months`` lists the months with cost data. Each figure set has ``revenue``
    (every month), ``cost``, ``costed_revenue`` (revenue with cost data, see the module), ``margin`` =
    costed_revenue − cost and ``margin_rate`` (both None without cost data; the rate also without
    revenue), ``has_cost_data`` and ``calls``. ``customers`` is one row per customer with revenue or cost in the window, with
    its tier, monthly averages (over its months with cost data when it has any) and ``unpriced_calls``,
    sorted by margin ascending (worst first, customers without cost data last).
    ``customer_ids`` limits every figure to those customers (None: the whole tenant); the months with cost
    data stay the tenant's, so a customer's row is the one the whole-tenant call gives. Raises MetricError for a bad window and MissingExchangeRate for an unconvertible invoice.
    """
    months = _window(first, last)
    costs = cost_to_serve(tenant=tenant, first=first, last=last, customer_ids=customer_ids)
    revenue = revenue_by_customer_month(tenant=tenant, first=first, last=last, customer_ids=customer_ids)
    if customer_ids is None:
        cost_months = set(months_with_cost_data(costs, months))
    else:
        cost_months = set(cost_data_months(tenant=tenant, first=first, last=last))
    ids = {cid for cid, _ in costs} | {cid for cid, _ in revenue}
    customers = {
        c.pk: c for c in Customer.objects.for_tenant(tenant).filter(pk__in=ids).only("id", "name", "tier", "external_ref")
    }
    total, by_month, by_tier, by_feature = Figures(), defaultdict(Figures), defaultdict(Figures), defaultdict(Figures)
    per_customer: dict[int, Figures] = defaultdict(Figures)
    unpriced: dict[int, int] = defaultdict(int)
    active_months: dict[int, set] = defaultdict(set)
    served = {customer_id for customer_id, _month in costs}  # customers with cost data
    for key in set(costs) | set(revenue):
        customer_id, month = key
        row = costs.get(key)
        rev = revenue.get(key, ZERO)
        cost = row.total if row else ZERO
        calls = row.calls if row else 0
        tier = customers[customer_id].tier if customer_id in customers else ""
        costed = month in cost_months and customer_id in served
        for figures in (total, by_month[month], by_tier[tier]):
            figures.add(revenue=rev, cost=cost, calls=calls, costed=costed)
        per_customer[customer_id].add(revenue=rev, cost=cost, calls=calls, costed=costed)
        active_months[customer_id].add(month)
        unpriced[customer_id] += row.unpriced_calls if row else 0
        features = row.features if row else {}
        if not features:
            by_feature[""].add(revenue=rev, cost=row.other_cost if row else ZERO, calls=0, costed=costed)
            continue
        by_feature[""].add(revenue=ZERO, cost=row.other_cost, calls=0, costed=costed)
        for feature, split in features.items():
            share = Decimal(split["calls"]) / Decimal(row.calls) if row.calls else ZERO
            by_feature[feature].add(revenue=rev * share, cost=split["cost"], calls=split["calls"], costed=costed)
    tier_counts = defaultdict(int)
    customer_rows = []
    for customer_id, figures in per_customer.items():
        figures.has_cost_data = customer_id in served
        customer = customers.get(customer_id)
        tier = customer.tier if customer else ""
        tier_counts[tier] += 1
        n = len(active_months[customer_id])
        costed_months = len(active_months[customer_id] & cost_months) if figures.has_cost_data else 0
        customer_rows.append({
            "customer_id": customer_id,
            "customer": customer.name if customer else str(customer_id),
            "reference": customer.external_ref if customer else "",
            "tier": tier,
            "months": n,
            **figures.as_dict(),
            "monthly_revenue": figures.costed_revenue / costed_months if costed_months else figures.revenue / n,
            "monthly_cost": figures.cost / (costed_months or n),
            "monthly_calls": Decimal(figures.calls) / (costed_months or n),
            "unpriced_calls": unpriced[customer_id],
        })
    customer_rows.sort(key=lambda r: (r["margin"] is None, r["margin"] or ZERO, r["customer"]))
    return {
        "currency": tenant.reporting_currency,
        "from": months[0],
        "to": months[-1],
        "cost_months": sorted(cost_months),
        "total": total.as_dict(),
        "by_month": [{"month": m, **by_month[m].as_dict()} for m in months],
        "by_tier": [{"tier": t, "customers": tier_counts[t], **by_tier[t].as_dict()} for t in sorted(by_tier)],
        "by_feature": [{"feature": f, **by_feature[f].as_dict()} for f in sorted(by_feature)],
        "customers": customer_rows,
    }


def _recommend(row: dict, tier_medians: dict, tier_revenue: dict, target: Decimal, currency: str) -> dict:
    revenue, cost, calls = row["monthly_revenue"], row["monthly_cost"], row["monthly_calls"]
    required = money_round(cost / (1 - target), currency)
    tier_median = tier_medians.get(row["tier"])
    if tier_median and calls >= HEAVY_FACTOR * tier_median and calls > 0:
        cost_per_call = cost / calls
        capped_cost = cost_per_call * tier_median
        return {
            "action": "usage_cap",
            "summary": (
                f"Cap usage near the {row['tier'] or 'tier'} median: {calls:.0f} calls a month is "
                f"{calls / tier_median:.1f}× the median of {tier_median:.0f}."
            ),
            "figures": {
                "monthly_calls": calls, "tier_median_calls": tier_median, "cost_per_call": cost_per_call,
                "monthly_cost": cost, "cost_at_cap": capped_cost, "monthly_revenue": revenue,
                "margin_rate_at_cap": margin_rate(revenue, capped_cost),
            },
        }
    candidates = sorted(
        (avg, tier) for tier, avg in tier_revenue.items() if tier != row["tier"] and avg >= required and avg > revenue
    )
    if candidates:
        avg, tier = candidates[0]
        return {
            "action": "tier_upgrade",
            "summary": f"Move to {tier}: its customers bring {money_round(avg, currency)} a month, this one needs {required}.",
            "figures": {
                "monthly_revenue": revenue, "monthly_cost": cost, "required_revenue": required,
                "target_tier": tier, "target_tier_average_revenue": avg, "target_margin": target,
            },
        }
    increase = required - revenue
    return {
        "action": "price_change",
        "summary": f"Raise the price by {money_round(increase, currency)} a month to reach a {target:.0%} margin.",
        "figures": {
            "monthly_revenue": revenue, "monthly_cost": cost, "required_revenue": required,
            "increase": increase, "increase_rate": (increase / revenue) if revenue > 0 else None,
            "target_margin": target,
        },
    }


def profitability(
    *, tenant: Tenant, first: date, last: date, thin_margin: Decimal = THIN_MARGIN, target_margin: Decimal = TARGET_MARGIN,
    computed: dict | None = None,
) -> dict:
    """Unprofitable (margin < 0) and thin-margin (0 ≤ rate < ``thin_margin``) customers, by tier.

    Each listed customer carries ``revenue_at_risk`` (their monthly revenue) and one
    recommendation (see the module docstring) with the figures it rests on. ``by_tier`` totals
    the listed customers and revenue at risk per tier. ``computed``: ``margins()`` of the same
    tenant and window when the caller has it already (a page showing both reads the usage once).
    Raises MetricError for bad margins.
    """
    for name, value in (("thin_margin", thin_margin), ("target_margin", target_margin)):
        if not Decimal(0) <= value < 1:
            raise MetricError(f"{name} must be a decimal from 0 up to (not including) 1.")
    result = computed if computed is not None else margins(tenant=tenant, first=first, last=last)
    rows = result["customers"]
    calls_by_tier, revenue_by_tier = defaultdict(list), defaultdict(list)
    for row in rows:
        calls_by_tier[row["tier"]].append(row["monthly_calls"])
        revenue_by_tier[row["tier"]].append(row["monthly_revenue"])
    tier_medians = {t: Decimal(median(v)) for t, v in calls_by_tier.items() if v}
    tier_revenue = {t: sum(v, ZERO) / len(v) for t, v in revenue_by_tier.items() if v}
    listed, by_tier = [], defaultdict(lambda: {"unprofitable": 0, "thin": 0, "revenue_at_risk": ZERO})
    for row in rows:
        rate = row["margin_rate"]
        if row["margin"] is None:
            continue
        if row["margin"] < 0:
            status = "unprofitable"
        elif rate is not None and rate < thin_margin:
            status = "thin"
        else:
            continue
        listed.append({
            **row, "status": status, "revenue_at_risk": row["monthly_revenue"],
            "recommendation": _recommend(row, tier_medians, tier_revenue, target_margin, tenant.reporting_currency),
        })
        by_tier[row["tier"]][status] += 1
        by_tier[row["tier"]]["revenue_at_risk"] += row["monthly_revenue"]
    return {
        "currency": result["currency"],
        "from": result["from"],
        "to": result["to"],
        "thin_margin": thin_margin,
        "target_margin": target_margin,
        "revenue_at_risk": sum((r["revenue_at_risk"] for r in listed), ZERO),
        "by_tier": [{"tier": t, **v} for t, v in sorted(by_tier.items())],
        "customers": listed,
    }
