"""Pricing what-ifs: hand-computed plans, reconciliation with finalized invoices, nothing written."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import BillableMetric, ChargeModel, Invoice, UsageEvent
from billing.services import invoice_compute_drafts, invoice_finalize
from customers.money import Money
from customers.tenancy import tenant_scope
from revenue.economics.whatif import movers, pricing_whatif
from revenue.models import PricePlan
from revenue.selectors.common import MetricError
from tests.billing.factories import PriceTermsFactory, usage_events_write
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

JAN, FEB = date(2026, 1, 1), date(2026, 2, 1)
_keys = iter(range(10**9))


def jobs(customer, count, day):
    usage_events_write([
        UsageEvent(tenant=customer.tenant, customer=customer, metric_code="jobs", idempotency_key=f"j-{next(_keys)}",
                   timestamp=datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc))
        for _ in range(count)
    ])


def starter(customer, start):
    """The actual plan: 29.00 a month with 100 jobs included, 0.50 per job above."""
    line = ContractLineFactory(contract=ContractFactory(customer=customer, start_date=start),
                               description="Starter", unit_price=Money("29.00", customer.currency))
    PriceTermsFactory(contract_line=line, tenant=customer.tenant, charge_model=ChargeModel.INCLUDED_QUOTA,
                      metric="jobs", terms={"included": "100", "overage_unit_price": "0.50"})


def plan(tenant, code, base_fee, charge_model, *, metric="", unit_price="0", terms=None, currency="USD"):
    made = PricePlan(tenant=tenant, code=code, name=code, currency=currency, base_fee=Decimal(base_fee),
                     charge_model=charge_model, metric=metric, unit_price=Decimal(unit_price), terms=terms or {})
    with tenant_scope(tenant):
        made.full_clean()
    made.save()
    return made


@pytest.fixture
def book(tenant_a, tenant_b):
    BillableMetric.objects.create(tenant=tenant_a, code="jobs", name="Jobs")
    xavier = CustomerFactory(tenant=tenant_a, name="Xavier")
    starter(xavier, JAN)
    jobs(xavier, 120, date(2026, 1, 10))  # 29.00 + 20 × 0.50 = 39.00
    jobs(xavier, 80, date(2026, 2, 10))  # 29.00
    yara = CustomerFactory(tenant=tenant_a, name="Yara")
    starter(yara, date(2026, 2, 15))  # February prorated: 29.00 × 14/28 = 14.50
    jobs(yara, 10, date(2026, 2, 20))
    plan(tenant_a, "flat-49", "49.00", ChargeModel.FLAT)
    plan(tenant_a, "usage-030", "0", ChargeModel.PER_UNIT, metric="jobs", unit_price="0.30")
    plan(tenant_a, "tiered", "0", ChargeModel.GRADUATED, metric="jobs",
         terms={"tiers": [{"up_to": "100", "unit_price": "0.40"}, {"up_to": None, "unit_price": "0.20"}]})
    plan(tenant_a, "hybrid", "19.00", ChargeModel.INCLUDED_QUOTA, metric="jobs",
         terms={"included": "50", "overage_unit_price": "0.30"})
    plan(tenant_a, "euro", "10.00", ChargeModel.FLAT, currency="EUR")
    BillableMetric.objects.create(tenant=tenant_b, code="jobs", name="Jobs")
    other = CustomerFactory(tenant=tenant_b, name="Elsewhere")
    starter(other, JAN)
    jobs(other, 500, date(2026, 1, 10))
    for month, end in ((JAN, date(2026, 1, 31)), (FEB, date(2026, 2, 28))):
        invoice_compute_drafts(tenant=tenant_a, period_start=month, period_end=end)
    for invoice in Invoice.objects.for_tenant(tenant_a):
        invoice_finalize(invoice=invoice, deliver=False)
    return tenant_a


@pytest.mark.usage_events
def test_each_plan_reprices_the_actual_usage(book):
    result = pricing_whatif(tenant=book, months=2, last=FEB)

    totals = result["totals"]
    assert (totals["actual"]["revenue"], totals["actual"]["billed"]) == (Decimal("82.50"), Decimal("82.50"))
    assert totals["flat-49"]["revenue"] == Decimal("122.50")  # 49 + 49 + 49 × 14/28
    assert totals["usage-030"]["revenue"] == Decimal("63.00")  # (120 + 80 + 10) × 0.30
    assert totals["tiered"]["revenue"] == Decimal("80.00")  # 44.00 + 32.00 + 4.00
    assert totals["hybrid"]["revenue"] == Decimal("77.50")  # (19 + 70 × 0.30) + (19 + 30 × 0.30) + 19 × 14/28
    assert (totals["flat-49"]["delta"], totals["flat-49"]["pay_more"], totals["flat-49"]["pay_less"]) == (
        Decimal("40.00"), 2, 0
    )
    assert (totals["usage-030"]["pay_more"], totals["usage-030"]["pay_less"]) == (0, 2)


@pytest.mark.usage_events
def test_per_customer_figures_and_movers(book):
    result = pricing_whatif(tenant=book, months=2, last=FEB)

    rows = {r["customer"]: r for r in result["customers"]}
    assert (rows["Xavier"]["actual"], rows["Xavier"]["plans"]["tiered"]["revenue"]) == (Decimal("68.00"), Decimal("76.00"))
    assert rows["Yara"]["plans"]["usage-030"] == {"revenue": Decimal("3.00"), "margin": Decimal("3.00"), "delta": Decimal("-11.50")}
    assert [m["customer"] for m in movers(result, "tiered")["pay_more"]] == ["Xavier"]
    assert [m["customer"] for m in movers(result, "tiered")["pay_less"]] == ["Yara"]


@pytest.mark.usage_events
def test_the_actual_plan_reconciles_with_finalized_invoices_to_the_cent(book):
    result = pricing_whatif(tenant=book, months=2, last=FEB)

    assert result["reconciliation"] == {"invoiced_months": 3, "matching": 3, "differences": []}
    for row in result["customers"]:
        assert row["actual"] == row["billed"]


@pytest.mark.usage_events
def test_a_plan_in_another_currency_does_not_apply(book):
    totals = pricing_whatif(tenant=book, months=2, last=FEB)["totals"]["euro"]

    assert (totals["customers"], totals["not_applicable"], totals["revenue"]) == (0, 2, Decimal(0))


@pytest.mark.usage_events
def test_nothing_is_written(book):
    before = Invoice.objects.for_tenant(book).count()

    pricing_whatif(tenant=book, months=2, last=FEB)

    assert Invoice.objects.for_tenant(book).count() == before == 3


@pytest.mark.usage_events
def test_unknown_plan_and_bad_months_are_refused(book):
    with pytest.raises(MetricError, match="No price plan nope"):
        pricing_whatif(tenant=book, plan_codes=["nope"])
    with pytest.raises(MetricError, match="months must be from 1 to 24"):
        pricing_whatif(tenant=book, months=25)


def test_a_metered_plan_without_a_metric_is_refused(tenant_a):
    with pytest.raises(ValidationError) as error:
        plan(tenant_a, "broken", "0", ChargeModel.PER_UNIT, unit_price="0.10")

    assert "metric" in error.value.message_dict
