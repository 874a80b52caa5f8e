import calendar
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import ProtectedError
from django.test.utils import CaptureQueriesContext

from billing import metering
from billing.metering import IngestRefused, _array_literal, usage_ingest, usage_totals
from billing.models import BillableMetric, BillingSettings, Invoice
from customers.api_base import TenantModelSerializer
from customers.models import Customer
from customers.tenancy import platform_scope, tenant_scope
from tests.billing.factories import BillableMetricFactory, BillingSettingsFactory, UsageEventFactory, stored_events
from tests.customers.factories import ContractFactory, CustomerFactory

pytestmark = pytest.mark.usage_events  # every test here stores or reads usage events

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def world(tenant_a, tenant_b):
    """Tenant A with two customers and two metrics; tenant B with one customer of its own."""
    return {
        "northwind": CustomerFactory(tenant=tenant_a, external_ref="northwind"),
        "contoso": CustomerFactory(tenant=tenant_a, external_ref="contoso"),
        "bergen": CustomerFactory(tenant=tenant_b, external_ref="bergen"),
        "jobs": BillableMetricFactory(tenant=tenant_a, code="processed_jobs"),
        "compute": BillableMetricFactory(tenant=tenant_a, code="compute_ms", aggregation="sum", unit="ms"),
        "jobs_b": BillableMetricFactory(tenant=tenant_b, code="processed_jobs"),
    }


def event(key, **overrides):
    raw = {
        "customer": "northwind",
        "metric": "processed_jobs",
        "timestamp": "2026-11-05T14:03:00Z",
        "idempotency_key": key,
        "quantity": 1,
        "properties": {"status": "succeeded"},
    }
    raw.update(overrides)
    return raw


def stored(tenant):
    refs = dict(Customer.objects.for_tenant(tenant).values_list("pk", "external_ref"))
    return sorted((e.idempotency_key, refs[e.customer_id], e.metric_code, e.quantity) for e in stored_events(tenant))


def statuses(result):
    return [(r.idempotency_key, r.status, r.reason) for r in result.results]


# --- ingestion ------------------------------------------------------------------------------------


def test_valid_events_are_accepted_and_stored_with_every_field(world, tenant_a):
    result = usage_ingest(
        tenant=tenant_a,
        events=[
            event("k1"),
            event(
                "k2", customer="contoso", metric="compute_ms", quantity="1250.5", timestamp="2026-11-06T10:00:00+02:00"
            ),
        ],
        now=NOW,
    )

    assert (result.accepted, result.duplicates, result.rejected) == (2, 0, 0)
    assert statuses(result) == [("k1", "accepted", None), ("k2", "accepted", None)]
    (second,) = stored_events(tenant_a, idempotency_key="k2")
    assert second.customer_id == world["contoso"].pk
    assert second.metric_code == "compute_ms"
    assert second.quantity == Decimal("1250.5")
    assert second.timestamp == datetime(2026, 11, 6, 8, 0, tzinfo=timezone.utc)
    assert second.properties == {"status": "succeeded"}
    assert second.received_at == NOW


def test_quantity_defaults_to_one_and_decimals_stay_exact(world, tenant_a):
    events = [
        event("no-qty"),
        event("str", quantity=" 0.000001 "),
        event("dec", quantity=Decimal("2.1")),
        event("flt", quantity=0.1),
    ]
    del events[0]["quantity"]

    usage_ingest(tenant=tenant_a, events=events)

    assert {e.idempotency_key: e.quantity for e in stored_events(tenant_a)} == {
        "no-qty": Decimal("1"),
        "str": Decimal("0.000001"),
        "dec": Decimal("2.1"),
        "flt": Decimal("0.1"),
    }


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"customer": "nobody"}, "unknown customer"),
        ({"customer": None}, "unknown customer"),
        ({"customer": 42}, "unknown customer"),
        ({"metric": "gpu_hours"}, "unknown metric"),
        ({"metric": None}, "unknown metric"),
        ({"timestamp": "2026-11-05T14:03:00"}, "bad timestamp"),
        ({"timestamp": "2026-11-05"}, "bad timestamp"),
        ({"timestamp": "yesterday"}, "bad timestamp"),
        ({"timestamp": 1793000000}, "bad timestamp"),
        ({"timestamp": None}, "bad timestamp"),
        ({"timestamp": "9999-12-31T23:00:00-12:00"}, "bad timestamp"),
        ({"quantity": "ten"}, "non-numeric quantity"),
        ({"quantity": "1_000"}, "non-numeric quantity"),
        ({"quantity": "NaN"}, "non-numeric quantity"),
        ({"quantity": Decimal("Infinity")}, "non-numeric quantity"),
        ({"quantity": True}, "non-numeric quantity"),
        ({"quantity": [1]}, "non-numeric quantity"),
        ({"quantity": -1}, "negative quantity"),
        ({"quantity": "1e18"}, "quantity out of range"),
        ({"quantity": "0.0000001"}, "quantity has more than 6 decimal places"),
        ({"properties": ["a"]}, "properties must be an object"),
        ({"properties": {"note": "nul\x00byte"}}, "properties contain values that cannot be stored"),
        ({"properties": {"note": "lone \ud800 surrogate"}}, "properties contain values that cannot be stored"),
        ({"properties": {"size": Decimal("1e400")}}, "properties contain values that cannot be stored"),
        ({"idempotency_key": "x" * 129}, "idempotency key longer than 128 characters"),
        ({"idempotency_key": 7}, "idempotency key must be a string"),
    ],
)
def test_invalid_event_is_rejected_with_its_reason_and_not_stored(world, tenant_a, overrides, reason):
    result = usage_ingest(tenant=tenant_a, events=[event("bad", **overrides)])

    assert [(r.status, r.reason) for r in result.results] == [("rejected", reason)]
    assert (result.accepted, result.duplicates, result.rejected) == (0, 0, 1)
    assert stored(tenant_a) == []


