"""Draft invoices from contracts and usage: exact money, set-wise runs, idempotent re-runs."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import BillableMetric, ChargeModel, Invoice, InvoiceLine, UsageEvent
from billing.services import invoice_compute_drafts, invoice_finalize, price_terms_set
from customers.models import ContractLine
from customers.money import Money
from tests.billing.factories import (
    BillableMetricFactory,
    BillingSettingsFactory,
    PriceTermsFactory,
    job_api_subscription,
    job_api_terms,
    usage_events_write,
)
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)
D = Decimal


def add_events(customer, count, *, metric="processed_jobs", quantity=D(1), properties=None, day=5):
    """``count`` events of ``customer`` in November 2026, in the configured usage-event store."""
    usage_events_write([
        UsageEvent(
            tenant=customer.tenant,
            customer=customer,
            metric_code=metric,
            timestamp=datetime(2026, 11, day, 12, 0, tzinfo=timezone.utc),
            idempotency_key=f"{customer.pk}-{metric}-{day}-{n}-{properties}",
            quantity=quantity,
            properties=properties or {},
        )
        for n in range(count)
    ])


@pytest.fixture
def job_api(tenant_a, tenant_b, usage_store):
    """The job API tenant (USD, $1 minimum) with its jobs metric; tenant_b has a same-named metric.
    Every test of it runs once per usage-event store."""
    BillingSettingsFactory(tenant=tenant_a, minimum_invoice_amount=D("1.00"))
    BillableMetricFactory(tenant=tenant_a, code="processed_jobs", unit="jobs")
    BillableMetricFactory(tenant=tenant_b, code="processed_jobs", unit="jobs")
    return tenant_a


def draft_of(customer) -> Invoice:
    return Invoice.objects.for_tenant(customer.tenant).get(customer=customer, period_start=NOV_START)


def lines_of(invoice):
    return [
        (line.description, line.kind, line.quantity, line.unit_price, line.amount)
        for line in InvoiceLine.objects.for_tenant(invoice.tenant).filter(invoice=invoice).order_by("position")
    ]


def starter_with_jobs(tenant, jobs, **kwargs):
    customer = CustomerFactory(tenant=tenant, tier="Starter")
    job_api_subscription(customer, "Starter", **kwargs)
    add_events(customer, jobs)
    return customer


def test_starter_with_102_jobs_pays_the_fee_and_two_jobs_of_overage(job_api):
    customer = starter_with_jobs(job_api, 102)

    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    invoice = draft_of(customer)
    assert lines_of(invoice) == [
        ("Starter plan", "charge", D(1), D("29.00"), D("29.00")),
        ("Starter plan: jobs above 100 included", "charge", D(2), D("0.50"), D("1.00")),
    ]
    assert (invoice.subtotal, invoice.discount_total, invoice.vat_amount, invoice.total, invoice.amount_due) == (
        D("30.00"), D("0.00"), D("0.00"), D("30.00"), D("30.00"),
    )
    assert invoice.status == Invoice.Status.DRAFT and invoice.number is None


def test_starter_with_101_jobs_has_its_overage_forgiven_by_the_grace(job_api):
    customer = starter_with_jobs(job_api, 101)

    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    invoice = draft_of(customer)
    assert lines_of(invoice) == [("Starter plan", "charge", D(1), D("29.00"), D("29.00"))]
    assert invoice.total == D("29.00")


def test_starter_with_90_jobs_gets_two_percent_off_the_fee(job_api):
    customer = starter_with_jobs(job_api, 90)

    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    invoice = draft_of(customer)
    assert lines_of(invoice) == [
        ("Starter plan", "charge", D(1), D("29.00"), D("29.00")),
        ("Starter plan: quota utilisation discount 2%", "discount", D("29.00"), D("-0.02"), D("-0.58")),
    ]
    assert (invoice.subtotal, invoice.discount_total, invoice.total) == (D("29.00"), D("0.58"), D("28.42"))


def test_a_usage_line_takes_its_utilisation_discount_off_the_contracts_plan_fee(job_api):
    """The demo's shape: the plan fee is a recurring line, the quota and overage sit on a usage line."""
    customer = CustomerFactory(tenant=job_api, tier="Professional")
    contract = ContractFactory(customer=customer, tenant=job_api, start_date=NOV_START, title="Professional plan")
    usage = ContractLineFactory(
        contract=contract, tenant=job_api, description="Processed jobs", kind=ContractLine.Kind.USAGE,
        unit_price=Money("0.30", "USD"), starts_on=NOV_START,
    )
    ContractLineFactory(
        contract=contract, tenant=job_api, description="Professional plan", kind=ContractLine.Kind.RECURRING,
        unit_price=Money("99.00", "USD"), starts_on=NOV_START,
    )
    PriceTermsFactory(
        contract_line=usage, tenant=job_api, charge_model=ChargeModel.INCLUDED_QUOTA,
        terms=job_api_terms("Professional"),
    )
    add_events(customer, 450)

    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    assert lines_of(draft_of(customer)) == [
        ("Processed jobs: quota utilisation discount 3%", "discount", D("99.00"), D("-0.03"), D("-2.97")),
        ("Professional plan", "charge", D(1), D("99.00"), D("99.00")),
    ]
    assert draft_of(customer).total == D("96.03")


