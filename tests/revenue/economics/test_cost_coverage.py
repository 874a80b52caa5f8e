"""Margins cover only the months with cost data: a month without any cost to serve earns no margin,
and a customer without any cost has "no cost data" instead of a 100 % margin."""

from datetime import date
from decimal import Decimal

import pytest

from customers.models import Role
from revenue.economics.profitability import margins, profitability
from revenue.figures import cost_coverage_note
from tests.customers.factories import CustomerFactory
from tests.revenue.economics.helpers import billed, calls, entered_cost, price

JAN, FEB, MAR = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)


@pytest.fixture
def book(tenant_a, tenant_b):
    """Revenue from January; cost data from February. Heavy: 100 a month, costs 90 in Feb and 95 in Mar.
    Light: 50 a month, 10 of entered cost in March. Quiet: 40 a month, never any cost. Tenant B has cost in
    January, which must not make January a month with cost data for tenant A."""
    price(tenant_a, "m", "1000000", "0")  # one input token = 1.00
    price(tenant_b, "m", "1000000", "0")
    heavy = CustomerFactory(tenant=tenant_a, name="Heavy", tier="Pro")
    light = CustomerFactory(tenant=tenant_a, name="Light", tier="Pro")
    quiet = CustomerFactory(tenant=tenant_a, name="Quiet", tier="Starter")
    for month in (JAN, FEB, MAR):
        billed(heavy, month, "100.00")
        billed(light, month, "50.00")
        billed(quiet, month, "40.00")
    calls(heavy, 90, when=date(2026, 2, 3))
    calls(heavy, 95, when=date(2026, 3, 3))
    entered_cost(light, MAR, "10.00")
    elsewhere = CustomerFactory(tenant=tenant_b)
    billed(elsewhere, JAN, "500.00")
    calls(elsewhere, 7, when=date(2026, 1, 3))
    return {"heavy": heavy, "light": light, "quiet": quiet}


@pytest.mark.usage_events
def test_the_margin_covers_only_the_months_with_cost_data(book, tenant_a):
    result = margins(tenant=tenant_a, first=JAN, last=MAR)

    assert result["cost_months"] == [FEB, MAR]
    # Heavy and Light in February and March: 2 × 150 of revenue, 195 of cost; Quiet's 120 and January's 190 are out.
    assert result["total"] == {
        "revenue": Decimal("570.00"), "cost": Decimal("195.00"), "costed_revenue": Decimal("300.00"),
        "margin": Decimal("105.00"), "margin_rate": Decimal("105") / Decimal("300"), "has_cost_data": True, "calls": 185,
    }
    assert [(m["month"], m["revenue"], m["costed_revenue"], m["margin"]) for m in result["by_month"]] == [
        (JAN, Decimal("190.00"), None, None), (FEB, Decimal("190.00"), Decimal("150.00"), Decimal("60.00")),
        (MAR, Decimal("190.00"), Decimal("150.00"), Decimal("45.00")),
    ]
    assert [(t["tier"], t["customers"], t["margin"]) for t in result["by_tier"]] == [
        ("Pro", 2, Decimal("105.00")), ("Starter", 1, None)]


@pytest.mark.usage_events
def test_a_customer_without_cost_data_has_no_margin_and_is_not_advised(book, tenant_a):
    rows = {r["customer"]: r for r in margins(tenant=tenant_a, first=JAN, last=MAR)["customers"]}

    assert (rows["Heavy"]["costed_revenue"], rows["Heavy"]["cost"], rows["Heavy"]["margin"]) == (
        Decimal("200.00"), Decimal("185.00"), Decimal("15.00"))
    assert (rows["Heavy"]["monthly_revenue"], rows["Heavy"]["monthly_cost"]) == (Decimal("100"), Decimal("92.5"))
    assert (rows["Light"]["costed_revenue"], rows["Light"]["margin"]) == (Decimal("100.00"), Decimal("90.00"))
    assert (rows["Quiet"]["revenue"], rows["Quiet"]["has_cost_data"], rows["Quiet"]["margin"], rows["Quiet"]["margin_rate"]) == (
        Decimal("120.00"), False, None, None)
    listed = profitability(tenant=tenant_a, first=JAN, last=MAR)["customers"]
    assert [(r["customer"], r["status"]) for r in listed] == [("Heavy", "thin")]


@pytest.mark.usage_events
def test_a_window_without_cost_data_has_no_margin(book, tenant_a):
    result = margins(tenant=tenant_a, first=JAN, last=JAN)

    assert result["cost_months"] == []
    assert (result["total"]["revenue"], result["total"]["margin"], result["total"]["margin_rate"]) == (
        Decimal("190.00"), None, None)
    assert cost_coverage_note(tenant=tenant_a, window=(JAN, JAN), cost_months=[]) == (
        "No cost data in Jan 2026: no margin is shown.")
    assert cost_coverage_note(tenant=tenant_a, window=(FEB, MAR), cost_months=[FEB, MAR]) == ""


@pytest.mark.usage_events
def test_the_profitability_page_says_what_the_margin_covers(client, book, tenant_a, member_factory):
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    html = client.get("/staff/economics/?from=2026-01&to=2026-03").content.decode()

    assert "Cost data from Feb 2026; margin over Feb–Mar 2026." in html
    assert "Invoiced revenue with cost data: $300.00." in html
    assert "$105.00 (35%)" in html  # 105 / 300, not 375 / 570
    assert html.count("no cost data") == 2  # January's row and the Starter tier (Quiet alone)
