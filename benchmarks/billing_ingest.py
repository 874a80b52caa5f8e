"""End-to-end throughput of usage ingestion, against a raw PostgreSQL COPY of the same rows.

``run_ingest_benchmark`` posts generated usage events through the real HTTP stack and reports
events per second. With ``client="gunicorn"`` (the default, and the honest figure) it starts
``gunicorn portal.wsgi`` with 2 sync workers on 127.0.0.1 and posts from 2 threads with
``http.client``: HTTP parsing, middleware, API-key authentication, JSON in and out, validation and
the database all count. ``client="django"`` posts with Django's test Client in this process
instead (no sockets, no WSGI server), which is useful where no port may be opened.

Request bodies are generated (deterministically from ``seed``) before the clock starts, because a
real producer is another machine: the timed part is the server's work. Every figure is checked:
the accepted count must equal the number of distinct keys, and so must the rows stored.
The run's API key is always deleted afterwards; its events and any metric it created are removed
too with ``cleanup=True`` (the invoicing benchmark keeps them to price them).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

import orjson
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils.timezone import now as django_now

from benchmarks.harness import database_url
from billing.metering import usage_store
from billing.models import BillableMetric, UsageEvent, UsageEventKey
from customers.models import Customer, Tenant, TenantAPIKey
from customers.tenancy import platform_scope, tenant_cursor

INGEST_PATH = "/api/v1/usage-events/"
BENCHMARK_METRIC = "bench_processed_jobs"
STATUSES = ["succeeded"] * 9 + ["failed"]
REGIONS = ["eu-north-1", "eu-west-1", "us-east-1", "ap-south-1"]


class _EventSource:
    """Event ``j`` of the run is a pure function of ``j``: a retry re-sends exactly the same event."""

    def __init__(self, *, run_id: str, refs: list[str], metric: str, month: date, seed: int):
        self.prefix = f"bench-{run_id}-"
        self.refs = refs
        self.metric = metric
        self.start = datetime(month.year, month.month, 1, tzinfo=dt_timezone.utc)
        next_month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        end = datetime(next_month.year, next_month.month, 1, tzinfo=dt_timezone.utc)
        self.seconds = int((end - self.start).total_seconds())
        self.seed = seed

    def fields(self, j: int):
        h = (j * 2654435761 + self.seed * 40503) & 0xFFFFFFFF
        when = self.start + timedelta(seconds=h % self.seconds)
        return (
            self.refs[h % len(self.refs)],
            when,
            f"{self.prefix}{j:09d}",
            1 + (h >> 7) % 5000,
            {"status": STATUSES[(h >> 3) % 10], "region": REGIONS[(h >> 11) % 4], "job_id": f"job-{j}"},
        )

    def event(self, j: int) -> dict:
        ref, when, key, quantity, properties = self.fields(j)
        return {
            "customer": ref,
            "metric": self.metric,
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "idempotency_key": key,
            "quantity": quantity,
            "properties": properties,
        }


def _plan(events_total: int, duplicate_ratio: float, seed: int) -> tuple[list[int], int]:
    """The event index sent at each position: new keys in order, and retries of earlier ones."""
    rng = random.Random(seed)
    distinct = max(1, round(events_total * (1 - duplicate_ratio)))
    retries = [True] * (events_total - distinct) + [False] * (distinct - 1)
    rng.shuffle(retries)
    plan, new = [0], 1
    for is_retry in retries:
        if is_retry:
            plan.append(rng.randrange(new))
        else:
            plan.append(new)
            new += 1
    return plan, distinct


def _server_database_env(settings_dict: dict) -> dict:
    """DATABASE_URL for the server process, naming the database this process is connected to."""
    if (settings_dict.get("HOST") or "").startswith("/"):
        # A socket directory (the embedded PostgreSQL): the server finds it as this process did.
        return {}
    return {"DATABASE_URL": database_url(settings_dict)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Gunicorn:
    """``gunicorn portal.wsgi`` on 127.0.0.1, on the caller's database and settings module."""

    def __init__(self, workers: int):
        self.port = _free_port()
        self.workers = workers
        self.log = tempfile.NamedTemporaryFile(prefix="ingest-bench-gunicorn-", suffix=".log", delete=False)
        # One line per answered request: "<pid>" of the worker that answered it (see warm_every_worker).
        self.access_log = Path(self.log.name).with_suffix(".access")
        env = {
            **os.environ,
            **_server_database_env(connection.settings_dict),
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "portal.settings"),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or uuid.uuid4().hex * 2,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "LOG_LEVEL": "WARNING",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "portal.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
             "--timeout", "120", "--log-level", "warning", "--access-logfile", str(self.access_log),
             "--access-logformat", "%(p)s"],
            cwd=str(settings.BASE_DIR),
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_until_up(self, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early; see {self.log.name}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not listen within {timeout:.0f}s; see {self.log.name}")

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return {int(pid) for pid in children.read_text().split()}
        except OSError:
            return set()

    def warm_every_worker(self, send, timeout: float = 120.0) -> None:
        """Post empty batches, as many at once as there are workers, until every worker has answered
        one. A worker loads Django and the views when it starts (``portal/wsgi.py``) and opens its
        database connection on its first request. Posted one after another, the warm-up requests all
        went to the first worker that was ready, so another one did its first request's work inside
        the timed run (py-spy found 21 % of the request handling's samples there, when the views were
        still imported by the first request)."""
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(self.workers) as pool:
            while True:
                for status_code, content in pool.map(send, [b'{"events": []}'] * self.workers):
                    if status_code != 200:
                        raise RuntimeError(f"warm-up: HTTP {status_code}: {content[:300]!r}")
                logged = self.access_log.read_text().split() if self.access_log.exists() else []
                answered = {int(pid.strip("<>")) for pid in logged}
                workers = self.worker_pids()
                if len(workers) == self.workers and workers <= answered:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"warm-up: workers {sorted(workers - answered)} never answered; see {self.log.name}"
                    )

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        self.access_log.unlink(missing_ok=True)


