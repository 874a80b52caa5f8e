"""MRR at month ends and its movements, on small hand-computed contract histories."""

from datetime import date
from decimal import Decimal

import pytest

from customers.models import Contract, ContractLine
from customers.money import Money
from revenue.selectors.common import MissingExchangeRate, Segment
from revenue.selectors.movements import mrr_movements
from revenue.selectors.mrr import customer_mrr, mrr_series
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.factories import ExchangeRateFactory

JAN, FEB, MAR, APR, MAY = (date(2025, m, 1) for m in range(1, 6))


def contract(customer, *, start, price="99.00", interval=1, end=None, status=Contract.Status.ACTIVE, **line):
    c = ContractFactory(customer=customer, start_date=start, end_date=end, billing_interval=interval, status=status)
    ContractLineFactory(contract=c, unit_price=Money(price, c.currency), starts_on=start, **line)
    return c


def mrr_at(tenant, month):
    return mrr_series(tenant=tenant, first=month, last=month)[0]["mrr"]


def moves(tenant, month, **kwargs):
    return mrr_movements(tenant=tenant, first=month, last=month, **kwargs)[0]


@pytest.fixture
def alpha(tenant_a):
    return CustomerFactory(tenant=tenant_a, name="Alpha", tier="Starter")


@pytest.fixture
def noise(tenant_b):
    """Tenant B's customer on the same dates: it must never show up in tenant A's figures."""
    customer = CustomerFactory(tenant=tenant_b, name="Bravo")
    contract(customer, start=date(2024, 12, 1), price="5000.00")
    return customer


def test_monthly_customer_starting_mid_month_counts_at_month_end(tenant_a, alpha, noise):
    contract(alpha, start=date(2025, 1, 15))

    assert mrr_series(tenant=tenant_a, first=JAN, last=FEB) == [
        {"month": JAN, "segment": "", "mrr": Decimal("99"), "arr": Decimal("1188"), "customers": 1, "arpa": Decimal("99")},
        {"month": FEB, "segment": "", "mrr": Decimal("99"), "arr": Decimal("1188"), "customers": 1, "arpa": Decimal("99")},
    ]


def test_annual_and_quarterly_fees_are_normalized_to_a_month(tenant_a, alpha, noise):
    contract(alpha, start=JAN, price="1200.00", interval=12)
    quarterly = CustomerFactory(tenant=tenant_a)
    contract(quarterly, start=JAN, price="300.00", interval=3)

    assert customer_mrr(tenant=tenant_a, month=JAN) == {alpha.pk: Decimal("100"), quarterly.pk: Decimal("100")}


def test_per_seat_line_is_quantity_times_price(tenant_a, alpha):
    contract(alpha, start=JAN, price="150.00", kind=ContractLine.Kind.PER_SEAT, quantity=Decimal("12"))

    assert mrr_at(tenant_a, JAN) == Decimal("1800")


def test_usage_one_time_and_draft_contracts_are_not_mrr(tenant_a, alpha):
    contract(alpha, start=JAN, price="0.50", kind=ContractLine.Kind.USAGE)
    contract(alpha, start=JAN, price="300000.00", kind=ContractLine.Kind.ONE_TIME)
    contract(alpha, start=JAN, price="99.00", status=Contract.Status.DRAFT)

    assert mrr_at(tenant_a, JAN) == Decimal("0")


def test_discount_ending_in_march_shows_as_expansion_in_april(tenant_a, alpha, noise):
    c = contract(alpha, start=JAN, price="100.00")
    ContractLineFactory(
        contract=c, kind=ContractLine.Kind.DISCOUNT, discount_percent=Decimal("10"),
        unit_price=Money("0", "USD"), starts_on=JAN, ends_on=date(2025, 3, 31),
    )

    assert mrr_at(tenant_a, MAR) == Decimal("90")
    april = moves(tenant_a, APR)
    assert (april["mrr_start"], april["expansion"], april["mrr_end"]) == (Decimal("90"), Decimal("10"), Decimal("100"))


def test_contract_ending_mid_march_is_churn_in_march(tenant_a, alpha, noise):
    contract(alpha, start=JAN, end=date(2025, 3, 15))

    march = moves(tenant_a, MAR)

    assert (march["mrr_start"], march["churn"], march["mrr_end"], march["churned_customers"]) == (
        Decimal("99"), Decimal("99"), Decimal("0"), 1,
    )
    assert mrr_at(tenant_a, MAR) == Decimal("0")


def test_first_month_is_new(tenant_a, alpha):
    contract(alpha, start=FEB)

    assert moves(tenant_a, FEB)["new"] == Decimal("99")
    assert moves(tenant_a, FEB)["new_customers"] == 1


def test_return_after_a_gap_is_reactivation(tenant_a, alpha, noise):
    contract(alpha, start=JAN, end=date(2025, 1, 31))
    contract(alpha, start=date(2025, 4, 10), price="120.00")

    series = mrr_movements(tenant=tenant_a, first=FEB, last=APR)

    assert [(m["churn"], m["new"], m["reactivation"]) for m in series] == [
        (Decimal("99"), 0, 0), (0, 0, 0), (0, 0, Decimal("120")),
    ]


