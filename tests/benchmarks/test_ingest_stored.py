"""The stored-events benchmark loads its events, measures at 0 and N stored, and leaves nothing behind."""

import json
from collections import Counter
from datetime import date, datetime, timezone

import pytest

from benchmarks.ingest_stored import run_stored_benchmark, stored_events_load, stored_events_unload
from billing.models import UsageEvent, UsageEventKey
from customers.models import Tenant
from customers.tenancy import platform_scope
from tests.billing.factories import UsageEventFactory
from tests.customers.factories import CustomerFactory


@pytest.mark.django_db(transaction=True)
def test_the_stored_benchmark_measures_both_sides_and_purges_its_tenant(tenant_a, tmp_path):
    results = tmp_path / "ingest_stored.json"

    figures = run_stored_benchmark(stored=3_000, customers=4, events=400, client="django", months_back=3,
                                   runs=1, results_path=results, settle_timeout=0)

    runs = figures["ingest"]["at_0_stored"] + figures["ingest"]["at_3000_stored"] + figures["ingest"]["at_0_stored_again"]
    assert [run["accepted"] for run in runs] == [280] * 6  # two runs a side, each on keys of its own
    assert figures["ingest"]["share_ratio_stored_to_0"] > 0
    assert set(figures["month_reads"]["ratio_stored_to_0_machine_adjusted"]) == {
        "draft_rerun_seconds", "usage_totals_seconds", "bare_aggregate_seconds"
    }
    assert json.loads(results.read_text())["stored_events"] == 3_000
    settles = [figures[f"settle_{when}"] for when in ("before_reads", "after_load", "after_unload")]
    assert [set(settle) for settle in settles] == [{
        "vacuum", "vacuum_seconds", "checkpoint", "checkpoint_seconds", "seconds", "kernel_dirty_kb_after", "timed_out"
    }] * 3
    vacuum = "VACUUM (ANALYZE) billing_usageevent, billing_usageeventkey (as the owner)"
    assert [settle["vacuum"] for settle in settles] == [vacuum] * 3
    with platform_scope():
        assert list(Tenant.objects.values_list("pk", flat=True)) == [tenant_a.pk]
        assert not UsageEvent.objects.exists() and not UsageEventKey.objects.exists()


@pytest.mark.django_db
def test_stored_events_spread_evenly_over_the_months_before_the_measured_one(tenant_a):
    customers = [CustomerFactory(tenant=tenant_a, external_ref=f"c{i}") for i in range(3)]

    stored_events_load(tenant=tenant_a, customers=customers, count=3_000, first_month=date(2026, 8, 1),
                       end_month=date(2026, 11, 1), chunk=1_000)

    with platform_scope():
        per_month = sorted(Counter(when.month for when in UsageEvent.objects.values_list("timestamp", flat=True)).items())
        keys = UsageEventKey.objects.filter(tenant=tenant_a).count()
    assert [month for month, _ in per_month] == [8, 9, 10]
    assert all(950 <= n <= 1030 for _, n in per_month) and sum(n for _, n in per_month) == 3_000
    assert keys == 3_000


@pytest.mark.django_db
def test_unloading_removes_the_stored_events_and_their_keys_and_nothing_else(tenant_a):
    customers = [CustomerFactory(tenant=tenant_a, external_ref=f"c{i}") for i in range(3)]
    stored_events_load(tenant=tenant_a, customers=customers, count=600, first_month=date(2026, 9, 1),
                       end_month=date(2026, 11, 1))
    kept = UsageEventFactory(tenant=tenant_a, customer=customers[0], timestamp=datetime(2026, 11, 3, tzinfo=timezone.utc))

    stored_events_unload(tenant=tenant_a)

    with platform_scope():
        assert list(UsageEvent.objects.values_list("idempotency_key", flat=True)) == [kept.idempotency_key]
        assert list(UsageEventKey.objects.values_list("idempotency_key", flat=True)) == [kept.idempotency_key]
