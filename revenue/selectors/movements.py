"""MRR movements per month: new, reactivation, expansion, contraction, churn.

Per customer, month over month, comparing MRR at the previous month's end with MRR at this month's
end (see revenue.selectors.mrr for how MRR is measured):
- *new*: 0 → > 0 and the customer never had MRR at any earlier month end (its whole history is
  read, not only the asked window);
- *reactivation*: 0 → > 0 after having had MRR at an earlier month end, after any gap;
- *expansion* / *contraction*: > 0 → > 0, up / down (cancelling one of several contracts is contraction);
- *churn*: > 0 → 0.
"Had MRR" is judged at month ends: a customer who joined and left within one month never had MRR and
appears in no movement. The identity MRR(end) = MRR(start) + new + reactivation + expansion −
contraction − churn holds per customer, hence for every month, tenant and segment.
A customer's segment is its *current* value for all months (history is not re-segmented).

One SQL statement over each customer's change months (revenue.selectors.sql): a customer's MRR only
moves at those months, so LAG gives the MRR at the previous month's end and a running bool_or whether
it had MRR at any earlier month end; the month's levels (MRR and customers at its start and end) are
running sums of the changes. Units: reporting currency, exact Decimals.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from customers.models import Tenant
from customers.periods import add_months, month_start, months_between
from revenue.selectors import facts, sql
from revenue.selectors.common import Segment, group_column

AMOUNTS = ["mrr_start", "new", "reactivation", "expansion", "contraction", "churn", "mrr_end"]
COUNTS = ["customers_start", "new_customers", "reactivated_customers", "churned_customers", "customers_end"]

# Had MRR (or an unpriced line) at an earlier month end; the facts store it (``CustomerMrrFact.had``).
HAD = (
    "COALESCE(bool_or(mrr > 0 OR unpriced) OVER "
    "(PARTITION BY customer_id ORDER BY month_start ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false)"
)

MOVES_SQL = """
flows AS (
    SELECT customer_id, month_start, mrr, missing, before, {had} AS had FROM changes
),
per_month AS MATERIALIZED (
    SELECT f.month_start, {seg} AS seg,
           SUM(f.mrr - f.before) AS mrr_change,
           SUM((f.mrr > 0)::int - (f.before > 0)::int) AS customer_change,
           SUM(CASE WHEN f.before = 0 AND f.mrr > 0 AND NOT f.had THEN f.mrr ELSE 0 END) AS new,
           SUM(CASE WHEN f.before = 0 AND f.mrr > 0 AND f.had THEN f.mrr ELSE 0 END) AS reactivation,
           SUM(CASE WHEN f.before > 0 AND f.mrr > f.before THEN f.mrr - f.before ELSE 0 END) AS expansion,
           SUM(CASE WHEN f.mrr > 0 AND f.mrr < f.before THEN f.before - f.mrr ELSE 0 END) AS contraction,
           SUM(CASE WHEN f.before > 0 AND f.mrr = 0 THEN f.before ELSE 0 END) AS churn,
           COUNT(*) FILTER (WHERE f.before = 0 AND f.mrr > 0 AND NOT f.had) AS new_customers,
           COUNT(*) FILTER (WHERE f.before = 0 AND f.mrr > 0 AND f.had) AS reactivated_customers,
           COUNT(*) FILTER (WHERE f.before > 0 AND f.mrr = 0) AS churned_customers,
           MIN(f.missing) AS missing
    FROM flows f {seg_join}
    GROUP BY 1, 2
),
levels AS (
    SELECT m.month_start, g.seg, p.missing,
           SUM(COALESCE(p.mrr_change, 0)) OVER w AS mrr_end,
           (SUM(COALESCE(p.customer_change, 0)) OVER w)::bigint AS customers_end,
           COALESCE(p.mrr_change, 0) AS mrr_change, COALESCE(p.customer_change, 0) AS customer_change,
           COALESCE(p.new, 0) AS new, COALESCE(p.reactivation, 0) AS reactivation,
           COALESCE(p.expansion, 0) AS expansion, COALESCE(p.contraction, 0) AS contraction,
           COALESCE(p.churn, 0) AS churn, COALESCE(p.new_customers, 0) AS new_customers,
           COALESCE(p.reactivated_customers, 0) AS reactivated_customers,
           COALESCE(p.churned_customers, 0) AS churned_customers
    FROM months m
    CROSS JOIN (SELECT DISTINCT seg FROM per_month {all_seg}) g
    LEFT JOIN per_month p ON p.month_start = m.month_start AND p.seg IS NOT DISTINCT FROM g.seg
    WINDOW w AS (PARTITION BY g.seg ORDER BY m.month_start)
)
SELECT month_start, seg, mrr_end - mrr_change, new, reactivation, expansion, contraction, churn, mrr_end,
       customers_end - customer_change, new_customers, reactivated_customers, churned_customers, customers_end,
       missing
