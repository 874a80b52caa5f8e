"""The reminder benchmark sends one reminder per overdue invoice, nothing on the rerun, and cleans up."""

import json

import pytest

from benchmarks.dunning import run_dunning_benchmark
from customers.models import Tenant


@pytest.mark.django_db
def test_the_benchmark_reminds_each_invoice_once_and_leaves_nothing(tmp_path, tenant_a):
    figures = run_dunning_benchmark(invoices=12, path=tmp_path / "dunning.json")

    assert (figures["overdue"], figures["emails_sent"], figures["reminders"]) == (12, 12, 12)
    assert figures["first_run_counts"] == {"sent": 12, "failed": 0, "cancelled": 0, "unchanged": 0}
    assert figures["second_run_counts"] == {"sent": 0, "failed": 0, "cancelled": 0, "unchanged": 12}
    assert json.loads((tmp_path / "dunning.json").read_text())["invoices"] == 12
    assert list(Tenant.objects.values_list("pk", flat=True)) == [tenant_a.pk]  # the benchmark tenant is purged
