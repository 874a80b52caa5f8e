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

One SQL statement: LAG/LEAD over each customer's months with MRR; churn rows are emitted for the
month after a customer's last month with MRR. Units: reporting currency, exact Decimals.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from customers.models import Tenant
from revenue.selectors import sql
from revenue.selectors.common import Segment, group_column, month_start, months_between

ZERO = Decimal(0)
AMOUNTS = ["mrr_start", "new", "reactivation", "expansion", "contraction", "churn", "mrr_end"]
COUNTS = ["customers_start", "new_customers", "reactivated_customers", "churned_customers", "customers_end"]

MOVES_SQL = """
flow AS (
    SELECT customer_id, month_start, mrr, missing,
           LAG(month_start) OVER w AS prev_month, LAG(mrr) OVER w AS prev_mrr, LAG(missing) OVER w AS prev_missing,
           LEAD(month_start) OVER w AS next_month, ROW_NUMBER() OVER w AS nth
    FROM positive WINDOW w AS (PARTITION BY customer_id ORDER BY month_start)
),
moves AS (
    SELECT customer_id, month_start,
           COALESCE(missing, CASE WHEN prev_month = month_start - interval '1 month' THEN prev_missing END) AS missing,
           CASE WHEN prev_month = month_start - interval '1 month' THEN prev_mrr ELSE 0 END AS mrr_start,
           CASE WHEN nth = 1 THEN mrr ELSE 0 END AS new,
           CASE WHEN nth > 1 AND prev_month < month_start - interval '1 month' THEN mrr ELSE 0 END AS reactivation,
           CASE WHEN prev_month = month_start - interval '1 month' AND mrr > prev_mrr
                THEN mrr - prev_mrr ELSE 0 END AS expansion,
           CASE WHEN prev_month = month_start - interval '1 month' AND mrr < prev_mrr
                THEN prev_mrr - mrr ELSE 0 END AS contraction,
           0 AS churn, mrr AS mrr_end,
           (prev_month = month_start - interval '1 month')::int AS customers_start,
           (nth = 1)::int AS new_customers,
           (nth > 1 AND prev_month < month_start - interval '1 month')::int AS reactivated_customers,
           0 AS churned_customers, 1 AS customers_end
    FROM flow
    UNION ALL
    SELECT customer_id, (month_start + interval '1 month')::date, missing,
           mrr, 0, 0, 0, 0, mrr, 0, 1, 0, 0, 1, 0
    FROM flow WHERE next_month IS NULL OR next_month > month_start + interval '1 month'
)
"""


def mrr_movements(
    *, tenant: Tenant, first: date, last: date, segment: Segment | None = None, group_by: str | None = None
) -> list[dict]:
    """Movements of every month ``first``..``last`` (month starts), optionally per ``group_by``.

    Each dict: ``month``, ``segment``, the amounts ``mrr_start, new, reactivation, expansion,
    contraction, churn, mrr_end`` (exact Decimals, reporting currency) and the counts
    ``customers_start, new_customers, reactivated_customers, churned_customers, customers_end``.
    Raises MissingExchangeRate (for any month of the customers' history).
    """
    first, last = month_start(first), month_start(last)
    group = group_column(group_by)
    query = f"""
        WITH {sql.customer_month_cte(segment=segment, from_history=True)}, {MOVES_SQL}
        SELECT mv.month_start, {group if group else "''"} AS seg,
               {", ".join(f"SUM(mv.{name})" for name in AMOUNTS + COUNTS)}, MIN(mv.missing)
        FROM moves mv
        {"JOIN customers_customer cu ON cu.id = mv.customer_id" if group else ""}
        WHERE mv.month_start BETWEEN %(first)s AND %(last)s
        GROUP BY 1, 2 ORDER BY 1, 2
    """
    values = sql.params(tenant=tenant, first=first, last=last, segment=segment)
    rows = sql.fetch(query, values)
    by_key = {}
    for row in rows:
        sql.raise_if_missing(tenant, row[-1])
        figures = dict(zip(AMOUNTS + COUNTS, row[2:-1], strict=True))
        by_key[(row[0], row[1])] = {"month": row[0], "segment": row[1], **figures}
    if group:
        return [by_key[key] for key in sorted(by_key)]
    return [by_key.get((month, ""), _empty(month)) for month in months_between(first, last)]


def _empty(month: date) -> dict:
    return {"month": month, "segment": "", **{name: ZERO for name in AMOUNTS}, **{name: 0 for name in COUNTS}}


def quick_ratio(figures: dict) -> Decimal | None:
    """(new + reactivation + expansion) / (contraction + churn); None when nothing was lost."""
    lost = figures["contraction"] + figures["churn"]
    return (figures["new"] + figures["reactivation"] + figures["expansion"]) / lost if lost else None
