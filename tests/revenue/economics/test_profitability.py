"""The profitability view: unprofitable and thin-margin customers, revenue at risk, explained advice."""

from datetime import date
from decimal import Decimal

import pytest

from revenue.economics.profitability import profitability
from revenue.selectors.common import MetricError
from tests.customers.factories import CustomerFactory
from tests.revenue.economics.helpers import billed, calls, price

JAN = date(2026, 1, 1)


@pytest.fixture
def book(tenant_a, tenant_b):
    price(tenant_a, "m", "1000000", "0")  # one input token = 1.00
    price(tenant_b, "m", "1000000", "0")
    made = {}
    for name, tier, revenue, n in [
        ("A", "Starter", "29.00", 10), ("B", "Starter", "29.00", 12), ("C", "Starter", "29.00", 40),
        ("D", "Pro", "99.00", 10), ("E", "Pro", "99.00", 80),
        ("F", "Business", "299.00", 50), ("G", "Business", "299.00", 250),
    ]:
        customer = CustomerFactory(tenant=tenant_a, name=name, tier=tier)
        billed(customer, JAN, revenue)
        calls(customer, n)
        made[name] = customer
    loser = CustomerFactory(tenant=tenant_b, tier="Starter")
    billed(loser, JAN, "1.00")
    calls(loser, 500)
    return made


@pytest.mark.usage_events
def test_lists_unprofitable_and_thin_customers_with_revenue_at_risk_by_tier(book, tenant_a):
    result = profitability(tenant=tenant_a, first=JAN, last=JAN)

    assert [(r["customer"], r["status"], r["margin"]) for r in result["customers"]] == [
        ("C", "unprofitable", Decimal("-11.00")), ("E", "thin", Decimal("19.00")), ("G", "thin", Decimal("49.00")),
    ]
    assert result["revenue_at_risk"] == Decimal("427.00")
    assert [(t["tier"], t["unprofitable"], t["thin"], t["revenue_at_risk"]) for t in result["by_tier"]] == [
        ("Business", 0, 1, Decimal("299.00")), ("Pro", 0, 1, Decimal("99.00")), ("Starter", 1, 0, Decimal("29.00")),
    ]


@pytest.mark.usage_events
def test_heavy_user_gets_a_usage_cap_with_its_figures(book, tenant_a):
    rows = {r["customer"]: r for r in profitability(tenant=tenant_a, first=JAN, last=JAN)["customers"]}

    advice = rows["C"]["recommendation"]
    assert advice["action"] == "usage_cap"
    figures = advice["figures"]
    assert (figures["monthly_calls"], figures["tier_median_calls"], figures["cost_per_call"]) == (40, 12, 1)
    assert (figures["cost_at_cap"], figures["margin_rate_at_cap"]) == (Decimal(12), Decimal(17) / Decimal(29))


@pytest.mark.usage_events
def test_customer_a_richer_tier_covers_gets_a_tier_upgrade(book, tenant_a):
    rows = {r["customer"]: r for r in profitability(tenant=tenant_a, first=JAN, last=JAN)["customers"]}

    advice = rows["E"]["recommendation"]
    assert advice["action"] == "tier_upgrade"
    assert advice["figures"]["required_revenue"] == Decimal("114.29")  # 80 / (1 − 0.30)
    assert (advice["figures"]["target_tier"], advice["figures"]["target_tier_average_revenue"]) == ("Business", 299)


@pytest.mark.usage_events
def test_customer_no_tier_covers_gets_a_price_change(book, tenant_a):
    rows = {r["customer"]: r for r in profitability(tenant=tenant_a, first=JAN, last=JAN)["customers"]}

    advice = rows["G"]["recommendation"]
    assert advice["action"] == "price_change"
    assert (advice["figures"]["required_revenue"], advice["figures"]["increase"]) == (
        Decimal("357.14"), Decimal("58.14")
    )


def test_a_thin_margin_of_one_or_more_is_refused(tenant_a):
    with pytest.raises(MetricError, match="thin_margin"):
        profitability(tenant=tenant_a, first=JAN, last=JAN, thin_margin=Decimal(1))
