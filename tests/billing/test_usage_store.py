"""The usage-event store: both stores ingest exactly once and aggregate alike; ClickHouse keeps tenants apart
and recovers batches a crash left between PostgreSQL and ClickHouse."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from billing import metering
from billing.metering import usage_ingest, usage_totals
from billing.models import BillableMetric, UsageEvent, UsageEventBatch, UsageEventKey
from billing.selectors import metric_event_amounts
from billing.usage_store.clickhouse import TABLE
from tests.billing.factories import BillableMetricFactory, usage_events_write
from tests.customers.factories import CustomerFactory

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)
D = Decimal


@pytest.fixture
def world(tenant_a, tenant_b):
    return {
        "northwind": CustomerFactory(tenant=tenant_a, external_ref="northwind"),
        "contoso": CustomerFactory(tenant=tenant_a, external_ref="contoso"),
        "bergen": CustomerFactory(tenant=tenant_b, external_ref="bergen"),
        "jobs": BillableMetricFactory(tenant=tenant_a, code="jobs"),
        "jobs_b": BillableMetricFactory(tenant=tenant_b, code="jobs"),
    }


def event(key, customer="northwind", metric="jobs", when="2026-11-05T14:03:00Z", quantity=1, **properties):
    return {"customer": customer, "metric": metric, "timestamp": when, "idempotency_key": key,
            "quantity": quantity, "properties": properties}


def statuses(result):
    return [(r.idempotency_key, r.status) for r in result.results]


def metric(tenant, code, aggregation, field="quantity", filters=None):
    return BillableMetricFactory(tenant=tenant, code=code, aggregation=aggregation, field=field, filters=filters or {})


def test_a_repeated_batch_is_all_duplicates_in_either_store(usage_store, world, tenant_a):
    batch = [event("k1"), event("k2"), event("k1")]

    first = usage_ingest(tenant=tenant_a, events=batch, now=NOW)
    second = usage_ingest(tenant=tenant_a, events=batch, now=NOW)

    assert statuses(first) == [("k1", "accepted"), ("k2", "accepted"), ("k1", "duplicate")]
    assert statuses(second) == [("k1", "duplicate"), ("k2", "duplicate"), ("k1", "duplicate")]
    n = world["northwind"].pk
    assert usage_totals(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END) == {(n, "jobs"): D(2)}


def test_the_same_key_in_two_tenants_counts_once_for_each_in_either_store(usage_store, world, tenant_a, tenant_b):
    usage_ingest(tenant=tenant_a, events=[event("k1")], now=NOW)
    result = usage_ingest(tenant=tenant_b, events=[event("k1", customer="bergen")], now=NOW)

    assert statuses(result) == [("k1", "accepted")]
    assert usage_totals(tenant=tenant_b, period_start=NOV_START, period_end=NOV_END) == {
        (world["bergen"].pk, "jobs"): D(1)
    }


def test_a_retry_outside_the_window_is_a_duplicate_in_either_store(usage_store, world, tenant_a):
    usage_ingest(tenant=tenant_a, events=[event("k1", when="2026-11-20T08:00:00Z")], now=NOW)

    later = usage_ingest(tenant=tenant_a, events=[event("k1", when="2026-11-20T08:00:00Z")], now=datetime(2026, 11, 18, tzinfo=timezone.utc))

    assert statuses(later) == [("k1", "duplicate")]


@pytest.fixture
def every_aggregation(world, tenant_a, tenant_b):
    """Both tenants' November, through usage_ingest, read by a metric of every aggregation."""
    for code, aggregation, field, filters in [
        ("calls", "count", "quantity", {}),
        ("compute", "sum", "quantity", {}),
        ("gb", "sum", "gb", {}),
        ("peak", "max", "quantity", {}),
        ("unique_jobs", "unique_count", "job_id", {}),
        ("seats_now", "latest", "quantity", {}),
        ("seats", "weighted_sum", "delta", {}),
        ("failed", "count", "quantity", {"status": ["failed", "crashed"], "retry": False}),
    ]:
        metric(tenant_a, code, aggregation, field, filters)
    metric(tenant_b, "calls", "count")
    usage_ingest(tenant=tenant_a, now=NOW, events=[
        event("c1", metric="calls", when="2026-11-01T00:00:00Z"),
        event("c2", metric="calls", when="2026-11-30T23:59:59Z"),
        event("c3", metric="calls", when="2026-10-31T23:59:59Z"),  # October
        event("c4", customer="contoso", metric="calls", when="2026-11-02T08:00:00Z"),
        event("m1", metric="compute", quantity="1200.25"),
        event("m2", metric="compute", quantity="0.5", when="2026-11-06T00:00:00Z"),
        event("g1", metric="gb", gb=1.25),
        event("g2", metric="gb", gb=" 0.5"),
        event("g3", metric="gb", gb="lots"),
        event("g4", metric="gb"),
        event("p1", metric="peak", quantity=12),
        event("p2", metric="peak", quantity=40, when="2026-11-06T00:00:00Z"),
        event("u1", metric="unique_jobs", job_id="j1"),
        event("u2", metric="unique_jobs", job_id="j2"),
        event("u3", metric="unique_jobs", job_id="j1"),
        event("u4", metric="unique_jobs"),
        event("l1", metric="seats_now", quantity=25, when="2026-11-20T08:00:00Z"),
        event("l2", metric="seats_now", quantity=10, when="2026-11-03T08:00:00Z"),
        # 3 seats the whole month and 2 more from the 16th: 3 + 2 × 15/30 = 4.
        event("s1", metric="seats", when="2026-11-01T00:00:00Z", delta=3),
        event("s2", metric="seats", when="2026-11-16T00:00:00Z", delta="2"),
        event("f1", metric="failed", status="failed", retry=False),
        event("f2", metric="failed", status="crashed", retry=True),
        event("f3", metric="failed", status="succeeded", retry=False),
        event("f4", customer="contoso", metric="failed", status="crashed", retry=False),
    ])
    usage_ingest(tenant=tenant_b, now=NOW, events=[event("c1", customer="bergen", metric="calls")])
    return world


