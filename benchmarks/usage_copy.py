"""Moving a tenant's usage events between stores (``billing.usage_copy``) against replaying them.

One tenant with ``customers`` customers and ``events`` events of one month, ingested into
PostgreSQL through ``usage_ingest`` (the events of ``benchmarks.usage_store``). Then, timed:

- ``copy_to_clickhouse``: ``usage_month_copy`` PostgreSQL → ClickHouse (chdb, in-process);
- ``copy_again``: the same copy once more, which finds every day verified and writes nothing;
- ``copy_back``: ClickHouse → PostgreSQL, after the tenant's PostgreSQL events are deleted, so
  the reverse direction writes every event too;
- the baseline, ``replay_into_clickhouse``: the same events sent through ``usage_ingest`` to the
  ClickHouse store for a second tenant with the same customers, which is what moving a tenant
  without the command would take (validation, keys, outbox, flush).

Every phase's month must verify (events and Σ quantity equal in both stores) or the run fails.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

from django.conf import settings
from django.test.utils import override_settings

from benchmarks.harness import results_file, results_write, tenant_drop, tenant_drop_slug
from benchmarks.usage_store import MONTH, _batches, usage_tenant_build
from billing import metering
from billing.metering import usage_ingest
from billing.models import UsageEvent
from billing.usage_copy import usage_month_copy
from billing.usage_store import _store
from customers.models import Tenant
from customers.tenancy import tenant_cursor, tenant_scope

SLUGS = ("bench-usage-copy", "bench-usage-replay")
RESULTS_PATH = results_file("usage_copy")


def _build(slug: str, customers: int) -> tuple[Tenant, list[str]]:
    return usage_tenant_build(customers, slug=slug, name=f"Usage copy benchmark {slug}", prefix=f"{slug[-3:].upper()}-")


def _ingest(tenant: Tenant, batches: list, now: datetime) -> tuple[int, float]:
    accepted, started = 0, time.perf_counter()
    for batch in batches:
        with tenant_scope(tenant):
            accepted += usage_ingest(tenant=tenant, events=batch, now=now).accepted
    return accepted, time.perf_counter() - started


def _copy(tenant: Tenant, source: str, target: str) -> dict:
    started = time.perf_counter()
    with tenant_scope(tenant):
        result = usage_month_copy(
            tenant=tenant, source=metering.usage_store_of(source), target=metering.usage_store_of(target), month=MONTH
        )
    seconds = time.perf_counter() - started
    assert result.verified, f"{MONTH:%Y-%m} did not verify after the copy {source} → {target}: {result}"
    return {"copied": result.copied, "seconds": round(seconds, 2),
            "events_per_second": round(result.copied / seconds) if result.copied else None}


def run_usage_copy_benchmark(*, customers: int, events: int, keep: bool = False, chdb_dir: Path | None = None) -> dict:
    """``chdb_dir``: ClickHouse's directory (default: a new one, removed after). chdb runs one embedded
    server per process, so a process that has opened one already must name that one."""
    for slug in SLUGS:
        tenant_drop_slug(slug)
    own_dir = chdb_dir is None
    if own_dir:
        (Path(settings.BASE_DIR) / "var").mkdir(exist_ok=True)
        chdb_dir = Path(tempfile.mkdtemp(prefix="bench-chdb-", dir=Path(settings.BASE_DIR) / "var"))
    now = datetime(MONTH.year, MONTH.month, 1, tzinfo=dt_timezone.utc) + timedelta(days=40)
    figures: dict = {"customers": customers, "events": events, "month": MONTH,
                     "clickhouse": f"chdb (in-process), {chdb_dir.name}"}
    tenants: list[Tenant] = []
    try:
        with override_settings(USAGE_EVENT_STORE="postgres", CLICKHOUSE_URL=f"chdb://{chdb_dir}"):
            tenant, refs = _build(SLUGS[0], customers)
            tenants.append(tenant)
            batches = [list(batch) for batch in _batches(events, refs)]
            accepted, seconds = _ingest(tenant, batches, now)
            figures["ingest_into_postgres"] = {"accepted": accepted, "seconds": round(seconds, 2),
                                               "events_per_second": round(accepted / seconds)}
            figures["copy_to_clickhouse"] = _copy(tenant, "postgres", "clickhouse")
            figures["copy_again"] = _copy(tenant, "postgres", "clickhouse")
            with tenant_cursor(tenant) as cursor:
                # Out of the way of the reverse copy (the archive's switch: not gone usage, roll-up untouched).
                cursor.execute(
                    "SELECT set_config('billing.usage_archive', 'on', false);"
                    f" DELETE FROM {UsageEvent._meta.db_table} WHERE tenant_id = {int(tenant.pk)};"
                    " SELECT set_config('billing.usage_archive', '', false)"
                )
            figures["copy_back"] = _copy(tenant, "clickhouse", "postgres")

        with override_settings(USAGE_EVENT_STORE="clickhouse", CLICKHOUSE_URL=f"chdb://{chdb_dir}"):
            replay, _ = _build(SLUGS[1], customers)
            tenants.append(replay)
            accepted, seconds = _ingest(replay, batches, now)
            figures["replay_into_clickhouse"] = {"accepted": accepted, "seconds": round(seconds, 2),
                                                 "events_per_second": round(accepted / seconds)}
        base = figures["replay_into_clickhouse"]["seconds"]
        figures["copy_to_clickhouse"]["replay_seconds_per_copy_second"] = round(base / figures["copy_to_clickhouse"]["seconds"], 2)
    finally:
        _store.cache_clear()
        if not keep:
            for tenant in tenants:
                tenant_drop(tenant)
            if own_dir:
                shutil.rmtree(chdb_dir, ignore_errors=True)
    results_write(RESULTS_PATH, figures)
    return figures
