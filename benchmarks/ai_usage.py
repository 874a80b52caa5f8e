"""What the AI-usage roll-up costs at ingestion and saves when cost to serve is read.

``run_ai_usage_benchmark`` builds the tenant ``bench-ai``: ``customers`` customers whose AI calls
come from the usage simulator (seed 001: light, power and heavy archetypes, weekday and business-hour
patterns, six models) for ``days`` days, ingested through ``usage_ingest`` in batches of 10 000.
The first half of the customers is ingested with the roll-up's insert trigger switched off, the
second half with it on, so both rates come from the same run on the same kind of data; the roll-up
of the first half is then rebuilt (timed too). Cost to serve for the month is timed reading the
roll-up, against the same figures read straight from the events (the query it replaced), and the
two must agree to the cent. Figures go to ``benchmarks/results/ai_usage.json``.
"""

from __future__ import annotations

import time
import zoneinfo
from datetime import date, timedelta

from django.db import connection, transaction

from benchmarks.harness import results_file, results_write, tenant_drop_slug, timed_best
from billing.ai_usage import ai_usage_rebuild
from billing.metering import MAX_BATCH_EVENTS, usage_ingest
from billing.models import BillableMetric, UsageEvent
from customers.models import Customer, Tenant
from customers.money import money_round
from customers.tenancy import platform_scope, tenant_scope
from revenue.economics.costs import cost_to_serve
from revenue.economics.simulator import METRIC, MODELS, archetype_of, day_events
from revenue.models import ModelPrice

SLUG = "bench-ai"
SEED = 1
FIRST_DAY = date(2025, 3, 1)
RESULTS_PATH = results_file("ai_usage")
TRIGGER = "usage_event_ai_usage_insert"

# The query cost to serve ran before the roll-up: straight from the events' JSON.
RAW_COST_SQL = f"""
WITH grouped AS (
    SELECT e.customer_id, (e.timestamp AT TIME ZONE %(tz)s)::date AS day,
           COALESCE(e.properties ->> 'provider', '') AS provider, e.properties ->> 'model' AS model,
           COUNT(*) AS calls,
           SUM(CASE WHEN e.properties ->> 'input_tokens' ~ '^\\s*[0-9]{{1,15}}\\s*$'
                    THEN (e.properties ->> 'input_tokens')::numeric ELSE 0 END) AS tin,
           SUM(CASE WHEN e.properties ->> 'output_tokens' ~ '^\\s*[0-9]{{1,15}}\\s*$'
                    THEN (e.properties ->> 'output_tokens')::numeric ELSE 0 END) AS tout
    FROM {UsageEvent._meta.db_table} e
    WHERE e.tenant_id = %(tenant)s AND e.timestamp >= %(start)s AND e.timestamp < %(end)s AND e.properties ? 'model'
    GROUP BY 1, 2, 3, 4
)
SELECT g.customer_id, SUM(g.tin * p.input_price_per_million + g.tout * p.output_price_per_million) / 1000000
FROM grouped g
JOIN LATERAL (
    SELECT mp.input_price_per_million, mp.output_price_per_million FROM {ModelPrice._meta.db_table} mp
    WHERE mp.tenant_id = %(tenant)s AND mp.provider = g.provider AND mp.model = g.model AND mp.effective_on <= g.day
    ORDER BY mp.effective_on DESC LIMIT 1
) p ON true
GROUP BY 1
"""


def _build(customers: int) -> tuple[Tenant, list[str]]:
    with platform_scope(), transaction.atomic():
        tenant = Tenant.objects.create(name="AI usage benchmark", slug=SLUG, reporting_currency="USD",
                                       invoice_number_prefix="BAI-")
        BillableMetric.objects.create(tenant=tenant, code=METRIC, name="AI calls", aggregation="count", unit="calls")
        ModelPrice.objects.bulk_create(
            ModelPrice(tenant=tenant, provider=provider, model=model, input_price_per_million=price_in,
                       output_price_per_million=price_out, effective_on=FIRST_DAY)
            for provider, model, price_in, price_out, _ in MODELS
        )
        refs = [f"bai-{n:05d}" for n in range(customers)]
        Customer.objects.bulk_create(
            Customer(tenant=tenant, name=f"AI customer {n:05d}", external_ref=ref, currency="USD", country="US")
            for n, ref in enumerate(refs)
        )
    return tenant, refs


