"""Pricing what-ifs at scale: ``customers`` customers × ``months`` closed months, five catalog plans.

``run_whatif_benchmark`` builds (or, with ``keep``, reuses) the tenant ``bench-whatif``: customers on
the job API's four plans (a plan-fee contract line with included-quota price terms, bulk-created;
every tenth starts mid-way through the first month, so proration is part of the run), a summed
``jobs`` metric fed by ``events_per_month`` events a customer and month through ``usage_ingest``
(each event a batch of jobs, sized by the customer's light, power or heavy archetype), and a
catalog of five plans: flat, graduated tiers, volume tiers, pure usage and hybrid base + usage.
It then times ``pricing_whatif`` over all the months and plans and writes the figures to
``benchmarks/results/whatif.json``.
"""

from __future__ import annotations

import os
import random
import time
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from pathlib import Path

from django.db import connection, transaction

from benchmarks.harness import plan_subscriptions_create, results_file, results_write, tenant_drop
from billing.metering import MAX_BATCH_EVENTS, usage_ingest
from billing.models import BillableMetric, BillingSettings, ChargeModel, PriceTerms, UsageEvent
from customers.models import Customer, Tenant
from customers.periods import add_months, month_end
from customers.tenancy import platform_scope, tenant_scope
from revenue.economics.whatif import pricing_whatif
from revenue.models import PricePlan

SLUG = "bench-whatif"
METRIC = "jobs"
FIRST_MONTH = date(2025, 1, 1)
RESULTS_PATH = results_file("whatif")
PLANS = [  # name, fee, included jobs, overage
    ("Free", "0.00", 10, "0.00"),
    ("Starter", "29.00", 100, "0.50"),
    ("Professional", "99.00", 500, "0.30"),
    ("Business", "299.00", 2000, "0.20"),
]
JOBS_PER_MONTH = {"light": (20, 200), "power": (300, 900), "heavy": (1500, 4000)}
CATALOG = [
    ("flat-99", "Flat 99", "99.00", ChargeModel.FLAT, "", "0", {}),
    ("tiered", "Graduated tiers", "0", ChargeModel.GRADUATED, METRIC, "0", {"tiers": [
        {"up_to": "100", "unit_price": "0.40"}, {"up_to": "1000", "unit_price": "0.25"},
        {"up_to": None, "unit_price": "0.12"}]}),
    ("volume", "Volume tiers", "0", ChargeModel.VOLUME, METRIC, "0", {"tiers": [
        {"up_to": "500", "unit_price": "0.30"}, {"up_to": None, "unit_price": "0.15", "flat_fee": "20"}]}),
    ("usage", "Pure usage", "0", ChargeModel.PER_UNIT, METRIC, "0.22", {}),
    ("hybrid", "Hybrid 49 + usage", "49.00", ChargeModel.INCLUDED_QUOTA, METRIC, "0",
     {"included": "250", "overage_unit_price": "0.18"}),
]


def _archetype(rng: random.Random) -> str:
    roll = rng.random()
    return "light" if roll < 0.7 else "power" if roll < 0.9 else "heavy"


