"""Month-end draft invoicing at scale, against the bare SQL aggregate over the same events.

``run_billing_benchmark`` builds one job-API tenant with ``customers`` customers on the four
plans (contracts, plan-fee lines and included-quota price terms, all bulk-created), loads
``events`` usage events for November 2026 (through the ingestion benchmark over HTTP, or straight
through ``usage_ingest`` when that is skipped), then times:

(b) ``invoice_compute_drafts`` for the month, beside one ``GROUP BY customer, metric`` over the
    same events: the floor any invoicing run pays to read its usage;
(c) the same run again, which must write nothing.

Everything the run created is deleted afterwards unless ``keep`` is set.
"""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from pathlib import Path

from django.db import connection, transaction

from benchmarks.billing_ingest import run_ingest_benchmark
from benchmarks.harness import plan_subscriptions_create, results_file, results_write, tenant_drop
from billing.metering import usage_ingest
from billing.models import BillableMetric, BillingSettings, ChargeModel, Invoice, PriceTerms, UsageEvent
from billing.services.drafts import invoice_compute_drafts
from customers.models import Customer, Tenant
from customers.tenancy import platform_scope, tenant_cursor

MONTH_START, MONTH_END = date(2026, 11, 1), date(2026, 11, 30)
METRIC = "bench_processed_jobs"  # the ingestion benchmark's metric, so its events are priced too
PLANS = [
    # (name, fee, included, overage, utilisation discount %)
    ("Free", "0.00", 10, "0.00", 0),
    ("Starter", "29.00", 100, "0.50", 2),
    ("Professional", "99.00", 500, "0.30", 3),
    ("Business", "299.00", 2000, "0.20", 4),
]
RESULTS_PATH = results_file("billing")


def _build_tenant(customers: int) -> tuple[Tenant, list[Customer]]:
    run_id = uuid.uuid4().hex[:8]
    with platform_scope(), transaction.atomic():
        tenant = Tenant.objects.create(
            name=f"Billing benchmark {run_id}", slug=f"bench-billing-{run_id}", reporting_currency="USD",
            invoice_number_prefix="BENCH-",
        )
        BillingSettings.objects.create(tenant=tenant, minimum_invoice_amount=Decimal("1.00"))
        BillableMetric.objects.create(tenant=tenant, code=METRIC, name="Processed jobs", unit="jobs")
        rows, lines = plan_subscriptions_create(
            tenant=tenant, count=customers, plans=PLANS, name="Bench customer", ref_prefix="bench", reference_prefix="B",
            start_date=date(2026, 1, 1),
            # Every tenth customer starts mid-month, so proration is part of the run.
            starts_on=lambda n: date(2026, 11, 16) if n % 10 == 9 else date(2026, 1, 1),
        )
        terms = []
        for n, line in enumerate(lines):
            _, _, included, overage, discount = PLANS[n % len(PLANS)]
            spec = {"included": included, "overage_unit_price": overage, "grace_percent": 1}
            if discount:
                spec["utilisation_discount_percent"] = discount
            terms.append(
                PriceTerms(tenant=tenant, contract_line=line, charge_model=ChargeModel.INCLUDED_QUOTA, metric=METRIC,
                           terms=spec)
            )
        PriceTerms.objects.bulk_create(terms)
    return tenant, rows


def _load_events_directly(tenant: Tenant, customers: list[Customer], events: int) -> dict:
    """Ingest ``events`` events through ``usage_ingest`` in batches of 10 000 (no HTTP)."""
    refs = [customer.external_ref for customer in customers]
    start = datetime(2026, 11, 1, tzinfo=dt_timezone.utc)
    started = time.perf_counter()
    accepted = 0
    for offset in range(0, events, 10_000):
        batch = []
        for j in range(offset, min(events, offset + 10_000)):
            h = (j * 2654435761) & 0xFFFFFFFF
            batch.append({
                "customer": refs[h % len(refs)],
                "metric": METRIC,
                "timestamp": (start + timedelta(seconds=h % (30 * 86400))).isoformat(),
                "idempotency_key": f"direct-{j:09d}",
                "properties": {"status": "failed" if h % 10 == 0 else "succeeded"},
            })
        accepted += usage_ingest(tenant=tenant, events=batch).accepted
    return {"path": "usage_ingest in-process (ingestion benchmark skipped)", "accepted": accepted,
            "seconds": round(time.perf_counter() - started, 2)}


