"""The tenant's calendar: today, months, and a month written as text. The one home of these rules.

A *month* is named by its first day (``date(2026, 11, 1)``); its last day ends it. "Today", the
current month and the last closed month follow the tenant's time zone, so a month closes at the
tenant's own midnight. A month written as text is ``YYYY-MM``; anything else raises ``PeriodError``
(a ``ValidationError``, so forms, services and the API answer it as a 400 with its message).
"""

import re
import zoneinfo
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.utils import timezone

__all__ = [
    "PeriodError",
    "add_months",
    "last_closed_month",
    "month_bounds",
    "month_end",
    "month_key",
    "month_start",
    "months_between",
    "parse_month",
    "tenant_now",
    "tenant_today",
]

MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
FIRST_YEAR = 1900


class PeriodError(ValidationError):
    """A month or period that cannot be read or used; the message says what to write instead."""


def tenant_now(tenant, now: datetime | None = None) -> datetime:
    """The moment ``now`` (default: the present) on the tenant's wall clock."""
    return (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(tenant.time_zone))


def tenant_today(tenant, now: datetime | None = None) -> date:
    """Today's date in the tenant's time zone (at ``now`` if given)."""
    return tenant_now(tenant, now).date()


def month_start(day: date) -> date:
    """The first day of the month holding ``day``."""
    return day.replace(day=1)


def add_months(day: date, count: int) -> date:
    """The first day of the month ``count`` months after (negative: before) the month of ``day``."""
    return month_start(day) + relativedelta(months=count)


def month_end(day: date) -> date:
    """The last day of the month holding ``day``."""
    return add_months(day, 1) - timedelta(days=1)


def month_bounds(day: date) -> tuple[date, date]:
    """The first and the last day of the month holding ``day``."""
    return month_start(day), month_end(day)


def months_between(first: date, last: date) -> list[date]:
    """Every month from the month of ``first`` to the month of ``last``, inclusive, as month starts."""
    result, month, last = [], month_start(first), month_start(last)
    while month <= last:
        result.append(month)
        month = add_months(month, 1)
    return result


def last_closed_month(tenant, now: datetime | None = None) -> date:
    """The latest month that has ended in the tenant's time zone."""
    return add_months(tenant_today(tenant, now), -1)


def month_key(day: date) -> str:
    """The month holding ``day`` as text: ``"2026-11"``."""
    return f"{day:%Y-%m}"


def parse_month(text: str | None) -> date:
    """``"2026-03"`` → ``date(2026, 3, 1)``. Raises PeriodError, naming what was given and what to write."""
    match = MONTH_PATTERN.match((text or "").strip()) if isinstance(text, str) or text is None else None
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < FIRST_YEAR:
        raise PeriodError(f"Write the month as YYYY-MM, e.g. 2026-03 (got {text!r}).")
    return date(int(match.group(1)), int(match.group(2)), 1)