def _post_http(port: int, api_key: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request(
            "POST",
            INGEST_PATH,
            body=body,
            headers={"Content-Type": "application/json", "Authorization": f"Api-Key {api_key}", "Host": "127.0.0.1"},
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _copy_baseline(source: _EventSource, plan: list[int], batch_size: int, runs: int = 3) -> list[float]:
    """Seconds of each of ``runs`` raw COPYs of the same rows into a scratch table without indexes or
    constraints (temporary: the application role may not create tables in the schema), emptied
    between runs. One COPY lasts under a second, so one stall of the shared machine can halve it and
    double the share it is the baseline of: the caller takes the fastest."""
    table = f"bench_usage_copy_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {table} (customer_ref varchar(64), metric_code varchar(64), ts timestamptz,"
            " idempotency_key varchar(128), quantity numeric(24, 6), properties jsonb)"
        )
        try:
            blocks = []
            for offset in range(0, len(plan), batch_size):
                lines = []
                for j in plan[offset : offset + batch_size]:
                    ref, when, key, quantity, properties = source.fields(j)
                    properties_json = json.dumps(properties)
                    lines.append(f"{ref}\t{source.metric}\t{when.isoformat()}\t{key}\t{quantity}\t{properties_json}\n")
                blocks.append("".join(lines))
            seconds = []
            for _ in range(runs):
                cursor.execute(f"TRUNCATE {table}")
                started = time.perf_counter()
                with cursor.cursor.copy(
                    f"COPY {table} (customer_ref, metric_code, ts, idempotency_key, quantity, properties) FROM STDIN"
                ) as copy:
                    for block in blocks:
                        copy.write(block)
                seconds.append(time.perf_counter() - started)
            return seconds
        finally:
            cursor.execute(f"DROP TABLE {table}")


def _in_threads(items: list, threads: int, handle) -> list[str]:
    """Call ``handle(item)`` for every item from ``threads`` threads, each taking the next item left.

    Returns the errors: an item that raises stops its thread and the others go on, so a run reports
    every failure at its end. Each thread closes its own database connection."""
    lock = threading.Lock()
    pending = iter(items)
    errors: list[str] = []

    def worker():
        try:
            while True:
                with lock:
                    item = next(pending, _DONE)
                if item is _DONE:
                    return
                handle(item)
        except Exception as exc:  # reported by the caller after the run
            with lock:
                errors.append(str(exc))
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return errors


_DONE = object()


def _store_only(tenant: Tenant, source: _EventSource, plan: list[int], batch_size: int, customer_ids: dict[str, int],
                threads: int) -> tuple[float, int]:
    """Seconds for the store's own insert of the same batches, from ``threads`` threads, each batch in
    its own transaction, and the events it stored: what the database costs with nothing else of
    ingestion (no HTTP, no JSON, no checks), so the ceiling any HTTP path on this store can reach.

    The batches are what the fast path hands the store (key -> COPY line, the batch's repeats already
    dropped), built before the clock starts; ``source`` must have keys of its own."""
    batches = []
    for offset in range(0, len(plan), batch_size):
        rows: dict[str, str] = {}
        for j in plan[offset : offset + batch_size]:
            ref, when, key, quantity, properties = source.fields(j)
            if key not in rows:
                rows[key] = (f"{customer_ids[ref]}\t{source.metric}\t{when.strftime('%Y-%m-%dT%H:%M:%SZ')}\t{key}\t"
                             f"{quantity}\t{json.dumps(properties, separators=(',', ':'))}\n")
        batches.append(rows)
    store, stored = usage_store(), []

    def insert(rows: dict[str, str]) -> None:
        with transaction.atomic():
            stored.append(len(store.insert_new(tenant=tenant, rows=rows, received_at=django_now())))

    started = time.perf_counter()
    errors = _in_threads(batches, threads, insert)
    seconds = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} store-only batch(es) failed, first: {errors[0]}")
    return seconds, sum(stored)


