"""The bank statement benchmark matches and records every payment of its statements (on a small run)."""

import json

import pytest

from benchmarks.bank_statements import SLUG, run_bank_statement_benchmark
from customers.models import Tenant
from customers.tenancy import platform_scope


@pytest.mark.django_db
def test_every_credit_is_matched_recorded_once_and_then_a_duplicate(tenant_a, tmp_path):
    path = tmp_path / "bank_statements.json"

    figures = run_bank_statement_benchmark(entries=10, runs=1, results_path=path)

    counts = {key: figures[key] for key in (
        "csv_matched", "camt_matched", "camt_ignored", "confirmed", "payments_recorded", "duplicates_on_second_preview")}
    assert counts == {"csv_matched": 10, "camt_matched": 10, "camt_ignored": 1, "confirmed": 10,
                      "payments_recorded": 10, "duplicates_on_second_preview": 10}
    # The confirm reads and matches again (3 queries, 4 savepoint statements), then 11 statements a
    # payment: is its invoice still open (1), payment_record (10, its savepoint included).
    assert figures["camt_confirm_statements"] == 7 + 11 * 10
    assert json.loads(path.read_text())["entries"] == 10
    with platform_scope():
        assert not Tenant.objects.filter(slug=SLUG).exists()
