"""Revenue concentration over the trailing twelve months.

Revenue per customer over the twelve months ending with ``month`` (inclusive) is *recognized
contract revenue*: the customer's MRR at each of the twelve month ends (revenue.selectors.mrr) plus
one-time lines starting in the window (converted at the rate of their month's end). Usage is not
included (it is reported beside MRR). Computed in one SQL statement; the indices in Python.

- top-5 share = revenue of the five largest customers / total;
- HHI = Σ (100 × share)², 0–10 000: < 1 500 unconcentrated, 1 500–2 500 moderate, > 2 500 high;
- Gini = Σ (2i − n − 1) xᵢ / (n Σ x) over customers sorted ascending (0 = all equal);
- customers above 10 % of revenue are flagged;
- Lorenz curve: (cumulative share of customers, cumulative share of revenue), ascending, from (0, 0),
  at most 101 points (every percent of customers when there are more than 100 customers).
Shares are exact Decimals (fractions, not percents, except HHI). Raises MissingExchangeRate.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from customers.models import Tenant
from revenue.selectors import sql
from revenue.selectors.common import Segment, add_months, month_start

FLAG_ABOVE = Decimal("0.10")
LORENZ_POINTS = 100

REVENUE_SQL = """
WITH {cte},
one_time AS (
    SELECT c.customer_id, c.currency, date_trunc('month', l.starts_on)::date AS month_start,
           l.quantity * l.unit_price AS amount
    FROM customers_contractline l
    JOIN customers_contract c ON c.id = l.contract_id AND c.tenant_id = %(tenant)s
    {segment_join}
    WHERE l.tenant_id = %(tenant)s AND c.status <> 'draft' AND l.kind = 'one_time'
      AND l.starts_on >= %(first)s AND l.starts_on < (%(last)s::date + interval '1 month')
      AND (c.end_date IS NULL OR l.starts_on <= c.end_date) {segment_where}
),
revenue AS (
    SELECT customer_id, mrr AS amount, missing FROM positive
    UNION ALL
    SELECT o.customer_id, o.amount * r.rate,
           CASE WHEN r.rate IS NULL THEN o.currency || ' ' || (o.month_start + interval '1 month - 1 day')::date END
    FROM one_time o JOIN rates r ON r.currency = o.currency AND r.month_start = o.month_start
)
SELECT customer_id, SUM(amount), MIN(missing) FROM revenue
GROUP BY customer_id HAVING SUM(amount) > 0 OR MIN(missing) IS NOT NULL
"""


def trailing_revenue(*, tenant: Tenant, month: date, segment: Segment | None = None) -> dict[int, Decimal]:
    """``{customer_id: revenue}`` over the twelve months ending with ``month``, customers with revenue > 0."""
    return recognized_revenue(tenant=tenant, first=add_months(month_start(month), -11), last=month, segment=segment)


def recognized_revenue(
    *, tenant: Tenant, first: date, last: date, segment: Segment | None = None
) -> dict[int, Decimal]:
    """``{customer_id: revenue}`` recognized from contracts over months ``first``..``last`` (see module)."""
    last = month_start(last)
    query = REVENUE_SQL.format(
        cte=sql.customer_month_cte(segment=segment, from_history=False),
        segment_join="JOIN customers_customer cu ON cu.id = c.customer_id" if segment else "",
        segment_where=f"AND {segment.column} = %(segment_value)s" if segment else "",
    )
    rows = sql.fetch(query, sql.params(tenant=tenant, first=month_start(first), last=last, segment=segment))
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
    total = sum(revenue.values(), Decimal(0))
    n = len(revenue)
    if not n:
        return {
            "total_revenue": total, "customers": 0, "top5_share": None, "hhi": None, "hhi_band": None,
            "gini": None, "flagged": [], "lorenz": [],
        }
    ranked = sorted(revenue.items(), key=lambda item: (-item[1], item[0]))
    ascending = [amount for _, amount in reversed(ranked)]
    hhi = sum(((100 * amount / total) ** 2 for amount in ascending), Decimal(0))
    gini = sum(((2 * i - n - 1) * amount for i, amount in enumerate(ascending, start=1)), Decimal(0)) / (n * total)
    lorenz, running, step = [(Decimal(0), Decimal(0))], Decimal(0), max(1, n // LORENZ_POINTS)
    for i, amount in enumerate(ascending, start=1):
        running += amount
        if i % step == 0 or i == n:
            lorenz.append((Decimal(i) / n, running / total))
    return {
        "total_revenue": total,
        "customers": n,
        "top5_share": sum((amount for _, amount in ranked[:5]), Decimal(0)) / total,
        "hhi": hhi,
        "hhi_band": hhi_band(hhi),
        "gini": gini,
        "flagged": [
            {"customer_id": customer_id, "revenue": amount, "share": amount / total}
            for customer_id, amount in ranked
            if amount / total > FLAG_ABOVE
        ],
        "lorenz": lorenz,
    }


def revenue_concentration(*, tenant: Tenant, month: date, segment: Segment | None = None) -> dict:
    """Concentration of the twelve months ending with ``month`` (see module). Adds ``month``."""
    return {"month": month_start(month), **concentration_indices(trailing_revenue(tenant=tenant, month=month, segment=segment))}
