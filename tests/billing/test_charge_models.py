"""Issue 13's charge-model rules through the real invoice path: price terms saved, usage stored,
``invoice_compute_drafts`` (and the portal's projection) pricing them. Money is hand-computed."""

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.documents import invoice_preview_pdf
from billing.metering import usage_totals
from billing.models import BillableMetric, ChargeModel, Invoice, InvoiceLine, PriceTerms, UsageEvent
from billing.models.invoicing import parse_terms
from billing.projection import invoice_project
from billing.services import invoice_compute_drafts, price_terms_set
from customers.models import ContractLine, Role
from customers.money import Money
from tests.billing.factories import BillableMetricFactory, usage_events_write
from tests.billing.test_documents import pdf_text
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

D = Decimal
NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)

PAYMENT_TIERS = [
    {"up_to": "1000", "rate_percent": "1", "flat_fee": "200"},
    {"up_to": "10000", "rate_percent": "2", "flat_fee": "300"},
    {"up_to": None, "rate_percent": "3", "flat_fee": "400"},
]


def event(customer, metric, when, *, quantity=D(1), properties=None, key=None):
    """One event in the configured usage-event store."""
    usage_events_write([UsageEvent(
        tenant=customer.tenant, customer=customer, metric_code=metric, timestamp=when,
        idempotency_key=key or f"{customer.pk}-{metric}-{when.isoformat()}-{properties}",
        quantity=quantity, properties=properties or {},
    )])


def at(tenant, day, hour=12, month=11, year=2026):
    return datetime(year, month, day, hour, tzinfo=ZoneInfo(tenant.time_zone))


def usage_line(tenant, *, charge_model, metric, terms, description="Usage", unit_price="0", customer=None):
    customer = customer or CustomerFactory(tenant=tenant)
    line = ContractLineFactory(
        contract=ContractFactory(customer=customer, tenant=tenant, start_date=NOV_START), tenant=tenant,
        kind=ContractLine.Kind.USAGE, description=description, unit_price=Money(unit_price, customer.currency),
    )
    price_terms_set(contract_line=line, charge_model=charge_model, metric=metric, terms=terms)
    return customer


def run_november(tenant):
    return invoice_compute_drafts(tenant=tenant, period_start=NOV_START, period_end=NOV_END)


def lines_of(customer):
    invoice = Invoice.objects.for_tenant(customer.tenant).get(customer=customer, period_start=NOV_START)
    return [
        (line.description, line.quantity, line.unit_price, line.amount)
        for line in InvoiceLine.objects.for_tenant(customer.tenant).filter(invoice=invoice).order_by("position")
    ]


# --- a tier's flat fee at zero units ------------------------------------------------------------


@pytest.mark.parametrize("charge_model", [ChargeModel.GRADUATED, ChargeModel.VOLUME])
def test_a_tiered_charge_without_usage_still_bills_the_first_tiers_flat_fee(tenant_a, tenant_b, charge_model):
    BillableMetricFactory(tenant=tenant_a, code="api_calls")
    tiers = [{"up_to": "100", "unit_price": "0.10", "flat_fee": "15"}, {"up_to": None, "unit_price": "0.05"}]
    customer = usage_line(tenant_a, charge_model=charge_model, metric="api_calls", terms={"tiers": tiers},
                          description="API calls")
    idle_elsewhere = usage_line(tenant_b, charge_model=charge_model, metric="api_calls", terms={"tiers": tiers})

    run_november(tenant_a)

    # The old rule gave no line at all for zero calls.
    assert lines_of(customer) == [("API calls, tier 1 (up to 100) flat fee", D(1), D("15.00"), D("15.00"))]
    assert not Invoice.objects.for_tenant(tenant_b).filter(customer=idle_elsewhere).exists()
    projected = invoice_project(customer=customer, period_start=NOV_START, period_end=NOV_END)
    assert [(line.description, line.amount) for line in projected.lines] == [
        ("API calls, tier 1 (up to 100) flat fee", D("15.00"))
    ]