def _bare_aggregate_seconds(tenant: Tenant) -> tuple[float, int]:
    start = datetime(2026, 11, 1, tzinfo=dt_timezone.utc)
    end = datetime(2026, 12, 1, tzinfo=dt_timezone.utc)
    started = time.perf_counter()
    with tenant_cursor(tenant) as cursor:
        cursor.execute(
            f"SELECT customer_id, metric_code, COUNT(*), SUM(quantity) FROM {UsageEvent._meta.db_table}"
            " WHERE tenant_id = %s AND timestamp >= %s AND timestamp < %s GROUP BY customer_id, metric_code",
            [tenant.pk, start, end],
        )
        rows = len(cursor.fetchall())
    return time.perf_counter() - started, rows


def run_billing_benchmark(
    *, customers: int = 10_000, events: int = 2_000_000, ingest: bool = True, ingest_client: str = "gunicorn",
    keep: bool = False, results_path: Path = RESULTS_PATH,
) -> dict:
    """Run parts (a), (b), (c) described in the module docstring and return the figures.

    Also writes them as JSON to ``results_path``. Raises RuntimeError if the re-run writes anything.
    """
    figures: dict = {"customers": customers, "events": events, "period": f"{MONTH_START}..{MONTH_END}"}
    started = time.perf_counter()
    tenant, rows = _build_tenant(customers)
    figures["setup_seconds"] = round(time.perf_counter() - started, 2)
    try:
        if ingest:
            figures["ingest"] = run_ingest_benchmark(
                tenant=tenant, customers=rows, events_total=events, client=ingest_client, cleanup=False
            )
        else:
            figures.setdefault("ingest", "skipped (--skip-ingest)")
            figures["event_load"] = _load_events_directly(tenant, rows, events)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {UsageEvent._meta.db_table}")
        with platform_scope():
            figures["stored_events"] = UsageEvent.objects.filter(tenant=tenant).count()

        bare_seconds, groups = _bare_aggregate_seconds(tenant)
        started = time.perf_counter()
        first = invoice_compute_drafts(tenant=tenant, period_start=MONTH_START, period_end=MONTH_END)
        compute_seconds = time.perf_counter() - started
        started = time.perf_counter()
        second = invoice_compute_drafts(tenant=tenant, period_start=MONTH_START, period_end=MONTH_END)
        rerun_seconds = time.perf_counter() - started
        if second["created"] or second["updated"] or second["lines"]:
            raise RuntimeError(f"The re-run wrote something: {second}")
        with platform_scope():
            total = sum(Invoice.objects.filter(tenant=tenant).values_list("total", flat=True), Decimal(0))

        figures.update(
            bare_aggregate_seconds=round(bare_seconds, 3),
            bare_aggregate_groups=groups,
            compute_drafts_seconds=round(compute_seconds, 3),
            compute_drafts_counts={k: v for k, v in first.items() if k != "problems"},
            compute_vs_bare_aggregate_ratio=round(compute_seconds / bare_seconds, 1),
            rerun_seconds=round(rerun_seconds, 3),
            rerun_counts={k: v for k, v in second.items() if k != "problems"},
            rerun_vs_bare_aggregate_ratio=round(rerun_seconds / bare_seconds, 1),
            invoiced_total_usd=str(total),
            targets={"compute_drafts_seconds": 20, "rerun_seconds": 5, "at": "10 000 customers, 2 000 000 events"},
        )
    finally:
        if not keep:
            tenant_drop(tenant)
    results_write(results_path, figures)
    return figures