@pytest.mark.parametrize("key", [None, ""])
def test_event_without_idempotency_key_is_rejected(world, tenant_a, key):
    missing = event("unused")
    if key is None:
        del missing["idempotency_key"]
    else:
        missing["idempotency_key"] = key

    result = usage_ingest(tenant=tenant_a, events=[missing])

    assert statuses(result) == [(None, "rejected", "missing idempotency key")]
    assert stored(tenant_a) == []


def test_keys_and_properties_with_copy_special_characters_are_stored_exactly(world, tenant_a):
    key = "tab\there\\back\nslash\rend"
    properties = {"path": "C:\\jobs\\new", "note": "line one\nline\ttwo \"quoted\"", "city": "Malmö 🚀", "n": 2.5}

    result = usage_ingest(tenant=tenant_a, events=[event(key, properties=properties)])

    assert statuses(result) == [(key, "accepted", None)]
    (stored_event,) = stored_events(tenant_a)
    assert stored_event.idempotency_key == key
    assert stored_event.properties == properties


def test_timestamps_are_stored_as_the_instant_they_name(world, tenant_a):
    usage_ingest(tenant=tenant_a, events=[event("k1", timestamp="2026-11-05T14:03:00.25+05:30")])

    (stored_at,) = [e.timestamp for e in stored_events(tenant_a)]
    assert stored_at == datetime(2026, 11, 5, 8, 33, 0, 250000, tzinfo=timezone.utc)


def test_event_that_is_not_an_object_is_rejected(world, tenant_a):
    result = usage_ingest(tenant=tenant_a, events=["k1", event("k2")])

    assert statuses(result) == [(None, "rejected", "event must be an object"), ("k2", "accepted", None)]


def test_repeating_a_batch_reports_every_event_duplicate_and_stores_nothing_new(world, tenant_a):
    batch = [event("k1"), event("k2", quantity=3), event("k3", customer="contoso")]
    usage_ingest(tenant=tenant_a, events=batch)

    again = usage_ingest(tenant=tenant_a, events=batch)

    assert statuses(again) == [("k1", "duplicate", None), ("k2", "duplicate", None), ("k3", "duplicate", None)]
    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, 0)
    assert stored(tenant_a) == [
        ("k1", "northwind", "processed_jobs", Decimal("1")),
        ("k2", "northwind", "processed_jobs", Decimal("3")),
        ("k3", "contoso", "processed_jobs", Decimal("1")),
    ]


@pytest.mark.postgres_store_only(reason="reads the statements the PostgreSQL store sends")
def test_a_batch_of_stored_keys_costs_the_database_only_the_key_claim(world, tenant_a):
    batch = [event("k1"), event("k2", quantity=3)]
    usage_ingest(tenant=tenant_a, events=batch)

    with CaptureQueriesContext(connection) as queries:
        again = usage_ingest(tenant=tenant_a, events=batch + [event("k3", customer="contoso")])

    assert statuses(again) == [("k1", "duplicate", None), ("k2", "duplicate", None), ("k3", "accepted", None)]
    claims = [q["sql"] for q in queries if q["sql"].startswith("INSERT INTO billing_usageeventkey")]
    inserts = [q["sql"] for q in queries if q["sql"].startswith("INSERT INTO billing_usageevent ")]
    assert len(claims) == 1 and "k1" in claims[0] and "k3" in claims[0]
    assert len(inserts) == 1  # the one claimed event; the duplicates were never staged

    with CaptureQueriesContext(connection) as queries:
        usage_ingest(tenant=tenant_a, events=batch)

    assert [q["sql"] for q in queries if "billing_usageevent " in q["sql"] or "billing_usage_ingest_stage" in q["sql"]] == []
    assert stored(tenant_a) == [
        ("k1", "northwind", "processed_jobs", Decimal("1")),
        ("k2", "northwind", "processed_jobs", Decimal("3")),
        ("k3", "contoso", "processed_jobs", Decimal("1")),
    ]