def test_a_tiered_charge_without_usage_or_first_tier_fee_gives_no_line(tenant_a):
    BillableMetricFactory(tenant=tenant_a, code="api_calls")
    tiers = [{"up_to": "100", "unit_price": "0.10"}, {"up_to": None, "unit_price": "0.05", "flat_fee": "40"}]
    customer = usage_line(tenant_a, charge_model=ChargeModel.GRADUATED, metric="api_calls", terms={"tiers": tiers})
    usage = ContractLine.objects.for_tenant(tenant_a).get(contract__customer=customer)
    ContractLineFactory(contract=usage.contract, tenant=tenant_a, description="Platform fee",
                        unit_price=Money("10.00", "USD"))

    run_november(tenant_a)

    assert lines_of(customer) == [("Platform fee", D(1), D("10.00"), D("10.00"))]


def test_an_upgraded_tiered_line_charges_the_first_tier_fee_once(tenant_a):
    """Two versions of a line price the same metric in one month: only the one owning the usage
    is priced for it, so a zero month does not bill the first tier's fee twice."""
    BillableMetricFactory(tenant=tenant_a, code="api_calls")
    tiers = [{"up_to": "100", "unit_price": "0.10", "flat_fee": "15"}, {"up_to": None, "unit_price": "0.05"}]
    customer = usage_line(tenant_a, charge_model=ChargeModel.GRADUATED, metric="api_calls", terms={"tiers": tiers},
                          description="API calls")
    first = ContractLine.objects.for_tenant(tenant_a).get(contract__customer=customer)
    ContractLine.objects.for_tenant(tenant_a).filter(pk=first.pk).update(ends_on=date(2026, 11, 15))
    second = ContractLineFactory(contract=first.contract, tenant=tenant_a, kind=ContractLine.Kind.USAGE,
                                 description="API calls v2", unit_price=Money("0", "USD"), starts_on=date(2026, 11, 16))
    price_terms_set(contract_line=second, charge_model=ChargeModel.GRADUATED, metric="api_calls", terms={"tiers": tiers})

    run_november(tenant_a)

    assert lines_of(customer) == [("API calls v2, tier 1 (up to 100) flat fee", D(1), D("15.00"), D("15.00"))]


# --- percentage: free period, one path ------------------------------------------------------------


def test_percentage_free_period_ends_at_whichever_allowance_runs_out_first(usage_store, tenant_a):
    BillableMetricFactory(tenant=tenant_a, code="payments", aggregation=BillableMetric.Aggregation.SUM, field="amount",
                          unit="USD")
    customer = usage_line(
        tenant_a, charge_model=ChargeModel.PERCENTAGE, metric="payments", description="Card fees",
        terms={"rate_percent": "10", "fixed_fee_per_event": "0.30", "free_events": 3, "free_amount": "250"},
    )
    for day, amount in ((2, 100), (3, 200), (4, 300), (5, 50)):
        event(customer, "payments", at(tenant_a, day), properties={"amount": amount})

    run_november(tenant_a)

    # 100 free; 200 crosses 250 and pays on 50; 300 and 50 pay in full: 10 % of 400, 3 fixed fees.
    # The old rule (3 free events, then 250 off the 4th) billed 0.30.
    assert lines_of(customer) == [
        ("Card fees", D(400), D("0.100000"), D("40.00")),
        ("Card fees, fixed fee per event", D(3), D("0.30"), D("0.90")),
    ]


def test_percentage_with_only_a_free_amount_prices_alike_on_the_total_and_event_by_event(usage_store, tenant_a):
    """The same charge, once with only a rate and a free amount (priced on the month's total) and
    once with an explicit zero fixed fee (priced event by event): the same lines."""
    BillableMetricFactory(tenant=tenant_a, code="payments", aggregation=BillableMetric.Aggregation.SUM, field="amount",
                          unit="USD")
    on_total = usage_line(tenant_a, charge_model=ChargeModel.PERCENTAGE, metric="payments", description="Fees",
                          terms={"rate_percent": "2.5", "free_amount": "120"})
    by_event = usage_line(tenant_a, charge_model=ChargeModel.PERCENTAGE, metric="payments", description="Fees",
                          terms={"rate_percent": "2.5", "free_amount": "120", "fixed_fee_per_event": "0"})
    for customer in (on_total, by_event):
        for day, amount in ((2, "100.10"), (3, "59.90"), (9, "33.33")):
            event(customer, "payments", at(tenant_a, day), properties={"amount": amount})

    run_november(tenant_a)

    # 193.33 − 120 = 73.33 at 2.5 % = 1.83325 → 1.83
    assert lines_of(on_total) == lines_of(by_event) == [("Fees", D("73.33"), D("0.025000"), D("1.83"))]


