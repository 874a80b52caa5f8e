"""The usage-event stores in operations: a tenant purge reaches ClickHouse, a tenant's events are copied
between the stores (``manage.py usage_store_copy``), the demo's loader bills what it loaded on either
store, and archiving refuses on ClickHouse."""

from datetime import date, datetime, timezone
from decimal import Decimal
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from billing.metering import usage_ingest, usage_store_of, usage_totals
from billing.models import UsageEventBatch
from billing.usage_archive import ArchiveRefused, usage_archive_due, usage_archive_month
from customers.models import Tenant
from customers.purge import tenant_purge
from customers.tenancy import platform_scope, tenant_scope
from portal.demo import optimizer
from portal.demo.billing import usage_send
from tests.billing.factories import BillableMetricFactory, BillingSettingsFactory
from tests.customers.factories import CustomerFactory

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
D = Decimal


def event(key, customer="northwind", metric="jobs", when="2026-11-05T14:03:00Z", quantity=1, **properties):
    return {"customer": customer, "metric": metric, "timestamp": when, "idempotency_key": key,
            "quantity": quantity, "properties": properties}


@pytest.fixture
def world(tenant_a, tenant_b):
    world = {
        "northwind": CustomerFactory(tenant=tenant_a, external_ref="northwind"),
        "contoso": CustomerFactory(tenant=tenant_a, external_ref="contoso"),
        "bergen": CustomerFactory(tenant=tenant_b, external_ref="bergen"),
    }
    for tenant in (tenant_a, tenant_b):
        BillableMetricFactory(tenant=tenant, code="jobs", aggregation="sum")
        BillableMetricFactory(tenant=tenant, code="calls", event_code="jobs", aggregation="count")
        BillableMetricFactory(tenant=tenant, code="peak", event_code="jobs", aggregation="max", field="gb")
        BillableMetricFactory(tenant=tenant, code="last", event_code="jobs", aggregation="latest")
        BillableMetricFactory(tenant=tenant, code="held", event_code="jobs", aggregation="weighted_sum")
    return world


def _history(tenant_a, tenant_b):
    """Tenant A: October and November, properties that need escaping; tenant B: one November event."""
    usage_ingest(tenant=tenant_a, now=NOW, events=[
        event("oct-1", when="2026-10-03T10:00:00Z", quantity="2.5", gb=4),
        event("oct-2", customer="contoso", when="2026-10-31T23:59:59.999999Z", quantity=7, note="tab\there\nnewline"),
        event("nov-1", when="2026-11-05T14:03:00Z", quantity="1.000001", gb="12", note="back\\slash ünïcode"),
        event("nov-2", when="2026-11-05T14:03:00Z", quantity=3),
        event("nov-3", customer="contoso", when="2026-11-29T08:00:00Z", quantity="0.5", gb=1),
    ])
    usage_ingest(tenant=tenant_b, now=NOW, events=[event("nov-1", customer="bergen", quantity=9)])


def _november_and_october(tenant):
    return (
        usage_totals(tenant=tenant, period_start=date(2026, 10, 1), period_end=date(2026, 10, 31)),
        usage_totals(tenant=tenant, period_start=date(2026, 11, 1), period_end=date(2026, 11, 30)),
    )


# --- tenant purge ---------------------------------------------------------------------------------


def test_a_purge_deletes_the_tenants_events_and_pending_batches_in_either_store(
    usage_store, world, tenant_a, tenant_b, django_capture_on_commit_callbacks
):
    _history(tenant_a, tenant_b)
    UsageEventBatch.objects.create(tenant=tenant_a, rows=f"{tenant_a.pk}\t{world['northwind'].pk}\tjobs\tx\n")
    purged_id = tenant_a.pk

    with django_capture_on_commit_callbacks(execute=True):
        tenant_purge(tenant=tenant_a)

    assert usage_store.first_event_at(tenant=Tenant(pk=purged_id)) is None
    assert usage_store.day_figures(
        tenant=Tenant(pk=purged_id), start=datetime(2026, 1, 1, tzinfo=timezone.utc), end=NOW
    ) == {}
    with platform_scope():
        assert not UsageEventBatch.objects.filter(tenant_id=purged_id).exists()
    assert usage_store.pending_flush() == 0
    with tenant_scope(tenant_b):
        assert usage_totals(tenant=tenant_b, period_start=date(2026, 11, 1), period_end=date(2026, 11, 30))[
            (world["bergen"].pk, "jobs")
        ] == D(9)


def test_a_rolled_back_purge_leaves_the_events_in_either_store(
    usage_store, world, tenant_a, tenant_b, django_capture_on_commit_callbacks
):
    _history(tenant_a, tenant_b)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            tenant_purge(tenant=tenant_a)
            raise RuntimeError("the caller changed its mind")

    assert callbacks == []
    assert usage_store.first_event_at(tenant=tenant_a) == datetime(2026, 10, 3, 10, tzinfo=timezone.utc)


