"""Twelve-month revenue forecast: committed recurring revenue plus a Monte-Carlo of the open pipeline.

- Committed MRR per month = MRR at each month end from contracts as they stand (revenue.selectors.mrr
  rules), except that an active ``auto_renew`` contract renews: its end date, and line ends on or
  after it, are ignored. Known ends of other contracts apply.
- Pipeline: every open opportunity with an expected close date is won with its probability,
  independently, in each run. A won recurring opportunity (amount per year) adds amount / 12 to
  every month whose end is on or after the expected close date; a won one-off adds its amount to
  the month of the close. An expected close in a past month counts in the first forecast month.
  Undated opportunities are left out of the simulation and reported apart.
- Amounts are converted at today's rate and rounded half up to the reporting currency's minor unit
  per opportunity and month (``customers.money``); the simulation sums whole minor units in float64,
  which is exact below 2⁵³ of them, so the
  percentiles (``inverted_cdf``: always a simulated value) are exact Decimals.
- Output per month: committed MRR, pipeline P10 / P50 / P90 and the expected value
  (Σ amount × probability, exact), and totals = committed + pipeline percentile.
``seed`` makes the simulation repeatable. Raises MissingExchangeRate.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np

from customers.models import Tenant
from customers.money import minor_unit_places, money_round
from customers.periods import add_months, month_end, month_start, months_between, tenant_today
from revenue.models import Opportunity
from revenue.selectors import sql
from revenue.selectors.common import RateBook

CHUNK = 1000
PERCENTILES = (10, 50, 90)


# Committed MRR is a sum over customers, so most of it needs no customer-by-month grid: each
# contract's month-end amount changes only at its steps, and the month-end totals per currency are a
# running sum of those changes, converted at each month's rate (numeric sums and products are exact,
# so the order of summing changes nothing). Only customers with a negative recurring line can fall
# to zero or below, where the rule "no MRR when the month-end total is <= 0" bites; they alone are
# expanded into a customer-by-month grid, as revenue.selectors.sql does. Lines that cannot reach the window
# are dropped first: one that ended before it adds and removes its amount before it, one that starts
# after it never counts (active auto-renewing contracts' lines ending on or after the contract's end
# run on, so they stay). At 100 000 contracts: 7 s for the grid, 1 s for this.
COMMITTED_SQL = """
WITH bounds AS (
    SELECT %(first)s::timestamp AS first_month, %(last)s::timestamp AS last_month,
           (%(last)s::date + interval '1 month - 1 day')::date AS last_day
),
months AS (
    SELECT g::date AS month_start FROM bounds, generate_series(bounds.first_month, bounds.last_month, interval '1 month') g
),
lines AS (
    SELECT c.id AS contract_id, c.customer_id, c.currency, l.starts_on,
           CASE WHEN c.auto_renew AND c.status = 'active'
                THEN CASE WHEN c.end_date IS NULL OR l.ends_on < c.end_date THEN l.ends_on END
                ELSE LEAST(l.ends_on, c.end_date) END AS last_day,
           CASE WHEN l.kind IN ('recurring', 'per_seat')
                THEN l.quantity * l.unit_price / c.billing_interval ELSE 0 END AS rec,
           CASE WHEN l.kind = 'discount' THEN COALESCE(l.discount_percent, 0) ELSE 0 END AS disc
    FROM customers_contractline l
    JOIN customers_contract c ON c.id = l.contract_id AND c.tenant_id = %(tenant)s
    WHERE l.tenant_id = %(tenant)s AND c.status <> 'draft' AND l.kind IN ('recurring', 'per_seat', 'discount')
      AND l.starts_on <= (SELECT last_day FROM bounds)
      AND (l.ends_on IS NULL OR l.ends_on >= %(first)s
           OR (c.auto_renew AND c.status = 'active' AND (c.end_date IS NULL OR l.ends_on >= c.end_date)))
),
signed AS (
    SELECT DISTINCT customer_id FROM lines WHERE rec < 0
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
valued AS (
    SELECT contract_id, customer_id, currency, day, next_day, rec,
           rec * (1 - LEAST(disc, 100) / 100) AS mrr, (rec <> 0)::int AS live
    FROM steps
),
changes AS (
    SELECT v.currency, GREATEST(date_trunc('month', v.day), b.first_month)::date AS month_start,
           SUM(v.mrr - COALESCE(v.prev_mrr, 0)) AS mrr, SUM(v.live - COALESCE(v.prev_live, 0)) AS live
    FROM (SELECT *, LAG(mrr) OVER w AS prev_mrr, LAG(live) OVER w AS prev_live
          FROM valued WHERE customer_id NOT IN (SELECT customer_id FROM signed)
          WINDOW w AS (PARTITION BY contract_id ORDER BY day)) v
    CROSS JOIN bounds b
    WHERE v.day <= b.last_day
    GROUP BY 1, 2
),
currencies AS (
    SELECT DISTINCT currency FROM customers_contract WHERE tenant_id = %(tenant)s
),
rates AS (
    SELECT cur.currency, m.month_start,
           CASE WHEN cur.currency = %(reporting)s THEN 1::numeric ELSE (
               SELECT r.rate FROM revenue_exchangerate r
               WHERE r.tenant_id = %(tenant)s AND r.currency = cur.currency
                 AND r.effective_on <= (m.month_start + interval '1 month - 1 day')::date
               ORDER BY r.effective_on DESC LIMIT 1) END AS rate
    FROM currencies cur CROSS JOIN months m
),
unsigned_month AS (
    SELECT r.currency, r.month_start, r.rate,
           SUM(COALESCE(ch.mrr, 0)) OVER w AS mrr, SUM(COALESCE(ch.live, 0)) OVER w AS live
    FROM rates r LEFT JOIN changes ch ON ch.currency = r.currency AND ch.month_start = r.month_start
    WINDOW w AS (PARTITION BY r.currency ORDER BY r.month_start)
),
signed_month AS (
    SELECT v.customer_id, m::date AS month_start,
           CASE WHEN bool_or(r.rate IS NULL) THEN NULL ELSE SUM(v.mrr * r.rate) END AS mrr,
           MIN(v.currency || ' ' || (m::date + interval '1 month - 1 day')::date) FILTER (WHERE r.rate IS NULL) AS missing
    FROM valued v
    CROSS JOIN bounds b
    CROSS JOIN LATERAL generate_series(
        GREATEST(date_trunc('month', v.day), b.first_month),
        LEAST(COALESCE(date_trunc('month', v.next_day) - interval '1 month', b.last_month), b.last_month),
        interval '1 month') m
    JOIN rates r ON r.currency = v.currency AND r.month_start = m::date
    WHERE v.rec <> 0 AND v.customer_id IN (SELECT customer_id FROM signed)
    GROUP BY 1, 2
),
totals AS (
    SELECT month_start, mrr * rate AS mrr,
           CASE WHEN rate IS NULL AND live > 0 THEN currency || ' ' || (month_start + interval '1 month - 1 day')::date END
               AS missing
    FROM unsigned_month
    UNION ALL
    SELECT month_start, mrr, missing FROM signed_month WHERE mrr > 0 OR missing IS NOT NULL
)
SELECT m.month_start, COALESCE(SUM(t.mrr), 0), MIN(t.missing)
FROM months m LEFT JOIN totals t ON t.month_start = m.month_start
GROUP BY 1 ORDER BY 1
"""


def committed_mrr(*, tenant: Tenant, first: date, last: date) -> dict[date, Decimal]:
    """MRR at each month end ``first``..``last`` with active auto-renewing contracts renewed."""
    rows = sql.fetch(COMMITTED_SQL, sql.params(tenant=tenant, first=first, last=last, segment=None, renew=True))
    for _, _, missing in rows:
        sql.raise_if_missing(tenant, missing)
    return {month: amount for month, amount, _ in rows}


def contribution_matrix(opportunities, *, first: date, months: int, book: RateBook, today: date):
    """(minor-unit matrix n × months as float64, probabilities n, exact expected per month)."""
    currency = book.reporting
    scale = 10 ** minor_unit_places(currency)
    contributions = np.zeros((len(opportunities), months), dtype=np.float64)
    probabilities = np.zeros(len(opportunities), dtype=np.float64)
    expected = [Decimal(0)] * months
    for i, o in enumerate(opportunities):
        amount = book.convert(o.amount.amount, str(o.amount.currency), today)
        close_index = max(0, (o.expected_close_on.year - first.year) * 12 + o.expected_close_on.month - first.month)
        if close_index >= months:
            continue
        probabilities[i] = o.probability / 100
        if o.kind == Opportunity.Kind.RECURRING:
            monthly = money_round(amount / 12, currency)
            # Counts from the first month whose end is on or after the close date.
            start = close_index if month_end(add_months(first, close_index)) >= o.expected_close_on else close_index + 1
            targets = range(start, months)
        else:
            monthly = money_round(amount, currency)
            targets = range(close_index, close_index + 1)
        for j in targets:
            contributions[i, j] = int(monthly * scale)
            expected[j] += monthly * o.probability / 100
    return contributions, probabilities, expected


def simulate(contributions, probabilities, *, runs: int, seed: int | None) -> np.ndarray:
    """runs × months totals in minor units: each opportunity won with its probability, independently."""
    rng = np.random.default_rng(seed)
    totals = np.empty((runs, contributions.shape[1]), dtype=np.float64)
    for start in range(0, runs, CHUNK):
        size = min(CHUNK, runs - start)
        wins = rng.random((size, len(probabilities)), dtype=np.float32) < probabilities.astype(np.float32)
        totals[start : start + size] = wins.astype(np.float64) @ contributions
    return totals


def expected_total(month: dict) -> Decimal:
    """Committed MRR plus the expected (probability-weighted) pipeline of one ``revenue_forecast``
    month, exact, in the reporting currency."""
    return month["committed_mrr"] + month["pipeline_expected"]


def monthly_seed(day: date) -> int:
    """A seed that is the same all month (YYYYMM), so a forecast drawn with it does not move on reload."""
    return day.year * 100 + day.month


def revenue_forecast(
    *, tenant: Tenant, months: int = 12, runs: int = 10_000, seed: int | None = None, first: date | None = None
) -> dict:
    """Forecast ``months`` months from ``first`` (default: the tenant's current month).

    Returns ``{"currency", "runs", "seed", "undated": {"count", "amount"}, "months": [{"month",
    "committed_mrr", "pipeline_expected", "pipeline_p10", "pipeline_p50", "pipeline_p90", "total_p10",
    "total_p50", "total_p90"}]}``; see the module for the rules. Raises MissingExchangeRate.
    """
    today = tenant_today(tenant)
    first = month_start(first or today)
    last = add_months(first, months - 1)
    book = RateBook(tenant)
    committed = committed_mrr(tenant=tenant, first=first, last=last)
    open_deals = Opportunity.objects.for_tenant(tenant).open()
    dated = list(open_deals.filter(expected_close_on__isnull=False).order_by("pk"))
    undated = list(open_deals.filter(expected_close_on__isnull=True))
    contributions, probabilities, expected = contribution_matrix(dated, first=first, months=months, book=book, today=today)
    totals = simulate(contributions, probabilities, runs=runs, seed=seed)
    places = minor_unit_places(tenant.reporting_currency)
    quantiles = np.percentile(totals, PERCENTILES, axis=0, method="inverted_cdf") if runs else None
    result_months = []
    for j, month in enumerate(months_between(first, last)):
        row = {"month": month, "committed_mrr": committed[month], "pipeline_expected": expected[j]}
        for k, p in enumerate(PERCENTILES):
            cents = Decimal(int(quantiles[k, j])).scaleb(-places) if quantiles is not None else Decimal(0)
            row[f"pipeline_p{p}"] = cents
            row[f"total_p{p}"] = committed[month] + cents
        result_months.append(row)
    return {
        "currency": tenant.reporting_currency,
        "runs": runs,
        "seed": seed,
        "undated": {
            "count": len(undated),
            "amount": sum((book.convert(o.amount.amount, str(o.amount.currency), today) for o in undated), Decimal(0)),
        },
        "months": result_months,
    }
