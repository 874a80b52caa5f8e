"""Unit economics: capped lifetime, predictive and historical CLV, TCV, CAC payback, time to revenue."""

from datetime import date
from decimal import Decimal

from customers.models import ContractLine
from customers.money import Money
from revenue.selectors.clv import term_months, unit_economics
from revenue.selectors.mrr import usage_revenue
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

DEC = date(2025, 12, 1)


def paying(tenant, price, *, start=date(2025, 1, 1), end=None, interval=1, **customer):
    customer = CustomerFactory(tenant=tenant, **customer)
    contract = ContractFactory(customer=customer, start_date=start, end_date=end, billing_interval=interval)
    ContractLineFactory(contract=contract, unit_price=Money(price, "USD"), starts_on=start)
    return customer


def test_zero_churn_caps_lifetime_at_sixty_months_with_assumed_margin(tenant_a, tenant_b):
    paying(tenant_a, "100.00")
    paying(tenant_b, "100.00", end=date(2025, 9, 10))

    result = unit_economics(tenant=tenant_a, month=DEC)

    assert (result["arpa"], result["churn_rate"], result["lifetime_months"], result["lifetime_capped"]) == (
        Decimal("100"), Decimal("0"), Decimal("60"), True,
    )
    assert (result["gross_margin_assumed"], result["predictive_clv"]) == (True, Decimal("6000"))


def test_predictive_clv_divides_by_average_six_month_churn(tenant_a):
    for _ in range(3):
        paying(tenant_a, "100.00")
    paying(tenant_a, "100.00", end=date(2025, 12, 5))
    # December: 1 of 4 churned; July–November: 0 of 4 → average 1/24 → lifetime 24 months.

    result = unit_economics(tenant=tenant_a, month=DEC, gross_margin=Decimal("0.5"))

    assert result["churn_rate"] == Decimal(1) / 24
    assert result["predictive_clv"] == Decimal("100") * Decimal("0.5") * 24
    assert result["lifetime_capped"] is False


def test_historical_clv_from_contracts_when_no_invoices(tenant_a):
    paying(tenant_a, "100.00", start=date(2025, 10, 1))
    paying(tenant_a, "300.00", start=date(2025, 12, 1))

    result = unit_economics(tenant=tenant_a, month=DEC)

    # 3 month ends × 100 and 1 × 300: 300 each on average.
    assert (result["historical_clv"], result["historical_source"]) == (Decimal("300"), "contracts")


def test_tcv_counts_terms_and_evergreen_twelve_months(tenant_a):
    paying(tenant_a, "1200.00", interval=12, start=date(2025, 1, 1), end=date(2026, 12, 31))  # 24 × 100
    paying(tenant_a, "50.00", start=date(2025, 3, 15))  # evergreen: 12 × 50
    one_off = ContractFactory(customer=CustomerFactory(tenant=tenant_a), start_date=date(2025, 5, 1))
    ContractLineFactory(contract=one_off, kind=ContractLine.Kind.ONE_TIME, unit_price=Money("700.00", "USD"),
                        starts_on=date(2025, 5, 1))

    assert unit_economics(tenant=tenant_a, month=DEC)["tcv"] == Decimal("3700")


def test_term_months_counts_whole_months_then_days_over_thirty():
    assert term_months(date(2025, 1, 1), date(2025, 12, 31)) == 12
    assert term_months(date(2025, 1, 31), date(2025, 2, 27)) == 1  # Jan 31 + 1 month is Feb 28 (clipped)
    assert term_months(date(2025, 1, 15), date(2025, 3, 29)) == 2 + Decimal(15) / 30


def test_cac_payback_and_time_to_revenue(tenant_a):
    paying(tenant_a, "200.00", acquisition_cost=Money("1200.00", "USD"), first_contact_on=date(2024, 1, 1))
    paying(tenant_a, "0.00", start=date(2025, 12, 1))

    result = unit_economics(tenant=tenant_a, month=DEC)

    assert result["cac_payback_months"] == Decimal("6")
    assert result["time_to_revenue_months"] == Decimal(366) * 12 / Decimal("365.25")


def test_usage_revenue_is_zero_without_finalized_invoices(tenant_a):
    assert usage_revenue(tenant=tenant_a, month=DEC) == {"month": DEC, "usage_revenue": Decimal(0), "invoices": 0}
