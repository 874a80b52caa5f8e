"""Month-end at scale: PDF overhead, a whole run on two Celery workers, and the workers' memory.

``run_month_end_benchmark`` builds a tenant with ``customers`` customers on simple flat plans (each
with one billing email; all bulk-created), then measures:

(a) PDF time per one-page invoice (medians): ``billing.documents.invoice_render_pdf`` (lock,
    context, template, WeasyPrint, storage) against a bare ``weasyprint.HTML(string=same_html)
    .write_pdf()`` of the very same HTML, and against the same with one reused FontConfiguration
    (as ``billing.documents`` renders: the floor), in this process, interleaved, over
    ``pdf_invoices`` invoices of a tenant of their own (finalized without delivery);
(b) the month-end of the big tenant (drafts, finalizing, PDFs and emails to the file backend) on
    two ``celery worker --concurrency=1`` processes against the machine's Redis (``broker_url``)
    and this database: wall time from queueing the start task to the run's end, invoices/s;
(c) each worker's memory, sampled from /proc while (b) runs: the pool process's peak RSS
    (VmHWM) once a tenth of the invoices is done and at the end, and its RSS range over the
    second half, to show that it stays flat.

Everything the run created is deleted afterwards unless ``keep`` is set.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import translation
from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration

from benchmarks.harness import database_url, plan_subscriptions_create, results_file, results_write, tenant_drop
from billing import documents
from billing.models import BillingRun, BillingRunItem, BillingSettings, Invoice
from billing.month_end import billing_run_progress
from billing.services.drafts import invoice_compute_drafts
from billing.services.invoices import invoice_finalize
from customers.models import Tenant
from customers.tenancy import platform_scope, tenant_scope

PERIOD = date(2026, 10, 1)
PLANS = [("Starter", "29.00"), ("Professional", "99.00"), ("Business", "299.00")]
RESULTS_PATH = results_file("month_end")
DEFAULT_BROKER = "redis://127.0.0.1:6379/7"
POLL_SECONDS = 0.5


# --- data ----------------------------------------------------------------------------------


def _build_tenant(customers: int, label: str) -> Tenant:
    run_id = uuid.uuid4().hex[:8]
    with platform_scope(), transaction.atomic():
        tenant = Tenant.objects.create(
            name=f"Month-end benchmark {label} {run_id}", slug=f"bench-me-{label}-{run_id}", reporting_currency="USD",
            invoice_number_prefix="ME-",
        )
        BillingSettings.objects.create(tenant=tenant)
        plan_subscriptions_create(
            tenant=tenant, count=customers, plans=PLANS, name="Bench customer", ref_prefix="me", reference_prefix="ME",
            start_date=date(2026, 1, 1),
            customer_fields=lambda n: {"billing_emails": [f"ap-{n:06d}@bench.example.com"],
                                       "address_line1": f"{n} Main Street", "city": "Springfield"},
        )
    return tenant


# --- (a) PDF overhead ------------------------------------------------------------------------


def _invoice_html(invoice: Invoice) -> str:
    """The HTML ``invoice_render_pdf`` hands WeasyPrint for ``invoice`` (same template and context)."""
    language = documents._language(invoice.customer)
    with translation.override(language), tenant_scope(invoice.tenant):
        context = documents._invoice_context(invoice, language)
        return render_to_string(documents.INVOICE_TEMPLATE, {**context, "language": language})


def measure_pdf_overhead(*, invoices: int = 50) -> dict:
    """Part (a): per-invoice ms of ``invoice_render_pdf`` and of a bare WeasyPrint render of its HTML."""
    tenant = _build_tenant(invoices + 3, "pdf")
    media = tempfile.mkdtemp(prefix="bench-me-media-")
    saved_media = settings.MEDIA_ROOT
    settings.MEDIA_ROOT = media
    try:
        with tenant_scope(tenant):
            invoice_compute_drafts(tenant=tenant, period_start=PERIOD, period_end=date(2026, 10, 31))
            finalized = [
                invoice_finalize(invoice=draft, deliver=False)
                for draft in Invoice.objects.for_tenant(tenant).order_by("customer__name")
            ]
            for invoice in finalized:
                invoice.refresh_from_db()
            warm, measured = finalized[:3], finalized[3:]
            for invoice in warm:  # fonts and templates load once per process
                HTML(string=_invoice_html(invoice)).write_pdf()
                documents.invoice_render_pdf(invoice=invoice)
            shared_fonts = FontConfiguration()
            HTML(string=_invoice_html(warm[0])).write_pdf(font_config=shared_fonts)
            bare_ms, shared_ms, render_ms = [], [], []
            for invoice in measured:
                html = _invoice_html(invoice)
                started = time.perf_counter()
                HTML(string=html).write_pdf()
                bare_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                HTML(string=html).write_pdf(font_config=shared_fonts)
                shared_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                name = documents.invoice_render_pdf(invoice=invoice)
                render_ms.append((time.perf_counter() - started) * 1000)
                if not Path(media, name).is_file():
                    raise RuntimeError(f"{name} was not stored.")
    finally:
        settings.MEDIA_ROOT = saved_media
        shutil.rmtree(media, ignore_errors=True)
        tenant_drop(tenant)
    def overhead(baseline: list[float]) -> float:
        return round((statistics.median(render_ms) / statistics.median(baseline) - 1) * 100, 1)

    return {
        "invoices": len(measured),
        "bare_weasyprint_ms_median": round(statistics.median(bare_ms), 1),
        "bare_weasyprint_shared_fonts_ms_median": round(statistics.median(shared_ms), 1),
        "invoice_render_pdf_ms_median": round(statistics.median(render_ms), 1),
        "invoice_render_pdf_ms_mean": round(statistics.mean(render_ms), 1),
        "overhead_percent_vs_bare": overhead(bare_ms),
        "overhead_percent_vs_bare_shared_fonts": overhead(shared_ms),
        "target_overhead_percent": 10,
    }


# --- (b) and (c): a month-end on two workers ---------------------------------------------------


def _proc_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class _Workers:
    def __init__(self, broker_url: str, root: Path, count: int):
        self.root, self.mail, self.media = root, root / "mail", root / "media"
        self.mail.mkdir()
        self.media.mkdir()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": broker_url,
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(self.mail),
            "MEDIA_ROOT": str(self.media),
            "LOG_LEVEL": "WARNING",
            "DJANGO_DEBUG": "false",  # DEBUG keeps every query in memory
        }
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal", "worker", "--concurrency=1", "--without-gossip",
                 "--without-mingle", "--without-heartbeat", "-l", "WARNING", "-n", f"bench-me-{n}@%h"],
                cwd=settings.BASE_DIR, env=env, stdout=open(root / f"worker-{n}.log", "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT, start_new_session=True,
            )
            for n in range(count)
        ]

    def pool_pids(self) -> list[int | None]:
        pids = []
        for process in self.processes:
            children = _children(process.pid)
            pids.append(children[0] if children else None)
        return pids

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def emails(self) -> int:
        return sum(path.read_text(errors="replace").count("\nSubject: ") for path in self.mail.glob("*.log"))

    def pdfs(self) -> int:
        return sum(1 for _ in self.media.rglob("*.pdf"))


def _wait_for_workers(app, broker_url: str, count: int, deadline_seconds: float = 60) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=1.0)) >= count:
            return
    raise RuntimeError(f"The {count} workers did not answer within {deadline_seconds} s.")


def measure_month_end(*, customers: int, broker_url: str = DEFAULT_BROKER, workers: int = 2) -> dict:
    """Parts (b) and (c): one month-end run of ``customers`` invoices on ``workers`` Celery workers."""
    import redis

    from billing.tasks import month_end_start
    from portal.celery import app

    redis.Redis.from_url(broker_url).flushdb()
    tenant = _build_tenant(customers, "run")
    root = Path(tempfile.mkdtemp(prefix="bench-me-"))
    pool = _Workers(broker_url, root, workers)
    samples: list[dict] = []
    try:
        _wait_for_workers(app, broker_url, workers)
        started = time.perf_counter()
        month_end_start.delay(tenant.pk, PERIOD.isoformat(), True, None, 200)
        hwm_at_tenth = None
        with tenant_scope(tenant):
            while True:
                time.sleep(POLL_SECONDS)
                run = BillingRun.objects.for_tenant(tenant).first()
                progress = billing_run_progress(run=run) if run else {"done": 0, "total": 0}
                pids = pool.pool_pids()
                sample = {
                    "seconds": round(time.perf_counter() - started, 2),
                    "done": progress["done"],
                    "rss_kb": [_proc_kb(pid, "VmRSS") if pid else None for pid in pids],
                    "hwm_kb": [_proc_kb(pid, "VmHWM") if pid else None for pid in pids],
                }
                samples.append(sample)
                if hwm_at_tenth is None and progress["done"] >= customers / 10:
                    hwm_at_tenth = sample["hwm_kb"]
                if run is not None and run.is_finished:
                    break
                if time.perf_counter() - started > 3600:
                    raise RuntimeError("The run did not finish within an hour.")
        wall = time.perf_counter() - started
        run.refresh_from_db()
        drafting = (run.finalizing_at - run.started_at).total_seconds() if run.finalizing_at and run.started_at else None
        second_half = [s for s in samples if s["done"] >= customers / 2]
        rss_ranges = []
        for index in range(workers):
            values = [s["rss_kb"][index] for s in second_half if s["rss_kb"][index]]
            rss_ranges.append([min(values) // 1024, max(values) // 1024] if values else None)
        figures = {
            "customers": customers,
            "workers": workers,
            "status": run.status,
            "counts": {"customers": run.customers, "finalized": run.finalized, "emailed": run.emailed, "failed": run.failed},
            "pdf_files": pool.pdfs(),
            "emails_written": pool.emails(),
            "wall_seconds": round(wall, 1),
            "drafting_seconds": round(drafting, 2) if drafting is not None else None,
            "invoices_per_second": round(customers / wall, 1),
            "worker_peak_rss_mb_at_10_percent": [v // 1024 if v else None for v in (hwm_at_tenth or [])],
            "worker_peak_rss_mb_at_end": [v // 1024 if v else None for v in samples[-1]["hwm_kb"]],
            "worker_rss_mb_range_second_half": rss_ranges,
            "items_unique": BillingRunItem.objects.for_tenant(tenant).values("customer").distinct().count() == customers,
        }
        with tenant_scope(tenant):
            numbers = sorted(Invoice.objects.for_tenant(tenant).values_list("sequence_number", flat=True))
        figures["numbers_gapless"] = numbers == list(range(1, customers + 1))
    finally:
        pool.stop()
        shutil.rmtree(root, ignore_errors=True)
        redis.Redis.from_url(broker_url).flushdb()
        tenant_drop(tenant)
    return figures


def run_month_end_benchmark(
    *, customers: int = 2000, pdf_invoices: int = 50, broker_url: str = DEFAULT_BROKER, results_path: Path = RESULTS_PATH,
    skip_run: bool = False,
) -> dict:
    """Run parts (a), (b) and (c); write the figures as JSON to ``results_path`` and return them."""
    from portal.celery import app

    # This process only publishes, to the workers' broker; set before anything opens a connection.
    app.conf.broker_url, app.conf.task_always_eager = broker_url, False
    figures: dict = {"period": f"{PERIOD:%Y-%m}", "cpus": os.cpu_count()}
    figures["pdf"] = measure_pdf_overhead(invoices=pdf_invoices)
    if not skip_run:
        figures["month_end"] = measure_month_end(customers=customers, broker_url=broker_url)
    results_write(results_path, figures)
    return figures