def _post_all(bodies: list[bytes], *, api_key: str, client: str, workers: int, threads: int):
    """Post every body from ``threads`` threads; (seconds, summed counts, per-request seconds, the
    server side's CPU seconds while posting, see ``_cpu_spent``, or None in-process)."""
    server = None
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    latencies: list[float] = []
    lock = threading.Lock()

    if client == "gunicorn":
        server = _Gunicorn(workers)

        def send(body: bytes) -> tuple[int, bytes]:
            return _post_http(server.port, api_key, body)

    else:
        host = next((h for h in settings.ALLOWED_HOSTS if h not in {"*", ""} and not h.startswith(".")), "localhost")

        def send(body: bytes) -> tuple[int, bytes]:
            response = Client().post(
                INGEST_PATH,
                data=body,
                content_type="application/json",
                headers={"Authorization": f"Api-Key {api_key}", "Host": host},
                secure=True,  # as behind the TLS-terminating proxy; no SSL redirect
            )
            return response.status_code, response.content

    def post(numbered: tuple[int, bytes]) -> None:
        index, body = numbered
        started = time.perf_counter()
        status_code, content = send(body)
        elapsed = time.perf_counter() - started
        if status_code != 200:
            raise RuntimeError(f"batch {index}: HTTP {status_code}: {content[:300]!r}")
        # The answer lists all 10 000 events; a real producer reads it on its own machine, this one on
        # the server's two cores, where json.loads took 4.5 ms an answer and orjson 2.7 ms.
        answer = orjson.loads(content)
        with lock:
            latencies.append(elapsed)
            for name in totals:
                totals[name] += answer[name]

    try:
        if server is not None:
            server.wait_until_up()
            server.warm_every_worker(send)
        else:
            for _ in range(threads):  # imports, DB connection
                status_code, content = send(b'{"events": []}')
                if status_code != 200:
                    raise RuntimeError(f"warm-up: HTTP {status_code}: {content[:300]!r}")
        cpu_before = _server_cpu(server) if server is not None else None
        started = time.perf_counter()
        errors = _in_threads(list(enumerate(bodies)), threads, post)
        seconds = time.perf_counter() - started
        cpu = _cpu_spent(cpu_before, _server_cpu(server)) if server is not None else None
    finally:
        if server is not None:
            server.stop()
    if errors:
        raise RuntimeError(f"{len(errors)} request(s) failed, first: {errors[0]}")
    return seconds, totals, latencies, cpu


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of process ``pid`` from /proc, or None where /proc does not show it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu(server: _Gunicorn) -> dict:
    """CPU seconds so far of each gunicorn worker and of each other session of this role on this
    database (the workers' backends), by pid; None where a backend is on another host."""
    backends = _other_backends()
    return {
        "python": {pid: _cpu_seconds(pid) for pid in server.worker_pids()},
        "postgres": {pid: _cpu_seconds(pid) for pid in backends},
    }


