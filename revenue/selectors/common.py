"""What every revenue metric shares: months, segments, exchange rates and the errors they raise.

A *month* is a calendar month, named by its first day (``date(2025, 1, 1)``); its metric date is its
last day. Which month is "current" or "closed" follows the tenant's time zone.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from customers.models import Tenant

MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
CENT = Decimal("0.01")


class MetricError(ValueError):
    """A metric cannot be computed from what is stored or asked; the message says why."""


class MissingExchangeRate(MetricError):
    def __init__(self, currency: str, on: date, reporting_currency: str):
        self.currency, self.on = currency, on
        super().__init__(
            f"No exchange rate from {currency} to {reporting_currency} on or before {on.isoformat()}: "
            f"add one (revenue.ExchangeRate) before reporting this period."
        )


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def month_end(month: date) -> date:
    return add_months(month_start(month), 1) - timedelta(days=1)


def months_between(first: date, last: date) -> list[date]:
    """Every month from ``first`` to ``last`` inclusive (both month starts)."""
    result, month = [], month_start(first)
    while month <= last:
        result.append(month)
        month = add_months(month, 1)
    return result


def parse_month(text: str) -> date:
    """``"2025-03"`` → ``date(2025, 3, 1)``. Raises MetricError with a readable message."""
    match = MONTH_PATTERN.match(text or "")
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1900:
        raise MetricError(f"Write the month as YYYY-MM, e.g. 2025-03 (got {text!r}).")
    return date(int(match.group(1)), int(match.group(2)), 1)


def tenant_today(tenant: Tenant, now: datetime | None = None) -> date:
    """Today's date in the tenant's time zone."""
    return (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(tenant.time_zone)).date()


def last_closed_month(tenant: Tenant, now: datetime | None = None) -> date:
    """The latest month that has ended in the tenant's time zone."""
    return add_months(month_start(tenant_today(tenant, now)), -1)


def display(amount: Decimal | None, places: Decimal = CENT) -> str | None:
    """Round for display only (ROUND_HALF_UP); computation keeps the exact Decimal."""
    return None if amount is None else str(amount.quantize(places, rounding=ROUND_HALF_UP))


# Segment dimensions: a customer's *current* value decides its segment for every month of a series,
# so a customer who moved tier is reported wholly under the new tier (history is not re-segmented).
SEGMENT_COLUMNS = {
    "tier": "cu.tier",
    "segment": "cu.segment",
    "country": "cu.country",
    "account_manager": "COALESCE(cu.account_manager_id::text, '')",
}


@dataclass(frozen=True)
class Segment:
    """One slice of customers, written ``dimension:value`` (``tier:Starter``, ``account_manager:7``)."""

    dimension: str
    value: str

    @classmethod
    def parse(cls, text: str | None) -> Segment | None:
        if not text:
            return None
        dimension, sep, value = text.partition(":")
        if not sep or dimension not in SEGMENT_COLUMNS:
            raise MetricError(
                f"Write the segment as dimension:value with dimension one of {', '.join(SEGMENT_COLUMNS)} "
                f"(got {text!r})."
            )
        return cls(dimension, value)

    @property
    def column(self) -> str:
        return SEGMENT_COLUMNS[self.dimension]

    def __str__(self):
        return f"{self.dimension}:{self.value}"


def group_column(group_by: str | None) -> str | None:
    if group_by is None:
        return None
    if group_by not in SEGMENT_COLUMNS:
        raise MetricError(f"group_by must be one of {', '.join(SEGMENT_COLUMNS)} (got {group_by!r}).")
    return SEGMENT_COLUMNS[group_by]


class RateBook:
    """Exchange rates of one tenant, looked up in Python for the few amounts converted outside SQL.

    ``convert(amount, currency, on)`` uses the latest rate on or before ``on``; the reporting
    currency converts at 1. A missing rate raises MissingExchangeRate, never a silent 1.
    """

    def __init__(self, tenant: Tenant):
        from revenue.models import ExchangeRate

        self.tenant = tenant
        self.reporting = tenant.reporting_currency
        self._rates: dict[str, list[tuple[date, Decimal]]] = {}
        for currency, effective_on, rate in (
            ExchangeRate.objects.for_tenant(tenant).order_by("currency", "effective_on").values_list(
                "currency", "effective_on", "rate"
            )
        ):
            self._rates.setdefault(currency, []).append((effective_on, rate))

    def rate(self, currency: str, on: date) -> Decimal:
        if currency == self.reporting:
            return Decimal(1)
        found = None
        for effective_on, rate in self._rates.get(currency, []):
            if effective_on > on:
                break
            found = rate
        if found is None:
            raise MissingExchangeRate(currency, on, self.reporting)
        return found

    def convert(self, amount: Decimal, currency: str, on: date) -> Decimal:
        return amount * self.rate(currency, on)
