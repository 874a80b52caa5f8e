"""Ingestion and a month's draft with and without many stored events of other months (issue 15).

``run_stored_benchmark`` builds one benchmark tenant (the invoicing benchmark's: customers on four
plans with included-quota price terms on the ingestion benchmark's metric) and then, in one run:

1. ingests ``events`` events of ``month`` over HTTP, ``ingest_runs`` times (``run_ingest_benchmark``:
   30 % duplicates, its own raw-COPY baseline and the store's own insert measured right after), with
   no other events stored;
2. settles the database as in step 4, computes the month's drafts once, then times a re-run (it
   reads and prices every customer's usage and writes nothing), ``usage_totals`` for the month and
   the bare aggregate of its events;
3. loads ``stored`` events spread evenly over the ``months_back`` months before ``month``, straight in
   SQL (``INSERT … SELECT`` from ``generate_series`` in chunks, through the partitioned table, so
   keys and triggers apply as for any insert);
4. lets the database finish what the load left (``_settle``: a VACUUM (ANALYZE) of the event and key
   tables and a CHECKPOINT as the owner, then the kernel's writeback), times the same three reads of
   the month again (its events unchanged), and ingests ``events`` more events of the month over
   HTTP, ``ingest_runs`` times, with the other months present and new baselines;
5. deletes the stored events again (``stored_events_unload``), settles, and ingests ``ingest_runs``
   more times on the empty side, so the stored side is measured between two empty ones.

The ratios that matter are measured in the same run: ingestion as a share of raw COPY at ``stored``
against both empty sides, and each read at ``stored`` against itself at 0, also adjusted by a control query (a fixed
CPU-bound statement timed beside the reads) for a machine whose load changes between the two. The tenant is purged afterwards unless
``keep``. Figures go to ``benchmarks/results/ingest_stored.json``.
"""

from __future__ import annotations

import statistics
import time
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

from django.db import connection, transaction

from benchmarks.billing_ingest import run_events_delete, run_ingest_benchmark
from benchmarks.harness import as_owner, results_file, results_write, tenant_drop
from benchmarks.invoicing import METRIC, _bare_aggregate_seconds, _build_tenant
from billing.metering import usage_totals
from billing.models import UsageEvent, UsageEventKey
from billing.partitions import usage_partitions, usage_partitions_ensure
from billing.services.drafts import invoice_compute_drafts
from customers.models import Customer, Tenant
from customers.tenancy import tenant_cursor

RESULTS_PATH = results_file("ingest_stored")
LOAD_CHUNK = 1_000_000


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _month_end(month: date) -> date:
    return _add_months(month, 1) - timedelta(days=1)


def stored_events_load(*, tenant: Tenant, customers: list[Customer], count: int, first_month: date, end_month: date,
                       chunk: int = LOAD_CHUNK) -> float:
    """Insert ``count`` events of ``tenant`` evenly over [first_month, end_month) (UTC), keys
    ``stored-<n>``, in statements of ``chunk`` rows (each its own transaction); returns seconds."""
    start = datetime(first_month.year, first_month.month, 1, tzinfo=dt_timezone.utc)
    end = datetime(end_month.year, end_month.month, 1, tzinfo=dt_timezone.utc)
    step = (end - start).total_seconds() / max(count, 1)
    ids = [customer.pk for customer in customers]
    started = time.perf_counter()
    for offset in range(0, count, chunk):
        with transaction.atomic(), tenant_cursor(tenant) as cursor:
            cursor.execute(
                f"INSERT INTO {UsageEvent._meta.db_table} (tenant_id, customer_id, metric_code, timestamp,"
                " idempotency_key, quantity, properties, received_at)"
                " SELECT %s, (%s::bigint[])[1 + g %% %s], %s, %s + (g * %s) * interval '1 second',"
                " 'stored-' || lpad(g::text, 10, '0'), 1 + g %% 5000,"
                " jsonb_build_object('status', CASE WHEN g %% 10 = 0 THEN 'failed' ELSE 'succeeded' END,"
                " 'region', 'eu-west-1', 'job_id', 'job-' || g), %s"
                " FROM generate_series(%s, %s) AS g",
                [tenant.pk, ids, len(ids), METRIC, start, step, end, offset, min(count, offset + chunk) - 1],
            )
    return time.perf_counter() - started


def stored_events_unload(*, tenant: Tenant) -> float:
    """Delete what ``stored_events_load`` inserted: ``tenant``'s events and keys ``stored-…``, in one
    transaction; returns seconds."""
    started = time.perf_counter()
    with transaction.atomic():
        run_events_delete(tenant, "stored-")
    return time.perf_counter() - started


