"""Figures derived from other selectors' results (the ones the dashboards show), by hand."""

from datetime import date
from decimal import Decimal

from customers.money import Money
from revenue.models import Opportunity
from revenue.selectors.clv import revenue_category_shares, unit_economics
from revenue.selectors.concentration import largest_customers, trailing_revenue
from revenue.selectors.forecast import expected_total, monthly_seed, revenue_forecast
from revenue.selectors.movements import mrr_movements, net_new_mrr
from revenue.selectors.mrr import arr_from_mrr, mrr_series
from revenue.selectors.pipeline import pipeline_coverage, probability_ratio, quarters_ahead, target_left
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.factories import OpportunityFactory, QuarterTargetFactory

DEC = date(2025, 12, 1)
TODAY = date(2026, 11, 10)


def paying(tenant, price, *, start=date(2025, 1, 1)):
    customer = CustomerFactory(tenant=tenant, currency="USD")
    contract = ContractFactory(customer=customer, start_date=start)
    ContractLineFactory(contract=contract, unit_price=Money(price, "USD"), starts_on=start)
    return customer


def test_arr_is_twelve_times_mrr(tenant_a, tenant_b):
    paying(tenant_a, "100.25")
    paying(tenant_b, "999.00")

    [row] = mrr_series(tenant=tenant_a, first=DEC, last=DEC)

    assert arr_from_mrr(row["mrr"]) == Decimal("1203.00")
    assert row["arr"] == Decimal("1203.00")
    assert arr_from_mrr(Decimal("0")) == Decimal("0")


def test_net_new_mrr_is_mrr_at_end_less_mrr_at_start(tenant_a, tenant_b):
    paying(tenant_a, "100.00")
    paying(tenant_a, "50.50", start=DEC)
    paying(tenant_b, "999.00", start=DEC)

    [row] = mrr_movements(tenant=tenant_a, first=DEC, last=DEC)

    assert (row["mrr_start"], row["mrr_end"]) == (Decimal("100.00"), Decimal("150.50"))
    assert net_new_mrr(row) == Decimal("50.50")


def test_revenue_category_shares_are_of_earned_revenue_without_the_pipeline():
    mix = {"recurring": Decimal("300"), "one_off": Decimal("100"), "usage": Decimal("100"), "weighted_pipeline": Decimal("999")}

    assert revenue_category_shares(mix) == {"recurring": Decimal("0.6"), "one_off": Decimal("0.2"), "usage": Decimal("0.2")}


def test_revenue_category_shares_are_none_when_nothing_was_earned():
    mix = {"recurring": Decimal(0), "one_off": Decimal(0), "usage": Decimal(0), "weighted_pipeline": Decimal("50")}

    assert revenue_category_shares(mix) == {"recurring": None, "one_off": None, "usage": None}


def test_revenue_category_shares_of_a_tenant_billing_only_subscriptions(tenant_a, tenant_b):
    paying(tenant_a, "100.00")
    paying(tenant_b, "999.00")

    mix = unit_economics(tenant=tenant_a, month=DEC)["revenue_by_category"]

    assert mix["recurring"] == Decimal("1200.00")
    assert revenue_category_shares(mix) == {"recurring": Decimal(1), "one_off": Decimal(0), "usage": Decimal(0)}


def test_largest_customers_rank_by_revenue_with_shares_of_the_total_and_flags(tenant_a, tenant_b):
    big = paying(tenant_a, "200.00")
    first, second = sorted([paying(tenant_a, "100.00"), paying(tenant_a, "100.00")], key=lambda c: c.pk)
    small = paying(tenant_a, "20.00")
    paying(tenant_b, "99999.00")
    revenue = trailing_revenue(tenant=tenant_a, month=DEC)  # 2 400 + 1 200 + 1 200 + 240 = 5 040

    assert largest_customers(revenue, limit=3) == [
        {"customer_id": big.pk, "revenue": Decimal("2400"), "share": Decimal(10) / 21, "flagged": True},
        {"customer_id": first.pk, "revenue": Decimal("1200"), "share": Decimal(5) / 21, "flagged": True},
        {"customer_id": second.pk, "revenue": Decimal("1200"), "share": Decimal(5) / 21, "flagged": True},
    ]
    assert largest_customers(revenue, limit=10)[-1] == {
        "customer_id": small.pk, "revenue": Decimal("240"), "share": Decimal(1) / 21, "flagged": False,
    }


def test_largest_customers_of_no_revenue_is_empty():
    assert largest_customers({}, limit=10) == []


def test_exactly_ten_percent_is_not_flagged():
    revenue = {customer_id: Decimal("10") for customer_id in range(1, 11)}

    assert {c["flagged"] for c in largest_customers(revenue, limit=10)} == {False}


def test_target_left_is_target_less_won(tenant_a, tenant_b):
    customer = CustomerFactory(tenant=tenant_a, currency="USD")
    QuarterTargetFactory(tenant=tenant_a, year=2026, quarter=4, target=Money("10000.00", "USD"))
    QuarterTargetFactory(tenant=tenant_b, year=2026, quarter=4, target=Money("99999.00", "USD"))
    OpportunityFactory(customer=customer, amount=Money("4000.50", "USD"), probability=100, expected_close_on=TODAY,
                       stage=Opportunity.Stage.WON, closed_on=date(2026, 10, 5))

    coverage = pipeline_coverage(tenant=tenant_a, year=2026, quarter=4, today=TODAY)

    assert target_left(coverage) == Decimal("5999.50")


def test_target_left_is_none_without_a_target(tenant_a, tenant_b):
    QuarterTargetFactory(tenant=tenant_b, year=2026, quarter=4)

    assert target_left(pipeline_coverage(tenant=tenant_a, year=2026, quarter=4, today=TODAY)) is None


def test_probability_ratio_is_the_percent_over_a_hundred():
    assert [probability_ratio(p) for p in (0, 65, 100)] == [Decimal(0), Decimal("0.65"), Decimal(1)]


def test_quarters_ahead_start_with_the_days_quarter_and_cross_the_year():
    assert quarters_ahead(TODAY) == [(2026, 4), (2027, 1), (2027, 2), (2027, 3)]
    assert quarters_ahead(date(2027, 1, 1), count=2) == [(2027, 1), (2027, 2)]


def test_monthly_seed_is_the_same_all_month():
    assert monthly_seed(date(2026, 11, 1)) == monthly_seed(date(2026, 11, 30)) == 202611
    assert monthly_seed(date(2026, 12, 1)) == 202612


def test_expected_total_is_committed_mrr_plus_expected_pipeline():
    month = {"committed_mrr": Decimal("150.00"), "pipeline_expected": Decimal("40.25"), "total_p50": Decimal("150.00")}

    assert expected_total(month) == Decimal("190.25")


def test_expected_total_of_a_tenant_without_pipeline_is_its_committed_mrr(tenant_a, tenant_b):
    paying(tenant_a, "100.00", start=date(2026, 1, 1))
    OpportunityFactory(customer=CustomerFactory(tenant=tenant_b), amount=Money("9999.00", "USD"), probability=90,
                       expected_close_on=date(2026, 12, 1))

    [month] = revenue_forecast(tenant=tenant_a, first=date(2026, 11, 1), months=1, seed=7, runs=10)["months"]

    assert (month["committed_mrr"], expected_total(month)) == (Decimal("100.00"), Decimal("100.00"))
