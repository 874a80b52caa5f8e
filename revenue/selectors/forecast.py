"""Twelve-month revenue forecast: committed recurring revenue plus a Monte-Carlo of the open pipeline.

- Committed MRR per month = MRR at each month end from contracts as they stand (revenue.selectors.mrr
  rules), except that an active ``auto_renew`` contract renews: its end date, and line ends on or
  after it, are ignored. Known ends of other contracts apply.
- Pipeline: every open opportunity with an expected close date is won with its probability,
  independently, in each run. A won recurring opportunity (amount per year) adds amount / 12 to
  every month whose end is on or after the expected close date; a won one-off adds its amount to
  the month of the close. An expected close in a past month counts in the first forecast month.
  Undated opportunities are left out of the simulation and reported apart.
- Amounts are converted at today's rate and rounded to cents (ROUND_HALF_UP) per opportunity and
  month; the simulation sums whole cents in float64, which is exact below 2⁵³ cents, so the
  percentiles (``inverted_cdf``: always a simulated value) are exact Decimals.
- Output per month: committed MRR, pipeline P10 / P50 / P90 and the expected value
  (Σ amount × probability, exact), and totals = committed + pipeline percentile.
``seed`` makes the simulation repeatable. Raises MissingExchangeRate.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from customers.models import Tenant
from revenue.models import Opportunity
from revenue.selectors import sql
from revenue.selectors.common import CENT, RateBook, add_months, month_end, month_start, months_between, tenant_today

CHUNK = 1000
PERCENTILES = (10, 50, 90)


def committed_mrr(*, tenant: Tenant, first: date, last: date) -> dict[date, Decimal]:
    """MRR at each month end ``first``..``last`` with active auto-renewing contracts renewed."""
    query = f"""
        WITH {sql.customer_month_cte(segment=None, from_history=False)}
        SELECT m.month_start, COALESCE(SUM(p.mrr), 0), MIN(p.missing)
        FROM months m LEFT JOIN positive p ON p.month_start = m.month_start GROUP BY 1 ORDER BY 1
    """
    rows = sql.fetch(query, sql.params(tenant=tenant, first=first, last=last, segment=None, renew=True))
    for _, _, missing in rows:
        sql.raise_if_missing(tenant, missing)
    return {month: amount for month, amount, _ in rows}


def contribution_matrix(opportunities, *, first: date, months: int, book: RateBook, today: date):
    """(cents matrix n × months as float64, probabilities n, exact expected per month)."""
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
            monthly = (amount / 12).quantize(CENT, rounding=ROUND_HALF_UP)
            # Counts from the first month whose end is on or after the close date.
            start = close_index if month_end(add_months(first, close_index)) >= o.expected_close_on else close_index + 1
            targets = range(start, months)
        else:
            monthly = amount.quantize(CENT, rounding=ROUND_HALF_UP)
            targets = range(close_index, close_index + 1)
        for j in targets:
            contributions[i, j] = int(monthly * 100)
            expected[j] += monthly * o.probability / 100
    return contributions, probabilities, expected


def simulate(contributions, probabilities, *, runs: int, seed: int | None) -> np.ndarray:
    """runs × months totals in cents: each opportunity won with its probability, independently."""
    rng = np.random.default_rng(seed)
    totals = np.empty((runs, contributions.shape[1]), dtype=np.float64)
    for start in range(0, runs, CHUNK):
        size = min(CHUNK, runs - start)
        wins = rng.random((size, len(probabilities)), dtype=np.float32) < probabilities.astype(np.float32)
        totals[start : start + size] = wins.astype(np.float64) @ contributions
    return totals


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
    quantiles = np.percentile(totals, PERCENTILES, axis=0, method="inverted_cdf") if runs else None
    result_months = []
    for j, month in enumerate(months_between(first, last)):
        row = {"month": month, "committed_mrr": committed[month], "pipeline_expected": expected[j]}
        for k, p in enumerate(PERCENTILES):
            cents = Decimal(int(quantiles[k, j])) / 100 if quantiles is not None else Decimal(0)
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
