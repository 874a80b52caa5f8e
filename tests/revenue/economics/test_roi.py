"""Customer ROI on savings: baseline, optimized, savings, fees by kind, ROI and payback; the evidence."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from billing.models import BillableMetric, ChargeModel, Invoice, InvoiceLine, UsageEvent
from billing.services import invoice_compute_drafts, invoice_finalize
from customers.models import ContractLine
from customers.money import Money
from revenue.economics.roi import customer_roi, savings_customers, savings_evidence
from revenue.selectors.common import MetricError
from tests.billing.factories import PriceTermsFactory, usage_events_write
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

JAN, FEB = date(2026, 1, 1), date(2026, 2, 1)


def saving(customer, day, baseline, optimized, key):
    """One verified-savings event, in the configured usage-event store."""
    usage_events_write([UsageEvent(
        tenant=customer.tenant, customer=customer, metric_code="savings", idempotency_key=key,
        timestamp=datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc),
        properties={"baseline": baseline, "optimized": optimized,
                    "savings": str(max(0, Decimal(baseline) - Decimal(optimized)))},
    )])


def optimizer_customer(tenant, name):
    BillableMetric.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, code="savings",
        defaults={"name": "Verified savings", "aggregation": "sum", "field": "savings", "unit": "USD"},
    )
    customer = CustomerFactory(tenant=tenant, name=name, tier="Mid")
    contract = ContractFactory(customer=customer, start_date=JAN)
    ContractLineFactory(contract=contract, description="Platform fee", unit_price=Money("500.00", "USD"), starts_on=JAN)
    share = ContractLineFactory(contract=contract, description="Share of verified savings", kind=ContractLine.Kind.USAGE,
                                unit_price=Money("0.20", "USD"), starts_on=JAN)
    PriceTermsFactory(contract_line=share, tenant=tenant, charge_model=ChargeModel.PERCENTAGE, metric="savings",
                      terms={"rate_percent": "20"})
    return customer


@pytest.fixture
def mid(tenant_a, tenant_b):
    customer = optimizer_customer(tenant_a, "Kestrel")
    saving(customer, date(2026, 1, 5), "1000", "700", "a1")
    saving(customer, date(2026, 1, 9), "2000", "1200", "a2")
    saving(customer, date(2026, 2, 3), "3000", "1000", "a3")
    saving(customer, date(2026, 2, 4), "100", "150", "a4")  # spent more: no savings, never negative
    other = optimizer_customer(tenant_b, "Elsewhere")
    saving(other, date(2026, 1, 5), "99999", "1", "b1")
    for month, end in ((JAN, date(2026, 1, 31)), (FEB, date(2026, 2, 28))):
        invoice_compute_drafts(tenant=tenant_a, period_start=month, period_end=end)
    for invoice in Invoice.objects.for_tenant(tenant_a).filter(customer=customer):
        invoice_finalize(invoice=invoice)
    return customer


def test_roi_per_month_and_cumulative_from_the_billed_invoices(usage_store, mid, tenant_a):
    result = customer_roi(tenant=tenant_a, customer=mid, first=JAN, last=FEB)

    jan, feb = result["months"]
    assert (jan["baseline"], jan["optimized"], jan["savings"]) == (Decimal(3000), Decimal(1900), Decimal(1100))
    assert (jan["percentage_fee"], jan["platform_fee"], jan["fees"]) == (Decimal("220.00"), Decimal("500.00"), Decimal("720.00"))
    assert (jan["net_benefit"], jan["roi"], jan["payback_months"]) == (
        Decimal(380), Decimal(380) / Decimal(720), Decimal(720) / Decimal(1100)
    )
    assert (feb["savings"], feb["fees"], feb["events"]) == (Decimal(2000), Decimal("900.00"), 2)
    total = result["cumulative"]
    assert (total["savings"], total["fees"], total["net_benefit"]) == (Decimal(3100), Decimal("1620.00"), Decimal(1480))
    assert total["roi"] == Decimal(1480) / Decimal(1620)


def test_evidence_behind_an_invoice_line_sums_to_its_quantity(usage_store, mid, tenant_a):
    line = InvoiceLine.objects.for_tenant(tenant_a).get(
        invoice__customer=mid, invoice__period_start=JAN, contract_line__kind="usage"
    )

    evidence = savings_evidence(tenant=tenant_a, invoice_line=line)

    assert [e["idempotency_key"] for e in evidence["events"]] == ["a1", "a2"]
    assert evidence["savings"] == line.quantity == Decimal(1100)


@pytest.mark.usage_events
def test_evidence_of_a_platform_fee_line_is_refused(mid, tenant_a):
    line = InvoiceLine.objects.for_tenant(tenant_a).filter(invoice__customer=mid, contract_line__kind="recurring").first()

    with pytest.raises(MetricError, match="not priced on savings"):
        savings_evidence(tenant=tenant_a, invoice_line=line)


@pytest.mark.usage_events
def test_customers_billed_on_savings_are_the_tenants_own(mid, tenant_a):
    CustomerFactory(tenant=tenant_a, name="Flat only")

    assert [c.name for c in savings_customers(tenant=tenant_a)] == ["Kestrel"]


@pytest.mark.usage_events
def test_roi_of_another_tenants_customer_is_refused(mid, tenant_b):
    with pytest.raises(MetricError):
        customer_roi(tenant=tenant_b, customer=mid, first=JAN, last=FEB)