def test_failed_jobs_are_credited_at_the_price_they_were_billed(job_api):
    BillableMetricFactory(tenant=job_api, code="failed_jobs", unit="jobs", filters={"status": ["failed"]})
    customer = starter_with_jobs(job_api, 104, failed_metric="failed_jobs")
    add_events(customer, 2, metric="failed_jobs", properties={"status": "failed"})

    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    invoice = draft_of(customer)
    assert lines_of(invoice)[1:] == [
        ("Starter plan: jobs above 100 included", "charge", D(4), D("0.50"), D("2.00")),
        ("Starter plan: 2 failed jobs credited", "credit", D(1), D("-1.00"), D("-1.00")),
    ]
    assert invoice.total == D("30.00")


def usage_line_with_tiers(tenant, charge_model):
    metric = BillableMetricFactory(
        tenant=tenant, code="compute_ms", unit="ms", aggregation=BillableMetric.Aggregation.SUM
    )
    customer = CustomerFactory(tenant=tenant)
    contract = ContractFactory(customer=customer, tenant=tenant, start_date=NOV_START)
    line = ContractLineFactory(
        contract=contract, tenant=tenant, kind=ContractLine.Kind.USAGE, description="Compute",
        unit_price=Money("0", "USD"),
    )
    price_terms_set(
        contract_line=line,
        charge_model=charge_model,
        metric=metric.code,
        terms={
            "tiers": [
                {"up_to": 1000, "unit_price": "0.10"},
                {"up_to": None, "unit_price": "0.05", "flat_fee": "10.00"},
            ]
        },
    )
    add_events(customer, 1, metric="compute_ms", quantity=D(1500))
    return customer


def test_graduated_tiers_price_each_slice_at_its_own_rate(job_api):
    customer = usage_line_with_tiers(job_api, ChargeModel.GRADUATED)

    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    assert [line[4] for line in lines_of(draft_of(customer))] == [D("100.00"), D("25.00"), D("10.00")]
    assert draft_of(customer).total == D("135.00")


def test_volume_tiers_price_every_unit_at_the_reached_rate(job_api):
    customer = usage_line_with_tiers(job_api, ChargeModel.VOLUME)

    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    assert [line[4] for line in lines_of(draft_of(customer))] == [D("75.00"), D("10.00")]
    assert draft_of(customer).total == D("85.00")


def test_a_plan_starting_on_the_16th_of_a_30_day_month_pays_half(job_api):
    customer = CustomerFactory(tenant=job_api)
    job_api_subscription(customer, "Professional", start_date=date(2026, 11, 16))

    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    invoice = draft_of(customer)
    assert lines_of(invoice) == [("Professional plan", "charge", D(1), D("99.00"), D("49.50"))]
    assert InvoiceLine.objects.for_tenant(job_api).get(invoice=invoice).proration == "1/2"


def test_sek_invoice_carries_the_tenants_25_percent_vat(tenant_b):
    tenant_b.vat_rate, tenant_b.country = D(25), "SE"
    tenant_b.save()
    customer = CustomerFactory(tenant=tenant_b, country="SE", currency="SEK")
    contract = ContractFactory(customer=customer, tenant=tenant_b, start_date=NOV_START)
    ContractLineFactory(
        contract=contract, tenant=tenant_b, kind=ContractLine.Kind.PER_SEAT, description="Seats",
        quantity=D(7), unit_price=Money("150", "SEK"),
    )

    invoice_compute_drafts(tenant=tenant_b, period_start=NOV_START, period_end=NOV_END)

    invoice = draft_of(customer)
    assert (invoice.currency, invoice.subtotal, invoice.vat_rate, invoice.vat_amount, invoice.total) == (
        "SEK", D("1050.00"), D("25.00"), D("262.50"), D("1312.50"),
    )
    assert invoice.reverse_charge is False