def test_every_aggregation_totals_the_same_in_either_store(usage_store, every_aggregation, tenant_a):
    n, c = every_aggregation["northwind"].pk, every_aggregation["contoso"].pk

    assert usage_totals(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END) == {
        (n, "calls"): D(2),
        (c, "calls"): D(1),
        (n, "compute"): D("1200.75"),
        (n, "gb"): D("1.75"),
        (n, "peak"): D(40),
        (n, "unique_jobs"): D(2),
        (n, "seats_now"): D(25),
        (n, "seats"): D("4.000000"),
        (n, "failed"): D(1),
        (c, "failed"): D(1),
    }


def test_totals_can_be_limited_to_some_customers_in_either_store(usage_store, every_aggregation, tenant_a):
    c = every_aggregation["contoso"].pk

    assert usage_totals(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END, customer_ids=[c]) == {
        (c, "calls"): D(1),
        (c, "failed"): D(1),
    }


def test_one_tenants_totals_never_include_anothers_in_either_store(usage_store, every_aggregation, tenant_b):
    assert usage_totals(tenant=tenant_b, period_start=NOV_START, period_end=NOV_END) == {
        (every_aggregation["bergen"].pk, "calls"): D(1)
    }


def test_event_amounts_come_event_by_event_in_time_order_in_either_store(usage_store, every_aggregation, tenant_a):
    gb = BillableMetric.objects.for_tenant(tenant_a).get(code="gb")
    n = every_aggregation["northwind"].pk

    amounts = metric_event_amounts(tenant=tenant_a, metric=gb, period_start=NOV_START, period_end=NOV_END)

    assert amounts == {n: [D("1.25"), D("0.5"), D(0), D(0)]}


def test_event_counts_fall_in_the_buckets_between_bounds_in_either_store(usage_store, every_aggregation, tenant_a):
    n, c = every_aggregation["northwind"].pk, every_aggregation["contoso"].pk
    bounds = [datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 5, tzinfo=timezone.utc),
              datetime(2026, 12, 1, tzinfo=timezone.utc)]

    counts = usage_store.event_counts(tenant=tenant_a, bounds=bounds)

    # Before 5 November: c1, s1 and l2 of northwind, c4 of contoso; c3 (October) is in no bucket.
    assert counts == {n: {1: 3, 2: 18}, c: {1: 1, 2: 1}}


def test_the_first_event_is_the_tenants_own_in_either_store(usage_store, every_aggregation, tenant_a, tenant_b):
    assert usage_store.first_event_at(tenant=tenant_a) == datetime(2026, 10, 31, 23, 59, 59, tzinfo=timezone.utc)
    assert usage_store.first_event_at(tenant=tenant_b) == datetime(2026, 11, 5, 14, 3, tzinfo=timezone.utc)


