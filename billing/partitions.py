"""Monthly partitions of the usage events table (migration 0020): made ahead, and for stragglers.

``billing_usageevent`` is partitioned by range of ``timestamp``, one partition per calendar month in
UTC (``billing_usageevent_pYYYY_MM``) and a default partition that catches an event of a month with
no partition yet. Months are UTC because the partitions are shared by every tenant; a tenant whose
time zone is not UTC reads its month from two partitions (the UTC month and a few hours of its
neighbour), still never the others.

The partitions are made by the database function ``billing_usage_partitions_ensure(first, last)``
(owned by the tables' owner, SECURITY DEFINER: the application role may not create tables), which
also moves the default partition's rows of a month into that month's new partition and gives every
partition the tenant policy of row-level security. Ingestion never creates partitions: a missing
month costs nothing but a few rows in the default partition until the next maintenance run.
"""

from __future__ import annotations

from datetime import date
from datetime import timezone as dt_timezone

from django.db import connection, transaction
from django.utils import timezone

from billing.models import UsageEvent
from customers.tenancy import platform_scope

MONTHS_AHEAD = 2
DEFAULT_PARTITION = f"{UsageEvent._meta.db_table}_default"


def partition_name(month: date) -> str:
    """The partition of the UTC month starting ``month`` (its day is ignored)."""
    return f"{UsageEvent._meta.db_table}_p{month:%Y_%m}"


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def usage_partitions() -> list[str]:
    """The names of the usage event table's partitions, the default one included, sorted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [UsageEvent._meta.db_table],
        )
        return [name for (name,) in cursor.fetchall()]


def usage_partitions_ensure(*, today: date | None = None, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Make the partitions of this UTC month and the ``months_ahead`` next ones, and of every month
    that has rows in the default partition (their rows move in); returns the names made, sorted.

    Idempotent: a second call makes nothing. Platform-wide (partitions hold every tenant's rows), so
    it takes no tenant; one transaction. Raises ValueError for a negative ``months_ahead``.
    """
    if months_ahead < 0:
        raise ValueError("months_ahead cannot be negative.")
    today = today or timezone.now().astimezone(dt_timezone.utc).date()
    first = today.replace(day=1)
    before = set(usage_partitions())
    with transaction.atomic(), platform_scope(reason="usage event partitions are shared by every tenant"):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT DISTINCT date_trunc('month', timestamp AT TIME ZONE 'UTC')::date FROM {DEFAULT_PARTITION}"
            )
            stragglers = [month for (month,) in cursor.fetchall()]
            for month in stragglers:
                cursor.execute("SELECT billing_usage_partitions_ensure(%s, %s)", [month, month])
            cursor.execute(
                "SELECT billing_usage_partitions_ensure(%s, %s)", [first, _add_months(first, months_ahead)]
            )
    return sorted(set(usage_partitions()) - before)


def usage_partition_drop_empty(*, month: date) -> bool:
    """Detach and drop the partition of ``month`` if no tenant has a row left in it (every tenant's
    rows of the month archived); True if it did. Never the current month or a month ahead."""
    current = timezone.now().astimezone(dt_timezone.utc).date().replace(day=1)
    if month.replace(day=1) >= current:
        return False
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT billing_usage_partition_drop_empty(%s)", [month.replace(day=1)])
        return bool(cursor.fetchone()[0])
