"""The usage-event store: one interface (``base.UsageEventStore``), chosen by ``USAGE_EVENT_STORE``.

``postgres`` (default): events in ``billing_usageevent``. ``clickhouse``: events in ClickHouse at
``CLICKHOUSE_URL`` (``chdb://<directory>`` runs ClickHouse in-process, as the tests do), keys and
the outbox of unwritten batches in PostgreSQL. See docs/scaling.md. Callers use
``billing.metering.usage_store()``, which builds the store on metering's SQL.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings

from billing.usage_store.base import MeteringSQL, UsageEventStore

POSTGRES, CLICKHOUSE = "postgres", "clickhouse"


def usage_store_for(sql: MeteringSQL) -> UsageEventStore:
    """The configured store on ``sql`` (one instance per process, setting and URL)."""
    return _store(getattr(settings, "USAGE_EVENT_STORE", POSTGRES), getattr(settings, "CLICKHOUSE_URL", ""), sql)


def usage_store_named(kind: str, sql: MeteringSQL) -> UsageEventStore:
    """The store ``kind`` whatever ``USAGE_EVENT_STORE`` says (copies between stores, purges).

    Raises ValueError for an unknown kind, or ClickHouse without ``CLICKHOUSE_URL``."""
    url = getattr(settings, "CLICKHOUSE_URL", "")
    if kind == CLICKHOUSE and not url:
        raise ValueError("The ClickHouse store is not configured: set CLICKHOUSE_URL.")
    return _store(kind, url, sql)


def usage_stores_configured(sql: MeteringSQL) -> list[UsageEventStore]:
    """Every store that may hold events: PostgreSQL always, ClickHouse when ``CLICKHOUSE_URL`` is set
    (in use or not: a tenant may have been copied there)."""
    kinds = [POSTGRES, CLICKHOUSE] if getattr(settings, "CLICKHOUSE_URL", "") else [POSTGRES]
    return [usage_store_named(kind, sql) for kind in kinds]


@cache
def _store(kind: str, url: str, sql: MeteringSQL) -> UsageEventStore:
    if kind == POSTGRES:
        from billing.usage_store.postgres import PostgresUsageStore

        return PostgresUsageStore(sql)
    if kind == CLICKHOUSE:
        from billing.usage_store.clickhouse import ClickHouseUsageStore

        return ClickHouseUsageStore(url, sql)
    raise ValueError(f"USAGE_EVENT_STORE must be {POSTGRES!r} or {CLICKHOUSE!r}, not {kind!r}.")
