"""The one SQL pipeline every contract-based metric starts from: MRR per customer per month.

Set-wise, in one statement: each recurring, per-seat and discount line becomes two change points
(``starts_on`` and the day after its last day); a running sum per contract over those points gives
the contract's recurring total and discount percent on every interval between changes; each interval
is expanded only into the month ends it covers (``generate_series`` per interval, not a scan of every
month); month-end amounts are converted with the latest rate on or before the month's last day.

Rules (see revenue.selectors.mrr for the full contract):
- a line counts on day d when starts_on ≤ d ≤ ends_on (open = ∞), its contract is not a draft and
  d ≤ contract.end_date (when set);
- a line's monthly amount is quantity × unit_price / contract.billing_interval (months);
- discount lines on a contract add up their percentages (capped at 100) and take them off that
  contract's recurring + per-seat total;
- a customer whose month-end total is ≤ 0 has no MRR that month.

The CTE ``customer_month(customer_id, month_start, mrr, missing)`` holds one row per customer and
month with a non-zero contract total; ``mrr`` is NULL and ``missing`` names ``CUR YYYY-MM-DD`` when
an exchange rate is missing (callers raise MissingExchangeRate). ``months(month_start)`` is the
series. Parameters: tenant, reporting, first, last (month starts; ``first`` may be replaced by the
tenant's earliest line when ``from_history``), renew (bool).
"""

from __future__ import annotations

from datetime import date

from django.db import connection, transaction

from customers.models import Tenant
from revenue.selectors.common import MissingExchangeRate, Segment

CUSTOMER_MONTH_CTE = """
bounds AS (
    SELECT {first_expr} AS first_month, %(last)s::timestamp AS last_month
),
months AS (
    SELECT g::date AS month_start FROM bounds, generate_series(bounds.first_month, bounds.last_month, interval '1 month') g
),
lines AS (
    SELECT c.id AS contract_id, c.customer_id, c.currency, l.starts_on,
           CASE WHEN %(renew)s AND c.auto_renew AND c.status = 'active'
                THEN CASE WHEN c.end_date IS NULL OR l.ends_on < c.end_date THEN l.ends_on END
                ELSE LEAST(l.ends_on, c.end_date) END AS last_day,
           CASE WHEN l.kind IN ('recurring', 'per_seat')
                THEN l.quantity * l.unit_price / c.billing_interval ELSE 0 END AS rec,
           CASE WHEN l.kind = 'discount' THEN COALESCE(l.discount_percent, 0) ELSE 0 END AS disc
    FROM customers_contractline l
    JOIN customers_contract c ON c.id = l.contract_id AND c.tenant_id = %(tenant)s
    {segment_join}
    WHERE l.tenant_id = %(tenant)s AND c.status <> 'draft' AND l.kind IN ('recurring', 'per_seat', 'discount')
      {segment_where}
),
events AS (
    SELECT contract_id, customer_id, currency, starts_on AS day, rec, disc
    FROM lines WHERE last_day IS NULL OR starts_on <= last_day
    UNION ALL
    SELECT contract_id, customer_id, currency, last_day + 1, -rec, -disc
    FROM lines WHERE last_day IS NOT NULL AND starts_on <= last_day
),
steps AS (
    SELECT contract_id, customer_id, currency, day,
           SUM(SUM(rec)) OVER w AS rec, SUM(SUM(disc)) OVER w AS disc, LEAD(day) OVER w AS next_day
    FROM events GROUP BY contract_id, customer_id, currency, day
    WINDOW w AS (PARTITION BY contract_id ORDER BY day)
),
contract_month AS (
    SELECT s.customer_id, s.currency, m::date AS month_start, s.rec * (1 - LEAST(s.disc, 100) / 100) AS mrr
    FROM steps s
    CROSS JOIN bounds b
    CROSS JOIN LATERAL generate_series(
        GREATEST(date_trunc('month', s.day), b.first_month),
        LEAST(COALESCE(date_trunc('month', s.next_day) - interval '1 month', b.last_month), b.last_month),
        interval '1 month') m
    WHERE s.rec <> 0
),
rates AS (
    SELECT cur.currency, m.month_start,
           CASE WHEN cur.currency = %(reporting)s THEN 1::numeric ELSE (
               SELECT r.rate FROM revenue_exchangerate r
               WHERE r.tenant_id = %(tenant)s AND r.currency = cur.currency
                 AND r.effective_on <= (m.month_start + interval '1 month - 1 day')::date
               ORDER BY r.effective_on DESC LIMIT 1) END AS rate
    FROM (SELECT DISTINCT currency FROM customers_contract WHERE tenant_id = %(tenant)s) cur CROSS JOIN months m
),
customer_month AS (
    SELECT cm.customer_id, cm.month_start,
           CASE WHEN bool_or(r.rate IS NULL) THEN NULL ELSE SUM(cm.mrr * r.rate) END AS mrr,
           MIN(cm.currency || ' ' || (cm.month_start + interval '1 month - 1 day')::date)
               FILTER (WHERE r.rate IS NULL) AS missing
    FROM contract_month cm JOIN rates r ON r.currency = cm.currency AND r.month_start = cm.month_start
    GROUP BY cm.customer_id, cm.month_start
),
positive AS (
    SELECT customer_id, month_start, mrr, missing FROM customer_month WHERE mrr > 0 OR missing IS NOT NULL
)
"""

EARLIEST_LINE = (
    "LEAST(%(first)s::timestamp, COALESCE((SELECT date_trunc('month', MIN(starts_on)) FROM customers_contractline "
    "WHERE tenant_id = %(tenant)s), %(first)s::timestamp))"
)


def customer_month_cte(*, segment: Segment | None, from_history: bool) -> str:
    """The CTE text (without ``WITH``) for the rules above, optionally limited to one segment.

    ``from_history`` starts the series at the tenant's earliest line, so "first time ever" and
    "had MRR before" are judged over the customer's whole history, not just the asked window.
    """
    return CUSTOMER_MONTH_CTE.format(
        first_expr=EARLIEST_LINE if from_history else "%(first)s::timestamp",
        segment_join="JOIN customers_customer cu ON cu.id = c.customer_id" if segment else "",
        segment_where=f"AND {segment.column} = %(segment_value)s" if segment else "",
    )


def params(*, tenant: Tenant, first: date, last: date, segment: Segment | None, renew: bool = False) -> dict:
    result = {
        "tenant": tenant.pk,
        "reporting": tenant.reporting_currency,
        "first": first,
        "last": last,
        "renew": renew,
    }
    if segment:
        result["segment_value"] = segment.value
    return result


# The planner overestimates these statements (correlated rate look-ups), which switches on JIT
# compilation that costs about a second and buys nothing here; sorts fit in memory with a bit more.
SESSION_SETTINGS = "SET LOCAL jit = off; SET LOCAL work_mem = '64MB'"


def fetch(sql: str, values: dict) -> list[tuple]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SESSION_SETTINGS)
        cursor.execute(sql, values)
        return cursor.fetchall()


def raise_if_missing(tenant: Tenant, missing: str | None) -> None:
    """``missing`` is ``"SEK 2025-01-31"`` from the ``missing`` column, or None."""
    if missing:
        currency, on = missing.split(" ")
        raise MissingExchangeRate(currency, date.fromisoformat(on), tenant.reporting_currency)