def test_duplicate_key_within_a_batch_keeps_the_first_event(world, tenant_a):
    batch = [event("k1", quantity=5), event("k1", quantity=7), event("k1", quantity=9)]

    result = usage_ingest(tenant=tenant_a, events=batch)

    assert statuses(result) == [("k1", "accepted", None), ("k1", "duplicate", None), ("k1", "duplicate", None)]
    assert stored(tenant_a) == [("k1", "northwind", "processed_jobs", Decimal("5"))]


def test_rejected_event_does_not_claim_its_key_within_the_batch(world, tenant_a):
    result = usage_ingest(tenant=tenant_a, events=[event("k1", metric="nope"), event("k1", quantity=2)])

    assert statuses(result) == [("k1", "rejected", "unknown metric"), ("k1", "accepted", None)]
    assert stored(tenant_a) == [("k1", "northwind", "processed_jobs", Decimal("2"))]


def test_mixed_batch_stores_exactly_the_good_events_in_request_order(world, tenant_a):
    batch = [
        event("good-1"),
        event("bad-customer", customer="ghost"),
        event("good-2", customer="contoso", quantity="4"),
        event("bad-time", timestamp="not a time"),
        event("good-1"),
        event("bad-qty", quantity="many"),
        event("good-3", metric="compute_ms", quantity=12),
    ]

    result = usage_ingest(tenant=tenant_a, events=batch)

    assert statuses(result) == [
        ("good-1", "accepted", None),
        ("bad-customer", "rejected", "unknown customer"),
        ("good-2", "accepted", None),
        ("bad-time", "rejected", "bad timestamp"),
        ("good-1", "duplicate", None),
        ("bad-qty", "rejected", "non-numeric quantity"),
        ("good-3", "accepted", None),
    ]
    assert (result.accepted, result.duplicates, result.rejected) == (3, 1, 3)
    assert stored(tenant_a) == [
        ("good-1", "northwind", "processed_jobs", Decimal("1")),
        ("good-2", "contoso", "processed_jobs", Decimal("4")),
        ("good-3", "northwind", "compute_ms", Decimal("12")),
    ]


def test_customer_of_another_tenant_is_an_unknown_customer(world, tenant_a, tenant_b):
    result = usage_ingest(tenant=tenant_a, events=[event("k1", customer="bergen")])

    assert statuses(result) == [("k1", "rejected", "unknown customer")]
    assert stored(tenant_a) == [] and stored(tenant_b) == []


def test_the_same_key_in_two_tenants_is_stored_once_for_each(world, tenant_a, tenant_b):
    a = usage_ingest(tenant=tenant_a, events=[event("shared")])
    b = usage_ingest(tenant=tenant_b, events=[event("shared", customer="bergen")])

    assert statuses(a) == statuses(b) == [("shared", "accepted", None)]
    assert stored(tenant_a) == [("shared", "northwind", "processed_jobs", Decimal("1"))]
    assert stored(tenant_b) == [("shared", "bergen", "processed_jobs", Decimal("1"))]


def test_more_than_ten_thousand_events_are_refused_whole(world, tenant_a):
    with pytest.raises(IngestRefused, match="at most 10 000 events; this one has 10 001"):
        usage_ingest(tenant=tenant_a, events=[event(f"k{i}") for i in range(10_001)])

    assert stored(tenant_a) == []


def test_ten_thousand_events_are_ingested_in_one_call(world, tenant_a, django_assert_max_num_queries, usage_store):
    batch = [event(f"k{i:05d}", customer="contoso" if i % 2 else "northwind") for i in range(10_000)]
    # As many for 10 000 events as for one. PostgreSQL: the key claim, then the stage and the insert of the
    # claimed events. ClickHouse: the outbox row, and writing it out after the commit.
    queries = {"postgres": 11, "clickhouse": 15}[usage_store.name]

    with django_assert_max_num_queries(queries):
        result = usage_ingest(tenant=tenant_a, events=batch)

    assert (result.accepted, result.duplicates, result.rejected) == (10_000, 0, 0)
    assert len(stored_events(tenant_a)) == 10_000


def _invoice(customer, month_start, status, number=None):
    return Invoice.objects.create(
        tenant=customer.tenant,
        customer=customer,
        period_start=month_start,
        period_end=month_start.replace(day=calendar.monthrange(month_start.year, month_start.month)[1]),
        currency="USD",
        status=status,
        number=number,
    )


