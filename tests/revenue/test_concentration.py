"""Concentration of trailing-12-month revenue, churn rates and 12-month retention, by hand."""

from datetime import date
from decimal import Decimal

from customers.models import ContractLine
from customers.money import Money
from revenue.selectors.concentration import concentration_indices, revenue_concentration
from revenue.selectors.retention import retention_series
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

DEC = date(2025, 12, 1)


def customer_paying(tenant, price, *, start=date(2025, 1, 1), end=None, kind=ContractLine.Kind.RECURRING):
    customer = CustomerFactory(tenant=tenant)
    contract = ContractFactory(customer=customer, start_date=start, end_date=end)
    ContractLineFactory(contract=contract, kind=kind, unit_price=Money(price, contract.currency), starts_on=start)
    return customer


def test_four_equal_customers_have_hhi_2500_and_gini_0(tenant_a, tenant_b):
    for _ in range(4):
        customer_paying(tenant_a, "100.00")
    customer_paying(tenant_b, "99999.00")

    result = revenue_concentration(tenant=tenant_a, month=DEC)

    assert result["total_revenue"] == Decimal("4800")
    assert (result["hhi"], result["hhi_band"], result["gini"], result["top5_share"]) == (
        Decimal("2500"), "moderate", Decimal("0"), Decimal("1"),
    )
    assert [share for _, share in result["lorenz"]] == [Decimal(0), Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), 1]


def test_customers_above_ten_percent_are_flagged(tenant_a):
    big = customer_paying(tenant_a, "200.00")
    for _ in range(18):
        customer_paying(tenant_a, "100.00")

    flagged = revenue_concentration(tenant=tenant_a, month=DEC)["flagged"]

    # 200 × 12 of 2 000 × 12: exactly 10 % is not above 10 %.
    assert flagged == []
    customer_paying(tenant_a, "1.00", kind=ContractLine.Kind.ONE_TIME, start=date(2025, 6, 1))
    assert revenue_concentration(tenant=tenant_a, month=DEC)["flagged"] == []
    extra = ContractFactory(customer=big, start_date=date(2025, 3, 1))
    ContractLineFactory(contract=extra, kind="one_time", unit_price=Money("100.00", "USD"), starts_on=date(2025, 3, 1))
    assert [f["customer_id"] for f in revenue_concentration(tenant=tenant_a, month=DEC)["flagged"]] == [big.pk]


def test_one_dominant_customer_is_high_concentration():
    result = concentration_indices({1: Decimal("900"), 2: Decimal("50"), 3: Decimal("50")})

    assert result["hhi"] == Decimal("8150")
    assert result["hhi_band"] == "high"
    assert result["gini"] == Decimal("1700") / Decimal("3000")


def test_joined_and_churned_in_same_month_counts_in_no_churn_rate(tenant_a, tenant_b):
    customer_paying(tenant_a, "100.00")
    customer_paying(tenant_a, "100.00", end=date(2025, 3, 20))
    customer_paying(tenant_a, "500.00", start=date(2025, 3, 2), end=date(2025, 3, 25))
    customer_paying(tenant_b, "100.00", end=date(2025, 3, 20))

    march = retention_series(tenant=tenant_a, first=date(2025, 3, 1), last=date(2025, 3, 1))[0]

    assert (march["customers_start"], march["churned_customers"], march["customer_churn_rate"]) == (2, 1, Decimal("0.5"))
    assert (march["gross_mrr_churn"], march["net_mrr_churn"], march["quick_ratio"]) == (
        Decimal("0.5"), Decimal("0.5"), Decimal("0"),
    )


def test_nrr_and_grr_over_twelve_months(tenant_a, tenant_b):
    grower = customer_paying(tenant_a, "100.00", start=date(2024, 1, 1))
    upgrade = ContractFactory(customer=grower, start_date=date(2024, 6, 1))
    ContractLineFactory(contract=upgrade, unit_price=Money("50.00", "USD"), starts_on=date(2024, 6, 1))
    customer_paying(tenant_a, "100.00", start=date(2024, 1, 1), end=date(2024, 8, 31))
    customer_paying(tenant_a, "300.00", start=date(2024, 3, 1))  # joined after the base month: not counted
    customer_paying(tenant_b, "100.00", start=date(2024, 1, 1), end=date(2024, 2, 1))

    jan = retention_series(tenant=tenant_a, first=date(2025, 1, 1), last=date(2025, 1, 1))[0]

    # base: 100 + 100 = 200; now: 150 + 0; capped: 100 + 0.
    assert (jan["nrr"], jan["grr"]) == (Decimal("0.75"), Decimal("0.5"))
    assert jan["arpa"] == Decimal("225")
