"""Copying a tenant's usage events from one store to the other (``manage.py usage_store_copy``).

How an operator moves a big tenant to ClickHouse (or back): copy with the tenant still on the old
store, switch ``USAGE_EVENT_STORE``, copy again for the tail. Month by month (UTC months, the
partitions of both stores), and within a month day by day: a day whose event count and quantity sum
already match in the target is skipped; otherwise the source's events of the day whose idempotency
keys the target lacks are written (``UsageEventStore.events_import``). Running it twice therefore
copies nothing twice, and a copy interrupted halfway resumes where it stopped. Each month is then
verified: events and Σ quantity equal in both stores. The target's events the source lacks (ingested
there after a switch) are never deleted; they show as a mismatch to look at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.utils import timezone

from billing.usage_store.base import UsageEventStore
from customers.models import Tenant


@dataclass(frozen=True)
class MonthCopy:
    """One month of a copy: what the source holds, what was written, what the target holds after."""

    month: date
    source_events: int
    source_quantity: Decimal
    copied: int
    target_events: int
    target_quantity: Decimal

    @property
    def verified(self) -> bool:
        return (self.source_events, self.source_quantity) == (self.target_events, self.target_quantity)


def _month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=dt_timezone.utc)
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start, datetime(following.year, following.month, 1, tzinfo=dt_timezone.utc)


MICRO = Decimal("0.000001")  # quantities have 6 decimal places in both stores


def _sums(figures: dict[date, tuple[int, Decimal]]) -> tuple[int, Decimal]:
    return sum(n for n, _ in figures.values()), sum((q for _, q in figures.values()), Decimal(0)).quantize(MICRO)


def usage_copy_months(*, tenant: Tenant, source: UsageEventStore) -> list[date]:
    """The UTC months (first days) in which ``source`` holds events of ``tenant``, oldest first."""
    first = source.first_event_at(tenant=tenant)
    if first is None:
        return []
    # Ingestion takes events at most a day or so ahead; a month beyond the next holds none.
    end = _month_bounds((timezone.now() + timedelta(days=32)).date().replace(day=1))[1]
    start = first.astimezone(dt_timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = source.day_figures(tenant=tenant, start=start, end=end)
    return sorted({day.replace(day=1) for day in days})


def usage_month_copy(*, tenant: Tenant, source: UsageEventStore, target: UsageEventStore, month: date) -> MonthCopy:
    """Copy ``tenant``'s events of the UTC month starting ``month`` from ``source`` to ``target``.

    Idempotent (see the module); returns the month's figures in both stores after the copy. A day is
    read into memory whole. Raises ValueError when source and target are the same store."""
    if source.name == target.name:
        raise ValueError("The source and the target are the same store.")
    start, end = _month_bounds(month)
    in_source = source.day_figures(tenant=tenant, start=start, end=end)
    in_target = target.day_figures(tenant=tenant, start=start, end=end)
    copied = 0
    for day in sorted(in_source):
        if in_target.get(day) == in_source[day]:
            continue
        day_start = datetime(day.year, day.month, day.day, tzinfo=dt_timezone.utc)
        day_end = day_start + timedelta(days=1)
        present = target.keys_between(tenant=tenant, start=day_start, end=day_end) if day in in_target else set()
        missing = [
            event
            for event in source.events_between(tenant=tenant, start=day_start, end=day_end)
            if event.idempotency_key not in present
        ]
        copied += target.events_import(tenant=tenant, events=missing)
    source_events, source_quantity = _sums(in_source)
    target_events, target_quantity = _sums(target.day_figures(tenant=tenant, start=start, end=end))
    return MonthCopy(month, source_events, source_quantity, copied, target_events, target_quantity)