def _other_backends() -> list[int]:
    """The pids of the other sessions of this role on this database (the server's workers' backends)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND usename = current_user"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def _cpu_spent(before: dict, after: dict) -> dict:
    """CPU seconds spent between two ``_server_cpu`` readings, per side (a process that started
    in between counts from its start); a side is None when a process could not be read."""
    spent = {}
    for side in ("python", "postgres"):
        readings = [(before[side].get(pid, 0.0), used) for pid, used in after[side].items()]
        if not readings or any(used is None or start is None for start, used in readings):
            spent[side] = None
        else:
            spent[side] = sum(used - start for start, used in readings)
    return spent


def run_ingest_benchmark(
    *,
    tenant: Tenant,
    customers: list[Customer],
    events_total: int = 2_000_000,
    batch_size: int = 10_000,
    duplicate_ratio: float = 0.30,
    client: str = "gunicorn",
    workers: int = 2,
    threads: int = 2,
    month: date = date(2026, 11, 1),
    seed: int = 20261101,
    cleanup: bool = True,
    store_ceiling: bool = True,
) -> dict:
    """Post ``events_total`` usage events for ``customers`` of ``tenant`` and measure events/s.

    ``duplicate_ratio`` of the events re-send an earlier event (same key and content), mostly from
    earlier batches. ``client`` is ``"gunicorn"`` (real server, ``workers`` sync workers, ``threads``
    posting threads) or ``"django"`` (in-process test Client, ``threads`` threads). Then COPYs the
    same rows into a scratch table as the baseline and, with ``store_ceiling``, times the store's own
    insert of the same batches under new keys (the ceiling of any HTTP path on this store; its events
    are deleted again). Returns a dict of figures (see print_figures).
    Raises RuntimeError when a request fails or the counts do not add up.
    """
    if client not in {"gunicorn", "django"}:
        raise ValueError('client must be "gunicorn" or "django".')
    if not customers:
        raise ValueError("The benchmark needs at least one customer.")
    run_id = uuid.uuid4().hex[:10]
    with platform_scope():
        metric, metric_created = BillableMetric.objects.get_or_create(
            tenant=tenant, code=BENCHMARK_METRIC, defaults={"name": "Benchmark processed jobs", "unit": "jobs"}
        )
    refs = [customer.external_ref for customer in customers]
    source = _EventSource(run_id=run_id, refs=refs, metric=metric.code, month=month, seed=seed)

    prepare_started = time.perf_counter()
    plan, distinct = _plan(events_total, duplicate_ratio, seed)
    bodies = [
        json.dumps({"events": [source.event(j) for j in plan[offset : offset + batch_size]]}).encode()
        for offset in range(0, events_total, batch_size)
    ]
    prepare_seconds = time.perf_counter() - prepare_started

    with platform_scope():
        api_key_row, api_key = TenantAPIKey.objects.create_key(name=f"ingest benchmark {run_id}", tenant=tenant)
    work_before = _database_work()
    try:
        seconds, totals, latencies, cpu = _post_all(
            bodies, api_key=api_key, client=client, workers=workers, threads=threads
        )
    finally:
        with platform_scope():
            api_key_row.delete()  # a credential never outlives its run
    work = _work_spent(work_before, _database_work(after_backends_exit=True), events_total)

    with platform_scope():
        stored = UsageEvent.objects.filter(tenant=tenant, idempotency_key__startswith=source.prefix).count()
    if not (totals["accepted"] == distinct == stored and totals["rejected"] == 0):
        raise RuntimeError(f"Counts do not add up: distinct {distinct}, stored {stored}, answers {totals}.")

    copy_runs = _copy_baseline(source, plan, batch_size)
    copy_seconds = min(copy_runs)

    store_only = None
    if store_ceiling:
        store_source = _EventSource(run_id=f"{run_id}s", refs=refs, metric=metric.code, month=month, seed=seed)
        ids = {customer.external_ref: customer.pk for customer in customers}
        store_seconds, store_stored = _store_only(tenant, store_source, plan, batch_size, ids, threads)
        if store_stored != distinct:
            raise RuntimeError(f"The store-only run stored {store_stored} events of {distinct} distinct.")
        run_events_delete(tenant, store_source.prefix)
        store_only = store_seconds

    if cleanup:
        run_events_delete(tenant, source.prefix)
        if metric_created:
            with platform_scope():
                metric.delete()

    body_bytes = sum(len(b) for b in bodies)
    return {
        "client": (
            f"gunicorn portal.wsgi, {workers} sync workers, {threads} http.client threads on 127.0.0.1"
            if client == "gunicorn"
            else f"Django test Client in-process, {threads} threads"
        ),
        "events_total": events_total,
        "batch_size": batch_size,
        "batches": len(bodies),
        "duplicate_ratio": duplicate_ratio,
        "distinct_events": distinct,
        "accepted": totals["accepted"],
        "duplicates": totals["duplicates"],
        "rejected": totals["rejected"],
        "stored_rows": stored,
        "request_megabytes": round(body_bytes / 1e6, 1),
        "prepare_seconds": round(prepare_seconds, 2),
        "seconds": round(seconds, 3),
        "events_per_second": round(events_total / seconds),
        "batch_ms_median": round(statistics.median(latencies) * 1000, 1),
        "batch_ms_max": round(max(latencies) * 1000, 1),
        # The fastest of three COPYs, so a stall of the machine during one cannot inflate the shares.
        "copy_baseline_seconds": round(copy_seconds, 3),
        "copy_baseline_runs_seconds": [round(run, 3) for run in copy_runs],
        "copy_baseline_events_per_second": round(events_total / copy_seconds),
        "ingest_share_of_copy_speed": round(copy_seconds / seconds, 3),
        # The store's insert of the same batches alone (no HTTP, no JSON, no checks), same threads.
        "store_only_events_per_second": store_only and round(events_total / store_only),
        "store_only_share_of_copy_speed": store_only and round(copy_seconds / store_only, 3),
        # CPU per posted event from /proc (gunicorn only, and only with the database on this host):
        # the workers' Python and their PostgreSQL backends, whatever the machine's load.
        "gunicorn_workers_cpu_us_per_event": _per_event(cpu and cpu["python"], events_total),
        "postgres_backends_cpu_us_per_event": _per_event(cpu and cpu["postgres"], events_total),
        # What the database did per posted event, counted rather than timed, so the machine's speed
        # does not move it (see _database_work).
        **work,
    }


def _database_work(*, after_backends_exit: bool = False) -> dict | None:
    """Counters of the work the database has done: this database's shared-buffer hits and reads
    (``pg_stat_database``) and the server's WAL records, full-page images and bytes (``pg_stat_wal``).
    Whatever else runs on the database (for ``pg_stat_wal``, on the server) meanwhile counts too, so
    the figures are the run's own on a database nothing else uses. None where they cannot be read.

    Backends report their counters when a transaction ends, at most once a second, and when they exit:
    with ``after_backends_exit`` it first waits (up to 10 s) for the server's backends to exit, so
    the run's last batches are counted."""
    deadline = time.monotonic() + 10
    try:
        while after_backends_exit and _other_backends() and time.monotonic() < deadline:
            time.sleep(0.1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()")
            hits, reads = cursor.fetchone()
            cursor.execute("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal")
            records, full_pages, wal_bytes = cursor.fetchone()
            # The same hits by relation: each table's heap, and each index under its own name.
            cursor.execute(
                "SELECT relname, heap_blks_hit FROM pg_statio_user_tables"
                " WHERE heap_blks_hit > 0 AND schemaname = current_schema()"
                " UNION ALL SELECT indexrelname, idx_blks_hit FROM pg_statio_user_indexes"
                " WHERE idx_blks_hit > 0 AND schemaname = current_schema()"
            )
            relations = dict(cursor.fetchall())
    except DatabaseError:
        return None
    return {"hits": hits, "reads": reads, "records": records, "full_pages": full_pages, "bytes": int(wal_bytes),
            "relations": relations}


def _work_spent(before: dict | None, after: dict | None, events: int, *, relation_floor: float = 0.05) -> dict:
    """Per posted event: the counters of ``_database_work`` spent between ``before`` and ``after``, and
    the buffer hits split by relation (those of at least ``relation_floor`` an event, most first)."""
    spent = None
    if before is not None and after is not None:
        spent = {name: after[name] - before[name] for name in before if name != "relations"}
        by_relation = {
            name: round((hits - before["relations"].get(name, 0)) / events, 2)
            for name, hits in after["relations"].items()
        }
        spent["relations"] = dict(sorted(
            ((name, hits) for name, hits in by_relation.items() if hits >= relation_floor),
            key=lambda item: (-item[1], item[0]),
        ))

    def per_event(name: str, digits: int, scale: int = 1) -> float | None:
        return None if spent is None else round(spent[name] / events * scale, digits)

    return {
        "buffer_hits_per_event": per_event("hits", 2),
        "buffer_reads_per_event": per_event("reads", 3),
        "wal_records_per_event": per_event("records", 2),
        "wal_full_page_images_per_1000_events": per_event("full_pages", 1, scale=1000),
        "wal_bytes_per_event": None if spent is None else round(spent["bytes"] / events),
        "buffer_hits_per_event_by_relation": None if spent is None else spent["relations"],
    }


def run_events_delete(tenant: Tenant, prefix: str) -> None:
    """Delete the events and keys of one run (its keys start with ``prefix``), in the caller's transaction
    if there is one."""
    with tenant_cursor(tenant) as cursor:
        for table in (UsageEvent._meta.db_table, UsageEventKey._meta.db_table):
            cursor.execute(f"DELETE FROM {table} WHERE tenant_id = %s AND idempotency_key LIKE %s",
                           [tenant.pk, prefix + "%"])


def _per_event(seconds: float | None, events: int) -> float | None:
    return None if seconds is None else round(seconds / events * 1e6, 2)


def print_figures(figures: dict, stdout=None) -> None:
    """Print the figures of ``run_ingest_benchmark`` as aligned ``name: value`` lines."""
    out = stdout or sys.stdout
    out.write("Usage ingestion benchmark\n")
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        shown = f"{value:,}".replace(",", " ") if isinstance(value, int) and not isinstance(value, bool) else value
        out.write(f"  {name.ljust(width)}  {shown}\n")
