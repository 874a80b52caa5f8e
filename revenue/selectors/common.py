"""What every revenue metric shares: segments, exchange rates and the errors they raise.

A *month* is a calendar month, named by its first day (``date(2025, 1, 1)``); its metric date is its
last day. Which month is "current" or "closed" follows the tenant's time zone: ``customers.periods``
holds those rules (and raises ``PeriodError`` for a month written wrong).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from customers.models import Tenant


class MetricError(ValueError):
    """A metric cannot be computed from what is stored or asked; the message says why."""


class MissingExchangeRate(MetricError):
    def __init__(self, currency: str, on: date, reporting_currency: str):
        self.currency, self.on = currency, on
        super().__init__(
            f"No exchange rate from {currency} to {reporting_currency} on or before {on.isoformat()}: "
            f"add one (revenue.ExchangeRate) before reporting this period."
        )


# Segment dimensions: a customer's *current* value decides its segment for every month of a series,
# so a customer who moved tier is reported wholly under the new tier (history is not re-segmented).
SEGMENT_COLUMNS = {
    "tier": "cu.tier",
    "segment": "cu.segment",
    "country": "cu.country",
    "account_manager": "COALESCE(cu.account_manager_id::text, '')",
}
# A slice that is not a grouping: one customer, for the series of its own page (``Segment.of_customer``).
SLICE_COLUMNS = {**SEGMENT_COLUMNS, "customer": "cu.id::text"}


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

    @classmethod
    def of_customer(cls, customer_id: int) -> Segment:
        """One customer alone: its MRR series and movements are the tenant's figures for that customer."""
        return cls("customer", str(customer_id))

    @property
    def column(self) -> str:
        return SLICE_COLUMNS[self.dimension]

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
