"""Where the revenue selectors read each customer's MRR at its change months: the facts, or the reference.

The reference (``revenue.selectors.sql``) recomputes every contract line of the tenant per call, which
at 100 000 contracts costs seconds per page. The facts (``revenue.models.CustomerMrrFact``) are the
same reference rows, computed per customer over its whole history up to the tenant's horizon and
kept current by ``revenue.facts.revenue_facts_refresh`` whenever a contract or a rate changes; the
month totals (``RevenueMonthFact``) are their sums per month.

The whole tenant's MRR series, movements and 12-month retention read the month totals
(``month_totals``: a row per month, running sums in SQL, exact). A segment, a grouping, one customer,
the customers' MRR and concentration read the customer facts through ``changes_cte``.

``changes_cte`` gives the selectors a ``bounds``, ``months`` and ``changes`` CTE for the window they
ask, with the columns of the reference's ``changes`` (plus ``had``), read from the facts when they
answer exactly, else the reference text. From the facts:

- a window starting at ``first`` folds history into its first month as the reference does: each
  customer's fact in effect at ``first`` becomes a row at ``first`` with ``before`` = 0; later facts up
  to ``last`` follow as stored, with a ``next_month`` after ``last`` read as "to the end";
- with ``from_history`` (movements) the window starts at the tenant's first fact, so ``had`` (had MRR
  at an earlier month end) is the stored one, judged over the customer's whole history.
The reference may hold a few more rows whose MRR equals the previous one (a rate "change" at the
window's first month): they move no figure, so every selector's result is the same.

Concentration reads each customer's trailing-twelve-month revenue (``CustomerTrailingRevenueFact``)
when the facts answer and its month is within the state's ``trailing_last_month`` (``Source.trailing``).

The facts answer when the tenant's facts are built (``RevenueFactsState``) for its current reporting
currency and up to ``last``, and no fact up to ``last`` has an unpriced line (a missing exchange rate):
the reference then raises ``MissingExchangeRate`` with its exact date and currency. Deciding costs
one query (``facts_source``), which also tells the reference path whether it converts, so a selector
sends as many statements either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from customers.models import Tenant
from customers.tenancy import tenant_cursor
from revenue.selectors import sql
from revenue.selectors.common import Segment

FACTS_CTE = """
bounds AS (
    SELECT {first_expr}::date AS first_month, %(last)s::date AS last_month
),
months AS (
    SELECT g::date AS month_start
    FROM bounds, generate_series(bounds.first_month, bounds.last_month, interval '1 month') g
),
changes AS (
    SELECT f.customer_id, b.first_month AS month_start, f.mrr, 0::numeric AS before,
           CASE WHEN f.next_month <= b.last_month THEN f.next_month END AS next_month,
           NULL::text AS missing, f.unpriced, f.had
    FROM revenue_customermrrfact f CROSS JOIN bounds b {segment_join}
    WHERE f.tenant_id = %(tenant)s AND f.month_start <= b.first_month
      AND (f.next_month IS NULL OR f.next_month > b.first_month) AND f.mrr > 0 {segment_where}
    UNION ALL
    SELECT f.customer_id, f.month_start, f.mrr, f.before,
           CASE WHEN f.next_month <= b.last_month THEN f.next_month END,
           NULL::text, f.unpriced, f.had
    FROM revenue_customermrrfact f CROSS JOIN bounds b {segment_join}
    WHERE f.tenant_id = %(tenant)s AND f.month_start > b.first_month AND f.month_start <= b.last_month {segment_where}
)
"""

FIRST_FACT = (
    "LEAST(%(first)s::date, COALESCE((SELECT MIN(month_start) FROM revenue_customermrrfact "
    "WHERE tenant_id = %(tenant)s), %(first)s::date))"
)

# One query: may the facts answer up to %(last)s, and, only when they may not, does the tenant convert
# (the reference's question; CASE spares the facts path that scan of the tenant's contracts).
USABLE_SQL = """
WITH facts AS (
    SELECT COALESCE((SELECT s.reporting_currency = %(reporting)s AND s.last_month >= %(last)s
                     FROM revenue_revenuefactsstate s WHERE s.tenant_id = %(tenant)s), false)
           AND NOT EXISTS (SELECT 1 FROM revenue_customermrrfact f
                           WHERE f.tenant_id = %(tenant)s AND f.unpriced AND f.month_start <= %(last)s) AS usable
)
SELECT usable,
       CASE WHEN usable THEN false
            ELSE EXISTS (SELECT 1 FROM customers_contract
                         WHERE tenant_id = %(tenant)s AND currency <> %(reporting)s AND status <> 'draft') END,
       usable AND COALESCE((SELECT s.trailing_last_month >= %(last)s
                            FROM revenue_revenuefactsstate s WHERE s.tenant_id = %(tenant)s), false)