def test_event_in_an_invoiced_month_of_the_tenant_time_zone_is_rejected(world, tenant_a):
    tenant_a.time_zone = "Europe/Stockholm"
    tenant_a.save()
    _invoice(world["northwind"], date(2026, 10, 1), "finalized", "ACME-0001")

    result = usage_ingest(
        tenant=tenant_a,
        events=[
            event("oct-utc", timestamp="2026-10-31T22:30:00Z"),  # 23:30 in Stockholm: October, invoiced
            event("nov-local", timestamp="2026-10-31T23:30:00Z"),  # 00:30 on 1 November in Stockholm
            event("other-customer", customer="contoso", timestamp="2026-10-15T12:00:00Z"),
        ],
    )

    assert statuses(result) == [
        ("oct-utc", "rejected", "period already invoiced"),
        ("nov-local", "accepted", None),
        ("other-customer", "accepted", None),
    ]
    assert [key for key, *_ in stored(tenant_a)] == ["nov-local", "other-customer"]


def test_a_time_at_the_edge_of_the_calendar_is_a_bad_timestamp_not_a_lost_batch(world, tenant_a):
    """Year 1 in UTC is year 0 in New York, which Python cannot hold: reading the event's month in the
    tenant's time zone (asked only for a customer with an invoiced month) raised, and the whole batch
    was a 500."""
    tenant_a.time_zone = "America/New_York"
    tenant_a.save()
    _invoice(world["northwind"], date(2026, 10, 1), "finalized", "ACME-0001")

    result = usage_ingest(
        tenant=tenant_a,
        events=[
            event("year-one", timestamp="0001-01-01T00:00:00Z"),
            event("year-max", timestamp="9999-12-31T23:59:59-05:00"),
            event("fine", timestamp="2026-11-05T14:03:00Z"),
        ],
    )

    assert statuses(result) == [
        ("year-one", "rejected", "bad timestamp"),
        ("year-max", "rejected", "bad timestamp"),
        ("fine", "accepted", None),
    ]
    assert [key for key, *_ in stored(tenant_a)] == ["fine"]


def test_paid_invoices_close_their_month_but_drafts_and_void_ones_do_not(world, tenant_a):
    _invoice(world["northwind"], date(2026, 8, 1), "paid", "ACME-0001")
    _invoice(world["northwind"], date(2026, 9, 1), "void")
    _invoice(world["northwind"], date(2026, 10, 1), "draft")

    result = usage_ingest(
        tenant=tenant_a,
        events=[
            event("aug", timestamp="2026-08-10T10:00:00Z"),
            event("sep", timestamp="2026-09-10T10:00:00Z"),
            event("oct", timestamp="2026-10-10T10:00:00Z"),
        ],
    )

    assert statuses(result) == [
        ("aug", "rejected", "period already invoiced"),
        ("sep", "accepted", None),
        ("oct", "accepted", None),
    ]


def test_retry_of_a_stored_event_after_its_month_was_invoiced_is_a_duplicate(world, tenant_a):
    usage_ingest(tenant=tenant_a, events=[event("k1", timestamp="2026-10-10T10:00:00Z")])
    _invoice(world["northwind"], date(2026, 10, 1), "finalized", "ACME-0001")

    result = usage_ingest(
        tenant=tenant_a,
        events=[event("k1", timestamp="2026-10-10T10:00:00Z"), event("k2", timestamp="2026-10-11T10:00:00Z")],
    )

    assert statuses(result) == [("k1", "duplicate", None), ("k2", "rejected", "period already invoiced")]
    assert [key for key, *_ in stored(tenant_a)] == ["k1"]


def test_invoiced_periods_are_empty_while_there_is_no_invoice_model(world, tenant_a, monkeypatch):
    def no_invoice(app_label, model_name):
        raise LookupError(model_name)

    monkeypatch.setattr(metering.apps, "get_model", no_invoice)

    assert metering._invoiced_periods(tenant_a, [world["northwind"].pk]) == set()


# --- totals ---------------------------------------------------------------------------------------


def _event(customer, metric, when, quantity="1", **properties):
    return UsageEventFactory(
        customer=customer,
        tenant=customer.tenant,
        metric_code=metric,
        timestamp=datetime.fromisoformat(when),
        quantity=Decimal(quantity),
        properties=properties,
    )


def _totals(tenant, **kwargs):
    return usage_totals(tenant=tenant, period_start=date(2026, 11, 1), period_end=date(2026, 11, 30), **kwargs)