def _build(customers: int, months: int, events_per_month: int) -> tuple[Tenant, dict]:
    figures = {}
    started = time.perf_counter()
    with platform_scope(), transaction.atomic():
        tenant = Tenant.objects.create(name="What-if benchmark", slug=SLUG, reporting_currency="USD",
                                       invoice_number_prefix="WIF-")
        BillingSettings.objects.create(tenant=tenant, minimum_invoice_amount=Decimal("1.00"))
        BillableMetric.objects.create(tenant=tenant, code=METRIC, name="Jobs", aggregation="sum", field="quantity",
                                      unit="jobs")
        rows, lines = plan_subscriptions_create(
            tenant=tenant, count=customers, plans=PLANS, name="What-if customer", ref_prefix="wif",
            reference_prefix="W", start_date=FIRST_MONTH,
            starts_on=lambda n: FIRST_MONTH + timedelta(days=15) if n % 10 == 9 else FIRST_MONTH,
        )
        PriceTerms.objects.bulk_create(
            PriceTerms(tenant=tenant, contract_line=line, charge_model=ChargeModel.INCLUDED_QUOTA, metric=METRIC,
                       terms={"included": PLANS[n % len(PLANS)][2], "overage_unit_price": PLANS[n % len(PLANS)][3],
                              "grace_percent": 1})
            for n, line in enumerate(lines)
        )
        for code, name, fee, model, metric, unit_price, terms in CATALOG:
            PricePlan.objects.create(tenant=tenant, code=code, name=name, currency="USD", base_fee=Decimal(fee),
                                     charge_model=model, metric=metric, unit_price=Decimal(unit_price), terms=terms)
    figures["setup_seconds"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    rng = random.Random(2026)
    batch, accepted = [], 0
    with tenant_scope(tenant):
        for customer in rows:
            low, high = JOBS_PER_MONTH[_archetype(rng)]
            for m in range(months):
                month = add_months(FIRST_MONTH, m)
                total = rng.randint(low, high)
                for k in range(events_per_month):
                    day = month + timedelta(days=(k * 7 + 3) % 28)
                    batch.append({
                        "customer": customer.external_ref, "metric": METRIC,
                        "timestamp": datetime(day.year, day.month, day.day, 10 + k % 8, tzinfo=dt_timezone.utc).isoformat(),
                        "idempotency_key": f"{customer.external_ref}-{month:%Y%m}-{k}",
                        "quantity": total // events_per_month + (1 if k < total % events_per_month else 0),
                    })
                    if len(batch) == MAX_BATCH_EVENTS:
                        accepted += usage_ingest(tenant=tenant, events=batch).accepted
                        batch = []
        if batch:
            accepted += usage_ingest(tenant=tenant, events=batch).accepted
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {UsageEvent._meta.db_table}")
    figures["events_loaded"] = accepted
    figures["event_load_seconds"] = round(time.perf_counter() - started, 2)
    return tenant, figures


def run_whatif_benchmark(
    *, customers: int = 10_000, months: int = 12, events_per_month: int = 4, keep: bool = False,
    results_path: Path = RESULTS_PATH,
) -> dict:
    """Build or reuse the benchmark tenant, time ``pricing_whatif`` and write the figures as JSON."""
    figures: dict = {"customers": customers, "months": months, "events_per_customer_month": events_per_month,
                     "plans": [code for code, *_ in CATALOG]}
    with platform_scope():
        tenant = Tenant.objects.filter(slug=SLUG).first()
        reusable = tenant is not None and Customer.objects.filter(tenant=tenant).count() == customers
    if tenant is not None and not reusable:
        tenant_drop(tenant)
        tenant = None
    if tenant is None:
        tenant, built = _build(customers, months, events_per_month)
        figures.update(built)
    else:
        figures["setup"] = "reused the kept benchmark tenant"
    last = add_months(FIRST_MONTH, months - 1)
    try:
        with tenant_scope(tenant):
            load_before = os.getloadavg()
            started, cpu_started = time.perf_counter(), time.process_time()
            result = pricing_whatif(tenant=tenant, months=months, last=last)
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        priced = sum(t["customers"] for code, t in result["totals"].items() if code != "actual") * months
        figures.update(
            period=f"{add_months(FIRST_MONTH, 0)}..{month_end(last)}",
            whatif_seconds=round(seconds, 2),
            # The Python side's own CPU time (the database works beside it): what the run costs on a
            # machine shared with other work, where wall time also measures the neighbours.
            whatif_python_cpu_seconds=round(cpu_seconds, 2),
            machine={"cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
                     "load_average_after": [round(x, 2) for x in os.getloadavg()]},
            customer_months=sum(1 for _ in result["customers"]) * months,
            plan_pricings=priced,
            totals={code: {"revenue": str(t["revenue"].quantize(Decimal("0.01"))),
                           "delta_vs_actual": str(t["delta"].quantize(Decimal("0.01"))),
                           "pay_more": t["pay_more"], "pay_less": t["pay_less"]}
                    for code, t in result["totals"].items()},
            problems=len(result["problems"]),
            target={"whatif_seconds": 60, "at": "10 000 customers, 12 months"},
        )
    finally:
        if not keep:
            tenant_drop(tenant)
    results_write(results_path, figures)
    return figures
