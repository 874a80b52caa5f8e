"""The usage simulator: reproducible events through the real ingestion path, a rerun adds nothing."""

from datetime import date
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer
from revenue.economics.simulator import archetype_of, day_events
from revenue.models import ModelPrice
from tests.billing.factories import stored_events
from tests.customers.factories import CustomerFactory


def run(tenant, **options):
    out = StringIO()
    call_command("simulate_usage", tenant=tenant.slug, days=3, seed=7, end="2026-03-11", stdout=out, **options)
    return out.getvalue()


@pytest.mark.usage_events
def test_a_rerun_with_the_same_seed_adds_nothing(tenant_a, tenant_b):
    CustomerFactory(tenant=tenant_a, external_ref="alpha")
    CustomerFactory(tenant=tenant_a, external_ref="beta")

    first = run(tenant_a)
    stored = len(stored_events(tenant_a))
    second = run(tenant_a)

    assert stored == 1051  # seed 7: alpha and beta, 9 to 11 March 2026
    assert "1051 events, 1051 accepted, 0 duplicates, 0 rejected" in first
    assert "1051 events, 0 accepted, 1051 duplicates, 0 rejected" in second
    assert len(stored_events(tenant_a)) == 1051
    assert stored_events(tenant_b) == []


@pytest.mark.usage_events
def test_events_carry_provider_model_tokens_task_and_status_and_are_priced(tenant_a):
    CustomerFactory(tenant=tenant_a, external_ref="alpha")

    run(tenant_a)

    event = min(stored_events(tenant_a), key=lambda e: e.idempotency_key)
    assert set(event.properties) == {"provider", "model", "input_tokens", "output_tokens", "task_type", "status"}
    assert event.idempotency_key.startswith("sim-7-alpha-20260309-")
    assert ModelPrice.objects.for_tenant(tenant_a).count() == 6


@pytest.mark.usage_events
def test_missing_customers_are_created_for_the_requested_count(tenant_a):
    run(tenant_a, customers=3)

    refs = dict(Customer.objects.for_tenant(tenant_a).values_list("pk", "external_ref"))
    assert sorted({refs[e.customer_id] for e in stored_events(tenant_a)}) == [
        "sim-00001", "sim-00002", "sim-00003"
    ]


def test_same_seed_same_day_same_events_and_weekends_are_quieter():
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("UTC")
    weekday = day_events(seed=1, ref="heavy-co", archetype="heavy", day=date(2026, 3, 11), zone=zone)
    again = day_events(seed=1, ref="heavy-co", archetype="heavy", day=date(2026, 3, 11), zone=zone)
    saturday = day_events(seed=1, ref="heavy-co", archetype="heavy", day=date(2026, 3, 14), zone=zone)

    assert weekday == again
    assert 200 <= len(weekday) <= 500 and len(saturday) <= 150
    assert archetype_of(1, "heavy-co") == archetype_of(1, "heavy-co")


def test_unknown_tenant_is_a_clear_error(tenant_a):
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        call_command("simulate_usage", tenant="nope", days=1, seed=1)
