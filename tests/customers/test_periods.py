"""The tenant's calendar: one home for today, month arithmetic and month parsing, with one error type."""

from datetime import date, datetime, timezone

import pytest
from django.core.exceptions import ValidationError

from customers.models import Tenant
from customers.periods import (
    PeriodError,
    add_months,
    last_closed_month,
    month_bounds,
    month_end,
    month_key,
    month_start,
    months_between,
    parse_month,
    tenant_today,
)


def test_today_follows_the_tenant_time_zone():
    moment = datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc)
    assert tenant_today(Tenant(time_zone="Europe/Stockholm"), moment) == date(2026, 12, 1)
    assert tenant_today(Tenant(time_zone="America/Los_Angeles"), moment) == date(2026, 11, 30)
    assert last_closed_month(Tenant(time_zone="Europe/Stockholm"), moment) == date(2026, 11, 1)
    assert last_closed_month(Tenant(time_zone="America/Los_Angeles"), moment) == date(2026, 10, 1)


@pytest.mark.parametrize(
    "day, count, result",
    [
        (date(2026, 1, 31), 1, date(2026, 2, 1)),
        (date(2026, 11, 15), 2, date(2027, 1, 1)),
        (date(2026, 3, 1), -3, date(2025, 12, 1)),
        (date(2026, 3, 1), -27, date(2023, 12, 1)),
        (date(2026, 3, 1), 0, date(2026, 3, 1)),
    ],
)
def test_add_months_moves_between_month_starts(day, count, result):
    assert add_months(day, count) == result


def test_month_start_end_bounds_and_between():
    assert month_start(date(2028, 2, 17)) == date(2028, 2, 1)
    assert month_end(date(2028, 2, 17)) == date(2028, 2, 29)
    assert month_end(date(2026, 12, 5)) == date(2026, 12, 31)
    assert month_bounds(date(2026, 4, 30)) == (date(2026, 4, 1), date(2026, 4, 30))
    assert months_between(date(2026, 11, 20), date(2027, 2, 3)) == [
        date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1)
    ]
    assert months_between(date(2027, 2, 1), date(2026, 11, 1)) == []
    assert month_key(date(2026, 3, 9)) == "2026-03"


def test_parse_month_reads_yyyy_mm():
    assert parse_month("2026-03") == date(2026, 3, 1)
    assert parse_month(" 2026-12 ") == date(2026, 12, 1)


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "March", "2026/03", "26-03", "", None, "1899-12", 202603])
def test_parse_month_refuses_anything_else_with_one_error_type(text):
    with pytest.raises(PeriodError) as caught:
        parse_month(text)
    assert isinstance(caught.value, ValidationError)
    assert caught.value.messages == [f"Write the month as YYYY-MM, e.g. 2026-03 (got {text!r})."]
