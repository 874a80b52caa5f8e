"""Churn rates, quick ratio, ARPA, and 12-month NRR / GRR per month.

- Customer churn rate = customers churned in the month / customers with MRR at its start (the
  previous month's end). A customer who joined and churned inside one month had MRR at no month end
  and counts in neither. None when no customer had MRR at the start.
- Gross MRR churn = (contraction + churn) / MRR at start. Net MRR churn = (contraction + churn −
  expansion − reactivation) / MRR at start (negative means net expansion). None when MRR at start is 0.
- Quick ratio = (new + reactivation + expansion) / (contraction + churn); None when nothing was lost.
- ARPA = MRR at the month's end / customers with MRR then.
- NRR (12 months) at month M = Σ MRR at M of the customers who had MRR at M − 12 / Σ their MRR at
  M − 12. GRR is the same with each customer's MRR at M capped at their MRR at M − 12. None when no
  customer had MRR twelve months before.
Ratios are exact Decimals (not percentages); segments filter by the customer's current value.
Raises MissingExchangeRate.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from customers.models import Tenant
from revenue.selectors import sql
from revenue.selectors.common import Segment, add_months, month_start
from revenue.selectors.movements import mrr_movements, quick_ratio

NRR_SQL = """
WITH {cte}
SELECT (a.month_start + interval '12 months')::date, SUM(a.mrr), SUM(COALESCE(b.mrr, 0)),
       SUM(LEAST(COALESCE(b.mrr, 0), a.mrr)), MIN(COALESCE(a.missing, b.missing))
FROM positive a
LEFT JOIN positive b ON b.customer_id = a.customer_id AND b.month_start = (a.month_start + interval '12 months')::date
WHERE a.month_start <= %(last_base)s
GROUP BY 1 ORDER BY 1
"""


def net_revenue_retention(*, tenant: Tenant, first: date, last: date, segment: Segment | None = None) -> dict:
    """``{month: {"base_mrr", "retained_mrr", "nrr", "grr"}}`` for every month ``first``..``last``."""
    first, last = month_start(first), month_start(last)
    values = sql.params(tenant=tenant, first=add_months(first, -12), last=last, segment=segment)
    values["last_base"] = add_months(last, -12)
    rows = sql.fetch(NRR_SQL.format(cte=sql.customer_month_cte(segment=segment, from_history=False)), values)
    result = {}
    for month, base, now, capped, missing in rows:
        sql.raise_if_missing(tenant, missing)
        result[month] = {"base_mrr": base, "retained_mrr": now, "nrr": now / base, "grr": capped / base}
    return result


def retention_series(*, tenant: Tenant, first: date, last: date, segment: Segment | None = None) -> list[dict]:
    """Per month ``first``..``last``: the movement figures plus ``customer_churn_rate``,
    ``gross_mrr_churn``, ``net_mrr_churn``, ``quick_ratio``, ``arpa``, ``nrr``, ``grr`` (see module)."""
    movements = mrr_movements(tenant=tenant, first=first, last=last, segment=segment)
    retention = net_revenue_retention(tenant=tenant, first=first, last=last, segment=segment)
    result = []
    for figures in movements:
        start, churned = figures["mrr_start"], figures["contraction"] + figures["churn"]
        twelve = retention.get(figures["month"], {})
        result.append(
            {
                **figures,
                "customer_churn_rate": (
                    Decimal(figures["churned_customers"]) / figures["customers_start"]
                    if figures["customers_start"]
                    else None
                ),
                "gross_mrr_churn": churned / start if start else None,
                "net_mrr_churn": (churned - figures["expansion"] - figures["reactivation"]) / start if start else None,
                "quick_ratio": quick_ratio(figures),
                "arpa": figures["mrr_end"] / figures["customers_end"] if figures["customers_end"] else None,
                "nrr": twelve.get("nrr"),
                "grr": twelve.get("grr"),
            }
        )
    return result
