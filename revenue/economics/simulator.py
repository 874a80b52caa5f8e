"""Realistic AI-call usage for the demo and the benchmarks (seed 001), through the real ingestion path.

Each simulated customer gets an archetype from a generator seeded with ``seed`` and its reference:
*light* (70 %, 5–20 calls a day), *power* (20 %, 50–150) or *heavy* (10 %, 200–500). Weekends
run at ``WEEKEND_FACTOR`` of a weekday; ``BUSINESS_SHARE`` of the calls fall between 08:00 and
20:00 in the tenant's time zone. Every call is one ``ai_call`` usage event whose properties carry
``provider``, ``model``, ``input_tokens``, ``output_tokens``, ``task_type`` and ``status``
(errors return no output tokens), so ``revenue.economics.costs`` prices it with ``ModelPrice``.

Reproducible: one generator per (seed, customer, day), and idempotency keys
``sim-<seed>-<customer ref>-<YYYYMMDD>-<n>``, so the same arguments give the same events and a
rerun adds nothing (every event is a duplicate). Events go through ``billing.metering.usage_ingest``
in batches of 10 000; events in months already invoiced are rejected there, as for any client.
"""

from __future__ import annotations

import random
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from billing.metering import MAX_BATCH_EVENTS, usage_ingest
from billing.models import BillableMetric
from customers.models import Customer, Tenant
from customers.services import customer_create
from revenue.models import ModelPrice

METRIC = "ai_call"
# provider, model, input and output price per million tokens (USD list prices), share of calls
MODELS = [
    ("openai", "gpt-4", "30", "60", 0.12),
    ("openai", "gpt-4-turbo", "10", "30", 0.23),
    ("anthropic", "claude-opus-4", "15", "75", 0.08),
    ("anthropic", "claude-sonnet-4", "3", "15", 0.32),
    ("bedrock", "claude-instant", "0.8", "2.4", 0.15),
    ("bedrock", "claude-v2", "8", "24", 0.10),
]
# task type: (input tokens low, high), (output tokens low, high), share of calls
TASKS = {
    "chat": ((200, 1500), (100, 800), 0.30),
    "summarization": ((1500, 6000), (150, 500), 0.15),
    "code_generation": ((300, 2000), (400, 2500), 0.15),
    "translation": ((300, 1500), (300, 1500), 0.10),
    "analysis": ((2000, 8000), (300, 1200), 0.15),
    "qa": ((200, 1000), (50, 300), 0.15),
}
# archetype: share of customers, calls per weekday (low, high)
ARCHETYPES = {"light": (0.70, (5, 20)), "power": (0.20, (50, 150)), "heavy": (0.10, (200, 500))}
WEEKEND_FACTOR = 0.3
BUSINESS_HOURS = (8, 20)
BUSINESS_SHARE = 0.85
ERROR_RATE = 0.02

_MODEL_WEIGHTS = [m[4] for m in MODELS]
_TASK_NAMES = list(TASKS)
_TASK_WEIGHTS = [TASKS[t][2] for t in _TASK_NAMES]
_OFF_HOURS = [h for h in range(24) if not BUSINESS_HOURS[0] <= h < BUSINESS_HOURS[1]]


def archetype_of(seed: int, ref: str) -> str:
    roll, chosen = random.Random(f"{seed}:{ref}").random(), "heavy"
    for name, (share, _) in ARCHETYPES.items():
        if roll < share:
            return name
        roll -= share
    return chosen