def test_usage_store_purge_deletes_what_a_failed_purge_hook_left_in_clickhouse(settings, chdb_url, tenant_a):
    settings.CLICKHOUSE_URL = chdb_url
    clickhouse = usage_store_of("clickhouse")
    gone = Tenant(pk=tenant_a.pk + 10_000)  # an id no tenant has
    clickhouse.backend.insert(
        f"{gone.pk}\t1\tjobs\t2026-11-05T14:03:00+00:00\tleft-1\t1\t{{}}\t2026-11-05T14:03:00+00:00\n", token="left-1"
    )

    call_command("usage_store_purge", "--tenant-id", str(gone.pk), stdout=StringIO())

    assert clickhouse.first_event_at(tenant=gone) is None
    with pytest.raises(CommandError, match=f"Tenant {tenant_a.pk} still exists"):
        call_command("usage_store_purge", "--tenant-id", str(tenant_a.pk))


# --- copies between stores ------------------------------------------------------------------------


@pytest.fixture
def stores(settings, chdb_url, monkeypatch):
    """Both stores; PostgreSQL in use. The test's transaction never commits: ClickHouse writes at once."""
    settings.USAGE_EVENT_STORE = "postgres"
    settings.CLICKHOUSE_URL = chdb_url
    clickhouse = usage_store_of("clickhouse")
    monkeypatch.setattr(clickhouse, "_after_commit", lambda write: write())
    yield SimpleNamespace(postgres=usage_store_of("postgres"), clickhouse=clickhouse)
    clickhouse.truncate()