def test_business_in_another_eu_country_with_a_vat_number_is_reverse_charged(tenant_b):
    tenant_b.vat_rate, tenant_b.country = D(25), "SE"
    tenant_b.save()
    customer = CustomerFactory(tenant=tenant_b, country="DE", currency="SEK", vat_number="DE123456789")
    ContractLineFactory(contract=ContractFactory(customer=customer, tenant=tenant_b, start_date=NOV_START),
                        tenant=tenant_b, unit_price=Money("1000", "SEK"))

    invoice_compute_drafts(tenant=tenant_b, period_start=NOV_START, period_end=NOV_END)

    invoice = draft_of(customer)
    assert (invoice.reverse_charge, invoice.vat_rate, invoice.vat_amount, invoice.total) == (
        True, D(0), D("0.00"), D("1000.00"),
    )
    assert invoice.vat_note.startswith("Reverse charge")


def test_consumer_in_another_eu_country_pays_the_tenants_vat(tenant_b):
    tenant_b.vat_rate, tenant_b.country = D(25), "SE"
    tenant_b.save()
    customer = CustomerFactory(tenant=tenant_b, country="DE", currency="SEK", vat_number="", is_business=False)
    ContractLineFactory(contract=ContractFactory(customer=customer, tenant=tenant_b, start_date=NOV_START),
                        tenant=tenant_b, unit_price=Money("1000", "SEK"))

    invoice_compute_drafts(tenant=tenant_b, period_start=NOV_START, period_end=NOV_END)

    assert (draft_of(customer).reverse_charge, draft_of(customer).vat_amount) == (False, D("250.00"))


def test_a_small_non_zero_invoice_is_raised_to_the_one_dollar_minimum(job_api):
    customer = CustomerFactory(tenant=job_api)
    PriceTermsFactory(
        contract_line__contract__customer=customer, contract_line__contract__tenant=job_api,
        contract_line__contract__start_date=NOV_START, tenant=job_api,
    )
    add_events(customer, 3)

    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    invoice = draft_of(customer)
    assert lines_of(invoice) == [
        ("Jobs", "charge", D(3), D("0.10"), D("0.30")),
        ("Minimum charge", "true_up", D(1), D("0.70"), D("0.70")),
    ]
    assert invoice.total == D("1.00")


def test_a_zero_invoice_gets_no_minimum_charge(job_api):
    customer = CustomerFactory(tenant=job_api)
    job_api_subscription(customer, "Free")
    add_events(customer, 5)

    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    assert lines_of(draft_of(customer)) == [("Free plan", "charge", D(1), D("0.00"), D("0.00"))]
    assert draft_of(customer).total == D("0.00")


def test_a_discount_line_takes_its_percentage_off_the_recurring_fees(tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    contract = ContractFactory(customer=customer, tenant=tenant_a, start_date=NOV_START)
    ContractLineFactory(contract=contract, tenant=tenant_a, unit_price=Money("250.00", "USD"))
    ContractLineFactory(contract=contract, tenant=tenant_a, kind=ContractLine.Kind.DISCOUNT, description="Launch discount",
                        unit_price=Money("0", "USD"), discount_percent=D(10))

    invoice_compute_drafts(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END)

    assert lines_of(draft_of(customer))[-1] == ("Launch discount", "discount", D("250.00"), D("-0.10"), D("-25.00"))
    assert draft_of(customer).total == D("225.00")


def test_a_one_time_fee_is_billed_only_in_the_period_it_starts(tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    contract = ContractFactory(customer=customer, tenant=tenant_a, start_date=date(2026, 10, 1))
    ContractLineFactory(contract=contract, tenant=tenant_a, kind=ContractLine.Kind.ONE_TIME, description="Start package",
                        unit_price=Money("3000.00", "USD"), starts_on=date(2026, 10, 12))
    ContractLineFactory(contract=contract, tenant=tenant_a, unit_price=Money("100.00", "USD"))

    invoice_compute_drafts(tenant=tenant_a, period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))
    invoice_compute_drafts(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END)

    october = Invoice.objects.for_tenant(tenant_a).get(customer=customer, period_start=date(2026, 10, 1))
    assert october.total == D("3100.00")
    assert draft_of(customer).total == D("100.00")


def invoice_rows(tenant):
    invoices = list(Invoice.objects.for_tenant(tenant).order_by("id").values())
    lines = list(InvoiceLine.objects.for_tenant(tenant).order_by("id").values())
    return invoices, lines


def test_computing_drafts_twice_writes_nothing_the_second_time(job_api):
    starter_with_jobs(job_api, 102)
    starter_with_jobs(job_api, 90)
    first = invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)
    before = invoice_rows(job_api)

    second = invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    assert (first["created"], first["lines"]) == (2, 4)
    assert (second["created"], second["updated"], second["unchanged"], second["lines"]) == (0, 0, 2, 0)
    assert invoice_rows(job_api) == before