FROM facts
"""

MONTH_TOTALS_SQL = """
WITH totals AS (
    SELECT * FROM revenue_revenuemonthfact WHERE tenant_id = %(tenant)s AND month_start <= %(last)s
),
months AS (
    SELECT g::date AS month_start
    FROM generate_series(LEAST(%(first)s::date, COALESCE((SELECT MIN(month_start) FROM totals), %(first)s::date)),
                         %(last)s::date, interval '1 month') g
),
levels AS (
    SELECT m.month_start,
           SUM(COALESCE(t.mrr_change, 0)) OVER w AS mrr_end, COALESCE(t.mrr_change, 0) AS mrr_change,
           SUM(COALESCE(t.customer_change, 0)) OVER w AS customers_end,
           COALESCE(t.customer_change, 0) AS customer_change,
           COALESCE(t.new, 0) AS new, COALESCE(t.reactivation, 0) AS reactivation,
           COALESCE(t.expansion, 0) AS expansion, COALESCE(t.contraction, 0) AS contraction,
           COALESCE(t.churn, 0) AS churn, COALESCE(t.new_customers, 0) AS new_customers,
           COALESCE(t.reactivated_customers, 0) AS reactivated_customers,
           COALESCE(t.churned_customers, 0) AS churned_customers,
           SUM(COALESCE(t.base_change, 0)) OVER w AS base, SUM(COALESCE(t.retained_change, 0)) OVER w AS retained,
           SUM(COALESCE(t.capped_change, 0)) OVER w AS capped,
           SUM(COALESCE(t.base_customer_change, 0)) OVER w AS base_customers
    FROM months m LEFT JOIN totals t ON t.month_start = m.month_start
    WINDOW w AS (ORDER BY m.month_start)
)
SELECT month_start, mrr_end - mrr_change, new, reactivation, expansion, contraction, churn, mrr_end,
       (customers_end - customer_change)::bigint, new_customers::bigint, reactivated_customers::bigint,
       churned_customers::bigint, customers_end::bigint, base, retained, capped, base_customers
FROM levels WHERE month_start >= %(first)s ORDER BY 1
"""
MONTH_FIELDS = [
    "mrr_start", "new", "reactivation", "expansion", "contraction", "churn", "mrr_end",
    "customers_start", "new_customers", "reactivated_customers", "churned_customers", "customers_end",
    "base_mrr", "retained_mrr", "capped_mrr", "base_customers",
]


@dataclass(frozen=True)
class Source:
    """Whether the facts answer (``usable``) and, for the reference, whether the tenant converts;
    ``trailing``: the trailing revenue facts (``CustomerTrailingRevenueFact``) answer too."""

    usable: bool
    converts: bool
    trailing: bool = False


@dataclass(frozen=True)
class Changes:
    """The CTE text (without ``WITH``) and whether it reads the facts (its ``changes`` has ``had``)."""

    cte: str
    from_facts: bool


def facts_source(*, tenant: Tenant, last: date) -> Source:
    """Whether the facts answer a window ending with month ``last`` (see the module), and whether the
    tenant converts. One query."""
    with tenant_cursor(tenant) as cursor:
        cursor.execute(USABLE_SQL, {"tenant": tenant.pk, "reporting": tenant.reporting_currency, "last": last})
        usable, converts, trailing = cursor.fetchone()
    return Source(usable, converts, trailing)


def facts_usable(*, tenant: Tenant, last: date) -> tuple[bool, bool]:
    source = facts_source(tenant=tenant, last=last)
    return source.usable, source.converts


def facts_cte(*, segment: Segment | None, from_history: bool) -> str:
    """The facts' ``bounds``, ``months`` and ``changes`` (see the module) for the reference's parameters."""
    segment_join, segment_where = "", ""
    if segment and segment.dimension == "customer":
        # One customer's page: its own facts by the (tenant, customer, month) index, no join.
        segment_where = "AND f.customer_id = %(segment_value)s::bigint"
    elif segment:
        segment_join = "JOIN customers_customer cu ON cu.id = f.customer_id"
        segment_where = f"AND {segment.column} = %(segment_value)s"
    return FACTS_CTE.format(
        first_expr=FIRST_FACT if from_history else "%(first)s::date",
        segment_join=segment_join,
        segment_where=segment_where,
    )


def changes_cte(*, source: Source, segment: Segment | None, from_history: bool) -> Changes:
    """The ``changes`` CTE: the facts' when ``source.usable``, else the reference's. No query."""
    if source.usable:
        return Changes(facts_cte(segment=segment, from_history=from_history), from_facts=True)
    return Changes(sql.customer_month_cte(segment=segment, from_history=from_history, convert=source.converts), False)


def month_totals(*, tenant: Tenant, first: date, last: date) -> list[dict]:
    """The whole tenant's figures of each month ``first``..``last`` from the month totals
    (``RevenueMonthFact``), in one query: the movement figures of ``revenue.selectors.movements``
    (``mrr_start`` … ``customers_end``) and the 12-month retention sums ``base_mrr``, ``retained_mrr``,
    ``capped_mrr``, ``base_customers``. Call only when ``facts_source(...).usable``."""
    values = {"tenant": tenant.pk, "first": first, "last": last}
    rows = sql.fetch(MONTH_TOTALS_SQL, values)
    return [{"month": row[0], **dict(zip(MONTH_FIELDS, row[1:], strict=True))} for row in rows]
