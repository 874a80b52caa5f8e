"""The ingestion benchmark posts every event it generates and leaves nothing behind."""

import io

import pytest

from benchmarks.billing_ingest import print_figures, run_ingest_benchmark
from billing.models import BillableMetric, UsageEvent, UsageEventKey
from customers.models import TenantAPIKey
from tests.customers.factories import CustomerFactory


@pytest.mark.django_db(transaction=True)
def test_ingest_benchmark_posts_every_event_and_cleans_up(tenant_a, tenant_b):
    customers = [CustomerFactory(tenant=tenant_a, external_ref=f"bench-{i}") for i in range(3)]
    out = io.StringIO()

    figures = run_ingest_benchmark(
        tenant=tenant_a, customers=customers, events_total=2_000, batch_size=500, duplicate_ratio=0.30, client="django"
    )
    print_figures(figures, stdout=out)

    counted = (figures["batches"], figures["distinct_events"], figures["accepted"], figures["duplicates"])
    assert counted == (4, 1400, 1400, 600)
    assert figures["stored_rows"] == 1400 and figures["rejected"] == 0
    assert "events_per_second" in out.getvalue()
    assert figures["store_only_events_per_second"] > 0 < figures["store_only_share_of_copy_speed"]
    assert "store_only_events_per_second" in out.getvalue()
    # Counted, not timed: each of the 1 400 new events writes at least four WAL records (its key's row
    # and index entry, its own row and its one index entry), 2.8 per posted event; other databases of
    # the server only add to it.
    assert figures["wal_records_per_event"] >= 2.8 and figures["buffer_hits_per_event"] > 0
    # The hits split by relation: each of the 1 400 claimed keys walks the key index down twice (the
    # conflict check, then the insert), at least one page each, 1.4 per posted event; the split's
    # parts add up to no more than the database's whole count.
    by_relation = figures["buffer_hits_per_event_by_relation"]
    assert by_relation["billing_usageeventkey_pkey"] >= 1.4
    assert "billing_usageeventkey" in by_relation
    # The events' one partition (the month's, or the default one where the month has none) and its key.
    partition = next(name for name in by_relation if name.startswith("billing_usageevent_") and name.endswith("_pkey"))
    assert partition.removesuffix("_pkey") in by_relation
    assert sum(by_relation.values()) <= figures["buffer_hits_per_event"] + 0.01 * len(by_relation)
    assert list(by_relation.values()) == sorted(by_relation.values(), reverse=True)
    # The baseline is the fastest of three COPYs.
    assert len(figures["copy_baseline_runs_seconds"]) == 3
    assert figures["copy_baseline_seconds"] == min(figures["copy_baseline_runs_seconds"])
    assert UsageEvent.objects.for_tenant(tenant_a).count() == 0
    assert UsageEventKey.objects.for_tenant(tenant_a).count() == 0  # the store-only run's keys too
    assert not TenantAPIKey.objects.for_tenant(tenant_a).exists()
    assert not BillableMetric.objects.for_tenant(tenant_a).exists()