def test_a_percentage_of_a_metric_that_does_not_sum_is_refused(tenant_a):
    BillableMetricFactory(tenant=tenant_a, code="transfers", aggregation=BillableMetric.Aggregation.COUNT)
    line = ContractLineFactory(contract=ContractFactory(customer=CustomerFactory(tenant=tenant_a), tenant=tenant_a),
                               tenant=tenant_a, kind=ContractLine.Kind.USAGE)

    with pytest.raises(ValidationError) as refused:
        price_terms_set(contract_line=line, charge_model=ChargeModel.PERCENTAGE, metric="transfers",
                        terms={"rate_percent": "1"})

    assert refused.value.message_dict == {"metric": [
        'A percentage is taken of a summed amount: metric "transfers" has the aggregation "count"; '
        'choose a metric with the aggregation "sum".'
    ]}
    assert not PriceTerms.objects.for_tenant(tenant_a).exists()


def test_a_percentage_whose_metric_stopped_summing_is_reported_not_priced(tenant_a):
    metric = BillableMetricFactory(tenant=tenant_a, code="payments", aggregation=BillableMetric.Aggregation.SUM)
    customer = usage_line(tenant_a, charge_model=ChargeModel.PERCENTAGE, metric="payments", description="Fees",
                          terms={"rate_percent": "1"})
    BillableMetric.objects.for_tenant(tenant_a).filter(pk=metric.pk).update(aggregation="max")

    counts = run_november(tenant_a)

    assert counts["skipped"] == 1
    assert counts["problems"] == [
        f"{customer}: 'Fees' takes a percentage of metric 'payments', which does not sum an amount "
        "(aggregation 'max'); give the metric the aggregation 'sum'"
    ]


# --- graduated percentage -------------------------------------------------------------------------