def test_cancelling_one_of_two_contracts_is_contraction(tenant_a, alpha):
    contract(alpha, start=JAN, price="100.00")
    contract(alpha, start=JAN, price="50.00", end=date(2025, 2, 10))

    february = moves(tenant_a, FEB)

    assert (february["contraction"], february["churn"], february["mrr_end"]) == (Decimal("50"), 0, Decimal("100"))


def test_upgrade_by_new_line_version_is_expansion(tenant_a, alpha):
    c = ContractFactory(customer=alpha, start_date=JAN)
    ContractLineFactory(contract=c, unit_price=Money("99.00", "USD"), starts_on=JAN, ends_on=date(2025, 2, 14))
    ContractLineFactory(contract=c, unit_price=Money("299.00", "USD"), starts_on=date(2025, 2, 15))

    assert moves(tenant_a, FEB)["expansion"] == Decimal("200")


def test_sek_customer_is_converted_with_the_latest_stored_rate(tenant_a, alpha):
    swede = CustomerFactory(tenant=tenant_a, currency="SEK")
    contract(swede, start=JAN, price="1000.00")
    ExchangeRateFactory(tenant=tenant_a, currency="SEK", rate=Decimal("0.09"), effective_on=date(2024, 12, 1))
    ExchangeRateFactory(tenant=tenant_a, currency="SEK", rate=Decimal("0.1"), effective_on=date(2025, 2, 28))

    assert [m["mrr"] for m in mrr_series(tenant=tenant_a, first=JAN, last=FEB)] == [Decimal("90"), Decimal("100")]


def test_missing_rate_raises_naming_currency_and_date(tenant_a, tenant_b):
    swede = CustomerFactory(tenant=tenant_a, currency="SEK")
    contract(swede, start=JAN, price="1000.00")
    ExchangeRateFactory(tenant=tenant_b, currency="SEK", effective_on=date(2024, 1, 1))

    with pytest.raises(MissingExchangeRate, match="SEK to USD on or before 2025-01-31"):
        mrr_series(tenant=tenant_a, first=JAN, last=JAN)
    with pytest.raises(MissingExchangeRate, match="SEK"):
        mrr_movements(tenant=tenant_a, first=JAN, last=JAN)


def test_segment_filter_and_grouping_use_the_customers_current_tier(tenant_a, alpha):
    contract(alpha, start=JAN)
    contract(CustomerFactory(tenant=tenant_a, tier="Business"), start=JAN, price="299.00")

    assert mrr_at_segment(tenant_a, "tier:Starter") == Decimal("99")
    grouped = mrr_series(tenant=tenant_a, first=JAN, last=JAN, group_by="tier")
    assert [(row["segment"], row["mrr"]) for row in grouped] == [("Business", Decimal("299")), ("Starter", Decimal("99"))]


def mrr_at_segment(tenant, text):
    return mrr_series(tenant=tenant, first=JAN, last=JAN, segment=Segment.parse(text))[0]["mrr"]


def test_months_without_revenue_are_reported_as_zero(tenant_a, noise):
    assert [m["mrr"] for m in mrr_series(tenant=tenant_a, first=JAN, last=FEB)] == [0, 0]
    assert [m["mrr_end"] for m in mrr_movements(tenant=tenant_a, first=JAN, last=FEB)] == [0, 0]


def test_rate_change_without_contract_change_moves_mrr_in_its_month(tenant_a, alpha, noise):
    swede = CustomerFactory(tenant=tenant_a, currency="SEK")
    contract(swede, start=date(2024, 11, 1), price="1000.00")
    contract(alpha, start=JAN)
    ExchangeRateFactory(tenant=tenant_a, currency="SEK", rate=Decimal("0.09"), effective_on=date(2024, 10, 1))
    ExchangeRateFactory(tenant=tenant_a, currency="SEK", rate=Decimal("0.1"), effective_on=date(2025, 2, 15))
    ExchangeRateFactory(tenant=tenant_a, currency="SEK", rate=Decimal("0.08"), effective_on=date(2025, 4, 1))

    series = mrr_movements(tenant=tenant_a, first=JAN, last=MAY)

    assert [(m["mrr_start"], m["new"], m["expansion"], m["contraction"], m["mrr_end"]) for m in series] == [
        (Decimal("90"), Decimal("99"), 0, 0, Decimal("189")),
        (Decimal("189"), 0, Decimal("10"), 0, Decimal("199")),
        (Decimal("199"), 0, 0, 0, Decimal("199")),
        (Decimal("199"), 0, 0, Decimal("20"), Decimal("179")),
        (Decimal("179"), 0, 0, 0, Decimal("179")),
    ]
    assert [m["mrr"] for m in mrr_series(tenant=tenant_a, first=JAN, last=MAY)] == [m["mrr_end"] for m in series]


def test_month_whose_customers_are_all_new_starts_with_zero_customers(tenant_a, alpha, noise):
    contract(alpha, start=FEB)

    assert (moves(tenant_a, FEB)["customers_start"], moves(tenant_a, FEB)["customers_end"]) == (0, 1)
