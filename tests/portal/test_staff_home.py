"""The admin home's key figures of the staff member's tenant, and the demo's quarter targets."""

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from faker import Faker

from billing.models import Invoice, InvoiceDelivery
from customers.models import Role
from customers.money import Money
from customers.periods import add_months, last_closed_month, month_end, tenant_today
from customers.tenancy import platform_scope, tenant_scope
from portal.dashboards.home import key_figures
from portal.demo.common import DemoContext
from portal.demo.pipeline import quarter_targets
from revenue.models import QuarterTarget
from revenue.selectors.pipeline import pipeline_coverage
from tests.billing.document_builders import build_invoice
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.factories import OpportunityFactory


def at_risk_customer(tenant, name: str, fee: str):
    """A young customer (under six months: 10 points) with two overdue invoices (20 points): at risk (30)."""
    today = tenant_today(tenant)
    start = add_months(last_closed_month(tenant), -2)
    with platform_scope():
        customer = CustomerFactory(tenant=tenant, name=name, currency=tenant.reporting_currency)
        contract = ContractFactory(customer=customer, tenant=tenant, start_date=start)
        ContractLineFactory(contract=contract, tenant=tenant, unit_price=Money(fee, tenant.reporting_currency))
    for months_back, days_ago in ((2, 80), (1, 60)):
        period = add_months(last_closed_month(tenant), -months_back)
        build_invoice(customer, period_start=period, period_end=month_end(period),
                      lines=[("Platform fee", "1", fee)], issue_date=today - timedelta(days=days_ago))
    return customer


def stale_deal(tenant):
    with platform_scope():
        return OpportunityFactory(tenant=tenant, customer=CustomerFactory(tenant=tenant), probability=80,
                                  last_touched_at=timezone.now() - timedelta(days=8))


@pytest.fixture
def figures_world(tenant_a, tenant_b):
    risky = at_risk_customer(tenant_a, "Risky Co", "1000.00")
    with platform_scope():
        other = CustomerFactory(tenant=tenant_a, name="Drafty Co")
    build_invoice(other, finalize=False)
    with platform_scope():
        invoice = Invoice.objects.filter(customer=risky).order_by("pk").first()
        InvoiceDelivery.objects.create(tenant=tenant_a, invoice=invoice, recipient="ap@risky.example.com",
                                       status=InvoiceDelivery.Status.FAILED, attempts=3)
        InvoiceDelivery.objects.create(tenant=tenant_a, invoice=invoice, recipient="cfo@risky.example.com",
                                       status=InvoiceDelivery.Status.SENT, attempts=1)
    stale_deal(tenant_a)
    # Tenant B has drafts, stale deals and a customer at risk of its own, which tenant A never counts.
    at_risk_customer(tenant_b, "Risk AB", "5000.00")
    with platform_scope():
        drafty = CustomerFactory(tenant=tenant_b, name="Utkast AB")
    build_invoice(drafty, finalize=False)
    stale_deal(tenant_b)
    stale_deal(tenant_b)


def values(figures):
    return {figure["key"]: figure["value"] for figure in figures}


def test_the_key_figures_of_the_tenant(tenant_a, figures_world):
    with tenant_scope(tenant_a):
        figures = key_figures(tenant_a)
    assert values(figures) == {"mrr": "$1,000.00", "drafts": "1", "failed_deliveries": "1", "stale": "1",
                               "at_risk": "1"}
    assert [figure["url"] for figure in figures] == [
        "/staff/", "/admin/billing/invoice/?status__exact=draft",
        "/admin/billing/invoicedelivery/?status__exact=failed", "/admin/revenue/opportunity/?stale=yes",
        "/staff/economics/churn-risk/",
    ]


def test_the_admin_home_shows_them_with_their_links(client, member_factory, tenant_a, figures_world):
    client.force_login(member_factory(tenant_a, Role.VIEWER))
    body = client.get("/admin/").content.decode()
    assert "Key figures of Acme Optimizer" in body
    assert '<a href="/admin/billing/invoice/?status__exact=draft"><span class="figure-value">1</span>' in body
    assert '<span class="figure-value">$1,000.00</span> <span class="figure-label">MRR</span>' in body


def test_the_key_figures_take_the_same_queries_however_many_rows(tenant_a, figures_world):
    with tenant_scope(tenant_a), CaptureQueriesContext(connection) as small:
        key_figures(tenant_a)
    for n in range(3):
        at_risk_customer(tenant_a, f"Risky {n}", "200.00")
        stale_deal(tenant_a)
    with tenant_scope(tenant_a), CaptureQueriesContext(connection) as grown:
        figures = key_figures(tenant_a)
    assert values(figures)["at_risk"] == "4" and values(figures)["stale"] == "4"
    assert len(grown.captured_queries) == len(small.captured_queries)


def test_a_platform_superuser_sees_no_one_tenants_figures(admin_client, figures_world):
    body = admin_client.get("/admin/").content.decode()
    assert "Key figures" not in body


def test_the_demo_sets_targets_for_this_and_next_quarter_so_coverage_shows(tenant_a, member_factory):
    today = date(2026, 12, 4)
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a, currency="USD")
        OpportunityFactory(customer=customer, tenant=tenant_a, amount=Money("90000.00", "USD"),
                           expected_close_on=today + timedelta(days=10), last_touched_at=timezone.now())
    ctx = DemoContext(tenant=tenant_a, today=today, rng=random.Random(1), scale=1.0,
                      account_managers=[member_factory(tenant_a)], faker=Faker())
    with tenant_scope(tenant_a):
        quarter_targets(ctx)
        targets = [(t.year, t.quarter, t.target) for t in QuarterTarget.objects.for_tenant(tenant_a)]
        coverage = pipeline_coverage(tenant=tenant_a, year=2026, quarter=4, today=today)
    # A third of the open pipeline of the quarter; the next quarter has none, so the smallest step.
    assert targets == [(2026, 4, Money("30000.00", "USD")), (2027, 1, Money("1000.00", "USD"))]
    assert coverage["coverage"] == Decimal(3)