def day_events(*, seed: int, ref: str, archetype: str, day: date, zone: zoneinfo.ZoneInfo) -> list[dict]:
    """One customer's calls on one day, always the same for the same arguments."""
    rng = random.Random(f"{seed}:{ref}:{day.isoformat()}")
    low, high = ARCHETYPES[archetype][1]
    calls = rng.randint(low, high)
    if day.weekday() >= 5:
        calls = round(calls * WEEKEND_FACTOR)
    events = []
    for n in range(calls):
        if rng.random() < BUSINESS_SHARE:
            hour = rng.randrange(*BUSINESS_HOURS)
        else:
            hour = rng.choice(_OFF_HOURS)
        moment = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=zone)
        provider, model, *_ = rng.choices(MODELS, weights=_MODEL_WEIGHTS)[0]
        task = rng.choices(_TASK_NAMES, weights=_TASK_WEIGHTS)[0]
        (in_low, in_high), (out_low, out_high), _ = TASKS[task]
        failed = rng.random() < ERROR_RATE
        events.append({
            "customer": ref,
            "metric": METRIC,
            "timestamp": moment.isoformat(),
            "idempotency_key": f"sim-{seed}-{ref}-{day:%Y%m%d}-{n:04d}",
            "properties": {
                "provider": provider, "model": model, "task_type": task,
                "input_tokens": rng.randint(in_low, in_high),
                "output_tokens": 0 if failed else rng.randint(out_low, out_high),
                "status": "error" if failed else "success",
            },
        })
    return events


@dataclass
class SimulationResult:
    customers: int = 0
    days: int = 0
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_reasons: Counter = field(default_factory=Counter)
    archetypes: Counter = field(default_factory=Counter)
    prices_created: int = 0
    customers_created: int = 0


def _ensure_catalog(tenant: Tenant, first_day: date) -> int:
    BillableMetric.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, code=METRIC, defaults={"name": "AI calls", "aggregation": "count", "unit": "calls"}
    )
    priced = set(ModelPrice.objects.for_tenant(tenant).values_list("provider", "model"))
    missing = [
        ModelPrice(tenant=tenant, provider=provider, model=model, input_price_per_million=Decimal(price_in),
                   output_price_per_million=Decimal(price_out), effective_on=first_day)
        for provider, model, price_in, price_out, _ in MODELS if (provider, model) not in priced
    ]
    ModelPrice.objects.for_tenant(tenant).bulk_create(missing)
    return len(missing)


def _customers(tenant: Tenant, count: int | None, result: SimulationResult) -> list[str]:
    refs = list(Customer.objects.for_tenant(tenant).order_by("external_ref").values_list("external_ref", flat=True))
    if count is None:
        return refs
    for n in range(len(refs), count):
        ref = f"sim-{n + 1:05d}"
        customer_create(tenant=tenant, name=f"Simulated customer {n + 1:05d}", external_ref=ref,
                        currency=tenant.reporting_currency)
        refs.append(ref)
        result.customers_created += 1
    return refs[:count]


def simulate_usage(
    *, tenant: Tenant, days: int, seed: int, end: date, customers: int | None = None, progress=None
) -> SimulationResult:
    """Generate ``days`` days of AI calls ending with ``end`` for ``customers`` customers (the first by
    reference; simulated ones are created when the tenant has fewer; None: all) and ingest them.

    Creates the ``ai_call`` metric and the missing ``ModelPrice`` rows first. Returns counts per
    ingestion outcome and per archetype. Raises ValueError for ``days`` < 1.
    """
    if days < 1:
        raise ValueError("days must be at least 1.")
    first_day = end - timedelta(days=days - 1)
    result = SimulationResult(days=days)
    result.prices_created = _ensure_catalog(tenant, first_day)
    refs = _customers(tenant, customers, result)
    result.customers = len(refs)
    zone = zoneinfo.ZoneInfo(tenant.time_zone)

    def stream() -> Iterator[dict]:
        for ref in refs:
            archetype = archetype_of(seed, ref)
            result.archetypes[archetype] += 1
            for offset in range(days):
                yield from day_events(seed=seed, ref=ref, archetype=archetype, day=first_day + timedelta(days=offset),
                                      zone=zone)

    batch: list[dict] = []
    for event in stream():
        batch.append(event)
        if len(batch) == MAX_BATCH_EVENTS:
            _ingest(tenant, batch, result, progress)
            batch = []
    if batch:
        _ingest(tenant, batch, result, progress)
    return result


def _ingest(tenant: Tenant, batch: list[dict], result: SimulationResult, progress) -> None:
    outcome = usage_ingest(tenant=tenant, events=batch)
    result.events += len(batch)
    result.accepted += outcome.accepted
    result.duplicates += outcome.duplicates
    result.rejected += outcome.rejected
    result.rejected_reasons.update(r.reason for r in outcome.results if r.reason)
    if progress is not None:
        progress(result)