@pytest.fixture
def november(world, tenant_a, tenant_b, usage_store):
    """Usage of November 2026 (and its edges) for both tenants, in each usage-event store in turn."""
    n, c, b = world["northwind"], world["contoso"], world["bergen"]
    with platform_scope():
        for code, aggregation, field, filters in [
            ("created_jobs", "count", "quantity", {}),
            ("compute_ms", "sum", "quantity", {}),
            ("data_gb", "sum", "gb", {}),
            ("peak_seats", "max", "quantity", {}),
            ("unique_jobs", "unique_count", "job_id", {}),
            ("plan_seats", "latest", "quantity", {}),
            ("failed_jobs", "count", "quantity", {"status": ["failed", "crashed"]}),
        ]:
            BillableMetric.objects.update_or_create(
                tenant=tenant_a,
                code=code,
                defaults={"name": code, "aggregation": aggregation, "field": field, "filters": filters},
            )
        BillableMetricFactory(tenant=tenant_b, code="created_jobs")
        _event(n, "created_jobs", "2026-11-01T00:00:00+00:00")
        _event(n, "created_jobs", "2026-11-15T12:00:00+00:00")
        _event(n, "created_jobs", "2026-11-30T23:59:59+00:00")
        _event(n, "created_jobs", "2026-10-31T23:59:59+00:00")  # October
        _event(n, "created_jobs", "2026-12-01T00:00:00+00:00")  # December
        _event(c, "created_jobs", "2026-11-02T08:00:00+00:00")
        _event(b, "created_jobs", "2026-11-02T08:00:00+00:00")  # tenant B
        _event(n, "compute_ms", "2026-11-03T08:00:00+00:00", "1200.25")
        _event(n, "compute_ms", "2026-11-04T08:00:00+00:00", "0.5")
        _event(c, "compute_ms", "2026-11-04T08:00:00+00:00", "7")
        _event(n, "data_gb", "2026-11-03T08:00:00+00:00", gb=1.25)
        _event(n, "data_gb", "2026-11-04T08:00:00+00:00", gb=2)
        _event(n, "data_gb", "2026-11-05T08:00:00+00:00", gb="lots")  # not a number: ignored
        _event(n, "data_gb", "2026-11-05T09:00:00+00:00", gb=" 0.5")  # a numeric string counts
        _event(n, "data_gb", "2026-11-06T08:00:00+00:00")  # no gb: ignored
        _event(n, "peak_seats", "2026-11-03T08:00:00+00:00", "12")
        _event(n, "peak_seats", "2026-11-04T08:00:00+00:00", "40")
        _event(n, "peak_seats", "2026-11-05T08:00:00+00:00", "9")
        _event(n, "unique_jobs", "2026-11-03T08:00:00+00:00", job_id="j1")
        _event(n, "unique_jobs", "2026-11-04T08:00:00+00:00", job_id="j2")
        _event(n, "unique_jobs", "2026-11-05T08:00:00+00:00", job_id="j1")
        _event(n, "unique_jobs", "2026-11-06T08:00:00+00:00")
        _event(n, "plan_seats", "2026-11-20T08:00:00+00:00", "25")  # latest, stored first
        _event(n, "plan_seats", "2026-11-03T08:00:00+00:00", "10")
        _event(n, "plan_seats", "2026-11-10T08:00:00+00:00", "30")
        _event(n, "failed_jobs", "2026-11-03T08:00:00+00:00", status="failed")
        _event(n, "failed_jobs", "2026-11-04T08:00:00+00:00", status="crashed")
        _event(n, "failed_jobs", "2026-11-05T08:00:00+00:00", status="succeeded")
        _event(n, "failed_jobs", "2026-11-06T08:00:00+00:00")
        _event(c, "failed_jobs", "2026-11-06T08:00:00+00:00", status="failed")
    return world


def test_usage_totals_apply_each_metric_aggregation_exactly(november, tenant_a):
    n, c = november["northwind"].pk, november["contoso"].pk

    assert _totals(tenant_a) == {
        (n, "created_jobs"): Decimal(3),
        (c, "created_jobs"): Decimal(1),
        (n, "compute_ms"): Decimal("1200.75"),
        (c, "compute_ms"): Decimal("7"),
        (n, "data_gb"): Decimal("3.75"),
        (n, "peak_seats"): Decimal("40"),
        (n, "unique_jobs"): Decimal(2),
        (n, "plan_seats"): Decimal("25"),
        (n, "failed_jobs"): Decimal(2),
        (c, "failed_jobs"): Decimal(1),
    }


def test_usage_totals_of_one_tenant_never_include_another_tenants_events(november, tenant_b):
    assert _totals(tenant_b) == {(november["bergen"].pk, "created_jobs"): Decimal(1)}


def test_usage_totals_can_be_limited_to_some_customers(november, tenant_a):
    c = november["contoso"].pk

    assert _totals(tenant_a, customer_ids=[c]) == {
        (c, "created_jobs"): Decimal(1),
        (c, "compute_ms"): Decimal("7"),
        (c, "failed_jobs"): Decimal(1),
    }
    assert _totals(tenant_a, customer_ids=[]) == {}


