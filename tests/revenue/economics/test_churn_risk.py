"""Churn risk: each signal's raw figure and points on a hand-computed customer, and the back-test."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.models import CreditRequest, Invoice
from customers.models import Role
from revenue.economics.churn_risk import at_risk_customers, churn_risk_scores, validate_churn_risk
from revenue.selectors.common import MetricError, add_months, month_end
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


def test_only_customers_with_mrr_of_the_tenant_are_scored(fading, tenant_a):
    scores = churn_risk_scores(tenant=tenant_a, as_of=AS_OF)

    assert sorted(s.customer for s in scores.values()) == ["Fading Freight", "Newcomer"]
    newcomer = next(s for s in scores.values() if s.customer == "Newcomer")
    assert (newcomer.score, [s.code for s in newcomer.signals if s.points]) == (Decimal("10.0"), ["tenure"])


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


def test_back_test_months_out_of_range_is_refused(tenant_a):
    with pytest.raises(MetricError, match="months must be from 1 to 24"):
        validate_churn_risk(tenant=tenant_a, months=0)
