"""Usage events partitioned by UTC month: placement, pruning, idempotency across months, maintenance, RLS."""

import re
from datetime import date, datetime, timezone

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.metering import usage_ingest, usage_store, usage_totals
from billing.models import UsageEvent, UsageEventKey
from billing.partitions import DEFAULT_PARTITION, partition_name, usage_partitions, usage_partitions_ensure
from billing.tasks import usage_partitions_maintain
from customers.rls import partitions_of, row_level_security_problems
from customers.tenancy import platform_scope
from tests.billing.factories import BillableMetricFactory, UsageEventFactory
from tests.billing.test_row_level_security import raw
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.postgres_store_only(reason="the monthly partitions of the PostgreSQL event table")

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
NOVEMBER = partition_name(date(2026, 11, 1))


@pytest.fixture
def world(tenant_a, tenant_b):
    usage_partitions_ensure(today=date(2026, 9, 1), months_ahead=3)  # September to December 2026
    return {
        "northwind": CustomerFactory(tenant=tenant_a, external_ref="northwind"),
        "bergen": CustomerFactory(tenant=tenant_b, external_ref="bergen"),
        "jobs": BillableMetricFactory(tenant=tenant_a, code="processed_jobs", aggregation="sum"),
        "jobs_b": BillableMetricFactory(tenant=tenant_b, code="processed_jobs", aggregation="sum"),
    }


def event(key, timestamp="2026-11-05T14:03:00Z", customer="northwind", quantity=1):
    return {"customer": customer, "metric": "processed_jobs", "timestamp": timestamp, "idempotency_key": key,
            "quantity": quantity}


def placed(tenant):
    """(key, partition) of the tenant's stored events, by key."""
    with platform_scope(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT idempotency_key, tableoid::regclass::text FROM billing_usageevent WHERE tenant_id = %s"
            " ORDER BY idempotency_key",
            [tenant.pk],
        )
        return cursor.fetchall()


def test_events_land_in_the_partition_of_their_utc_month(world, tenant_a):
    usage_ingest(
        tenant=tenant_a,
        events=[event("oct", "2026-10-31T23:59:59Z"), event("nov", "2026-11-01T00:00:00Z"),
                event("nov-cet", "2026-11-01T00:30:00+01:00")],
        now=NOW,
    )

    assert placed(tenant_a) == [
        ("nov", NOVEMBER), ("nov-cet", partition_name(date(2026, 10, 1))), ("oct", partition_name(date(2026, 10, 1))),
    ]


def test_an_event_of_a_month_without_partition_lands_in_the_default_one_and_moves_when_it_is_made(world, tenant_a):
    UsageEventFactory(tenant=tenant_a, customer=world["northwind"], idempotency_key="old",
                      timestamp=datetime(2025, 3, 4, tzinfo=timezone.utc))
    assert placed(tenant_a) == [("old", DEFAULT_PARTITION)]

    made = usage_partitions_ensure(today=date(2026, 9, 1), months_ahead=3)

    assert made == [partition_name(date(2025, 3, 1))]
    assert placed(tenant_a) == [("old", partition_name(date(2025, 3, 1)))]


def test_the_same_key_in_another_month_is_a_duplicate_and_stored_once(world, tenant_a):
    first = usage_ingest(tenant=tenant_a, events=[event("k1", "2026-10-10T10:00:00Z")], now=NOW)

    again = usage_ingest(tenant=tenant_a, events=[event("k1", "2026-11-10T10:00:00Z", quantity=7)], now=NOW)

    assert [r.status for r in first.results + again.results] == ["accepted", "duplicate"]
    assert placed(tenant_a) == [("k1", partition_name(date(2026, 10, 1)))]
    assert UsageEvent.objects.for_tenant(tenant_a).get().quantity == 1


