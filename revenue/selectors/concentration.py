"""Revenue concentration over the trailing twelve months.

Revenue per customer over the twelve months ending with ``month`` (inclusive) is *recognized
contract revenue*: the customer's MRR at each of the twelve month ends (revenue.selectors.mrr) plus
one-time lines starting in the window (converted at the rate of their month's end). Usage is not
included (it is reported beside MRR). Set-wise in one SQL statement: a customer's MRR is constant
between its change months, so its recurring revenue is Σ MRR × months until the next change.

- top-5 share = revenue of the five largest customers / total;
- HHI = Σ (100 × share)² = 10 000 × Σ revenue² / total², 0–10 000: < 1 500 unconcentrated,
  1 500–2 500 moderate, > 2 500 high;
- Gini = Σ (2i − n − 1) xᵢ / (n Σ x) over customers sorted ascending (0 = all equal), computed as
  (2 Σ i·xᵢ − (n + 1) Σ x) / (n Σ x);
- customers above 10 % of revenue are flagged;
- Lorenz curve: (cumulative share of customers, cumulative share of revenue), ascending, from (0, 0),
  at most 101 points (every percent of customers when there are more than 100 customers).
The sums (Σ x, Σ x², Σ i·x, the Lorenz points, the top five and the flag candidates) are exact in
SQL; the few divisions are Python Decimals. Shares are fractions, not percents, except HHI.
Raises MissingExchangeRate.

Where the revenue per customer comes from (``revenue.selectors.facts``): the trailing revenue facts
(``CustomerTrailingRevenueFact``, a row per customer and month, read in rank order) when they cover
the month; else the change-month facts summed over the window; else the reference over the lines.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from customers.models import Tenant
from customers.periods import add_months, month_start
from revenue.selectors import facts, sql
from revenue.selectors.common import Segment

FLAG_ABOVE = Decimal("0.10")
LORENZ_POINTS = 100

RECURRING_SQL = """
{cte},
recurring AS (
    SELECT c.customer_id,
           c.mrr * {months} AS amount, c.missing
    FROM changes c CROSS JOIN bounds b
    WHERE c.mrr > 0 OR c.missing IS NOT NULL
)"""

# From the facts (``revenue.selectors.facts``): each fact's MRR times the months of the window it
# covers, read in one pass (no folding into the window's first month is needed for a sum).
FACTS_RECURRING_SQL = """
recurring AS (
    SELECT f.customer_id,
           f.mrr * {months} AS amount, NULL::text AS missing
    FROM revenue_customermrrfact f {facts_join}
    WHERE f.tenant_id = %(tenant)s AND f.mrr > 0 AND f.month_start <= %(last)s
      AND (f.next_month IS NULL OR f.next_month > %(first)s) {facts_where}
)"""

REVENUE_SQL = """
WITH {recurring},
one_time AS (
    SELECT c.customer_id, {one_time_columns}
    FROM customers_contractline l
    JOIN customers_contract c ON c.id = l.contract_id AND c.tenant_id = %(tenant)s
    {segment_join}
    {one_time_rate_join}
    WHERE l.tenant_id = %(tenant)s AND c.status <> 'draft' AND l.kind = 'one_time'
      AND l.starts_on >= %(first)s AND l.starts_on < (%(last)s::date + interval '1 month')
      AND (c.end_date IS NULL OR l.starts_on <= c.end_date) {segment_where}
),
revenue AS (
    SELECT customer_id, SUM(amount) AS amount, MIN(missing) AS missing
    FROM (SELECT * FROM recurring UNION ALL SELECT * FROM one_time) r
    GROUP BY customer_id HAVING SUM(amount) > 0 OR MIN(missing) IS NOT NULL
)
"""

CUSTOMERS_SQL = REVENUE_SQL + "SELECT customer_id, amount, missing FROM revenue"

# The ranked rows returned beside the sums always include the ten largest customers: the top five,
# every customer that may hold a tenth of the total (no more than ten can) and the page's table.
LARGEST_ROWS = 10

# Ranks ascending (ties: the higher id first, as the reverse of largest-first by id); returns the
# summary row (rank 0) and the ranked rows any index needs: Lorenz points and the LARGEST_ROWS
# largest customers (the flag test itself is the Python one).
# One window (both functions share its frame, so one sort and one pass); Σ i·xᵢ is taken from the
# running sums, Σ i·xᵢ = (n + 1) Σ x − Σ runningᵢ (exact in numeric), sparing a multiplication per customer.
RANKED_ROWS_SQL = """
SELECT 0, NULL::bigint, s.n, s.total, s.squares, s.weighted, s.missing FROM summary s
UNION ALL
SELECT r.i, r.customer_id, NULL, r.amount, r.running, NULL, NULL
FROM ranked r CROSS JOIN summary s
WHERE r.i %% GREATEST(1, s.n / {points}) = 0 OR r.i > s.n - {largest}
ORDER BY 1
"""
SUMS_SQL = """
    SELECT COUNT(*) AS n, SUM(amount) AS total, SUM(amount * amount) AS squares,
           (COUNT(*) + 1) * SUM(amount) - SUM(running) AS weighted,
           {missing} AS missing
    FROM ranked
