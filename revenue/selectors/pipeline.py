"""The sales pipeline: by quarter, half-year, band and owner; coverage; stale deals; win rate.

Inputs are Opportunity rows of the tenant. Amounts convert to the reporting currency with the latest
ExchangeRate on or before ``today`` (the tenant's date; MissingExchangeRate otherwise); a recurring
opportunity's amount is its yearly value and is summed as such. Weighted = amount × probability / 100.

- Open opportunities are grouped by the quarter of ``expected_close_on`` for the current quarter and
  the three after it (``2026-Q1``), by half-year further out (``2027-H1``); an expected close before
  the current quarter is ``overdue``; those without a date are shown apart under ``undated``.
- Bands follow revenue.models.band_for; owners are grouped by username (``""`` for none).
- Coverage of a quarter = open pipeline (unweighted) expected to close in it / (the quarter's
  QuarterTarget − amounts won with ``closed_on`` in it). No target → None with a reason; the target
  already met → None with a reason. Weighted coverage uses weighted pipeline the same way.
- Stale: open, above 60 %, not touched for 7 days (OpportunityQuerySet.stale).
- Win rate = won / (won + lost), by count and by value, over all closed opportunities; average days
  to close = mean of ``closed_on − created_at`` (tenant date) over won ones.
Exact Decimals; round for display only.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.utils import timezone

from customers.models import Tenant
from customers.periods import tenant_today
from revenue.models import Opportunity, QuarterTarget, band_for
from revenue.selectors.common import RateBook

ZERO = Decimal(0)


def quarter_of(day: date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def quarters_ahead(day: date, count: int = 4) -> list[tuple[int, int]]:
    """``count`` consecutive ``(year, quarter)`` pairs starting with ``day``'s quarter."""
    year, quarter = quarter_of(day)
    result = []
    for _i in range(count):
        result.append((year, quarter))
        year, quarter = (year + 1, 1) if quarter == 4 else (year, quarter + 1)
    return result


def probability_ratio(probability: int) -> Decimal:
    """An opportunity's probability (whole percent, 0–100) as an exact ratio (0–1)."""
    return Decimal(probability) / 100


def target_left(coverage: dict) -> Decimal | None:
    """Target less won of one ``pipeline_coverage`` result (reporting currency, exact; negative when
    the target is exceeded); None when the quarter has no target."""
    return None if coverage["target"] is None else coverage["target"] - coverage["won"]


def period_label(day: date | None, today: date) -> str:
    """The bucket an expected close date falls in, relative to ``today``'s quarter."""
    if day is None:
        return "undated"
    year, quarter = quarter_of(day)
    this_year, this_quarter = quarter_of(today)
    ahead = (year * 4 + quarter) - (this_year * 4 + this_quarter)
    if ahead < 0:
        return "overdue"
    if ahead < 4:
        return f"{year}-Q{quarter}"
    return f"{year}-H{1 if quarter <= 2 else 2}"


def _bucket():
    return {"count": 0, "amount": ZERO, "weighted": ZERO}


def _add(bucket, amount, weighted):
    bucket["count"] += 1
    bucket["amount"] += amount
    bucket["weighted"] += weighted