def _kernel_dirty_kb() -> int | None:
    """Dirty + Writeback of this machine's page cache (/proc/meminfo), in kB; None where unreadable."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        return int(fields["Dirty"].split()[0]) + int(fields["Writeback"].split()[0])
    except (OSError, KeyError, ValueError):
        return None


def _settle(*, timeout: float, dirty_limit_kb: int = 65_536, poll: float = 1.0) -> dict:
    """Let the database finish what a bulk change left behind, before the next measurement: a VACUUM
    (ANALYZE) of the event and key tables and a CHECKPOINT, as the tables' owner (the CHECKPOINT
    writes every dirty shared buffer), then wait until the kernel has written its dirty pages back
    (Dirty + Writeback under ``dirty_limit_kb``; only readable when the database runs on this
    machine), or ``timeout``. Returns what was done and how long each took.

    A load of 20 GB leaves minutes of writes behind it (a spread checkpoint, then the kernel's
    writeback), on the same machine as the ingestion measured next. A table that has held its months
    for a while has none, which is the state the stored side is meant to measure. The VACUUM is what
    autovacuum does on a production server after a bulk insert or delete; this machine's server runs
    without it, and the 50 M rows the unload deleted then stayed in the tables and their indexes: the
    empty side after the unload ran as slow as the stored side, and another tenant of that database
    went from 12.8 buffer hits an event to 9.04 once the tables were vacuumed (docs/scaling.md, sixth
    round). What the VACUUM cannot undo is the key index's height: 50 M keys make it four levels
    instead of two, and a B-tree keeps its levels once grown. Each new key walks it down twice, which
    is the stored side's three more hits an event (``buffer_hits_per_event_by_relation``; seventh
    round). After the unload the VACUUM deletes the emptied pages, and the descent starts lower (the
    index's fast root) only where what is left fits under one page of a level."""
    started = time.monotonic()
    vacuum = as_owner(f"VACUUM (ANALYZE) {UsageEvent._meta.db_table}, {UsageEventKey._meta.db_table}")
    vacuum_seconds = time.monotonic() - started
    started = time.monotonic()
    checkpoint = as_owner("CHECKPOINT")
    checkpoint_seconds = time.monotonic() - started
    dirty = _kernel_dirty_kb()
    while dirty is not None and dirty > dirty_limit_kb and time.monotonic() - started < timeout:
        time.sleep(poll)
        dirty = _kernel_dirty_kb()
    return {"vacuum": vacuum, "vacuum_seconds": round(vacuum_seconds, 1),
            "checkpoint": checkpoint, "checkpoint_seconds": round(checkpoint_seconds, 1),
            "seconds": round(time.monotonic() - started, 1), "kernel_dirty_kb_after": dirty,
            "timed_out": dirty is not None and dirty > dirty_limit_kb}


def _control_seconds() -> float:
    """A fixed CPU-bound query that reads no table: how fast the shared machine is right now."""
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(g) FROM generate_series(1, 3000000) AS g")
    return time.perf_counter() - started


def _reads(tenant: Tenant, month: date, runs: int) -> dict:
    """Median seconds of a draft re-run, of usage_totals and of the bare aggregate over ``month``, and
    of the control query (run beside them, so a ratio can be taken against the machine's speed)."""
    rerun, totals, bare, control = [], [], [], []
    for _ in range(runs):
        control.append(_control_seconds())
        started = time.perf_counter()
        counts = invoice_compute_drafts(tenant=tenant, period_start=month, period_end=_month_end(month))
        rerun.append(time.perf_counter() - started)
        if counts["created"] or counts["updated"] or counts["lines"]:
            raise RuntimeError(f"The draft re-run wrote something: {counts}")
        started = time.perf_counter()
        usage_totals(tenant=tenant, period_start=month, period_end=_month_end(month))
        totals.append(time.perf_counter() - started)
        bare.append(_bare_aggregate_seconds(tenant)[0])
    return {
        "draft_rerun_seconds": round(statistics.median(rerun), 3),
        "usage_totals_seconds": round(statistics.median(totals), 3),
        "bare_aggregate_seconds": round(statistics.median(bare), 3),
        "control_query_seconds": round(statistics.median(control), 3),
    }


def run_stored_benchmark(
    *, stored: int, customers: int = 2_000, events: int = 200_000, client: str = "gunicorn",
    month: date = date(2026, 11, 1), months_back: int = 12, runs: int = 3, ingest_runs: int = 2, keep: bool = False,
    results_path: Path = RESULTS_PATH, settle_timeout: float = 1800.0,
) -> dict:
    """Steps 1-5 of the module docstring; returns the figures and writes them to ``results_path``.

    Ingestion runs ``ingest_runs`` times on each side. The first run at 0 keeps its events (the
    month the reads measure); every later run deletes its own, so each of them starts from the same
    month partition, and the ratio of the median shares compares like with like."""
    if stored < 0 or events < 1 or customers < 1 or months_back < 1:
        raise ValueError("stored must not be negative; events, customers and months_back must be at least 1.")
    first_month = _add_months(month, -months_back)
    figures: dict = {"stored_events": stored, "customers": customers, "events_per_ingest_run": events,
                     "month": f"{month:%Y-%m}", "stored_over": f"{first_month:%Y-%m}..{_add_months(month, -1):%Y-%m}"}
    usage_partitions_ensure(today=first_month, months_ahead=months_back + 1)
    started = time.perf_counter()
    tenant, rows = _build_tenant(customers)
    figures["setup_seconds"] = round(time.perf_counter() - started, 2)
    try:
        def ingest(seed: int, *, cleanup: bool = True) -> dict:
            return run_ingest_benchmark(tenant=tenant, customers=rows, events_total=events, client=client,
                                        month=month, seed=seed, cleanup=cleanup)

        at_zero = [ingest(20261101, cleanup=False)] + [ingest(20261110 + n) for n in range(1, ingest_runs)]
        # The reads at 0 from the same vacuumed state as the reads after the load (visibility map set).
        figures["settle_before_reads"] = _settle(timeout=settle_timeout)
        invoice_compute_drafts(tenant=tenant, period_start=month, period_end=_month_end(month))
        reads_zero = _reads(tenant, month, runs)

        figures["load_seconds"] = round(stored_events_load(
            tenant=tenant, customers=rows, count=stored, first_month=first_month, end_month=month), 1)
        figures["settle_after_load"] = _settle(timeout=settle_timeout)
        reads_stored = _reads(tenant, month, runs)
        at_stored = [ingest(20261120 + n) for n in range(ingest_runs)]
        figures["partitions"] = len(usage_partitions())
        # Empty again, and the empty side measured again: a machine whose speed drifted during the
        # run moves both empty sides, the stored side in between them shows what the events cost.
        figures["unload_seconds"] = round(stored_events_unload(tenant=tenant), 1)
        figures["settle_after_unload"] = _settle(timeout=settle_timeout)
        at_zero_after = [ingest(20261130 + n) for n in range(ingest_runs)]
        share = "ingest_share_of_copy_speed"
        empty_shares = [run[share] for run in at_zero + at_zero_after]
        figures["ingest"] = {
            "at_0_stored": [_ingest_summary(run) for run in at_zero],
            f"at_{stored}_stored": [_ingest_summary(run) for run in at_stored],
            "at_0_stored_again": [_ingest_summary(run) for run in at_zero_after],
            # The stored side's median share of COPY over the median of both empty sides (1.0: unaffected).
            "share_ratio_stored_to_0": round(
                statistics.median(run[share] for run in at_stored) / statistics.median(empty_shares), 3
            ),
        }
        figures["month_reads"] = {
            "at_0_stored": reads_zero,
            f"at_{stored}_stored": reads_stored,
            "ratio_stored_to_0": {
                name: round(reads_stored[name] / reads_zero[name], 2) if reads_zero[name] else None
                for name in reads_zero
            },
        }
        # The same ratios with each side divided by its control query: what is left is the other
        # months' cost, not the shared machine's load changing between the two measurements.
        speed = reads_stored["control_query_seconds"] / reads_zero["control_query_seconds"]
        figures["month_reads"]["ratio_stored_to_0_machine_adjusted"] = {
            name: round(reads_stored[name] / reads_zero[name] / speed, 2) if reads_zero[name] else None
            for name in reads_zero if name != "control_query_seconds"
        }
        figures["ingest_details"] = {"at_0_stored": at_zero, f"at_{stored}_stored": at_stored,
                                     "at_0_stored_again": at_zero_after}
    finally:
        if not keep:
            started = time.perf_counter()
            tenant_drop(tenant)
            figures["purge_seconds"] = round(time.perf_counter() - started, 1)
    results_write(results_path, figures)
    return figures


def _ingest_summary(figures: dict) -> dict:
    return {name: figures[name] for name in (
        "events_per_second", "copy_baseline_events_per_second", "ingest_share_of_copy_speed", "batch_ms_median",
        "accepted", "duplicates", "gunicorn_workers_cpu_us_per_event", "postgres_backends_cpu_us_per_event",
        "store_only_events_per_second", "store_only_share_of_copy_speed",
        "buffer_hits_per_event", "buffer_reads_per_event", "wal_records_per_event", "wal_bytes_per_event",
        "wal_full_page_images_per_1000_events", "buffer_hits_per_event_by_relation",
    )}
