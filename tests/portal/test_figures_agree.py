"""One tenant, one month, every place that shows a shared figure: the dashboards (pages and CSV), the
economics pages, the metrics and economics API and the monthly report email show the same MRR, ARR,
customers with MRR, contracted revenue, invoiced revenue and margin, to the cent, and name each the same.

The world, by hand (tenant A, USD; March 2026, the window April 2025 – March 2026):
- Alpha pays 1 000 a month all along; Beta 300 a month until its contract ends on 2026-02-28; Gamma
  200 a month from 2026-02-01. March MRR = 1 200 (2 customers with MRR), ARR 14 400, ARPA 600.
- Contracted revenue = Alpha 12 × 1 000 + Beta 11 × 300 + Gamma 2 × 200 = 15 700 (3 customers).
- Every month is invoiced at its MRR, so invoiced revenue is 15 700 too.
- Cost data starts in February 2026: Alpha's AI calls cost 100 in February and 50 in March, Beta's
  entered cost is 30 in February; Gamma has none ("no cost data"). Margin over Feb–Mar of the customers
  with cost data = (2 × 1 000 + 300) − 180 = 2 120 (92.17 %); counting ten months and Gamma without
  cost data as 0 would have said 15 520 (98.9 %).
Tenant B has a large customer that must show nowhere.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.core import mail

from customers.models import Role
from customers.money import Money
from customers.periods import add_months, months_between
from customers.tenancy import platform_scope
from portal.dashboards.panels import Display
from revenue.reports import monthly_report_context, monthly_report_send
from revenue.services import snapshot_month
from revenue.selectors.mrr import customer_mrr
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.economics.helpers import billed, calls, entered_cost, price
from tests.revenue.economics.test_api import key_client

MARCH = date(2026, 3, 1)
FIRST = date(2025, 4, 1)
WINDOW = "?from=2025-04&to=2026-03"


def subscribe(customer, *, price, start, end=None):
    contract = ContractFactory(customer=customer, start_date=start, end_date=end)
    ContractLineFactory(contract=contract, unit_price=Money(price, customer.currency), starts_on=start)
    return contract


@pytest.fixture
def world(tenant_a, tenant_b, member_factory):
    with platform_scope():
        alpha = CustomerFactory(tenant=tenant_a, name="Alpha Corp")
        beta = CustomerFactory(tenant=tenant_a, name="Beta LLC")
        gamma = CustomerFactory(tenant=tenant_a, name="Gamma AB")
        subscribe(alpha, price="1000.00", start=date(2025, 1, 1))
        subscribe(beta, price="300.00", start=date(2025, 1, 1), end=date(2026, 2, 28))
        subscribe(gamma, price="200.00", start=date(2026, 2, 1))
        for month in months_between(FIRST, MARCH):
            billed(alpha, month, "1000.00")
            if month < MARCH:
                billed(beta, month, "300.00")
            if month >= date(2026, 2, 1):
                billed(gamma, month, "200.00")
        price(tenant_a, "m", "1000000", "0")  # one input token costs 1.00
        calls(alpha, 100, when=date(2026, 2, 10))
        calls(alpha, 50, when=date(2026, 3, 10))
        entered_cost(beta, date(2026, 2, 1), "30.00")
        zeta = CustomerFactory(tenant=tenant_b, name="Zeta Hidden AB")
        subscribe(zeta, price="90000.00", start=date(2025, 1, 1))
        billed(zeta, MARCH, "90000.00")
        owner = member_factory(tenant_a, Role.OWNER, username="maya")
    return {"alpha": alpha, "owner": owner}


@pytest.fixture
def owner_client(client, world):
    client.force_login(world["owner"])
    return client


def kpi(response, name) -> str:
    return next(value for label, value, _hint in response.context["kpis"] if str(label) == str(name))


def csv_row(response, first_cell: str) -> list[str]:
    return next(line.split(",") for line in response.content.decode().splitlines() if line.startswith(first_cell + ","))


@pytest.mark.usage_events
def test_every_page_api_and_the_report_show_the_same_figures(owner_client, world, tenant_a):
    show = Display(tenant_a)
    api = key_client(tenant_a)

    report = monthly_report_context(tenant=tenant_a, month=MARCH)["figures"]
    assert report == {
        "mrr": Decimal("1200"), "arr": Decimal("14400"), "customers_with_mrr": 2, "arpa": Decimal("600"),
        "contracted_revenue": Decimal("15700"), "customers_with_contracted_revenue": 3,
    }

    # MRR, ARR, customers with MRR, ARPA: revenue dashboard (KPIs and CSV), metrics API, report.
    revenue_page = owner_client.get("/staff/" + WINDOW)
    assert kpi(revenue_page, "MRR") == show.money(report["mrr"]) == "$1,200.00"
    assert kpi(revenue_page, "ARR") == show.money(report["arr"]) == "$14,400.00"
    assert kpi(revenue_page, "Customers with MRR") == "2"
    assert kpi(revenue_page, "ARPA") == "$600.00"
    assert csv_row(owner_client.get("/staff/revenue/mrr.csv" + WINDOW), "2026-03") == [
        "2026-03", "1200.00", "14400.00", "2", "600.00"]
    mrr_api = api.get("/api/v1/metrics/mrr/" + WINDOW).json()["months"][-1]
    assert (mrr_api["mrr"], mrr_api["arr"], mrr_api["customers"], mrr_api["arpa"]) == ("1200.00", "14400.00", 2, "600.00")
    assert kpi(owner_client.get("/staff/retention/" + WINDOW), "ARPA") == "$600.00"
    assert kpi(owner_client.get("/staff/unit-economics/?month=2026-03"), "ARPA") == "$600.00"

    # Contracted revenue of the twelve months and its customers: concentration page, unit economics'
    # revenue mix, metrics API, report.
    concentration = owner_client.get("/staff/concentration/?month=2026-03")
    assert kpi(concentration, "Contracted revenue") == show.money(report["contracted_revenue"]) == "$15,700.00"
    assert kpi(concentration, "Customers with contracted revenue") == "3"
    concentration_api = api.get("/api/v1/metrics/concentration/?month=2026-03").json()
    assert (concentration_api["total_revenue"], concentration_api["customers"]) == ("15700.00", 3)
    assert csv_row(owner_client.get("/staff/unit-economics/revenue_mix.csv?month=2026-03"), "Recurring")[1] == "15700.00"

    # Invoiced revenue, cost and margin: profitability page and economics API.
    profitability = owner_client.get("/staff/economics/" + WINDOW)
    total = profitability.context["margins"]["total"]
    assert (total["revenue"], total["cost"], total["costed_revenue"], total["margin"]) == (
        Decimal("15700.00"), Decimal("180.00"), Decimal("2300.00"), Decimal("2120.00"))
    margins_api = api.get("/api/v1/economics/margins/" + WINDOW).json()
    assert margins_api["total"] == {
        "revenue": "15700.00", "cost": "180.00", "costed_revenue": "2300.00", "margin": "2120.00",
        "margin_rate": "0.9217", "has_cost_data": True, "calls": 150}
    assert len(margins_api["customers"]) == len(profitability.context["margins"]["customers"]) == 3
    html = profitability.content.decode()
    assert "$2,120.00 (92.17%)" in html
    assert "Cost data from Feb 2026; margin over Feb–Mar 2026." in html
    assert "Zeta" not in html

    # The report email says the same, with the same names.
    monthly_report_send(tenant=tenant_a, month=MARCH)
    (message,) = mail.outbox
    assert "MRR: $1,200.00" in message.body
    assert "ARR: $14,400.00" in message.body
    assert "Customers with MRR: 2" in message.body
    assert "contracted revenue $15,700.00 over twelve months" in message.body


@pytest.mark.usage_events
def test_each_figure_states_its_definition_the_same_on_the_page_and_in_the_api(owner_client, world, tenant_a):
    definitions = key_client(tenant_a).get("/api/v1/metrics/definitions/" + WINDOW).json()["figures"]

    assert definitions["customers_with_mrr"] == {
        "name": "Customers with MRR",
        "definition": "Customers with MRR: customers whose MRR is above 0 at the end of Mar 2026.",
    }
    assert definitions["gross_margin"]["definition"] == (
        "Gross margin: invoiced revenue − cost to serve of the customers and months with cost data "
        "(Feb–Mar 2026); the rate is that margin ÷ that revenue.")
    assert definitions["invoiced_revenue"]["definition"].startswith(
        "Invoiced revenue: finalized and paid invoices' net amounts (before VAT) for periods in Apr 2025–Mar 2026")
    assert definitions["contracted_revenue"]["name"] != definitions["invoiced_revenue"]["name"]
    pages = {
        "/staff/" + WINDOW: ["mrr", "arr", "customers_with_mrr", "arpa"],
        "/staff/concentration/?month=2026-03": ["contracted_revenue", "customers_with_contracted_revenue"],
        "/staff/economics/" + WINDOW: ["invoiced_revenue", "cost_to_serve", "gross_margin", "customers_invoiced"],
    }
    for path, keys in pages.items():
        html = owner_client.get(path).content.decode()
        for key in keys:
            assert definitions[key]["definition"].replace("'", "&#x27;") in html, (path, key)


@pytest.mark.usage_events
def test_a_frozen_month_shows_its_frozen_figures_everywhere_after_a_backdated_change(owner_client, world, tenant_a):
    for month in months_between(add_months(MARCH, -11), MARCH):
        snapshot_month(tenant=tenant_a, month=month)
    with platform_scope():
        subscribe(world["alpha"], price="500.00", start=MARCH)  # entered after March was frozen
    assert customer_mrr(tenant=tenant_a, month=MARCH)[world["alpha"].pk] == Decimal("1500")  # live moved

    report = monthly_report_context(tenant=tenant_a, month=MARCH)["figures"]
    mrr_api = key_client(tenant_a).get("/api/v1/metrics/mrr/" + WINDOW).json()
    page = owner_client.get("/staff/" + WINDOW)

    assert report["mrr"] == Decimal("1200")
    assert mrr_api["source"] == "snapshot" and mrr_api["months"][-1]["mrr"] == "1200.00"
    assert kpi(page, "MRR") == "$1,200.00"
