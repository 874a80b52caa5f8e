"""Usage events in PostgreSQL against ClickHouse (chdb, in-process): ingestion and a month's totals.

One benchmark tenant, ``customers`` customers, ``events`` generated events of one month in
batches of 10 000 (the API's largest), all through ``usage_ingest`` (validation included, as an
API request would run it), then one re-sent batch (all duplicates). Three stores, same events:

- ``postgres``: the default store, ``billing_usageevent`` (COPY + INSERT … ON CONFLICT, roll-up
  trigger on);
- ``clickhouse_keys``: the ClickHouse store as built, option (a): keys deduplicated in PostgreSQL
  (``UsageEventKey``), the new events written to ClickHouse after the commit through the outbox;
- ``clickhouse_replacing``: option (b), no keys in PostgreSQL: every event is written to a
  ReplacingMergeTree ordered by (tenant, customer, metric, timestamp, key) and the reads
  deduplicate with FINAL. (It cannot say which events were duplicates, and a retry whose
  timestamp differs is a second event: see docs/scaling.md.)

A month's totals is ``usage_totals`` over 7 metrics of every aggregation, all reading the events
(count, sum, filtered count, max, unique count, latest, weighted sum), median of ``runs``; every
store's totals must equal PostgreSQL's exactly or the run fails. Option (b) is also read without
FINAL, to show what FINAL costs and that the duplicates are then counted.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.db import transaction
from django.test.utils import override_settings

from benchmarks.harness import as_owner, results_file, results_write, tenant_drop, tenant_drop_slug, timed_median
from billing import metering
from billing.metering import MAX_BATCH_EVENTS, usage_ingest, usage_totals
from billing.models import BillableMetric, UsageEvent, UsageEventKey
from billing.usage_store import _store
from billing.usage_store.clickhouse import COLUMNS, DDL, TABLE, ClickHouseUsageStore
from customers.models import Customer, Tenant
from customers.tenancy import platform_scope, tenant_scope

SLUG = "bench-usage-store"
RESULTS_PATH = results_file("usage_store")
MONTH = date(2026, 10, 1)
SOURCE = "bench_jobs"
METRICS = [
    ("bench_jobs", "count", "quantity", {}),
    ("bench_compute", "sum", "quantity", {}),
    ("bench_failed", "count", "quantity", {"status": ["failed"]}),
    ("bench_peak", "max", "quantity", {}),
    ("bench_regions", "unique_count", "region", {}),
    ("bench_latest", "latest", "quantity", {}),
    ("bench_held", "weighted_sum", "quantity", {}),
]
STATUSES = ["succeeded"] * 9 + ["failed"]
REGIONS = ["eu-north-1", "eu-west-1", "us-east-1", "ap-south-1"]
REPLACING = "usage_events_replacing"


def _event(j: int, refs: list[str], seconds: int, start: datetime) -> dict:
    h = (j * 2654435761 + 40503) & 0xFFFFFFFF
    return {
        "customer": refs[h % len(refs)],
        "metric": SOURCE,
        "timestamp": (start + timedelta(seconds=h % seconds, microseconds=j % 1000)).isoformat(),
        "idempotency_key": f"bus-{j:09d}",
        "quantity": 1 + (h >> 7) % 5000,
        "properties": {"status": STATUSES[(h >> 3) % 10], "region": REGIONS[(h >> 11) % 4]},
    }


def _batches(events: int, refs: list[str]):
    start = datetime(MONTH.year, MONTH.month, 1, tzinfo=dt_timezone.utc)
    seconds = 31 * 86_400
    for first in range(0, events, MAX_BATCH_EVENTS):
        yield [_event(j, refs, seconds, start) for j in range(first, min(events, first + MAX_BATCH_EVENTS))]


def usage_tenant_build(customers: int, *, slug: str = SLUG, name: str = "Usage store benchmark",
                       prefix: str = "BUS-") -> tuple[Tenant, list[str]]:
    """A benchmark tenant with the metrics of every aggregation and ``customers`` customers; their refs."""
    with platform_scope(), transaction.atomic():
        tenant = Tenant.objects.create(name=name, slug=slug, reporting_currency="USD", invoice_number_prefix=prefix)
        for code, aggregation, field, filters in METRICS:
            BillableMetric.objects.create(tenant=tenant, code=code, event_code="" if code == SOURCE else SOURCE,
                                          name=code, aggregation=aggregation, field=field, filters=filters)
        refs = [f"bus-{n:05d}" for n in range(customers)]
        Customer.objects.bulk_create(
            Customer(tenant=tenant, name=f"Usage customer {n:05d}", external_ref=ref, currency="USD", country="US")
            for n, ref in enumerate(refs)
        )
    return tenant, refs


def _ingest(tenant: Tenant, refs: list[str], events: int, now: datetime) -> dict:
    """Every batch through usage_ingest (each its own transaction), then the first batch again."""
    accepted, seconds = 0, 0.0
    batches = list(_batches(events, refs))  # generated before the clock starts: a producer is another machine
    for batch in batches:
        started = time.perf_counter()
        with tenant_scope(tenant):
            result = usage_ingest(tenant=tenant, events=batch, now=now)
        seconds += time.perf_counter() - started
        accepted += result.accepted
    started = time.perf_counter()
    with tenant_scope(tenant):
        again = usage_ingest(tenant=tenant, events=batches[0], now=now)
    resend_seconds = time.perf_counter() - started
    return {
        "events": events, "accepted": accepted, "seconds": round(seconds, 2),
        "events_per_second": round(accepted / seconds) if seconds else None,
        "resent_batch": {"events": len(batches[0]), "reported_duplicate": again.duplicates,
                         "seconds": round(resend_seconds, 3)},
    }


def _month_totals(tenant: Tenant, runs: int) -> tuple[dict, float]:
    end = date(MONTH.year + MONTH.month // 12, MONTH.month % 12 + 1, 1) - timedelta(days=1)
    with tenant_scope(tenant):
        return timed_median(lambda: usage_totals(tenant=tenant, period_start=MONTH, period_end=end), runs)


def _per_metric_seconds(tenant: Tenant) -> dict[str, float]:
    """One run of the month's totals per metric alone: which aggregation costs what."""
    end = date(MONTH.year + MONTH.month // 12, MONTH.month % 12 + 1, 1) - timedelta(days=1)
    start, stop = metering._period_bounds(tenant, MONTH, end)
    seconds = {}
    with tenant_scope(tenant):
        store = metering.usage_store()
        for metric in BillableMetric.objects.for_tenant(tenant):
            started = time.perf_counter()
            store.totals(tenant=tenant, metrics=[metric], start=start, end=stop, customer_ids=None)
            seconds[f"{metric.aggregation}:{metric.code}"] = round(time.perf_counter() - started, 3)
    return seconds


class _ReplacingStore(ClickHouseUsageStore):
    """Option (b): every event straight to a ReplacingMergeTree, read with FINAL; no keys anywhere else."""

    source = f"{REPLACING} FINAL"

    def insert_new(self, *, tenant, rows, received_at):
        if not rows:
            return set()
        received = received_at.astimezone(dt_timezone.utc).isoformat()
        self.backend.insert("".join(f"{tenant.pk}\t{line[:-1]}\t{received}\n" for line in rows.values()),
                            token=uuid.uuid4().hex, table=REPLACING)
        # It cannot tell a new key from a stored one: every event is reported accepted.
        return set(rows)

    def stored_keys(self, *, tenant, keys):
        return set()


def run_usage_store_benchmark(*, customers: int, events: int, runs: int = 3, keep: bool = False) -> dict:
    tenant_drop_slug(SLUG)
    # Gives back what earlier runs' purges left (a seq scan otherwise reads their dead pages).
    before = as_owner(f"VACUUM FULL {UsageEvent._meta.db_table}, {UsageEventKey._meta.db_table}")
    tenant, refs = usage_tenant_build(customers)
    (Path(settings.BASE_DIR) / "var").mkdir(exist_ok=True)
    chdb_dir = Path(tempfile.mkdtemp(prefix="bench-chdb-", dir=Path(settings.BASE_DIR) / "var"))
    url = f"chdb://{chdb_dir}"
    now = datetime(MONTH.year, MONTH.month, 1, tzinfo=dt_timezone.utc) + timedelta(days=40)
    figures: dict = {"customers": customers, "events": events, "month": MONTH, "metrics": len(METRICS),
                     "batch": MAX_BATCH_EVENTS, "clickhouse": f"chdb (in-process), {chdb_dir.name}", "before": before}
    try:
        with override_settings(USAGE_EVENT_STORE="postgres"):
            figures["postgres"] = {"ingest": _ingest(tenant, refs, events, now)}
            # The planner's statistics and the visibility map that index-only scans need.
            figures["postgres"]["before_reading"] = as_owner(f"VACUUM ANALYZE {UsageEvent._meta.db_table}")
            expected, seconds = _month_totals(tenant, runs)
            figures["postgres"]["month_totals_seconds"] = round(seconds, 3)
            figures["postgres"]["per_metric_seconds"] = _per_metric_seconds(tenant)

        # The same events again: the keys PostgreSQL's ingest claimed would make every one a duplicate.
        with tenant_scope(tenant):
            UsageEventKey.objects.for_tenant(tenant).delete()
        with override_settings(USAGE_EVENT_STORE="clickhouse", CLICKHOUSE_URL=url):
            keys_store = metering.usage_store()
            figures["clickhouse_keys"] = {"ingest": _ingest(tenant, refs, events, now)}
            totals, seconds = _month_totals(tenant, runs)
            figures["clickhouse_keys"]["month_totals_seconds"] = round(seconds, 3)
            figures["clickhouse_keys"]["totals_equal_postgres"] = totals == expected
            figures["clickhouse_keys"]["per_metric_seconds"] = _per_metric_seconds(tenant)

            replacing = _ReplacingStore.__new__(_ReplacingStore)
            replacing.backend, replacing.sql = keys_store.backend, keys_store.sql
            replacing.backend.query(
                DDL.replace(f"EXISTS {TABLE} ", f"EXISTS {REPLACING} ").replace("ENGINE = MergeTree", "ENGINE = ReplacingMergeTree")
                .replace("ORDER BY (tenant_id, customer_id, metric_code, timestamp)",
                         "ORDER BY (tenant_id, customer_id, metric_code, timestamp, idempotency_key)")
            )
            with mock.patch.object(metering, "usage_store", lambda: replacing):
                figures["clickhouse_replacing"] = {"ingest": _ingest(tenant, refs, events, now)}
                totals, seconds = _month_totals(tenant, runs)
                figures["clickhouse_replacing"]["month_totals_seconds_final"] = round(seconds, 3)
                figures["clickhouse_replacing"]["totals_equal_postgres"] = totals == expected
                replacing.source = REPLACING
                unmerged, seconds = _month_totals(tenant, runs)
                figures["clickhouse_replacing"]["month_totals_seconds_without_final"] = round(seconds, 3)
                figures["clickhouse_replacing"]["without_final_equal_postgres"] = unmerged == expected
        rows = keys_store.backend.query(f"SELECT count() FROM {TABLE} WHERE tenant_id = {int(tenant.pk)}")
        figures["clickhouse_keys"]["rows_stored"] = int(rows.decode().strip())
        assert figures["clickhouse_keys"]["totals_equal_postgres"], "ClickHouse totals differ from PostgreSQL's"
        assert figures["clickhouse_replacing"]["totals_equal_postgres"], "FINAL totals differ from PostgreSQL's"
    finally:
        _store.cache_clear()
        if not keep:
            tenant_drop(tenant)
            shutil.rmtree(chdb_dir, ignore_errors=True)
    figures["columns"] = list(COLUMNS)
    results_write(RESULTS_PATH, figures)
    return figures