def pipeline_summary(*, tenant: Tenant, today: date | None = None) -> dict:
    """Open pipeline by period, band and owner, plus ``undated``, ``stale``, win rate and coverage
    of the current quarter (see module). Raises MissingExchangeRate."""
    today = today or tenant_today(tenant)
    book = RateBook(tenant)
    opportunities = Opportunity.objects.for_tenant(tenant).select_related("owner", "customer")
    by_period, by_band, by_owner = defaultdict(_bucket), defaultdict(_bucket), defaultdict(_bucket)
    totals = _bucket()
    won = lost = 0
    won_value = lost_value = ZERO
    days_to_close = []
    for opportunity in opportunities:
        amount = book.convert(opportunity.amount.amount, str(opportunity.amount.currency), today)
        if opportunity.is_open:
            weighted = amount * opportunity.probability / 100
            _add(totals, amount, weighted)
            _add(by_period[period_label(opportunity.expected_close_on, today)], amount, weighted)
            _add(by_band[band_for(opportunity.probability)], amount, weighted)
            _add(by_owner[opportunity.owner.username if opportunity.owner_id else ""], amount, weighted)
        elif opportunity.stage == Opportunity.Stage.WON:
            won, won_value = won + 1, won_value + amount
            if opportunity.closed_on:
                days_to_close.append((opportunity.closed_on - timezone.localdate(opportunity.created_at)).days)
        else:
            lost, lost_value = lost + 1, lost_value + amount
    stale = Opportunity.objects.for_tenant(tenant).stale().order_by("last_touched_at")
    undated = by_period.pop("undated", _bucket())
    year, quarter = quarter_of(today)
    return {
        "currency": tenant.reporting_currency,
        "open": totals,
        "by_period": dict(sorted(by_period.items(), key=lambda item: _period_order(item[0]))),
        "undated": undated,
        "by_band": {band: by_band[band] for band in ("early", "active", "negotiating") if band in by_band},
        "by_owner": dict(sorted(by_owner.items())),
        "stale": [
            {"id": o.pk, "title": o.title, "probability": o.probability, "last_touched_at": o.last_touched_at}
            for o in stale
        ],
        "win_rate": Decimal(won) / (won + lost) if won + lost else None,
        "win_rate_by_value": won_value / (won_value + lost_value) if won_value + lost_value else None,
        "average_days_to_close": Decimal(sum(days_to_close)) / len(days_to_close) if days_to_close else None,
        "coverage": pipeline_coverage(tenant=tenant, year=year, quarter=quarter, today=today),
    }


def _period_order(label: str) -> tuple:
    return (0, "") if label == "overdue" else (1, label.replace("-H", "-X"))


def pipeline_coverage(*, tenant: Tenant, year: int, quarter: int, today: date | None = None) -> dict:
    """Coverage of one quarter (see module): ``{"quarter", "target", "won", "open_pipeline",
    "weighted_pipeline", "coverage", "weighted_coverage", "reason"}``. Raises MissingExchangeRate."""
    today = today or tenant_today(tenant)
    book = RateBook(tenant)
    first = date(year, 3 * quarter - 2, 1)
    after = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    in_quarter = Opportunity.objects.for_tenant(tenant)
    open_amount = weighted = won = ZERO
    for o in in_quarter.open().filter(expected_close_on__gte=first, expected_close_on__lt=after):
        amount = book.convert(o.amount.amount, str(o.amount.currency), today)
        open_amount += amount
        weighted += amount * o.probability / 100
    for o in in_quarter.filter(stage=Opportunity.Stage.WON, closed_on__gte=first, closed_on__lt=after):
        won += book.convert(o.amount.amount, str(o.amount.currency), today)
    result = {
        "quarter": f"{year}-Q{quarter}",
        "target": None,
        "won": won,
        "open_pipeline": open_amount,
        "weighted_pipeline": weighted,
        "coverage": None,
        "weighted_coverage": None,
        "reason": None,
    }
    target = QuarterTarget.objects.for_tenant(tenant).filter(year=year, quarter=quarter).first()
    if target is None:
        result["reason"] = f"No target is set for {year}-Q{quarter}."
        return result
    result["target"] = book.convert(target.target.amount, str(target.target.currency), today)
    remaining = result["target"] - won
    if remaining <= 0:
        result["reason"] = f"The {year}-Q{quarter} target is already met by won deals."
        return result
    result["coverage"] = open_amount / remaining
    result["weighted_coverage"] = weighted / remaining
    return result


def pipeline_totals(*, tenant: Tenant, opportunities, today: date | None = None) -> dict:
    """Count, amount and weighted amount of ``opportunities`` (any queryset of Opportunity, e.g. the
    admin's filtered list; only ``tenant``'s rows count), in the reporting currency at ``today``'s
    rates (the tenant's date): ``{"currency", "count", "amount", "weighted"}``. Weighted = amount ×
    probability / 100, so won deals count in full and lost ones not at all. Exact Decimals, unrounded.
    Raises MissingExchangeRate."""
    today = today or tenant_today(tenant)
    book = RateBook(tenant)
    totals = _bucket()
    rows = Opportunity.objects.for_tenant(tenant).filter(pk__in=opportunities.order_by().values("pk"))
    for amount, currency, probability in rows.values_list("amount", "amount_currency", "probability"):
        converted = book.convert(amount, str(currency), today)
        _add(totals, converted, converted * probability_ratio(probability))
    return {"currency": tenant.reporting_currency, **totals}
