"""The store-copy benchmark copies every event both ways, copies nothing the second time, and leaves nothing behind."""

import json
from pathlib import Path

import pytest

from benchmarks import usage_copy
from billing.models import UsageEvent, UsageEventKey
from customers.models import Tenant
from customers.tenancy import platform_scope


@pytest.mark.django_db(transaction=True)
def test_the_copy_benchmark_copies_each_event_once_each_way_and_purges_its_tenants(
    tenant_a, tmp_path, monkeypatch, chdb_url
):
    monkeypatch.setattr(usage_copy, "RESULTS_PATH", tmp_path / "usage_copy.json")

    # This process's ClickHouse (chdb runs one embedded server per process).
    figures = usage_copy.run_usage_copy_benchmark(customers=4, events=300, chdb_dir=Path(chdb_url.removeprefix("chdb://")))

    assert figures["ingest_into_postgres"]["accepted"] == 300
    assert figures["copy_to_clickhouse"]["copied"] == 300
    assert figures["copy_again"]["copied"] == 0
    assert figures["copy_back"]["copied"] == 300
    assert figures["replay_into_clickhouse"]["accepted"] == 300
    assert json.loads((tmp_path / "usage_copy.json").read_text())["events"] == 300
    with platform_scope():
        assert list(Tenant.objects.values_list("pk", flat=True)) == [tenant_a.pk]
        assert not UsageEvent.objects.exists() and not UsageEventKey.objects.exists()
