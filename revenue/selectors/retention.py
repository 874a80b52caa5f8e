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
from customers.periods import add_months, month_start
from revenue.selectors import facts, sql
from revenue.selectors.common import Segment
from revenue.selectors.movements import AMOUNTS, COUNTS, mrr_movements, quick_ratio

# Set-wise over spans of constant MRR (a customer's change month until its next one): a span at the
# base date (shifted by twelve months) meets the customer's spans now; each meeting adds its MRR
# to the months it covers, as +amount where it begins and −amount where it ends, summed over months.
NRR_SQL = """
WITH {cte},
spans AS (
    SELECT c.customer_id, c.month_start AS starts,
           COALESCE(c.next_month, (b.last_month + interval '1 month')::date) AS stops, c.mrr, c.missing
    FROM changes c CROSS JOIN bounds b
    WHERE c.mrr > 0 OR c.missing IS NOT NULL
),
base AS (
    SELECT customer_id, GREATEST((starts + interval '12 months')::date, %(first_month)s::date) AS starts,
           LEAST((stops + interval '12 months')::date, %(after_last)s::date) AS stops, mrr, missing
    FROM spans
),
meetings AS (
    SELECT a.mrr AS base_mrr, GREATEST(a.starts, n.starts) AS starts, LEAST(a.stops, n.stops) AS stops, n.mrr,
           n.missing
    FROM base a JOIN spans n ON n.customer_id = a.customer_id AND n.starts < a.stops AND n.stops > a.starts
    WHERE a.starts < a.stops
),
edges AS (
    SELECT starts AS month_start, mrr AS base, 0 AS retained, 0 AS capped, 1 AS customers FROM base WHERE starts < stops
    UNION ALL
    SELECT stops, -mrr, 0, 0, -1 FROM base WHERE starts < stops
    UNION ALL
    SELECT starts, 0, mrr, LEAST(mrr, base_mrr), 0 FROM meetings
    UNION ALL
    SELECT stops, 0, -mrr, -LEAST(mrr, base_mrr), 0 FROM meetings
),
totals AS (
    SELECT m.month_start, SUM(SUM(e.base)) OVER w AS base, SUM(SUM(e.retained)) OVER w AS retained,
           SUM(SUM(e.capped)) OVER w AS capped, SUM(SUM(e.customers)) OVER w AS customers
    FROM months m LEFT JOIN edges e ON e.month_start = m.month_start
    GROUP BY m.month_start WINDOW w AS (ORDER BY m.month_start)
)
SELECT t.month_start, t.base, t.retained, t.capped, x.missing
FROM (
    -- As the rates of the customers counted: at the base date, and now for those with a base.
    SELECT MIN(missing) AS missing
    FROM (SELECT missing FROM base WHERE starts < stops UNION ALL SELECT missing FROM meetings) m
) x
LEFT JOIN totals t ON t.month_start >= %(first_month)s AND t.customers > 0
ORDER BY 1
"""


def net_revenue_retention(*, tenant: Tenant, first: date, last: date, segment: Segment | None = None) -> dict:
    """``{month: {"base_mrr", "retained_mrr", "nrr", "grr"}}`` for every month ``first``..``last``
    with customers twelve months before."""
    first, last = month_start(first), month_start(last)
    values = sql.params(tenant=tenant, first=add_months(first, -12), last=last, segment=segment)
    values.update(first_month=first, last_base=add_months(last, -12), after_last=add_months(last, 1))
    source = facts.facts_source(tenant=tenant, last=last)
    if source.usable and segment is None:
        return _retention_from(facts.month_totals(tenant=tenant, first=first, last=last))
    cte = facts.changes_cte(source=source, segment=segment, from_history=False).cte
    rows = sql.fetch(NRR_SQL.format(cte=cte), values)
    result = {}
    for month, base, now, capped, missing in rows:
        sql.raise_if_missing(tenant, missing)
        if month is None:
            continue  # no month has customers twelve months before
        result[month] = {"base_mrr": base, "retained_mrr": now, "nrr": now / base, "grr": capped / base}
    return result


def _retention_from(totals: list[dict]) -> dict:
    """``net_revenue_retention``'s result from the facts' month totals (``revenue.selectors.facts``)."""
    return {
        t["month"]: {"base_mrr": t["base_mrr"], "retained_mrr": t["retained_mrr"],
                     "nrr": t["retained_mrr"] / t["base_mrr"], "grr": t["capped_mrr"] / t["base_mrr"]}
        for t in totals if t["base_customers"] > 0
    }


def retention_series(*, tenant: Tenant, first: date, last: date, segment: Segment | None = None) -> list[dict]:
    """Per month ``first``..``last``: the movement figures plus ``customer_churn_rate``,
    ``gross_mrr_churn``, ``net_mrr_churn``, ``quick_ratio``, ``arpa``, ``nrr``, ``grr`` (see module).

    For the whole tenant, when the facts answer, movements and retention come from one read of the
    month totals; otherwise from ``mrr_movements`` and ``net_revenue_retention``."""
    first, last = month_start(first), month_start(last)
    if segment is None and facts.facts_source(tenant=tenant, last=last).usable:
        totals = facts.month_totals(tenant=tenant, first=first, last=last)
        movements = [{"month": t["month"], "segment": "", **{name: t[name] for name in AMOUNTS + COUNTS}} for t in totals]
        retention = _retention_from(totals)
    else:
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
