"""Cost to serve from the model price table and entered costs; margins per customer, tier, feature, month."""

from datetime import date
from decimal import Decimal

import pytest

from billing.models import AiUsageDay, Invoice, InvoiceLine
from customers.money import Money
from revenue.economics.costs import cost_to_serve, revenue_by_customer_month
from revenue.economics.profitability import margins
from revenue.selectors.common import MetricError
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.economics.helpers import billed, call, credit_note, entered_cost, price

JAN, FEB = date(2026, 1, 1), date(2026, 2, 1)


@pytest.fixture
def world(tenant_a, tenant_b):
    price(tenant_a, "gpt-4", "30", "60")
    price(tenant_a, "gpt-4", "10", "20", on=date(2026, 1, 15))
    price(tenant_a, "claude-sonnet-4", "3", "15", provider="anthropic")
    price(tenant_b, "gpt-4", "1000", "1000")  # another tenant's table never prices tenant A's calls
    acme = CustomerFactory(tenant=tenant_a, tier="Starter", name="Acme")
    call(acme, date(2026, 1, 5), "gpt-4", 100_000, 50_000)  # 3.00 + 3.00
    call(acme, date(2026, 1, 20), "gpt-4", 100_000, 50_000)  # new price: 1.00 + 1.00
    call(acme, date(2026, 1, 21), "claude-sonnet-4", 200_000, 100_000, provider="anthropic", task="code")  # 0.60 + 1.50
    call(acme, date(2026, 1, 22), "mystery-model", 5, 5)
    entered_cost(acme, JAN, "1.90")
    billed(acme, JAN, "29.00", vat="7.25")
    other = CustomerFactory(tenant=tenant_b)
    call(other, date(2026, 1, 5), "gpt-4", 100_000, 50_000)
    billed(other, JAN, "500.00")
    return acme


@pytest.mark.usage_events
def test_token_cost_uses_the_price_in_effect_on_the_call_day_and_adds_entered_cost(world, tenant_a):
    row = cost_to_serve(tenant=tenant_a, first=JAN, last=JAN)[(world.pk, JAN)]

    assert (row.token_cost, row.other_cost, row.total) == (Decimal("10.10"), Decimal("1.90"), Decimal("12.00"))
    assert (row.calls, row.unpriced_calls, row.input_tokens, row.output_tokens) == (4, 1, 400_005, 200_005)
    assert {f: s["cost"] for f, s in row.features.items()} == {"chat": Decimal("8"), "code": Decimal("2.1")}


@pytest.mark.usage_events
def test_revenue_is_net_of_vat_and_credit_notes_of_billed_invoices_only(world, tenant_a):
    billed(world, FEB, "99.00", status="draft")
    credit_note(billed(world, date(2026, 3, 1), "50.00"), "20.00")

    assert revenue_by_customer_month(tenant=tenant_a, first=JAN, last=date(2026, 3, 1)) == {
        (world.pk, JAN): Decimal("29.00"), (world.pk, date(2026, 3, 1)): Decimal("30.00")
    }


def test_a_fee_billed_for_a_year_is_earned_a_twelfth_a_month_in_cents(tenant_a, tenant_b):
    yearly = CustomerFactory(tenant=tenant_a, name="Pays yearly")
    contract = ContractFactory(customer=yearly, start_date=date(2025, 11, 1), billing_interval=12)
    fee = ContractLineFactory(contract=contract, unit_price=Money("1000.00", "USD"))
    invoice = billed(yearly, date(2025, 11, 1), "1010.00", status=Invoice.Status.DRAFT)  # lines go on drafts only
    InvoiceLine.objects.create(tenant=tenant_a, invoice=invoice, position=1, description="Annual fee", kind="charge",
                               quantity=1, unit_price=Decimal("1000"), amount=Decimal("1000.00"), contract_line=fee)
    InvoiceLine.objects.create(tenant=tenant_a, invoice=invoice, position=2, description="Setup", kind="one_time",
                               quantity=1, unit_price=Decimal("10"), amount=Decimal("10.00"))
    Invoice.objects.for_tenant(tenant_a).filter(pk=invoice.pk).update(status=Invoice.Status.FINALIZED, number="Y-1")
    elsewhere = CustomerFactory(tenant=tenant_b)
    billed(elsewhere, date(2025, 11, 1), "5000.00")

    year = revenue_by_customer_month(tenant=tenant_a, first=date(2025, 11, 1), last=date(2026, 10, 1))

    # 1000.00 / 12 = 83.33 a month; November keeps the remainder 0.04 and the one-time 10.00.
    assert year[(yearly.pk, date(2025, 11, 1))] == Decimal("93.37")
    assert {month for (_, month), amount in year.items() if amount == Decimal("83.33")} == {
        date(2025, 12, 1), *(date(2026, m, 1) for m in range(1, 11))
    }
    assert sum(year.values()) == Decimal("1010.00")
    # A window after the invoice month still earns its months.
    assert revenue_by_customer_month(tenant=tenant_a, first=JAN, last=FEB) == {
        (yearly.pk, JAN): Decimal("83.33"), (yearly.pk, FEB): Decimal("83.33")
    }


@pytest.mark.usage_events
def test_margin_per_customer_tier_feature_and_month(world, tenant_a):
    result = margins(tenant=tenant_a, first=JAN, last=FEB)

    customer = result["customers"][0]
    assert (customer["revenue"], customer["cost"], customer["margin"], customer["unpriced_calls"]) == (
        Decimal("29.00"), Decimal("12.00"), Decimal("17.00"), 1
    )
    assert customer["margin_rate"] == Decimal("17") / Decimal("29")
    assert [(m["month"], m["revenue"], m["cost"]) for m in result["by_month"]] == [
        (JAN, Decimal("29.00"), Decimal("12.00")), (FEB, Decimal("0"), Decimal("0"))
    ]
    assert [(t["tier"], t["customers"], t["margin"]) for t in result["by_tier"]] == [("Starter", 1, Decimal("17.00"))]
    features = {f["feature"]: (f["revenue"], f["cost"]) for f in result["by_feature"]}
    # 29.00 allocated by calls: chat 2/4, code 1/4, the unpriced call's own feature (chat) counted in chat.
    assert features["code"] == (Decimal("7.25"), Decimal("2.1"))
    assert features[""] == (Decimal("0"), Decimal("1.90"))


def test_a_window_backwards_is_refused(tenant_a):
    with pytest.raises(MetricError, match="'from' must not be after 'to'"):
        margins(tenant=tenant_a, first=FEB, last=JAN)


@pytest.mark.usage_events
def test_cost_to_serve_reads_the_ai_usage_roll_up(tenant_a):
    acme = CustomerFactory(tenant=tenant_a, name="Acme", external_ref="acme")
    price(tenant_a, "gpt-4", "30", "60")
    call(acme, date(2026, 1, 1), "gpt-4", 100_000, 50_000)  # 3.00 + 3.00
    AiUsageDay.objects.for_tenant(tenant_a).update(calls=2, input_tokens=200_000)  # what the sums say is what counts

    row = cost_to_serve(tenant=tenant_a, first=date(2026, 1, 1), last=date(2026, 1, 1))[(acme.pk, date(2026, 1, 1))]

    assert (row.calls, row.token_cost) == (2, Decimal("9.00"))