def test_usage_totals_read_the_month_in_the_tenant_time_zone(november, tenant_a):
    tenant_a.time_zone = "Europe/Stockholm"  # UTC+1 in November
    tenant_a.save()
    n = november["northwind"].pk

    totals = _totals(tenant_a, customer_ids=[n])

    # 2026-10-31T23:59:59Z is 1 November in Stockholm; 2026-11-30T23:59:59Z is already 1 December.
    assert totals[(n, "created_jobs")] == Decimal(3)


@pytest.mark.parametrize("usage_store", ["postgres"], indirect=True)
def test_usage_totals_run_one_query_per_metric(november, tenant_a, django_assert_num_queries):
    metrics = BillableMetric.objects.for_tenant(tenant_a).count()

    with django_assert_num_queries(1 + metrics):
        _totals(tenant_a)


def test_usage_totals_refuse_datetimes_and_reversed_periods(world, tenant_a):
    with pytest.raises(ValueError, match="must be dates"):
        usage_totals(tenant=tenant_a, period_start=NOW, period_end=date(2026, 11, 30))
    with pytest.raises(ValueError, match="before period_start"):
        usage_totals(tenant=tenant_a, period_start=date(2026, 11, 30), period_end=date(2026, 11, 1))


def test_metric_filters_must_be_plain_values(tenant_a):
    metric = BillableMetric(tenant=tenant_a, code="bad", name="Bad", filters={"status": []})

    with tenant_scope(tenant_a), pytest.raises(ValidationError, match="non-empty list"):
        metric.full_clean()


def test_a_customer_with_usage_cannot_be_deleted(world, tenant_a):
    usage_ingest(tenant=tenant_a, events=[event("k1")])

    with tenant_scope(tenant_a), pytest.raises(ProtectedError):
        world["northwind"].delete()


def test_two_metrics_can_read_the_same_events(world, tenant_a):
    """All processed jobs are billed; the failed ones among them are credited: one event stream."""
    n = world["northwind"]
    with platform_scope():
        BillableMetricFactory(tenant=tenant_a, code="job_runs")
        BillableMetricFactory(
            tenant=tenant_a, code="failed_job_runs", event_code="job_runs", filters={"status": ["failed"]}
        )
    _event(n, "job_runs", "2026-11-03T08:00:00+00:00", status="succeeded")
    _event(n, "job_runs", "2026-11-04T08:00:00+00:00", status="failed")
    _event(n, "job_runs", "2026-11-05T08:00:00+00:00", status="succeeded")

    totals = _totals(tenant_a)
    assert (totals[(n.pk, "job_runs")], totals[(n.pk, "failed_job_runs")]) == (Decimal(3), Decimal(1))


def test_events_may_name_a_metric_by_its_event_code(world, tenant_a):
    with platform_scope():
        BillableMetricFactory(tenant=tenant_a, code="failures", event_code="job_events", filters={"status": ["failed"]})
    result = usage_ingest(
        tenant=tenant_a,
        events=[{"customer": world["northwind"].external_ref, "metric": "job_events", "idempotency_key": "k1",
                 "timestamp": "2026-11-03T08:00:00+00:00", "properties": {"status": "failed"}}],
    )
    assert [r.status for r in result.results] == ["accepted"]


# --- hostile input: the plausibility window, properties limits, a client-supplied tenant -------


def _settings(tenant, **values):
    with tenant_scope(tenant):
        BillingSettingsFactory(tenant=tenant, **values)


def test_an_event_before_the_customers_first_contract_month_is_rejected(world, tenant_a):
    ContractFactory(customer=world["northwind"], start_date=date(2026, 3, 15))
    ContractFactory(customer=world["northwind"], start_date=date(2026, 6, 1))
    batch = [
        event("feb", timestamp="2026-02-28T23:59:59Z"),
        event("mar", timestamp="2026-03-01T00:00:00Z"),  # the first contract's month, before its first day
        event("contoso-1970", customer="contoso", timestamp="1970-01-01T00:00:00Z"),  # no contract, no limit set
    ]

    result = usage_ingest(tenant=tenant_a, events=batch, now=NOW)

    assert statuses(result) == [
        ("feb", "rejected", "timestamp before the customer's first contract month"),
        ("mar", "accepted", None),
        ("contoso-1970", "accepted", None),
    ]
    assert [key for key, *_ in stored(tenant_a)] == ["contoso-1970", "mar"]