def test_reads_by_time_alone_find_every_metric_code_in_either_store(usage_store, tenant_a, tenant_b):
    """PostgreSQL's one event index leads with the metric code, so its reads by time go through the
    tenant's codes: events of three codes (one that no metric defines) over two months are all read,
    and another tenant's are not."""
    northwind = CustomerFactory(tenant=tenant_a, external_ref="northwind")
    bergen = CustomerFactory(tenant=tenant_b, external_ref="bergen")

    def at(month, day, hour=12):
        return datetime(2026, month, day, hour, tzinfo=timezone.utc)

    def stored(tenant, customer, rows):
        usage_events_write([
            UsageEvent(tenant=tenant, customer=customer, metric_code=code, timestamp=when, idempotency_key=key,
                       quantity=quantity, properties={"region": "eu-north-1"} if key == "a2" else {}, received_at=NOW)
            for key, code, when, quantity in rows
        ])

    stored(tenant_a, northwind, [
        ("r1", "retired", at(10, 31, 23), 1), ("a1", "api_calls", at(11, 2), 2), ("j1", "jobs", at(11, 2, 13), 3),
        ("r2", "retired", at(11, 15), 4), ("a2", "api_calls", at(11, 30, 23), 5), ("j2", "jobs", at(12, 1, 0), 6),
    ])
    stored(tenant_b, bergen, [("b1", "bergen_only", at(10, 1), 7), ("b2", "api_calls", at(11, 2), 8)])
    nov, dec = at(11, 1, 0), at(12, 1, 0)

    assert usage_store.first_event_at(tenant=tenant_a) == at(10, 31, 23)
    assert usage_store.event_counts(tenant=tenant_a, bounds=[nov, at(11, 15, 0), dec]) == {
        northwind.pk: {1: 2, 2: 2}
    }
    newest = usage_store.event_list(tenant=tenant_a, limit=3, offset=1)
    assert [(e.idempotency_key, e.metric_code, e.quantity, e.properties) for e in newest] == [
        ("a2", "api_calls", D(5), {"region": "eu-north-1"}), ("r2", "retired", D(4), {}), ("j1", "jobs", D(3), {})
    ]
    assert [e.idempotency_key for e in usage_store.event_list(tenant=tenant_a, start=nov, end=dec)] == [
        "a2", "r2", "j1", "a1"
    ]
    assert [e.idempotency_key for e in usage_store.event_list(tenant=tenant_a, metric_code="retired")] == ["r2", "r1"]
    assert usage_store.day_figures(tenant=tenant_a, start=at(10, 1, 0), end=dec) == {
        date(2026, 10, 31): (1, D(1)), date(2026, 11, 2): (2, D(5)), date(2026, 11, 15): (1, D(4)),
        date(2026, 11, 30): (1, D(5)),
    }
    assert usage_store.keys_between(tenant=tenant_a, start=at(11, 2, 0), end=at(11, 3, 0)) == {"a1", "j1"}
    assert [(e.idempotency_key, e.timestamp) for e in usage_store.events_between(tenant=tenant_a, start=at(11, 30, 0),
                                                                                 end=at(12, 2, 0))] == [
        ("a2", at(11, 30, 23)), ("j2", at(12, 1, 0))
    ]
    assert usage_store.first_event_at(tenant=tenant_b) == at(10, 1)


# --- ClickHouse only --------------------------------------------------------------------------------


@pytest.mark.parametrize("usage_store", ["clickhouse"], indirect=True)
def test_clickhouse_refuses_a_query_without_the_tenant(usage_store, tenant_a):
    with pytest.raises(ValueError, match="filters by tenant_id"):
        usage_store._select(f"SELECT count() FROM {TABLE}", {"tenant": tenant_a.pk})


@pytest.mark.parametrize("usage_store", ["clickhouse"], indirect=True)
def test_clickhouse_keeps_keys_in_postgres_and_events_out_of_it(usage_store, world, tenant_a):
    usage_ingest(tenant=tenant_a, events=[event("k1"), event("k2")], now=NOW)

    assert sorted(UsageEventKey.objects.for_tenant(tenant_a).values_list("idempotency_key", flat=True)) == ["k1", "k2"]
    assert not UsageEventBatch.objects.for_tenant(tenant_a).exists()  # written, so gone from the outbox
    rows = usage_store._select(f"SELECT count() FROM {TABLE} WHERE tenant_id = %(tenant)s", {"tenant": tenant_a.pk})
    assert rows == [["2"]]


@pytest.mark.parametrize("usage_store", ["clickhouse"], indirect=True)
def test_a_batch_a_crash_left_unwritten_is_written_once_by_the_flush(usage_store, world, tenant_a, monkeypatch):
    monkeypatch.setattr(usage_store, "_after_commit", lambda write: None)  # the process dies after the commit
    usage_ingest(tenant=tenant_a, events=[event("k1"), event("k2")], now=NOW)
    n = world["northwind"].pk
    assert usage_totals(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END) == {}
    batch = UsageEventBatch.objects.for_tenant(tenant_a).get()

    # ClickHouse took the batch but the process died before deleting it: the flush writes it again.
    usage_store.backend.insert(batch.rows, token=f"usage-batch-{tenant_a.pk}-{batch.pk}")
    assert usage_store.pending_flush(tenant=tenant_a) == 1

    assert usage_totals(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END) == {(n, "jobs"): D(2)}
    assert not UsageEventBatch.objects.for_tenant(tenant_a).exists()
    assert usage_store.pending_flush(tenant=tenant_a) == 0