def test_graduated_percentage_through_the_invoice_path_and_its_projection(usage_store, tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        BillableMetricFactory(tenant=tenant, code="payment_volume", aggregation=BillableMetric.Aggregation.SUM,
                              field="amount", unit="USD")
    customer = usage_line(tenant_a, charge_model=ChargeModel.GRADUATED_PERCENTAGE, metric="payment_volume",
                          description="Payment fees", terms={"tiers": PAYMENT_TIERS})
    other = usage_line(tenant_b, charge_model=ChargeModel.GRADUATED_PERCENTAGE, metric="payment_volume",
                       description="Payment fees", terms={"tiers": PAYMENT_TIERS})
    for day, amount in ((2, 500), (3, 550), (20, 4000)):
        event(customer, "payment_volume", at(tenant_a, day), properties={"amount": amount})
    event(other, "payment_volume", at(tenant_b, 2), properties={"amount": 20000})

    run_november(tenant_a)

    # 5 050: 1 % of 1 000 + 200, then 2 % of 4 050 + 300; tier 3 is not entered.
    assert lines_of(customer) == [
        ("Payment fees, tier 1 (up to 1000) at 1%", D(1000), D("0.010000"), D("10.00")),
        ("Payment fees, tier 1 (up to 1000) flat fee", D(1), D("200.00"), D("200.00")),
        ("Payment fees, tier 2 (above 1000 up to 10000) at 2%", D(4050), D("0.020000"), D("81.00")),
        ("Payment fees, tier 2 (above 1000 up to 10000) flat fee", D(1), D("300.00"), D("300.00")),
    ]
    invoice = Invoice.objects.for_tenant(tenant_a).get(customer=customer)
    assert invoice.subtotal == D("591.00")
    assert invoice_project(customer=customer, period_start=NOV_START, period_end=NOV_END).subtotal == D("591.00")
    pdf = " ".join(pdf_text(invoice_preview_pdf(invoice=invoice)).split())
    assert "Payment fees, tier 2 (above 1000 up to 10000) at 2%" in pdf
    assert "Payment fees, tier 2 (above 1000 up to 10000) flat fee" in pdf


@pytest.mark.parametrize(
    "terms, errors",
    [
        ({}, {"tiers": ["tiers is required for graduated_percentage."]}),
        ({"tiers": [{"up_to": None, "unit_price": "1"}]},
         {"tiers": ["tier 1: use only up_to, rate_percent and flat_fee."]}),
        ({"tiers": [{"up_to": None}]}, {"tiers": ['tier 1: rate_percent is required (e.g. "1.5" for 1.5 %).']}),
        ({"tiers": [{"up_to": None, "rate_percent": 1.5}]},
         {"tiers": ['tier 1 rate_percent: write the number as a string, e.g. "0.50" (got 1.5).']}),
        ({"tiers": [{"up_to": None, "rate_percent": "120"}]},
         {"tiers": ["tier 1: tier rate_percent must be between 0 and 100 percent, got 120"]}),
        ({"tiers": [{"up_to": "500", "rate_percent": "1"}, {"up_to": "100", "rate_percent": "1"},
                    {"up_to": None, "rate_percent": "1"}]},
         {"tiers": ["tiers: tiers must ascend: up_to 100 follows 500"]}),
        ({"tiers": [{"up_to": "500", "rate_percent": "1", "flat_fee": "-1"}, {"up_to": None, "rate_percent": "1"}],
          "rate_percent": "2"},
         {"terms": ["Unknown terms for graduated_percentage: rate_percent (it takes tiers, minimum_commitment, "
                    "failed_metric)."],
          "tiers": ["tier 1: tier flat_fee must not be negative, got -1"]}),
    ],
)
def test_graduated_percentage_terms_are_refused_field_by_field(terms, errors):
    with pytest.raises(ValidationError) as refused:
        parse_terms(ChargeModel.GRADUATED_PERCENTAGE, terms)

    assert refused.value.message_dict == errors


def test_terms_errors_name_every_bad_field_at_once():
    with pytest.raises(ValidationError) as refused:
        parse_terms(ChargeModel.PERCENTAGE, {"rate_percent": "101", "free_events": -1, "free_amount": 0.5})

    assert refused.value.message_dict == {
        "rate_percent": ["rate_percent must be between 0 and 100."],
        "free_events": ["free_events must be a whole number ≥ 0."],
        "free_amount": ['free_amount: write the number as a string, e.g. "0.50" (got 0.5).'],
    }


# --- weighted sum ------------------------------------------------------------------------------------


def test_seats_held_for_part_of_the_month_are_billed_by_the_second(usage_store, tenant_a, tenant_b):
    BillableMetricFactory(tenant=tenant_a, code="seats", aggregation=BillableMetric.Aggregation.WEIGHTED_SUM,
                          field="delta", unit="seats")
    customer = usage_line(tenant_a, charge_model=ChargeModel.PER_UNIT, metric="seats", description="Seats",
                          terms={"unit_price": "30"})
    event(customer, "seats", at(tenant_a, 1, hour=0), properties={"delta": 3})
    event(customer, "seats", at(tenant_a, 16, hour=0), properties={"delta": 2})
    event(customer, "seats", at(tenant_a, 21, hour=0), properties={"delta": -1})
    event(customer, "seats", at(tenant_a, 22, hour=0), properties={"note": "no delta: not counted"})
    BillableMetricFactory(tenant=tenant_b, code="seats", aggregation=BillableMetric.Aggregation.WEIGHTED_SUM,
                          field="delta")
    event(CustomerFactory(tenant=tenant_b), "seats", at(tenant_b, 1, hour=0), properties={"delta": 100})

    run_november(tenant_a)

    # 3 all month, 2 more for 15 of 30 days, 1 fewer for the last 10: 3 + 1 − 1/3 = 3.666667 seats.
    assert lines_of(customer) == [("Seats", D("3.666667"), D("30.00"), D("110.00"))]
    assert invoice_project(customer=customer, period_start=NOV_START, period_end=NOV_END).subtotal == D("110.00")


def test_weighted_sum_counts_the_seconds_of_a_month_with_a_daylight_saving_change(usage_store, tenant_a):
    tenant_a.time_zone = "Europe/Stockholm"
    tenant_a.save(update_fields=["time_zone"])
    BillableMetricFactory(tenant=tenant_a, code="seats", aggregation=BillableMetric.Aggregation.WEIGHTED_SUM,
                          field="quantity")
    customer = CustomerFactory(tenant=tenant_a)
    event(customer, "seats", at(tenant_a, 16, hour=0, month=3), quantity=D(2))

    totals = usage_totals(tenant=tenant_a, period_start=date(2026, 3, 1), period_end=date(2026, 3, 31))

    # Held 16 days less the lost hour of 29 March, of a month of 31 days less that hour.
    assert totals[(customer.pk, "seats")] == D("1.030956")  # 2 × 1 378 800 / 2 674 800


PERIOD_SECONDS = 30 * 86_400


@pytest.mark.usage_events
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    deltas=st.lists(
        st.tuples(st.integers(0, PERIOD_SECONDS - 1), st.decimals(-50, 50, places=2, allow_nan=False)),
        max_size=6,
    )
)
def test_weighted_sum_is_the_running_total_times_the_seconds_held_over_the_period(tenant_a, deltas):
    """Against a plain-Python reading of the rule: each event a delta to a running total from 0,
    Σ total × seconds until the next event (or the period's end) / seconds in the period."""
    start = datetime(2026, 11, 1, tzinfo=ZoneInfo("UTC"))
    held, running = Fraction(0), Fraction(0)
    ordered = sorted(enumerate(deltas), key=lambda item: (item[1][0], item[0]))
    for position, (index, (offset, delta)) in enumerate(ordered):
        running += Fraction(delta)
        until = ordered[position + 1][1][0] if position + 1 < len(ordered) else PERIOD_SECONDS
        held += running * (until - offset)
    expected = held / PERIOD_SECONDS * 1_000_000
    expected = D(int(abs(expected) + Fraction(1, 2)) * (1 if expected >= 0 else -1)).scaleb(-6)

    # Each example its own customer (examples share the test's transaction and the store).
    if not BillableMetric.objects.for_tenant(tenant_a).filter(code="seats").exists():
        BillableMetricFactory(tenant=tenant_a, code="seats", aggregation=BillableMetric.Aggregation.WEIGHTED_SUM,
                              field="delta")
    customer = CustomerFactory(tenant=tenant_a)
    usage_events_write([
        UsageEvent(tenant=tenant_a, customer=customer, metric_code="seats", idempotency_key=f"{customer.pk}-k{index}",
                   timestamp=start + timedelta(seconds=offset), properties={"delta": str(delta)})
        for index, (offset, delta) in enumerate(deltas)
    ])
    totals = usage_totals(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END, customer_ids=[customer.pk])

    assert totals.get((customer.pk, "seats"), D(0)) == (expected if deltas else D(0))


