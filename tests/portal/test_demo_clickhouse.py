"""The demo on ClickHouse: the optimizer tenant, built from the same seed on each usage-event store,
has the same usage-derived figures (invoices, imported cost to serve, profitability)."""

from datetime import date
from decimal import Decimal

import pytest

from billing.metering import usage_store
from billing.models import Invoice, InvoiceLine
from customers.models import Customer, Tenant
from customers.tenancy import platform_scope, tenant_scope
from portal.demo import demo_load
from revenue.economics.costs import cost_to_serve, revenue_by_customer_month
from revenue.models import CustomerCost

pytestmark = pytest.mark.slow  # builds the optimizer tenant twice, a small one (about 10 s each)

TODAY = date(2026, 11, 15)


def _figures() -> dict:
    """The optimizer tenant's usage-derived figures, keyed by what is the same in both builds."""
    with platform_scope():
        tenant = Tenant.objects.get(slug="optimizer")
    with tenant_scope(tenant):
        ref = dict(Customer.objects.for_tenant(tenant).values_list("id", "external_ref"))
        invoices = {
            (ref[customer_id], period_start, status): total
            for customer_id, period_start, status, total in Invoice.objects.for_tenant(tenant).values_list(
                "customer_id", "period_start", "status", "total"
            )
        }
        usage_lines = sorted(
            (ref[customer_id], period_start, quantity, amount)
            for customer_id, period_start, quantity, amount in InvoiceLine.objects.for_tenant(tenant)
            .filter(contract_line__kind="usage")
            .values_list("invoice__customer_id", "invoice__period_start", "quantity", "amount")
        )
        costs = {
            (ref[customer_id], month): amount
            for customer_id, month, amount in CustomerCost.objects.for_tenant(tenant).values_list(
                "customer_id", "month", "amount"
            )
        }
        first, last = date(2026, 5, 1), date(2026, 10, 1)
        served = {(ref[c], m): row.total for (c, m), row in cost_to_serve(tenant=tenant, first=first, last=last).items()}
        earned = {(ref[c], m): v for (c, m), v in revenue_by_customer_month(tenant=tenant, first=first, last=last).items()}
    return {"invoices": invoices, "usage lines": usage_lines, "costs": costs, "served": served, "earned": earned}


def test_the_optimizer_demo_has_the_same_figures_on_clickhouse(db, settings, chdb_url):
    settings.USAGE_EVENT_STORE = "postgres"
    on_postgres_report = demo_load(today=TODAY, seed=7, scale=0.05, progress=False, only=["optimizer"])
    on_postgres = _figures()

    settings.USAGE_EVENT_STORE = "clickhouse"
    settings.CLICKHOUSE_URL = chdb_url
    try:
        # The test's transaction never commits: nothing is written after a commit, as in no demo.
        report = demo_load(today=TODAY, seed=7, scale=0.05, progress=False, only=["optimizer"], reset=True)
        on_clickhouse = _figures()
    finally:
        usage_store().truncate()

    assert report.tenants[0].counts["usage events"] == on_postgres_report.tenants[0].counts["usage events"] > 0
    assert sum(amount for *_, amount in on_postgres["usage lines"]) > Decimal(0)
    assert on_postgres["costs"]
    assert on_clickhouse == on_postgres