def test_the_first_contract_month_is_read_in_the_tenant_time_zone(world, tenant_a):
    tenant_a.time_zone = "America/New_York"
    tenant_a.save()
    ContractFactory(customer=world["northwind"], start_date=date(2026, 3, 10))
    batch = [
        event("utc-march-ny-february", timestamp="2026-03-01T04:59:59Z"),
        event("ny-march", timestamp="2026-03-01T05:00:00Z"),
    ]

    result = usage_ingest(tenant=tenant_a, events=batch, now=NOW)

    assert [r.status for r in result.results] == ["rejected", "accepted"]


def test_an_event_more_than_a_day_ahead_is_rejected_by_default(world, tenant_a):
    batch = [
        event("ahead-24h", timestamp="2026-11-21T09:00:00Z"),
        event("ahead-24h-1s", timestamp="2026-11-21T09:00:01Z"),
        event("year-9999", timestamp="9999-12-31T00:00:00Z"),
    ]

    result = usage_ingest(tenant=tenant_a, events=batch, now=NOW)

    assert statuses(result) == [
        ("ahead-24h", "accepted", None),
        ("ahead-24h-1s", "rejected", "timestamp more than 24 hours in the future"),
        ("year-9999", "rejected", "timestamp more than 24 hours in the future"),
    ]


def test_the_tenants_billing_settings_set_the_window(world, tenant_a, tenant_b):
    _settings(tenant_a, usage_max_age_days=30, usage_max_future_hours=0)
    ContractFactory(customer=world["northwind"], start_date=date(2026, 11, 1))
    batch = [
        event("31-days-old", customer="contoso", timestamp="2026-10-20T08:59:59Z"),
        event("30-days-old", customer="contoso", timestamp="2026-10-21T09:00:00Z"),
        # the later bound wins: the contract month starts after the 30 days
        event("before-contract", timestamp="2026-10-25T00:00:00Z"),
        event("one-second-ahead", timestamp="2026-11-20T09:00:01Z"),
        event("now", timestamp="2026-11-20T09:00:00Z"),
    ]

    result = usage_ingest(tenant=tenant_a, events=batch, now=NOW)
    ahead = event("b", customer="bergen", timestamp="2026-11-21T08:00:00Z")
    other = usage_ingest(tenant=tenant_b, events=[ahead], now=NOW)

    assert statuses(result) == [
        ("31-days-old", "rejected", "timestamp more than 30 days in the past"),
        ("30-days-old", "accepted", None),
        ("before-contract", "rejected", "timestamp before the customer's first contract month"),
        ("one-second-ahead", "rejected", "timestamp more than 0 hours in the future"),
        ("now", "accepted", None),
    ]
    assert statuses(other) == [("b", "accepted", None)]  # tenant B keeps the defaults


def test_a_retry_of_a_stored_event_now_outside_the_window_is_a_duplicate(world, tenant_a):
    usage_ingest(tenant=tenant_a, events=[event("k1", timestamp="2026-10-01T00:00:00Z")], now=NOW)
    _settings(tenant_a, usage_max_age_days=7)

    result = usage_ingest(tenant=tenant_a, events=[event("k1", timestamp="2026-10-01T00:00:00Z")], now=NOW)

    assert statuses(result) == [("k1", "duplicate", None)]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"usage_max_age_days": 0}, "usage_max_age_days"),
        ({"usage_max_age_days": 3661}, "usage_max_age_days"),
        ({"usage_max_future_hours": 24 * 31 + 1}, "usage_max_future_hours"),
        ({"usage_max_future_hours": -1}, "usage_max_future_hours"),
    ],
)
def test_window_settings_out_of_range_are_refused(tenant_a, values, field):
    settings = BillingSettings(tenant=tenant_a, **values)

    with tenant_scope(tenant_a), pytest.raises(ValidationError) as refused:
        settings.full_clean()

    assert list(refused.value.message_dict) == [field]


def test_a_tenant_member_in_an_event_is_refused_as_the_rest_endpoints_refuse_it(world, tenant_a, tenant_b):
    result = usage_ingest(tenant=tenant_a, events=[event("k1", tenant=tenant_b.pk), event("k2")], now=NOW)

    assert statuses(result) == [
        ("k1", "rejected", TenantModelSerializer.tenant_error),
        ("k2", "accepted", None),
    ]
    assert metering.TENANT_REFUSED == TenantModelSerializer.tenant_error