def test_a_draft_is_recomputed_when_its_usage_changes(job_api):
    customer = starter_with_jobs(job_api, 101)
    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)
    invoice_id = draft_of(customer).pk
    add_events(customer, 3, day=20)

    counts = invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    assert (counts["created"], counts["updated"]) == (0, 1)
    assert draft_of(customer).pk == invoice_id
    assert draft_of(customer).total == D("31.00")
    assert len(lines_of(draft_of(customer))) == 2


def test_a_finalized_invoice_is_never_recomputed(job_api):
    customer = starter_with_jobs(job_api, 101)
    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)
    invoice_finalize(invoice=draft_of(customer), issue_date=date(2026, 12, 1))
    add_events(customer, 30, day=20)

    counts = invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    assert (counts["created"], counts["updated"], counts["final"]) == (0, 0, 1)
    assert draft_of(customer).total == D("29.00")


def test_a_run_bills_only_its_own_tenant(job_api, tenant_b):
    starter_with_jobs(job_api, 10)
    other = CustomerFactory(tenant=tenant_b)
    ContractLineFactory(contract=ContractFactory(customer=other, tenant=tenant_b, start_date=NOV_START), tenant=tenant_b)

    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    assert Invoice.objects.for_tenant(job_api).count() == 1
    assert Invoice.objects.for_tenant(tenant_b).count() == 0


def test_customers_without_a_line_in_the_period_get_no_invoice(tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    contract = ContractFactory(customer=customer, tenant=tenant_a, start_date=date(2026, 1, 1), end_date=date(2026, 10, 31))
    ContractLineFactory(contract=contract, tenant=tenant_a, ends_on=date(2026, 10, 31))

    counts = invoice_compute_drafts(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END)

    assert counts["created"] == 0
    assert not Invoice.objects.for_tenant(tenant_a).exists()


def test_a_usage_line_without_price_terms_is_reported_not_billed(tenant_a):
    customer = CustomerFactory(tenant=tenant_a, name="Unpriced Inc")
    ContractLineFactory(contract=ContractFactory(customer=customer, tenant=tenant_a, start_date=NOV_START),
                        tenant=tenant_a, kind=ContractLine.Kind.USAGE, description="Jobs")

    counts = invoice_compute_drafts(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END)

    assert counts["skipped"] == 1
    assert counts["problems"] == ["Unpriced Inc: usage line 'Jobs' has no price terms naming its metric"]


def test_price_terms_refuse_floats_and_missing_keys(tenant_a):
    line = ContractLineFactory(contract=ContractFactory(customer=CustomerFactory(tenant=tenant_a), tenant=tenant_a),
                               tenant=tenant_a, kind=ContractLine.Kind.USAGE)

    with pytest.raises(ValidationError) as floats:
        price_terms_set(contract_line=line, charge_model=ChargeModel.PER_UNIT, metric="jobs", terms={"unit_price": 0.1})
    with pytest.raises(ValidationError) as missing:
        price_terms_set(contract_line=line, charge_model=ChargeModel.INCLUDED_QUOTA, metric="jobs", terms={"included": 5})

    assert floats.value.message_dict == {"terms": ['unit_price: write the number as a string, e.g. "0.50" (got 0.1).']}
    assert missing.value.message_dict == {"terms": ["overage_unit_price is required for included_quota."]}


def test_a_tenant_read_back_from_the_database_does_not_look_like_a_change(job_api):
    starter_with_jobs(job_api, 102)
    invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)
    job_api.refresh_from_db()  # vat_rate 0 in memory, 0.00 from the database

    counts = invoice_compute_drafts(tenant=job_api, period_start=NOV_START, period_end=NOV_END)

    assert (counts["updated"], counts["unchanged"]) == (0, 1)


@pytest.mark.usage_events
def test_percentage_of_savings_prices_event_by_event_with_a_minimum(tenant_a):
    BillableMetricFactory(
        tenant=tenant_a, code="savings", unit="USD", aggregation=BillableMetric.Aggregation.SUM, field="saved"
    )
    customer = CustomerFactory(tenant=tenant_a)
    line = ContractLineFactory(
        contract=ContractFactory(customer=customer, tenant=tenant_a, start_date=NOV_START), tenant=tenant_a,
        kind=ContractLine.Kind.USAGE, description="20% of savings", unit_price=Money("0", "USD"),
    )
    price_terms_set(contract_line=line, charge_model=ChargeModel.PERCENTAGE, metric="savings",
                    terms={"rate_percent": "20", "min_per_event": "1.00"})
    add_events(customer, 1, metric="savings", properties={"saved": 100})
    add_events(customer, 1, metric="savings", properties={"saved": 2}, day=6)

    invoice_compute_drafts(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END)

    assert lines_of(draft_of(customer)) == [
        ("20% of savings", "charge", D(100), D("0.20"), D("20.00")),
        ("20% of savings, minimum per event", "charge", D(1), D("1.00"), D("1.00")),
    ]
