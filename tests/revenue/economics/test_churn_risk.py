"""Churn risk: each signal's raw figure and points on a hand-computed customer, and the back-test."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from billing.models import CreditRequest, Invoice
from customers.models import Role
from customers.money import Money
from customers.periods import add_months, month_end
from revenue.economics.churn_risk import (
    _auc,
    at_risk_customers,
    churn_risk_scores,
    usage_history_start,
    validate_churn_risk,
)
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.economics.helpers import calls

AS_OF = date(2026, 3, 31)


def invoice(customer, number, due, *, paid_on=None, net="100.00"):
    period = add_months(date(due.year, due.month, 1), -1)  # billed for the month before it falls due
    return Invoice.objects.create(
        tenant=customer.tenant, customer=customer, period_start=period, period_end=month_end(period),
        currency=customer.currency, status=Invoice.Status.PAID if paid_on else Invoice.Status.FINALIZED,
        number=number, sequence_number=1, subtotal=Decimal(net), total=Decimal(net), amount_due=Decimal(net),
        issue_date=date(due.year, due.month, 1), due_date=due,
        paid_at=datetime(paid_on.year, paid_on.month, paid_on.day, 12, tzinfo=timezone.utc) if paid_on else None,
    )


@pytest.fixture
def fading(tenant_a, tenant_b, member_factory):
    customer = CustomerFactory(tenant=tenant_a, name="Fading Freight", tier="Pro")
    contract = ContractFactory(customer=customer, start_date=date(2025, 1, 1))
    ContractLineFactory(contract=contract, unit_price=Money("100.00", "USD"), ends_on=date(2026, 2, 28))
    ContractLineFactory(contract=contract, unit_price=Money("60.00", "USD"), starts_on=date(2026, 3, 1))
    calls(customer, 60, when=date(2026, 1, 10))
    calls(customer, 20, when=date(2026, 3, 10))
    invoice(customer, "A-1", date(2026, 3, 1))  # unpaid: overdue on the 31st
    invoice(customer, "A-2", date(2026, 4, 15), paid_on=date(2026, 4, 20))  # not due yet on the 31st
    invoice(customer, "A-3", date(2026, 2, 1), paid_on=date(2026, 4, 10))  # paid after as_of: overdue then
    invoice(customer, "A-4", date(2026, 1, 1), paid_on=date(2026, 1, 10))  # paid in time
    request = CreditRequest.objects.create(tenant=tenant_a, customer=customer, amount=Decimal("50.00"), currency="USD",
                                           reason="Outage", requested_by=member_factory(tenant_a, Role.FINANCE))
    # Requested in March, still undecided: open on the 31st (created_at is stamped now otherwise).
    CreditRequest.objects.for_tenant(tenant_a).filter(pk=request.pk).update(
        created_at=datetime(2026, 3, 20, tzinfo=timezone.utc))
    newcomer = CustomerFactory(tenant=tenant_a, name="Newcomer")
    ContractLineFactory(contract=ContractFactory(customer=newcomer, start_date=date(2026, 1, 15)),
                        unit_price=Money("50.00", "USD"))
    CustomerFactory(tenant=tenant_a, name="No contract")
    other = CustomerFactory(tenant=tenant_b, name="Elsewhere")
    ContractLineFactory(contract=ContractFactory(customer=other, start_date=date(2026, 3, 1)))
    return customer


@pytest.mark.usage_events
def test_each_signal_has_its_raw_figure_and_points(fading, tenant_a):
    score = churn_risk_scores(tenant=tenant_a, as_of=AS_OF)[fading.pk]

    signals = {s.code: s for s in score.signals}
    assert signals["usage_trend"].raw["ratio"] == Decimal("0.75")  # (20/30) / (80/90)
    assert signals["usage_trend"].points == Decimal("12.5")
    assert (signals["contraction"].raw["contraction"], signals["contraction"].raw["share"]) == (Decimal(40), Decimal("0.4"))
    assert signals["contraction"].points == Decimal("16.0")
    assert (signals["overdue"].raw["invoices"], signals["overdue"].raw["amount_due"]) == (2, Decimal("200.00"))
    assert signals["overdue"].raw["oldest_days_overdue"] == 58
    assert signals["overdue"].points == Decimal("20.0")
    assert signals["open_credits"].points == Decimal("10.0")
    assert (signals["tenure"].raw["months"], signals["tenure"].points) == (14, Decimal("0.0"))
    assert signals["savings_trend"].points == Decimal("0.0")
    assert score.score == Decimal("58.5")
    assert score.mrr == Decimal("60")


@pytest.mark.usage_events
def test_only_customers_with_mrr_of_the_tenant_are_scored(fading, tenant_a):
    scores = churn_risk_scores(tenant=tenant_a, as_of=AS_OF)

    assert sorted(s.customer for s in scores.values()) == ["Fading Freight", "Newcomer"]
    newcomer = next(s for s in scores.values() if s.customer == "Newcomer")
    assert (newcomer.score, [s.code for s in newcomer.signals if s.points]) == (Decimal("10.0"), ["tenure"])


@pytest.mark.usage_events
def test_at_risk_list_holds_only_customers_at_or_above_the_threshold(fading, tenant_a):
    rows = at_risk_customers(tenant=tenant_a, as_of=AS_OF, limit=10)

    assert [(r["customer"], r["score"], r["at_risk"]) for r in rows] == [("Fading Freight", Decimal("58.5"), True)]
    assert len(rows[0]["signals"]) == 6


@pytest.fixture
def churn_history(tenant_a, tenant_b):
    churner = CustomerFactory(tenant=tenant_a, name="Churner")
    ContractLineFactory(contract=ContractFactory(customer=churner, start_date=date(2025, 6, 1),
                                                 end_date=date(2026, 1, 31)), ends_on=date(2026, 1, 31))
    invoice(churner, "C-1", date(2025, 12, 1))  # never paid
    stayer = CustomerFactory(tenant=tenant_a, name="Stayer")
    ContractLineFactory(contract=ContractFactory(customer=stayer, start_date=date(2024, 1, 1)))
    elsewhere = CustomerFactory(tenant=tenant_b, name="Churner elsewhere")
    ContractLineFactory(contract=ContractFactory(customer=elsewhere, start_date=date(2025, 6, 1),
                                                 end_date=date(2026, 1, 31)), ends_on=date(2026, 1, 31))
    return churner


def test_back_test_shares_of_churners_and_stayers_above_the_threshold(churn_history, tenant_a):
    result = validate_churn_risk(tenant=tenant_a, months=2, threshold=Decimal(10), last=date(2026, 2, 1))

    assert result["churns"] == 1
    assert result["one_month_before"] == {"scored": 1, "above": 1, "share": Decimal(1), "mean_score": Decimal("10.0")}
    assert result["two_months_before"] == {"scored": 1, "above": 1, "share": Decimal(1), "mean_score": Decimal("10.0")}
    assert result["non_churners"] == {"scored": 1, "above": 0, "share": Decimal(0), "mean_score": Decimal("0.0")}
    assert [(c["customer"], c["churned_in"]) for c in result["churners"]] == [("Churner", date(2026, 2, 1))]
    assert (result["auc_one_month"], result["auc_two_months"]) == (Decimal("1.000"), Decimal("1.000"))
    assert result["usage_history_from"] is None  # no usage at all


def test_auc_is_the_share_of_pairs_where_the_churner_scored_higher_ties_half():
    # Pairs (3,1) 1, (3,3) ½, (3,4) 0, (5,1) 1, (5,3) 1, (5,4) 1: 4.5 of 6.
    assert _auc([Decimal(3), Decimal(5)], [Decimal(1), Decimal(3), Decimal(4)]) == Decimal("0.750")
    assert _auc([Decimal(2)], [Decimal(2), Decimal(2)]) == Decimal("0.500")
    assert _auc([Decimal(0)], [Decimal(9)]) == Decimal("0.000")
    assert _auc([], [Decimal(1)]) is None


def _usage_signal(tenant, customer):
    score = churn_risk_scores(tenant=tenant, as_of=AS_OF)[customer.pk]
    return next(s for s in score.signals if s.code == "usage_trend")


def test_usage_trend_of_a_young_customer_reads_its_days_not_ninety(usage_store, tenant_a):
    young = CustomerFactory(tenant=tenant_a, name="Young")
    ContractLineFactory(contract=ContractFactory(customer=young, start_date=date(2026, 2, 1)))
    calls(young, 1, when=date(2025, 6, 1))  # the tenant's usage history starts in June 2025
    calls(young, 40, when=date(2026, 2, 10))
    calls(young, 10, when=date(2026, 3, 10))

    signal = _usage_signal(tenant_a, young)

    # 1 February to 31 March is 59 days: (10/30) / (50/59) = 0.3933…, a fall of 61 %: in full.
    # Over 90 days it would have read (10/30) / (50/90) = 0.6, 20 points.
    assert signal.raw["history_days"] == 59
    assert signal.raw["ratio"].quantize(Decimal("0.0001")) == Decimal("0.3933")
    assert signal.points == Decimal("25.0")


@pytest.mark.usage_events
def test_usage_trend_of_a_returning_customer_starts_at_its_return(tenant_a):
    back = CustomerFactory(tenant=tenant_a, name="Back again")
    ContractLineFactory(contract=ContractFactory(customer=back, start_date=date(2024, 1, 1), end_date=date(2025, 6, 30)),
                        ends_on=date(2025, 6, 30))
    ContractLineFactory(contract=ContractFactory(customer=back, start_date=date(2025, 7, 1), end_date=date(2025, 10, 31)),
                        ends_on=date(2025, 10, 31))  # no gap: the same run
    ContractLineFactory(contract=ContractFactory(customer=back, start_date=date(2026, 2, 16)))  # back after a gap
    calls(back, 30, when=date(2026, 2, 20))
    calls(back, 15, when=date(2026, 3, 20))

    signal = _usage_signal(tenant_a, back)

    # 16 February to 31 March is 44 days: (15/30) / (45/44) = 0.4889, a fall of 51 %: in full.
    assert signal.raw["history_days"] == 44
    assert signal.points == Decimal("25.0")


def test_usage_trend_starts_with_the_tenants_usage_history(usage_store, tenant_a, tenant_b):
    steady = CustomerFactory(tenant=tenant_a, name="Steady since 2024")
    ContractLineFactory(contract=ContractFactory(customer=steady, start_date=date(2024, 1, 1)))
    calls(steady, 62, when=date(2026, 2, 3))  # the tenant sent its first usage in February
    calls(steady, 31, when=date(2026, 3, 3))
    elsewhere = CustomerFactory(tenant=tenant_b, name="Older usage elsewhere")
    calls(elsewhere, 5, when=date(2025, 1, 5))

    signal = _usage_signal(tenant_a, steady)

    # From 1 February: 59 days; (31/30) / (93/59) = 0.6556, a fall of 34.4 %: 0.689 of 25 points.
    assert usage_history_start(tenant_a) == date(2026, 2, 1)
    assert signal.raw["history_days"] == 59
    assert signal.points == Decimal("17.2")


@pytest.mark.usage_events
def test_thirty_days_of_history_or_less_has_no_trend(tenant_a):
    new = CustomerFactory(tenant=tenant_a, name="Brand new")
    ContractLineFactory(contract=ContractFactory(customer=new, start_date=date(2026, 3, 5)))
    calls(new, 3, when=date(2026, 3, 6))

    signal = _usage_signal(tenant_a, new)

    # 27 days: read as a trend it would be (3/30) / (3/27) = 0.9, a fall of 10 % and 5 points.
    assert (signal.raw["history_days"], signal.raw["ratio"], signal.points) == (27, None, Decimal("0.0"))
    assert signal.explanation == "27 day(s) of history: too short for a trend."