@pytest.mark.parametrize("usage_store", ["clickhouse"], indirect=True)
def test_a_failed_write_stays_pending_and_the_ingest_still_succeeds(usage_store, world, tenant_a, monkeypatch):
    def refuse(data, token):
        raise ConnectionError("ClickHouse is down")

    monkeypatch.setattr(usage_store.backend, "insert", refuse)

    result = usage_ingest(tenant=tenant_a, events=[event("k1")], now=NOW)

    assert statuses(result) == [("k1", "accepted")]
    assert UsageEventBatch.objects.for_tenant(tenant_a).count() == 1


@pytest.mark.parametrize("usage_store", ["clickhouse"], indirect=True)
def test_the_draft_run_writes_pending_batches_before_pricing(usage_store, world, tenant_a, monkeypatch):
    from billing.services import invoice_compute_drafts

    monkeypatch.setattr(usage_store, "_after_commit", lambda write: None)
    usage_ingest(tenant=tenant_a, events=[event("k1")], now=NOW)

    invoice_compute_drafts(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END)

    assert not UsageEventBatch.objects.for_tenant(tenant_a).exists()
    assert usage_totals(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END) == {
        (world["northwind"].pk, "jobs"): D(1)
    }


@pytest.mark.parametrize("usage_store", ["clickhouse"], indirect=True)
def test_the_flush_task_writes_every_tenants_pending_batches(usage_store, world, tenant_a, tenant_b, monkeypatch):
    from billing.tasks import usage_store_flush

    monkeypatch.setattr(usage_store, "_after_commit", lambda write: None)
    usage_ingest(tenant=tenant_a, events=[event("k1")], now=NOW)
    usage_ingest(tenant=tenant_b, events=[event("k1", customer="bergen"), event("k2", customer="bergen")], now=NOW)

    assert usage_store_flush.delay().get() == 2

    assert usage_totals(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END) == {
        (world["northwind"].pk, "jobs"): D(1)
    }
    assert usage_totals(tenant=tenant_b, period_start=NOV_START, period_end=NOV_END) == {
        (world["bergen"].pk, "jobs"): D(2)
    }


def test_the_flush_task_is_a_no_op_on_the_postgres_store(db):
    from billing.tasks import usage_store_flush

    assert usage_store_flush.delay().get() == 0


def test_savings_are_summed_per_customer_code_and_bucket_in_either_store(usage_store, world, tenant_a, tenant_b):
    metric(tenant_a, "savings", "sum", "savings")
    metric(tenant_b, "savings", "sum", "savings")
    usage_ingest(tenant=tenant_a, now=NOW, events=[
        event("s1", metric="savings", when="2026-11-02T00:00:00Z", baseline=1000, optimized="700.5"),
        event("s2", metric="savings", when="2026-11-03T00:00:00Z", baseline="100", optimized=150),  # spent more
        event("s3", metric="savings", when="2026-11-20T00:00:00Z", baseline="-5", optimized="lots"),  # both 0
        event("s4", metric="jobs", when="2026-11-20T00:00:00Z", baseline=99, optimized=1),  # another code
    ])
    usage_ingest(tenant=tenant_b, now=NOW, events=[
        event("s1", customer="bergen", metric="savings", when="2026-11-02T00:00:00Z", baseline=5000, optimized=1),
    ])
    n, bergen = world["northwind"].pk, world["bergen"].pk
    bounds = [datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc),
              datetime(2026, 12, 1, tzinfo=timezone.utc)]

    # Bergen's id asked for under tenant A's name: tenant B's events stay out.
    found = usage_store.savings_buckets(tenant=tenant_a, metric_codes=["savings"], bounds=bounds, customer_ids=[n, bergen])

    assert found == {
        (n, "savings", 1): [D("1100"), D("850.5"), D("299.5"), 2],
        (n, "savings", 2): [D(0), D(0), D(0), 1],
    }


@pytest.mark.usage_events
def test_a_test_marked_usage_events_runs_on_each_store_in_turn(request, tenant_a):
    """The marker's parameter is the store the code under test gets (tests/conftest.py)."""
    assert metering.usage_store().name == request.node.callspec.params["usage_store_kind"]