def _copy(*args) -> str:
    out = StringIO()
    call_command("usage_store_copy", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_a_tenant_copied_to_clickhouse_bills_the_same_and_a_second_copy_copies_nothing(
    stores, settings, world, tenant_a, tenant_b
):
    _history(tenant_a, tenant_b)
    on_postgres = _november_and_october(tenant_a)
    events = stores.postgres.customer_events(
        tenant=tenant_a, customer_id=world["contoso"].pk, metric_code="jobs", start=datetime(2026, 10, 1, tzinfo=timezone.utc), end=NOW
    )

    first = _copy("--tenant", "acme", "--from", "postgres", "--to", "clickhouse")
    second = _copy("--tenant", "acme", "--from", "postgres", "--to", "clickhouse")

    assert first.splitlines() == [
        "2026-10: copied 2 events; postgres 2 events, Σ quantity 9.500000; clickhouse 2 events, Σ quantity 9.500000: verified",
        "2026-11: copied 3 events; postgres 3 events, Σ quantity 4.500001; clickhouse 3 events, Σ quantity 4.500001: verified",
    ]
    assert [line.split(";")[0] for line in second.splitlines()] == ["2026-10: copied 0 events", "2026-11: copied 0 events"]
    settings.USAGE_EVENT_STORE = "clickhouse"
    assert _november_and_october(tenant_a) == on_postgres
    assert stores.clickhouse.customer_events(
        tenant=tenant_a, customer_id=world["contoso"].pk, metric_code="jobs", start=datetime(2026, 10, 1, tzinfo=timezone.utc), end=NOW
    ) == events
    assert stores.clickhouse.first_event_at(tenant=tenant_b) is None  # only the tenant named
    # The keys were claimed when ingested: a retry after the switch is still a duplicate.
    assert usage_ingest(tenant=tenant_a, events=[event("nov-2", quantity=3)], now=NOW).duplicates == 1


def test_an_interrupted_copy_resumes_with_the_missing_events_only(stores, world, tenant_a, tenant_b):
    _history(tenant_a, tenant_b)
    _copy("--tenant", "acme", "--from", "postgres", "--to", "clickhouse", "--month", "2026-11")
    stores.clickhouse.backend.query(f"DELETE FROM usage_events WHERE tenant_id = {tenant_a.pk} AND idempotency_key = 'nov-2'")

    again = _copy("--tenant", "acme", "--from", "postgres", "--to", "clickhouse", "--month", "2026-11")

    assert again.startswith("2026-11: copied 1 events;") and again.rstrip().endswith("verified")
    assert sorted(stores.clickhouse.keys_between(
        tenant=tenant_a, start=datetime(2026, 10, 1, tzinfo=timezone.utc), end=NOW
    )) == ["nov-1", "nov-2", "nov-3"]


def test_a_tenant_on_clickhouse_is_copied_back_to_postgres(stores, settings, world, tenant_a, tenant_b):
    settings.USAGE_EVENT_STORE = "clickhouse"
    _history(tenant_a, tenant_b)
    on_clickhouse = _november_and_october(tenant_a)

    out = _copy("--tenant", "acme", "--from", "clickhouse", "--to", "postgres")

    assert [line.split(";")[0] for line in out.splitlines()] == ["2026-10: copied 2 events", "2026-11: copied 3 events"]
    settings.USAGE_EVENT_STORE = "postgres"
    assert _november_and_october(tenant_a) == on_clickhouse
    assert _copy("--tenant", "acme", "--from", "clickhouse", "--to", "postgres").count("copied 0 events") == 2


def test_a_month_that_differs_after_the_copy_fails_the_command(stores, settings, world, tenant_a, tenant_b):
    _history(tenant_a, tenant_b)
    _copy("--tenant", "acme", "--from", "postgres", "--to", "clickhouse")
    settings.USAGE_EVENT_STORE = "clickhouse"
    usage_ingest(tenant=tenant_a, events=[event("after-switch", when="2026-11-30T10:00:00Z")], now=NOW)

    out = StringIO()
    with pytest.raises(CommandError, match="1 month\\(s\\) differ"):
        call_command("usage_store_copy", "--tenant", "acme", "--from", "postgres", "--to", "clickhouse",
                     stdout=out, stderr=out)

    assert "2026-11: copied 0 events; postgres 3 events" in out.getvalue()
    assert "clickhouse 4 events, Σ quantity 5.500001: MISMATCH" in out.getvalue()


@pytest.mark.parametrize(("args", "message"), [
    (["--tenant", "nobody", "--from", "postgres", "--to", "clickhouse"], "No tenant with slug 'nobody'."),
    (["--tenant", "acme", "--from", "postgres", "--to", "clickhouse", "--month", "2026-13"], "--month must be YYYY-MM"),
    (["--tenant", "acme", "--from", "postgres", "--to", "postgres"], "name the same store"),
    (["--tenant", "acme", "--from", "mysql", "--to", "postgres"], "--from must be postgres or clickhouse"),
])
def test_the_copy_refuses_what_it_cannot_do(stores, world, args, message):
    with pytest.raises(CommandError, match=message.replace("(", "\\(").replace(")", "\\)")):
        _copy(*args)


def test_the_copy_refuses_when_clickhouse_is_not_configured(settings, world):
    settings.CLICKHOUSE_URL = ""

    with pytest.raises(CommandError, match="The ClickHouse store is not configured: set CLICKHOUSE_URL."):
        _copy("--tenant", "acme", "--from", "postgres", "--to", "clickhouse")


def test_the_copy_says_so_when_the_clickhouse_server_does_not_answer(settings, world):
    settings.CLICKHOUSE_URL = "http://127.0.0.1:9/usage"  # the discard port: nothing listens

    with pytest.raises(CommandError, match="^The ClickHouse server did not answer: "):
        _copy("--tenant", "acme", "--from", "postgres", "--to", "clickhouse")


# --- the demo's loader ----------------------------------------------------------------------------


def test_the_demo_bills_what_it_loaded_before_its_transaction_commits_in_either_store(
    usage_store, monkeypatch, tenant_a, tenant_b
):
    """The demo builds a tenant in one transaction and runs month-end in it: its usage must be readable
    before the commit. Here nothing is written after the commit at all."""
    if usage_store.name == "clickhouse":
        monkeypatch.setattr(usage_store, "_after_commit", lambda write: None)
    with tenant_scope(tenant_a):
        customer = CustomerFactory(tenant=tenant_a, external_ref="oak")
        for spec in optimizer.METRICS:
            BillableMetricFactory(tenant=tenant_a, **spec)
        reports = [
            {"customer": "oak", "metric": "savings_report", "timestamp": when, "idempotency_key": key,
             "properties": {"baseline": baseline, "optimized": "1.00", "savings": "0"}}
            for key, when, baseline in [
                ("oak:1", "2025-11-02T20:00:00Z", "1000.10"), ("oak:2", "2025-11-20T20:00:00Z", "333.33"),
                ("oak:dec", "2025-12-01T09:00:00Z", "5000.00"),
            ]
        ]

        assert usage_send(tenant_a, reports) == 3
        costs = optimizer.customer_costs(SimpleNamespace(tenant=tenant_a), date(2025, 11, 1), date(2025, 11, 30))
        assert not UsageEventBatch.objects.for_tenant(tenant_a).exists()

    # 35 + (1000.10 + 333.33) × 0.015 = 55.00145 → 55.00; December's report is another month.
    assert costs == {customer.pk: D("55.00")}


# --- archiving ------------------------------------------------------------------------------------


def test_archiving_refuses_on_clickhouse_and_finds_nothing_due(settings, chdb_url, tenant_a):
    settings.USAGE_EVENT_STORE = "clickhouse"
    settings.CLICKHOUSE_URL = chdb_url
    BillingSettingsFactory(tenant=tenant_a, usage_archive_after_months=2)

    with pytest.raises(ArchiveRefused, match="Usage events are kept in ClickHouse"):
        usage_archive_month(tenant=tenant_a, month=date(2026, 9, 1))
    assert usage_archive_due(tenant=tenant_a) == []
    err = StringIO()
    with pytest.raises(CommandError, match="Nothing was changed"):
        call_command("usage_archive", "--tenant", "acme", "--month", "2026-09", stdout=StringIO(), stderr=err)
    assert "2026-09: Usage events are kept in ClickHouse" in err.getvalue()
