"""Pipeline by period and band, coverage against targets, and the seeded Monte-Carlo forecast."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.money import Money
from revenue.models import Opportunity
from revenue.selectors.forecast import revenue_forecast
from revenue.selectors.pipeline import period_label, pipeline_coverage, pipeline_summary
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.factories import OpportunityFactory, QuarterTargetFactory

TODAY = date(2026, 11, 10)


@pytest.fixture
def customer_a(tenant_a):
    return CustomerFactory(tenant=tenant_a, currency="USD")


def deal(customer, amount, probability, close, **fields):
    return OpportunityFactory(
        customer=customer, amount=Money(amount, "USD"), probability=probability, expected_close_on=close, **fields
    )


def test_periods_are_quarters_for_a_year_then_half_years():
    assert [period_label(d, TODAY) for d in (None, date(2026, 9, 30), date(2026, 12, 31), date(2027, 9, 1),
                                             date(2027, 10, 1), date(2028, 4, 1))] == [
        "undated", "overdue", "2026-Q4", "2027-Q3", "2027-H2", "2028-H1",
    ]


def test_pipeline_by_period_and_band_keeps_undated_apart(tenant_a, tenant_b, customer_a):
    deal(customer_a, "1000.00", 20, date(2026, 12, 1))
    deal(customer_a, "3000.00", 50, date(2026, 12, 20))
    deal(customer_a, "2000.00", 80, None)
    deal(customer_a, "500.00", 100, date(2026, 12, 1), stage=Opportunity.Stage.WON)
    deal(CustomerFactory(tenant=tenant_b), "9999.00", 50, date(2026, 12, 1))

    summary = pipeline_summary(tenant=tenant_a, today=TODAY)

    assert summary["by_period"] == {"2026-Q4": {"count": 2, "amount": Decimal("4000"), "weighted": Decimal("1700")}}
    assert summary["undated"] == {"count": 1, "amount": Decimal("2000"), "weighted": Decimal("1600")}
    assert {band: b["weighted"] for band, b in summary["by_band"].items()} == {
        "early": Decimal("200"), "active": Decimal("1500"), "negotiating": Decimal("1600"),
    }
    assert summary["open"]["amount"] == Decimal("6000")


def test_coverage_is_open_pipeline_over_target_less_won(tenant_a, customer_a):
    QuarterTargetFactory(tenant=tenant_a, year=2026, quarter=4, target=Money("10000.00", "USD"))
    deal(customer_a, "12000.00", 50, date(2026, 11, 30))
    deal(customer_a, "4000.00", 100, date(2026, 10, 5), stage=Opportunity.Stage.WON, closed_on=date(2026, 10, 5))

    coverage = pipeline_coverage(tenant=tenant_a, year=2026, quarter=4, today=TODAY)

    assert (coverage["coverage"], coverage["weighted_coverage"], coverage["won"]) == (
        Decimal("2"), Decimal("1"), Decimal("4000"),
    )


def test_coverage_without_target_is_none_with_a_reason(tenant_a, tenant_b, customer_a):
    QuarterTargetFactory(tenant=tenant_b, year=2026, quarter=4)
    deal(customer_a, "12000.00", 50, date(2026, 11, 30))

    coverage = pipeline_coverage(tenant=tenant_a, year=2026, quarter=4, today=TODAY)

    assert (coverage["coverage"], coverage["reason"]) == (None, "No target is set for 2026-Q4.")


def test_stale_lists_open_deals_above_sixty_percent_untouched_for_a_week(tenant_a, customer_a):
    old = timezone.now() - timedelta(days=8)
    stale = deal(customer_a, "100.00", 70, date(2026, 12, 1), last_touched_at=old)
    deal(customer_a, "100.00", 60, date(2026, 12, 1), last_touched_at=old)

    assert [row["id"] for row in pipeline_summary(tenant=tenant_a, today=TODAY)["stale"]] == [stale.pk]


def test_win_rate_from_closed_deals(tenant_a, customer_a):
    deal(customer_a, "300.00", 100, None, stage=Opportunity.Stage.WON, closed_on=date(2026, 1, 11),
         created_at=timezone.make_aware(timezone.datetime(2026, 1, 1, 12)))
    deal(customer_a, "100.00", 0, None, stage=Opportunity.Stage.LOST, closed_on=date(2026, 1, 5))

    summary = pipeline_summary(tenant=tenant_a, today=TODAY)

    assert (summary["win_rate"], summary["win_rate_by_value"], summary["average_days_to_close"]) == (
        Decimal("0.5"), Decimal("0.75"), Decimal("10"),
    )


def forecast(tenant, seed=7, runs=2000):
    return revenue_forecast(tenant=tenant, first=date(2026, 11, 1), seed=seed, runs=runs)


def test_forecast_is_deterministic_with_a_seed_and_percentiles_are_ordered(tenant_a, tenant_b, customer_a):
    for i in range(20):
        deal(customer_a, f"{1200 * (i + 1)}.00", 10 + 4 * i, date(2026, 12, 1) + timedelta(days=9 * i))
    deal(customer_a, "5000.00", 50, date(2027, 1, 15), kind=Opportunity.Kind.ONE_OFF)
    deal(CustomerFactory(tenant=tenant_b), "99999.00", 90, date(2026, 12, 1))

    first, second = forecast(tenant_a), forecast(tenant_a)

    assert first == second
    for month in first["months"]:
        assert month["pipeline_p10"] <= month["pipeline_p50"] <= month["pipeline_p90"]
    assert first["months"][0]["pipeline_p90"] == 0  # the first deal closes in December
    assert first["months"][-1]["pipeline_p90"] > first["months"][-1]["pipeline_p10"]


def test_forecast_commits_contracts_renewing_auto_renewals(tenant_a, customer_a):
    renewing = ContractFactory(customer=customer_a, start_date=date(2026, 1, 1), end_date=date(2026, 12, 31),
                               auto_renew=True)
    ContractLineFactory(contract=renewing, unit_price=Money("100.00", "USD"), starts_on=date(2026, 1, 1))
    ending = ContractFactory(customer=customer_a, start_date=date(2026, 1, 1), end_date=date(2027, 1, 31))
    ContractLineFactory(contract=ending, unit_price=Money("50.00", "USD"), starts_on=date(2026, 1, 1))
    deal(customer_a, "2400.00", 100, date(2027, 2, 1))
    deal(customer_a, "7777.00", 50, None)

    result = forecast(tenant_a)

    assert [m["committed_mrr"] for m in result["months"][:4]] == [Decimal("150"), Decimal("150"), Decimal("150"), Decimal("100")]
    # The renewed 100 goes on; the 50 ends in January; the won-for-sure deal adds 2 400 / 12 from February.
    assert [m["total_p50"] for m in result["months"][2:4]] == [Decimal("150"), Decimal("300")]
    assert result["undated"] == {"count": 1, "amount": Decimal("7777")}