# --- the price terms admin ------------------------------------------------------------------------


def test_finance_sets_up_graduated_percentage_terms_in_the_admin(client, member_factory, tenant_a):
    BillableMetricFactory(tenant=tenant_a, code="payment_volume", aggregation=BillableMetric.Aggregation.SUM,
                          field="amount", unit="USD")
    BillableMetricFactory(tenant=tenant_a, code="transfers", aggregation=BillableMetric.Aggregation.COUNT)
    line = ContractLineFactory(contract=ContractFactory(customer=CustomerFactory(tenant=tenant_a), tenant=tenant_a),
                               tenant=tenant_a, kind=ContractLine.Kind.USAGE, description="Payment fees",
                               unit_price=Money("0", "USD"))
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    add = reverse("admin:billing_priceterms_add")
    form = {"contract_line": line.pk, "charge_model": "graduated_percentage", "metric": "payment_volume"}

    bad_tier = client.post(add, form | {"terms": json.dumps({"tiers": [{"up_to": None, "rate_percent": "101"}]})})
    not_summed = client.post(add, form | {"metric": "transfers", "terms": json.dumps({"tiers": PAYMENT_TIERS})})
    saved = client.post(add, form | {"terms": json.dumps({"tiers": PAYMENT_TIERS})})

    assert bad_tier.status_code == 200
    assert bad_tier.context["adminform"].form.errors["terms"] == [
        "tier 1: tier rate_percent must be between 0 and 100 percent, got 101"
    ]
    assert not_summed.status_code == 200
    assert list(not_summed.context["adminform"].form.errors) == ["metric"]
    assert saved.status_code == 302
    terms = PriceTerms.objects.for_tenant(tenant_a).get(contract_line=line)
    assert terms.charge_model == "graduated_percentage"
    assert [tier.rate_percent for tier in terms.parsed_terms()["tiers"]] == [D(1), D(2), D(3)]
    change = client.get(reverse("admin:billing_priceterms_change", args=[terms.pk]))
    assert change.status_code == 200 and "Graduated percentage of a measured amount" in change.content.decode()
