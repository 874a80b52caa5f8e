"""Same invoices from either usage-event store: random usage, ingested into PostgreSQL and into
ClickHouse, drafts the same invoice lines to the cent."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing.metering import usage_ingest
from billing.models import ChargeModel, Invoice, InvoiceLine, UsageEventKey
from billing.services import invoice_compute_drafts, price_terms_set
from billing.metering import usage_store as configured_store
from customers.models import ContractLine
from customers.money import Money
from tests.billing.factories import BillableMetricFactory, BillingSettingsFactory, job_api_subscription
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory, TenantFactory

NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)
PLANS = ["Free", "Starter", "Professional", "Business"]
MONTH_SECONDS = 30 * 86_400

usage = st.lists(
    st.tuples(
        st.integers(0, 2),  # customer
        st.sampled_from(["processed_jobs", "compute", "seats", "payments", "peak"]),
        st.integers(-3_600, MONTH_SECONDS + 3_600),  # seconds from 1 November (some outside it)
        st.decimals(min_value=0, max_value=5_000, places=2),  # quantity / property value
        st.sampled_from(["ok", "failed"]),
    ),
    max_size=60,
)


def _usage_line(customer, *, charge_model, metric, terms, unit_price="0"):
    line = ContractLineFactory(
        contract=ContractFactory(customer=customer, tenant=customer.tenant, start_date=NOV_START),
        tenant=customer.tenant, kind=ContractLine.Kind.USAGE, description=f"{metric} usage",
        unit_price=Money(unit_price, customer.currency),
    )
    price_terms_set(contract_line=line, charge_model=charge_model, metric=metric, terms=terms)


def _tenant_with_prices(index):
    tenant = TenantFactory(slug=f"same-invoices-{index}", invoice_number_prefix="SI-")
    BillingSettingsFactory(tenant=tenant, minimum_invoice_amount=Decimal("1.00"))
    for code, aggregation, field, filters in [
        ("processed_jobs", "count", "quantity", {}),
        ("failed_jobs", "count", "quantity", {"status": "failed"}),
        ("compute", "sum", "quantity", {}),
        ("seats", "weighted_sum", "delta", {}),
        ("payments", "sum", "amount", {}),
        ("peak", "max", "quantity", {}),
    ]:
        BillableMetricFactory(tenant=tenant, code=code, aggregation=aggregation, field=field, filters=filters,
                              event_code="processed_jobs" if code == "failed_jobs" else "")
    customers = []
    for position in range(3):
        customer = CustomerFactory(tenant=tenant, external_ref=f"c{position}", currency="USD")
        job_api_subscription(customer, PLANS[(index + position) % len(PLANS)], failed_metric="failed_jobs")
        _usage_line(customer, charge_model=ChargeModel.PER_UNIT, metric="compute", terms={}, unit_price="0.0013")
        _usage_line(customer, charge_model=ChargeModel.PER_UNIT, metric="seats", terms={}, unit_price="7.50")
        _usage_line(customer, charge_model=ChargeModel.PERCENTAGE, metric="payments",
                    terms={"rate_percent": "2.9", "fixed_fee_per_event": "0.30", "free_events": 1})
        _usage_line(customer, charge_model=ChargeModel.GRADUATED, metric="peak", terms={"tiers": [
            {"up_to": "100", "unit_price": "0.10", "flat_fee": "5"},
            {"up_to": None, "unit_price": "0.05", "flat_fee": "0"}]})
        customers.append(customer)
    return tenant, customers


def _events(rows):
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    events = []
    for n, (customer, metric, offset, value, status) in enumerate(rows):
        properties = {"status": status}
        if metric == "seats":
            properties["delta"] = str(value if n % 3 else -value)
        if metric == "payments":
            properties["amount"] = str(value)
        events.append({
            "customer": f"c{customer}", "metric": metric, "idempotency_key": f"e{n}",
            "timestamp": (start + timedelta(seconds=offset)).isoformat(), "quantity": str(value),
            "properties": properties,
        })
    return events


def _drafted_lines(tenant):
    invoice_compute_drafts(tenant=tenant, period_start=NOV_START, period_end=NOV_END)
    lines = InvoiceLine.objects.for_tenant(tenant).filter(invoice__period_start=NOV_START).order_by(
        "invoice__customer__external_ref", "position"
    )
    return [
        (line.invoice.customer.external_ref, line.description, line.quantity, line.unit_price, line.amount)
        for line in lines.select_related("invoice__customer")
    ] + sorted(Invoice.objects.for_tenant(tenant).values_list("customer__external_ref", "total"))


@pytest.mark.slow
@pytest.mark.parametrize("usage_store", ["clickhouse"], indirect=True)
@hypothesis_settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=usage)
def test_random_usage_drafts_the_same_invoice_lines_from_either_store(db, usage_store, settings, rows):
    clickhouse = configured_store()
    with transaction.atomic():
        tenant, customers = _tenant_with_prices(len(rows))
        events = _events(rows)

        settings.USAGE_EVENT_STORE = "postgres"
        usage_ingest(tenant=tenant, events=events, now=NOW)
        with transaction.atomic():
            from_postgres = _drafted_lines(tenant)
            transaction.set_rollback(True)  # drafts only; the events stay

        # Both stores claim keys in the one key table (a deployment uses one store): forget the keys
        # the PostgreSQL ingest claimed, so ClickHouse receives the same events as new.
        UsageEventKey.objects.for_tenant(tenant).delete()
        settings.USAGE_EVENT_STORE = "clickhouse"
        assert configured_store() is clickhouse
        usage_ingest(tenant=tenant, events=events, now=NOW)
        from_clickhouse = _drafted_lines(tenant)
        transaction.set_rollback(True)

    assert from_clickhouse == from_postgres
    assert from_postgres  # every customer has a plan fee line at least