def _ingest(tenant: Tenant, refs: list[str], days: int) -> tuple[int, float]:
    """Ingest the simulated calls of ``refs``; returns (events accepted, seconds spent in usage_ingest)."""
    zone = zoneinfo.ZoneInfo(tenant.time_zone)
    accepted, seconds, batch = 0, 0.0, []

    def send():
        nonlocal accepted, seconds
        started = time.perf_counter()
        with tenant_scope(tenant):
            result = usage_ingest(tenant=tenant, events=batch)
        seconds += time.perf_counter() - started
        accepted += result.accepted

    for ref in refs:
        archetype = archetype_of(SEED, ref)
        for offset in range(days):
            batch += day_events(seed=SEED, ref=ref, archetype=archetype, day=FIRST_DAY + timedelta(days=offset),
                                zone=zone)
            while len(batch) >= MAX_BATCH_EVENTS:
                batch, rest = batch[:MAX_BATCH_EVENTS], batch[MAX_BATCH_EVENTS:]
                send()
                batch = rest
    if batch:
        send()
    return accepted, seconds


def _set_trigger(enabled: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {UsageEvent._meta.db_table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER {TRIGGER}")


def run_ai_usage_benchmark(*, customers: int, days: int, keep: bool = False) -> dict:
    tenant_drop_slug(SLUG)
    tenant, refs = _build(customers)
    half = len(refs) // 2
    figures: dict = {"customers": customers, "days": days}
    try:
        _set_trigger(False)
        try:
            events_off, seconds_off = _ingest(tenant, refs[:half], days)
        finally:
            _set_trigger(True)
        events_on, seconds_on = _ingest(tenant, refs[half:], days)
        figures["ingest_without_rollup"] = {"events": events_off, "seconds": round(seconds_off, 2),
                                            "events_per_second": round(events_off / seconds_off)}
        figures["ingest_with_rollup"] = {"events": events_on, "seconds": round(seconds_on, 2),
                                         "events_per_second": round(events_on / seconds_on)}
        figures["ingest_overhead"] = round((events_off / seconds_off) / (events_on / seconds_on), 3)
        with tenant_scope(tenant):
            started = time.perf_counter()
            rows = ai_usage_rebuild(tenant=tenant)
            figures["rebuild"] = {"rows": rows, "events": events_off + events_on,
                                  "seconds": round(time.perf_counter() - started, 2)}
            first, last = FIRST_DAY, FIRST_DAY + timedelta(days=days - 1)
            costs, rollup_seconds = timed_best(lambda: cost_to_serve(tenant=tenant, first=first, last=last), 3)

            def raw():
                start_day = FIRST_DAY.replace(day=1)
                end_day = (last.replace(day=28) + timedelta(days=4)).replace(day=1)
                with connection.cursor() as cursor:
                    cursor.execute(RAW_COST_SQL, {"tz": tenant.time_zone, "tenant": tenant.pk,
                                                  "start": start_day, "end": end_day})
                    return cursor.fetchall()

            raw_rows, raw_seconds = timed_best(raw, 3)
        by_customer: dict[int, object] = {}
        for (customer_id, _), row in costs.items():
            by_customer[customer_id] = by_customer.get(customer_id, 0) + row.token_cost
        raw_cents = {customer_id: money_round(cost, tenant.reporting_currency) for customer_id, cost in raw_rows}
        figures["cost_to_serve_from_rollup_seconds"] = round(rollup_seconds, 3)
        figures["cost_to_serve_from_events_seconds"] = round(raw_seconds, 3)
        figures["speedup"] = round(raw_seconds / rollup_seconds, 1)
        figures["figures_agree_to_the_cent"] = by_customer == raw_cents
    finally:
        if not keep:
            tenant_drop_slug(SLUG)
    results_write(RESULTS_PATH, figures)
    return figures