"""
INDICES_SQL = REVENUE_SQL + """,
ranked AS (
    SELECT customer_id, amount, ROW_NUMBER() OVER w AS i, SUM(amount) OVER w AS running
    FROM revenue WHERE missing IS NULL WINDOW w AS (ORDER BY amount, customer_id DESC ROWS UNBOUNDED PRECEDING)
),
summary AS (""" + SUMS_SQL.replace("{missing}", "(SELECT MIN(missing) FROM revenue)") + ")" + RANKED_ROWS_SQL

# From the trailing revenue facts (``CustomerTrailingRevenueFact``): the month's rows are each
# customer's revenue of the window, read in rank order by the (tenant, month, revenue, customer)
# index, so neither a sum per customer nor a sort; a one-time line without a rate is a row's ``missing``.
TRAILING_INDICES_SQL = """
WITH ranked AS (
    SELECT t.customer_id, t.revenue AS amount, ROW_NUMBER() OVER w AS i, SUM(t.revenue) OVER w AS running
    FROM revenue_customertrailingrevenuefact t {segment_join}
    WHERE t.tenant_id = %(tenant)s AND t.month_start = %(last)s AND t.missing IS NULL {segment_where}
    WINDOW w AS (ORDER BY t.revenue, t.customer_id DESC ROWS UNBOUNDED PRECEDING)
),
summary AS (""" + SUMS_SQL.replace("{missing}", """(
        SELECT MIN(t.missing) FROM revenue_customertrailingrevenuefact t {segment_join}
        WHERE t.tenant_id = %(tenant)s AND t.month_start = %(last)s AND t.missing IS NOT NULL {segment_where})""")
TRAILING_INDICES_SQL += ")" + RANKED_ROWS_SQL


def _recurring(*, source: facts.Source, segment: Segment | None) -> str:
    """The ``recurring`` CTE (customer_id, amount, missing): from the facts when they answer, else the reference."""
    if source.usable:
        facts_join, facts_where = "", ""
        if segment:
            facts_join = "JOIN customers_customer cu ON cu.id = f.customer_id"
            facts_where = f"AND {segment.column} = %(segment_value)s"
        return FACTS_RECURRING_SQL.format(
            months=sql.MONTHS_BETWEEN.format(
                a="GREATEST(f.month_start, %(first)s::date)",
                b="LEAST(COALESCE(f.next_month, (%(last)s::date + interval '1 month')::date), "
                "(%(last)s::date + interval '1 month')::date)",
            ),
            facts_join=facts_join,
            facts_where=facts_where,
        )
    return RECURRING_SQL.format(
        cte=facts.changes_cte(source=source, segment=segment, from_history=False).cte,
        months=sql.MONTHS_BETWEEN.format(
            a="c.month_start", b="COALESCE(c.next_month, (b.last_month + interval '1 month')::date)"
        ),
    )


def _query(template: str, *, tenant: Tenant, last: date, segment: Segment | None) -> str:
    """``template`` with its ``recurring`` CTE for a window ending with ``last``. One query (``facts_source``)."""
    return _query_from(template, source=facts.facts_source(tenant=tenant, last=last), segment=segment)


def _query_from(template: str, *, source: facts.Source, segment: Segment | None) -> str:
    segment_join, segment_where = sql.segment_sql(segment)
    return template.format(
        recurring=_recurring(source=source, segment=segment),
        segment_join=segment_join,
        segment_where=segment_where,
        one_time_columns=sql.ONE_TIME_COLUMNS,
        one_time_rate_join=sql.ONE_TIME_RATE_JOIN,
        points=LORENZ_POINTS,
        largest=LARGEST_ROWS,
    )


def _indices_query(*, tenant: Tenant, last: date, segment: Segment | None) -> str:
    """The indices' statement: from the trailing revenue facts when they answer for ``last``, else
    from the change-month facts or the reference (``_recurring``). One query to decide."""
    source = facts.facts_source(tenant=tenant, last=last)
    if not source.trailing:
        return _query_from(INDICES_SQL, source=source, segment=segment)
    segment_join, segment_where = "", ""
    if segment:
        segment_join = "JOIN customers_customer cu ON cu.id = t.customer_id"
        segment_where = f"AND {segment.column} = %(segment_value)s"
    return TRAILING_INDICES_SQL.format(
        segment_join=segment_join, segment_where=segment_where, points=LORENZ_POINTS, largest=LARGEST_ROWS
    )


def trailing_revenue(*, tenant: Tenant, month: date, segment: Segment | None = None) -> dict[int, Decimal]:
    """``{customer_id: revenue}`` over the twelve months ending with ``month``, customers with revenue > 0."""
    return recognized_revenue(tenant=tenant, first=add_months(month_start(month), -11), last=month, segment=segment)


def recognized_revenue(
    *, tenant: Tenant, first: date, last: date, segment: Segment | None = None
) -> dict[int, Decimal]:
    """``{customer_id: revenue}`` recognized from contracts over months ``first``..``last`` (see module)."""
    query = _query(CUSTOMERS_SQL, tenant=tenant, last=month_start(last), segment=segment)
    values = sql.params(tenant=tenant, first=month_start(first), last=month_start(last), segment=segment)
    rows = sql.fetch(query, values)
    result = {}
    for customer_id, amount, missing in rows:
        sql.raise_if_missing(tenant, missing)
        result[customer_id] = amount
    return result


def hhi_band(hhi: Decimal) -> str:
    if hhi < 1500:
        return "unconcentrated"
    return "moderate" if hhi <= 2500 else "high"


def concentration_indices(revenue: dict[int, Decimal]) -> dict:
    """The indices of the module docstring from ``{customer_id: revenue}`` (all > 0)."""
    ranked = sorted(revenue.items(), key=lambda item: (item[1], -item[0]))
    total = sum(revenue.values(), Decimal(0))
    rows, running = [], Decimal(0)
    for i, (customer_id, amount) in enumerate(ranked, start=1):
        running += amount
        rows.append((i, customer_id, amount, running))
    squares = sum((amount * amount for amount in revenue.values()), Decimal(0))
    weighted = sum((i * amount for i, _, amount, _ in rows), Decimal(0))
    return _indices(len(ranked), total, squares, weighted, rows)


def _indices(n: int, total: Decimal, squares: Decimal, weighted: Decimal, rows: list[tuple]) -> dict:
    """The indices from the sums and the ranked rows ``(i, customer_id, amount, running)``, ascending.

    ``rows`` holds at least the Lorenz points, the top five and every customer above 10 %.
    """
    if not n:
        return {
            "total_revenue": Decimal(0), "customers": 0, "top5_share": None, "hhi": None, "hhi_band": None,
            "gini": None, "flagged": [], "lorenz": [],
        }
    hhi = 10000 * squares / (total * total)
    step = max(1, n // LORENZ_POINTS)
    largest = sorted(rows, key=lambda row: (-row[2], row[1]))
    return {
        "total_revenue": total,
        "customers": n,
        "top5_share": sum((row[2] for row in largest[:5]), Decimal(0)) / total,
        "hhi": hhi,
        "hhi_band": hhi_band(hhi),
        "gini": (2 * weighted - (n + 1) * total) / (n * total),
        "flagged": [
            {"customer_id": customer_id, "revenue": amount, "share": amount / total}
            for _, customer_id, amount, _ in largest
            if amount / total > FLAG_ABOVE
        ],
        "lorenz": [(Decimal(0), Decimal(0))] + [
            (Decimal(i) / n, running / total) for i, _, _, running in rows if i % step == 0 or i == n
        ],
    }


def largest_customers(revenue: dict[int, Decimal], *, limit: int) -> list[dict]:
    """The ``limit`` customers with the most revenue in ``{customer_id: revenue}`` (all > 0),
    largest first (ties by customer id): ``[{"customer_id", "revenue", "share", "flagged"}]`` with
    ``share`` = revenue / total revenue of all customers (exact ratio, 0–1) and ``flagged`` when the
    share is above 10 % (FLAG_ABOVE), as in ``concentration_indices``.
    """
    total = sum(revenue.values(), Decimal(0))
    ranked = sorted(revenue.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [
        {"customer_id": customer_id, "revenue": amount, "share": amount / total, "flagged": amount / total > FLAG_ABOVE}
        for customer_id, amount in ranked
    ]


def _concentration(*, tenant: Tenant, month: date, segment: Segment | None) -> tuple[dict, list[tuple]]:
    """``revenue_concentration``'s result and the ranked rows ``(i, customer_id, amount, running)`` it
    came from (the Lorenz points and the LARGEST_ROWS largest customers)."""
    month = month_start(month)
    query = _indices_query(tenant=tenant, last=month, segment=segment)
    rows = sql.fetch(query, sql.params(tenant=tenant, first=add_months(month, -11), last=month, segment=segment))
    _, _, n, total, squares, weighted, missing = rows[0]
    sql.raise_if_missing(tenant, missing)
    ranked = [(i, customer_id, amount, running) for i, customer_id, _, amount, running, _, _ in rows[1:]]
    return {"month": month, **_indices(n, total or Decimal(0), squares, weighted, ranked)}, ranked


def revenue_concentration(*, tenant: Tenant, month: date, segment: Segment | None = None) -> dict:
    """Concentration of the twelve months ending with ``month`` (see module), in one SQL statement
    (and the one query choosing its source). Adds ``month``."""
    return _concentration(tenant=tenant, month=month, segment=segment)[0]


def revenue_concentration_with_largest(
    *, tenant: Tenant, month: date, limit: int, segment: Segment | None = None
) -> tuple[dict, list[dict]]:
    """``revenue_concentration`` and its ``limit`` (at most LARGEST_ROWS) largest customers as
    ``largest_customers`` gives them, from the same statement: the page's figures without every
    customer's revenue in Python."""
    if limit > LARGEST_ROWS:
        raise ValueError(f"At most {LARGEST_ROWS} largest customers (asked {limit}).")
    result, ranked = _concentration(tenant=tenant, month=month, segment=segment)
    total = result["total_revenue"]
    largest = sorted(ranked, key=lambda row: (-row[2], row[1]))[:limit]
    return result, [
        {"customer_id": customer_id, "revenue": amount, "share": amount / total, "flagged": amount / total > FLAG_ABOVE}
        for _, customer_id, amount, _ in largest
    ]
