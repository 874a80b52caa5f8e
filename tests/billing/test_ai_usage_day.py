"""The AI-usage roll-up kept by the database: always the exact sum of the events, however they arrive."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.ai_usage import ai_usage_rebuild
from billing.metering import usage_ingest
from billing.models import AiUsageDay, BillableMetric, UsageEvent
from customers.models import Role, Tenant
from customers.services import tenant_time_zone_set, tenant_update
from customers.tenancy import tenant_cursor, tenant_scope
from tests.billing.factories import UsageEventFactory
from tests.customers.factories import CustomerFactory
from tests.revenue.economics.helpers import call, calls

JAN = date(2026, 1, 1)

pytestmark = pytest.mark.usage_events


def rolled(tenant) -> dict:
    rows = AiUsageDay.objects.for_tenant(tenant).values_list(
        "customer__name", "day", "provider", "model", "feature", "calls", "input_tokens", "output_tokens")
    return {row[:5]: row[5:] for row in rows}


def summed_from_events(tenant) -> dict:
    """The same sums straight from the events, as cost to serve read them before the roll-up."""
    with tenant_cursor(tenant) as cursor:
        cursor.execute("""
            SELECT c.name, (e.timestamp AT TIME ZONE t.time_zone)::date, COALESCE(e.properties ->> 'provider', ''),
                   COALESCE(e.properties ->> 'model', ''),
                   COALESCE(NULLIF(e.properties ->> 'feature', ''), e.properties ->> 'task_type', ''), COUNT(*),
                   SUM(CASE WHEN e.properties ->> 'input_tokens' ~ '^\\s*[0-9]{1,15}\\s*$'
                            THEN (e.properties ->> 'input_tokens')::numeric ELSE 0 END),
                   SUM(CASE WHEN e.properties ->> 'output_tokens' ~ '^\\s*[0-9]{1,15}\\s*$'
                            THEN (e.properties ->> 'output_tokens')::numeric ELSE 0 END)
            FROM billing_usageevent e JOIN customers_tenant t ON t.id = e.tenant_id
            JOIN customers_customer c ON c.id = e.customer_id
            WHERE e.tenant_id = %s AND e.properties ? 'model' GROUP BY 1, 2, 3, 4, 5""", [tenant.pk])
        return {row[:5]: row[5:] for row in cursor.fetchall()}


@pytest.fixture
def acme(tenant_a):
    return CustomerFactory(tenant=tenant_a, name="Acme", external_ref="acme")


def test_calls_of_one_day_model_and_feature_add_up_in_one_row(acme, tenant_a):
    call(acme, JAN, "gpt-4", 100, 50)
    call(acme, JAN, "gpt-4", 300, 70)
    call(acme, JAN, "gpt-4", 10, 1, task="code")
    calls(acme, 4, when=JAN, model="gpt-4", tokens_in=5, tokens_out=2)  # one bulk insert, no task type

    assert rolled(tenant_a) == {
        ("Acme", JAN, "openai", "gpt-4", "chat"): (2, Decimal(400), Decimal(120)),
        ("Acme", JAN, "openai", "gpt-4", "code"): (1, Decimal(10), Decimal(1)),
        ("Acme", JAN, "openai", "gpt-4", ""): (4, Decimal(20), Decimal(8)),
    }


def test_events_through_the_ingestion_api_are_rolled_up_once_and_duplicates_not_at_all(acme, tenant_a):
    BillableMetric.objects.create(tenant=tenant_a, code="ai_call", name="AI calls")
    event = {"customer": "acme", "metric": "ai_call", "timestamp": "2026-01-05T15:00:00+00:00", "idempotency_key": "k1",
             "properties": {"provider": "anthropic", "model": "claude-sonnet-4", "input_tokens": 1000,
                            "output_tokens": 200, "feature": "search", "task_type": "qa"}}
    with tenant_scope(tenant_a):
        first = usage_ingest(tenant=tenant_a, events=[event, {**event, "idempotency_key": "k2"}])
        again = usage_ingest(tenant=tenant_a, events=[event])

    assert (first.accepted, again.duplicates) == (2, 1)
    assert rolled(tenant_a) == {
        ("Acme", date(2026, 1, 5), "anthropic", "claude-sonnet-4", "search"): (2, Decimal(2000), Decimal(400)),
    }


def test_the_day_is_the_tenants_and_a_new_time_zone_moves_the_calls(acme, tenant_a):
    Tenant.objects.filter(pk=tenant_a.pk).update(time_zone="America/New_York")
    call(acme, datetime(2026, 1, 1, 3, tzinfo=timezone.utc), "gpt-4", 1, 1)  # 22:00 on 31 December in New York

    assert list(rolled(tenant_a)) == [("Acme", date(2025, 12, 31), "openai", "gpt-4", "chat")]

    tenant_time_zone_set(tenant=Tenant.objects.get(pk=tenant_a.pk), time_zone="Europe/Stockholm")

    assert list(rolled(tenant_a)) == [("Acme", JAN, "openai", "gpt-4", "chat")]


def test_a_tenant_save_that_keeps_the_time_zone_rebuilds_nothing(acme, tenant_a, django_assert_num_queries):
    call(acme, JAN, "gpt-4", 1, 1)
    tenant = Tenant.objects.get(pk=tenant_a.pk)
    tenant.name = "Renamed"

    with django_assert_num_queries(1):  # the UPDATE of the tenant, nothing else
        tenant.save()
    with django_assert_num_queries(3):  # savepoint, UPDATE, release: no rebuild
        tenant_update(tenant=tenant, changed={"name"})
    with django_assert_num_queries(0):
        tenant_time_zone_set(tenant=tenant, time_zone=tenant.time_zone)

    assert list(rolled(tenant_a)) == [("Acme", JAN, "openai", "gpt-4", "chat")]


def test_a_plain_save_of_a_new_time_zone_is_not_the_way_to_change_it(acme, tenant_a):
    """Nothing listens to Tenant saves: the time zone changes through customers.services."""
    call(acme, datetime(2026, 1, 1, 3, tzinfo=timezone.utc), "gpt-4", 1, 1)
    tenant = Tenant.objects.get(pk=tenant_a.pk)
    tenant.time_zone = "America/New_York"
    tenant.save()

    assert list(rolled(tenant_a)) == [("Acme", JAN, "openai", "gpt-4", "chat")]
    assert ai_usage_rebuild(tenant=tenant) == 1
    assert list(rolled(tenant_a)) == [("Acme", date(2025, 12, 31), "openai", "gpt-4", "chat")]


@pytest.mark.postgres_store_only(reason="changes stored events in place, which only the PostgreSQL table allows")
def test_deleting_and_changing_events_takes_their_calls_away(acme, tenant_a):
    keep = call(acme, JAN, "gpt-4", 100, 10)
    gone = call(acme, JAN, "gpt-4", 50, 5)
    moved = call(acme, JAN, "gpt-4", 7, 7)

    UsageEvent.objects.for_tenant(tenant_a).filter(pk=gone.pk).delete()
    UsageEvent.objects.for_tenant(tenant_a).filter(pk=moved.pk).update(
        properties={"provider": "openai", "model": "gpt-4-turbo", "input_tokens": 7, "output_tokens": 7})

    assert keep.pk and rolled(tenant_a) == {
        ("Acme", JAN, "openai", "gpt-4", "chat"): (1, Decimal(100), Decimal(10)),
        ("Acme", JAN, "openai", "gpt-4-turbo", ""): (1, Decimal(7), Decimal(7)),
    }
    UsageEvent.objects.for_tenant(tenant_a).all().delete()
    assert rolled(tenant_a) == {}


def test_odd_properties_are_read_as_the_events_were(acme, tenant_a, tenant_b):
    for properties in (
        {"model": "m", "input_tokens": "12", "output_tokens": "many"},  # a word counts 0 tokens
        {"model": None, "input_tokens": 3},  # a null model: an unpriced call
        {"model": "x" * 300, "input_tokens": 1},  # cut at 200 characters
        {"provider": "openai", "input_tokens": 99},  # no model: not an AI call
    ):
        UsageEventFactory(tenant=tenant_a, customer=acme, metric_code="ai_call", quantity=1,
                          timestamp=datetime(2026, 1, 2, 12, tzinfo=timezone.utc),
                          idempotency_key=f"odd-{len(str(properties))}", properties=properties)
    other = CustomerFactory(tenant=tenant_b, name="Elsewhere")
    call(other, JAN, "gpt-4", 5, 5)

    rows = rolled(tenant_a)
    assert rows == {
        ("Acme", date(2026, 1, 2), "", "m", ""): (1, Decimal(12), Decimal(0)),
        ("Acme", date(2026, 1, 2), "", "", ""): (1, Decimal(3), Decimal(0)),
        ("Acme", date(2026, 1, 2), "", "x" * 200, ""): (1, Decimal(1), Decimal(0)),
    }
    assert list(rolled(tenant_b)) == [("Elsewhere", JAN, "openai", "gpt-4", "chat")]
    assert ai_usage_rebuild(tenant=tenant_a) == 3  # the store's own reading of the events agrees
    assert rolled(tenant_a) == rows


def test_the_roll_up_equals_the_events_and_a_rebuild_changes_nothing(acme, tenant_a, usage_store):
    second = CustomerFactory(tenant=tenant_a, name="Second")
    for day in (1, 2, 2, 3):
        call(acme, date(2026, 1, day), "gpt-4", 10 * day, day)
        call(second, date(2026, 1, day), "claude-opus-4", day, 10 * day, provider="anthropic", task="analysis")
    calls(second, 25, when=date(2026, 1, 3), model="gpt-4")
    before = rolled(tenant_a)

    if usage_store.name == "postgres":
        assert before == summed_from_events(tenant_a)
    assert ai_usage_rebuild(tenant=tenant_a) == len(before)
    assert rolled(tenant_a) == before


def test_an_owner_changing_the_time_zone_in_the_admin_moves_the_calls(acme, tenant_a, client, member_factory):
    call(acme, datetime(2026, 1, 1, 3, tzinfo=timezone.utc), "gpt-4", 1, 1)  # 04:00 in Stockholm, 22:00 in New York
    client.force_login(member_factory(tenant_a, Role.OWNER))
    url = reverse("admin:customers_tenant_change", args=[tenant_a.pk])
    form = client.get(url).context["adminform"].form
    data = {name: "" if form[name].value() is None else form[name].value() for name in form.fields if name != "logo"}

    response = client.post(url, {**data, "time_zone": "America/New_York"})

    assert response.status_code == 302
    assert list(rolled(tenant_a)) == [("Acme", date(2025, 12, 31), "openai", "gpt-4", "chat")]