FROM levels
WHERE month_start BETWEEN %(check_from)s AND %(last)s
  AND ({keep})
ORDER BY 1, 2
"""


def mrr_movements(
    *, tenant: Tenant, first: date, last: date, segment: Segment | None = None, group_by: str | None = None
) -> list[dict]:
    """Movements of every month ``first``..``last`` (month starts), optionally per ``group_by``.

    Each dict: ``month``, ``segment``, the amounts ``mrr_start, new, reactivation, expansion,
    contraction, churn, mrr_end`` (exact Decimals, reporting currency) and the counts
    ``customers_start, new_customers, reactivated_customers, churned_customers, customers_end``.
    With ``group_by``, only the groups with customers at the month's start or end are listed.
    Raises MissingExchangeRate (for the months ``first`` − 1 .. ``last``, whose month ends the
    movements compare).
    """
    first, last = month_start(first), month_start(last)
    group = group_column(group_by)
    source = facts.facts_source(tenant=tenant, last=last)
    if source.usable and segment is None and group is None:
        return [
            {"month": t["month"], "segment": "", **{name: t[name] for name in AMOUNTS + COUNTS}}
            for t in facts.month_totals(tenant=tenant, first=first, last=last)
        ]
    changes = facts.changes_cte(source=source, segment=segment, from_history=True)
    query = "WITH " + changes.cte + ", " + MOVES_SQL.format(
        had="had" if changes.from_facts else HAD,
        seg=group or "''",
        seg_join="JOIN customers_customer cu ON cu.id = f.customer_id" if group else "",
        all_seg="" if group else "UNION SELECT ''",
        keep="customers_end > 0 OR customers_end - customer_change > 0 OR missing IS NOT NULL" if group else "true",
    )
    values = sql.params(tenant=tenant, first=first, last=last, segment=segment, check_from=add_months(first, -1))
    rows = sql.fetch(query, values)
    # A month's movements compare its end with the previous month's: a rate missing at either raises,
    # naming the month's own date first.
    missing = {}
    for row in rows:
        missing[row[0]] = min(filter(None, (missing.get(row[0]), row[-1])), default=None)
    for month in months_between(first, last):
        sql.raise_if_missing(tenant, missing.get(month) or missing.get(add_months(month, -1)))
    result = [
        {"month": row[0], "segment": row[1], **dict(zip(AMOUNTS + COUNTS, row[2:-1], strict=True))}
        for row in rows if row[0] >= first
    ]
    # The series starts no later than ``first``, so every month is there; groups sort as Python strings.
    return sorted(result, key=lambda figures: (figures["month"], figures["segment"])) if group else result


def net_new_mrr(figures: dict) -> Decimal:
    """MRR at the month's end less MRR at its start (= new + reactivation + expansion − contraction −
    churn), exact, from one month of ``mrr_movements`` or ``retention_series`` figures."""
    return figures["mrr_end"] - figures["mrr_start"]


def quick_ratio(figures: dict) -> Decimal | None:
    """(new + reactivation + expansion) / (contraction + churn); None when nothing was lost."""
    lost = figures["contraction"] + figures["churn"]
    return (figures["new"] + figures["reactivation"] + figures["expansion"]) / lost if lost else None
