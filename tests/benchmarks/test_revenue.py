"""The benchmark's hand-written bare SQL computes the selectors' numbers (on a small generated tenant)."""

from datetime import date

import pytest

from benchmarks.revenue import build_tenant, measure, measure_facts
from customers.periods import add_months
from revenue.selectors.mrr import mrr_series

FIRST, LAST = date(2024, 1, 1), date(2025, 6, 1)


@pytest.mark.django_db
def test_bare_sql_gives_the_selectors_numbers(tenant_b):
    tenant = build_tenant(contracts=300, months=18, first=FIRST)

    figures = measure(tenant=tenant, first=FIRST, last=LAST, repeat=1, write=lambda line: None)

    assert {name: row["same_numbers"] for name, row in figures.items()} == {
        "mrr_series": True, "movements": True, "concentration": True,
    }
    assert mrr_series(tenant=tenant, first=LAST, last=LAST)[0]["customers"] > 0


@pytest.mark.django_db
def test_rebuilding_with_reuse_keeps_the_same_tenant(tenant_b):
    tenant = build_tenant(contracts=20, months=6, first=add_months(LAST, -5))

    assert build_tenant(contracts=20, months=6, first=add_months(LAST, -5), reuse=True).pk == tenant.pk
    assert build_tenant(contracts=21, months=6, first=add_months(LAST, -5), reuse=True).pk != tenant.pk


@pytest.mark.django_db
def test_reads_from_the_facts_give_the_numbers_from_scratch_in_no_more_queries(tenant_b):
    tenant = build_tenant(contracts=200, months=18, first=FIRST)

    figures = measure_facts(tenant=tenant, first=FIRST, last=LAST, repeat=1, writes=2, write=lambda line: None)

    assert {name: row["same_numbers"] for name, row in figures["reads"].items()} == dict.fromkeys(
        ["mrr_series", "movements", "retention", "concentration",
         "api_mrr", "api_movements", "api_retention", "api_concentration",
         "page_revenue", "page_retention", "page_concentration"], True
    )
    # Retention reads the month totals once instead of movements and retention each from the lines.
    assert all(row["facts_queries"] <= row["scratch_queries"] for row in figures["reads"].values())
    assert figures["rows"] > 0 and figures["contract_change"]["writes"] == 2