def test_properties_are_capped_at_4096_bytes_of_json(world, tenant_a):
    def padded(size, char="x"):
        # {"p":"…"} is 8 bytes around the padding
        return {"p": char * ((size - 8) // len(char.encode()))}

    batch = [
        event("at-limit", properties=padded(4096)),
        event("over-limit", properties=padded(4097)),
        event("multibyte-over", properties=padded(4098, "é")),  # 2 045 characters, 4 098 bytes
        event("megabyte", properties={"blob": "x" * 1_000_000}),
    ]
    assert len(metering._dump_properties(batch[0]["properties"])) == 4096

    result = usage_ingest(tenant=tenant_a, events=batch, now=NOW)

    assert statuses(result) == [
        ("at-limit", "accepted", None),
        ("over-limit", "rejected", "properties larger than 4096 bytes of JSON"),
        ("multibyte-over", "rejected", "properties larger than 4096 bytes of JSON"),
        ("megabyte", "rejected", "properties larger than 4096 bytes of JSON"),
    ]


def _nested(levels):
    value = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_properties_may_nest_eight_levels_and_no_more(world, tenant_a):
    deep = {}
    for _ in range(100_000):  # far beyond Python's recursion limit
        deep = {"a": deep}
    batch = [
        event("eight", properties=_nested(8)),
        event("nine", properties=_nested(9)),
        event("list-levels", properties={"a": [[[[[[["seven lists deep"]]]]]]]}),  # 8 levels with the object
        event("deep", properties=deep),
    ]

    result = usage_ingest(tenant=tenant_a, events=batch, now=NOW)

    assert statuses(result) == [
        ("eight", "accepted", None),
        ("nine", "rejected", "properties nested deeper than 8 levels"),
        ("list-levels", "accepted", None),
        ("deep", "rejected", "properties nested deeper than 8 levels"),
    ]


def test_values_of_every_wrong_type_reject_their_own_event_only(world, tenant_a):
    cyclic = {}
    cyclic["self"] = cyclic
    batch = [
        None, 7, "text", [event("in-a-list")], 1.5,
        event("nan-quantity", quantity=float("nan")),
        event("inf-quantity", quantity=Decimal("Infinity")),
        event("huge-quantity", quantity=10**5000),
        event("bool-quantity", quantity=True),
        event("nan-property", properties={"x": float("nan")}),
        event("huge-property", properties={"x": 10**5000}),
        event("cyclic-property", properties=cyclic),
        event("list-customer", customer=["northwind"]),
        event("dict-metric", metric={"code": "processed_jobs"}),
        event("number-timestamp", timestamp=1_700_000_000),
        event("list-properties", properties=["a"]),
        {"idempotency_key": ["k"]},
        {"idempotency_key": float("nan")},
        event("good"),
    ]

    result = usage_ingest(tenant=tenant_a, events=batch, now=NOW)

    assert [r.reason for r in result.results] == [
        "event must be an object", "event must be an object", "event must be an object",
        "event must be an object", "event must be an object",
        "non-numeric quantity", "non-numeric quantity", "quantity out of range", "non-numeric quantity",
        "properties contain values that cannot be stored", "properties contain values that cannot be stored",
        "properties nested deeper than 8 levels",
        "unknown customer", "unknown metric", "bad timestamp", "properties must be an object",
        "idempotency key must be a string", "idempotency key must be a string",
        None,
    ]
    assert [key for key, *_ in stored(tenant_a)] == ["good"]


# --- properties written by orjson, judged by json where orjson would differ -------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), Decimal("NaN")])
def test_a_non_finite_property_is_refused_though_orjson_would_write_null(world, tenant_a, value):
    result = usage_ingest(tenant=tenant_a, events=[event("k1", properties={"x": value})], now=NOW)

    assert statuses(result) == [("k1", "rejected", "properties contain values that cannot be stored")]


def test_a_null_property_is_stored_as_null(world, tenant_a):
    usage_ingest(tenant=tenant_a, events=[event("k1", properties={"x": None, "y": "null"})], now=NOW)

    assert [e.properties for e in stored_events(tenant_a)] == [{"x": None, "y": "null"}]


def test_a_datetime_property_is_refused_as_json_refuses_it(world, tenant_a):
    result = usage_ingest(tenant=tenant_a, events=[event("k1", properties={"at": NOW})], now=NOW)

    assert statuses(result) == [("k1", "rejected", "properties contain values that cannot be stored")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "texts",
    [
        # A quote or a backslash anywhere: every element is escaped.
        ["northwind", 'quote"d', "back\\slash", "a,b", "{braced}", " padded ", "NULL", "", "it's", "tab\tnew\nline"],
        # Neither: the elements go in as they are, between quotes (the path of almost every batch).
        ["northwind", "a,b", "{braced}", " padded ", "NULL", "", "it's", "tab\tnew\nline", "ünïcode", "\u2028"],
        [""],
    ],
)
def test_an_array_literal_reads_back_as_exactly_the_values_it_was_built_from(texts):
    keyed = dict.fromkeys(texts)  # the ingestion's rows: key -> line
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[]",
            [_array_literal(texts), _array_literal(keyed), _array_literal(text for text in texts),
             _array_literal([1, 22, 9_007_199_254_740_993]), _array_literal([])],
        )
        assert cursor.fetchone() == (texts, list(keyed), texts, [1, 22, 9_007_199_254_740_993], [])