def test_the_same_key_in_two_tenants_is_stored_for_each(world, tenant_a, tenant_b):
    usage_ingest(tenant=tenant_a, events=[event("k1")], now=NOW)
    result = usage_ingest(tenant=tenant_b, events=[event("k1", customer="bergen")], now=NOW)

    assert [r.status for r in result.results] == ["accepted"]
    with platform_scope():
        assert sorted(UsageEventKey.objects.values_list("tenant_id", "idempotency_key")) == [
            (tenant_a.pk, "k1"), (tenant_b.pk, "k1")
        ]


def test_an_event_written_through_the_orm_claims_its_key_and_a_repeat_in_another_month_fails(world, tenant_a):
    UsageEventFactory(tenant=tenant_a, customer=world["northwind"], idempotency_key="orm-1",
                      timestamp=datetime(2026, 10, 3, tzinfo=timezone.utc))

    with pytest.raises(IntegrityError), transaction.atomic():
        UsageEventFactory(tenant=tenant_a, customer=world["northwind"], idempotency_key="orm-1",
                          timestamp=datetime(2026, 11, 3, tzinfo=timezone.utc))
    result = usage_ingest(tenant=tenant_a, events=[event("orm-1", "2026-11-04T00:00:00Z")], now=NOW)

    assert [r.status for r in result.results] == ["duplicate"]
    assert placed(tenant_a) == [("orm-1", partition_name(date(2026, 10, 1)))]


def _plans(tenant, period_start, period_end):
    with CaptureQueriesContext(connection) as queries:
        usage_totals(tenant=tenant, period_start=period_start, period_end=period_end)
    plans = []
    with platform_scope(), connection.cursor() as cursor:
        for query in queries.captured_queries:
            if "billing_usageevent" in query["sql"]:
                cursor.execute("EXPLAIN " + query["sql"])
                plans.append("\n".join(line for (line,) in cursor.fetchall()))
    return plans


def _partitions_named(plan):
    return sorted({name for name in usage_partitions() if f" {name} " in plan or f" on {name}" in plan})


def test_a_months_totals_read_only_that_months_partition(world, tenant_a):
    usage_ingest(tenant=tenant_a, events=[event("oct", "2026-10-10T10:00:00Z"), event("nov")], now=NOW)

    plans = _plans(tenant_a, date(2026, 11, 1), date(2026, 11, 30))

    assert len(plans) == 1  # one metric, one query
    assert _partitions_named(plans[0]) == [NOVEMBER]


def test_a_month_in_a_time_zone_east_of_utc_reads_its_month_and_the_last_hours_before_it(world, tenant_a):
    tenant_a.time_zone = "Europe/Stockholm"
    tenant_a.save()

    plans = _plans(tenant_a, date(2026, 11, 1), date(2026, 11, 30))

    assert _partitions_named(plans[0]) == [partition_name(date(2026, 10, 1)), NOVEMBER]


def test_every_partition_has_one_index_its_tenant_first_primary_key(world):
    usage_partitions_ensure(today=date(2027, 4, 1))
    tables = sorted({"billing_usageevent", DEFAULT_PARTITION, *usage_partitions()})
    assert partition_name(date(2027, 6, 1)) in tables

    with platform_scope(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, ix.indisprimary, array_agg(a.attname::text ORDER BY k.ord)"
            " FROM pg_index ix JOIN pg_class c ON c.oid = ix.indrelid"
            " CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k (attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum"
            " WHERE c.relname = ANY(%s) GROUP BY ix.indexrelid, c.relname, ix.indisprimary",
            [tables],
        )
        indexes = sorted(cursor.fetchall())

    key = ["tenant_id", "metric_code", "timestamp", "customer_id", "id"]
    assert indexes == [(name, True, key) for name in tables]


def test_a_read_by_time_alone_is_one_range_of_the_primary_key_per_code(world, tenant_a):
    usage_ingest(tenant=tenant_a, events=[event("nov")], now=NOW)
    with CaptureQueriesContext(connection) as queries:
        usage_store().event_counts(tenant=tenant_a, bounds=[datetime(2026, 11, 1, tzinfo=timezone.utc), NOW])
    counts = [query["sql"] for query in queries.captured_queries if "width_bucket" in query["sql"]]

    with platform_scope(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a table this small would otherwise be read whole
        cursor.execute("EXPLAIN " + counts[0])
        plan = "\n".join(line for (line,) in cursor.fetchall())

    assert len(counts) == 1
    assert "Nested Loop" in plan and f"Index Only Scan using {NOVEMBER}_pkey" in plan
    # Each of the tenant's codes is a range of the key: tenant, code, then the span.
    assert re.search(r"Index Cond: \(\(tenant_id = \d+\) AND \(\(?metric_code\)?(::text)? = \(?c\.code\)?(::text)?\) AND"
                     r" \(\"timestamp\" >= ", plan)
    assert _partitions_named(plan) == [NOVEMBER]


def test_maintenance_makes_this_month_and_two_ahead_once(world):
    made = usage_partitions_ensure(today=date(2027, 4, 17))
    again = usage_partitions_ensure(today=date(2027, 4, 17))

    assert made == [partition_name(date(2027, m, 1)) for m in (4, 5, 6)]
    assert again == []


def test_the_maintenance_task_runs_as_the_application_role_and_is_idempotent(world):
    usage_partitions_maintain.delay().get()

    assert usage_partitions_maintain.delay().get() == "nothing to make"
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == "portal_app"


def test_every_partition_fences_tenants_for_the_application_role(world, tenant_a, tenant_b):
    usage_ingest(tenant=tenant_a, events=[event("a1")], now=NOW)
    usage_ingest(tenant=tenant_b, events=[event("b1", customer="bergen")], now=NOW)
    usage_partitions_ensure(today=date(2027, 4, 1))

    through_parent = raw("SELECT idempotency_key FROM billing_usageevent", tenant=tenant_a)
    direct = raw(f"SELECT idempotency_key FROM {NOVEMBER}", tenant=tenant_a)
    nobody = raw(f"SELECT idempotency_key FROM {NOVEMBER}")
    keys = raw("SELECT idempotency_key FROM billing_usageeventkey", tenant=tenant_a)

    assert (through_parent, direct, nobody, keys) == ([("a1",)], [("a1",)], [], [("a1",)])
    assert row_level_security_problems(connection) == []
    with connection.cursor() as cursor:
        assert partition_name(date(2027, 6, 1)) in partitions_of(cursor, "billing_usageevent")


def test_the_application_role_cannot_write_another_tenants_row_into_a_partition(world, tenant_a, tenant_b):
    with pytest.raises(Exception, match="row-level security"):
        raw(
            f"INSERT INTO {NOVEMBER} (metric_code, timestamp, idempotency_key, quantity, properties, received_at,"
            " customer_id, tenant_id) VALUES ('x', '2026-11-02', 'sneaky', 1, '{}', now(), %s, %s)",
            [world["bergen"].pk, tenant_b.pk],
            tenant=tenant_a,
        )


def test_two_ingests_in_one_transaction_store_each_batch_once_and_the_orm_still_claims_keys(world, tenant_a):
    with transaction.atomic():
        first = usage_ingest(tenant=tenant_a, events=[event("k1"), event("k2")], now=NOW)
        second = usage_ingest(tenant=tenant_a, events=[event("k3"), event("k1")], now=NOW)
        with pytest.raises(IntegrityError), transaction.atomic():
            UsageEventFactory(tenant=tenant_a, customer=world["northwind"], idempotency_key="k3",
                              timestamp=datetime(2026, 11, 3, tzinfo=timezone.utc))

    assert [r.status for r in first.results + second.results] == ["accepted", "accepted", "accepted", "duplicate"]
    assert [key for key, _ in placed(tenant_a)] == ["k1", "k2", "k3"]


def test_the_beat_schedule_keeps_partitions_ahead_daily():
    from portal.celery import app
    from portal.schedule import BEAT_SCHEDULE

    entry = BEAT_SCHEDULE["billing-usage-partitions"]
    assert entry["task"] == "billing.tasks.usage_partitions_maintain" == usage_partitions_maintain.name
    assert entry["task"] in app.tasks and len(entry["schedule"].hour) == 1
