"""Revenue's catalog endpoints: price plans and exchange rates, with money in the API's shape, a message
per field, tenants apart, roles, and 409 for a rate that converted a frozen month."""

from datetime import date
from decimal import Decimal

import pytest

from customers.models import Role
from revenue.models import ExchangeRate, MetricSnapshot, PricePlan
from tests.api_clients import key_client, staff_client
from tests.billing.factories import BillableMetricFactory
from tests.revenue.factories import ExchangeRateFactory

pytestmark = pytest.mark.django_db

PLAN = {
    "code": "starter", "name": "Starter", "currency": "USD", "base_fee": {"amount": "29.00", "currency": "USD"},
    "charge_model": "included_quota", "metric": "processed_jobs", "unit_price": {"amount": "0", "currency": "USD"},
    "terms": {"included": "100", "overage_unit_price": "0.50"}, "description": "100 jobs, $0.50 per extra job",
}


def test_a_plan_is_created_with_money_in_its_currency_and_changed(tenant_a):
    BillableMetricFactory(tenant=tenant_a)
    client = key_client(tenant_a)

    created = client.post("/api/v1/price-plans/", PLAN, format="json")
    changed = client.patch(
        f"/api/v1/price-plans/{created.json()['id']}/", {"base_fee": {"amount": "31.5", "currency": "USD"}}, format="json"
    )

    assert created.status_code == 201
    assert created.json() == {"id": created.json()["id"], **PLAN, "unit_price": {"amount": "0.00", "currency": "USD"}}
    assert changed.status_code == 200 and changed.json()["base_fee"] == {"amount": "31.50", "currency": "USD"}
    moved = client.patch(f"/api/v1/price-plans/{created.json()['id']}/", {"currency": "SEK"}, format="json")
    assert (moved.status_code, moved.json()) == (400, {
        "base_fee": ["The plan moves to SEK: give its base_fee in SEK too."],
        "unit_price": ["The plan moves to SEK: give its unit_price in SEK too."],
    })
    assert PricePlan.objects.for_tenant(tenant_a).get().base_fee == Decimal("31.50")


@pytest.mark.parametrize(
    "change, errors",
    [
        ({"base_fee": {"amount": "29.00", "currency": "SEK"}}, {"base_fee": ["Give it in the plan's currency, USD (got SEK)."]}),
        ({"base_fee": {"amount": "-1", "currency": "USD"}}, {"base_fee": {"amount": ["The amount cannot be negative."]}}),
        ({"terms": {"included": "100"}}, {"terms": ["overage_unit_price is required for included_quota."]}),
        ({"metric": "gb"}, {"metric": ['No billable metric "gb"; create it first (POST /api/v1/billable-metrics/).']}),
        ({"currency": "XYZ"}, None),
        ({"code": "starter"}, {"code": ['The catalog has a plan "starter" already.']}),
    ],
)
def test_an_invalid_plan_is_a_400_naming_the_field(tenant_a, change, errors):
    BillableMetricFactory(tenant=tenant_a)
    client = key_client(tenant_a)
    assert client.post("/api/v1/price-plans/", PLAN, format="json").status_code == 201

    response = client.post("/api/v1/price-plans/", {**PLAN, "code": "other", **change}, format="json")

    assert response.status_code == 400
    if errors is None:
        assert list(response.json()) == list(change)
    else:
        assert response.json() == errors
    assert PricePlan.objects.for_tenant(tenant_a).count() == 1


def test_plans_stay_in_their_tenant_and_only_finance_writes_them(tenant_a, tenant_b, member_factory):
    BillableMetricFactory(tenant=tenant_b)
    theirs = key_client(tenant_b).post("/api/v1/price-plans/", PLAN, format="json").json()
    client = key_client(tenant_a)

    assert client.get(f"/api/v1/price-plans/{theirs['id']}/").status_code == 404
    assert client.delete(f"/api/v1/price-plans/{theirs['id']}/").status_code == 404
    assert client.get("/api/v1/price-plans/").json()["count"] == 0
    flat = {**PLAN, "charge_model": "flat", "metric": "", "terms": {}}
    assert staff_client(member_factory, tenant_a, Role.ACCOUNT_MANAGER).post(
        "/api/v1/price-plans/", flat, format="json").status_code == 403
    finance = staff_client(member_factory, tenant_a, Role.FINANCE)
    created = finance.post("/api/v1/price-plans/", flat, format="json")
    assert created.status_code == 201
    assert finance.delete(f"/api/v1/price-plans/{created.json()['id']}/").status_code == 204
    assert PricePlan.objects.for_tenant(tenant_b).count() == 1


def test_an_exchange_rate_is_created_and_validated_per_field(tenant_a):
    client = key_client(tenant_a)

    created = client.post("/api/v1/exchange-rates/", {"currency": "EUR", "rate": "1.08", "effective_on": "2026-11-01"}, format="json")
    again = client.post("/api/v1/exchange-rates/", {"currency": "EUR", "rate": "1.09", "effective_on": "2026-11-01"}, format="json")
    zero = client.post("/api/v1/exchange-rates/", {"currency": "EUR", "rate": "0", "effective_on": "2026-12-01"}, format="json")
    unknown = client.post("/api/v1/exchange-rates/", {"currency": "XYZ", "rate": "1", "effective_on": "2026-12-01"}, format="json")

    assert created.status_code == 201
    assert created.json() == {"id": created.json()["id"], "currency": "EUR", "rate": "1.0800000000", "effective_on": "2026-11-01"}
    assert (again.status_code, again.json()) == (
        400, {"effective_on": ["EUR has a rate from 2026-11-01 already; change that one."]}
    )
    assert (zero.status_code, zero.json()) == (400, {"rate": ["A rate is above 0."]})
    assert (unknown.status_code, list(unknown.json())) == (400, ["currency"])
    assert ExchangeRate.objects.for_tenant(tenant_a).count() == 1


def test_rates_stay_in_their_tenant_and_only_finance_writes_them(tenant_a, tenant_b, member_factory):
    theirs = ExchangeRateFactory(tenant=tenant_b)
    client = key_client(tenant_a)
    body = {"currency": "SEK", "rate": "0.095", "effective_on": "2025-01-01"}

    assert client.get(f"/api/v1/exchange-rates/{theirs.pk}/").status_code == 404
    assert client.patch(f"/api/v1/exchange-rates/{theirs.pk}/", {"rate": "1"}, format="json").status_code == 404
    assert staff_client(member_factory, tenant_a, Role.ACCOUNT_MANAGER).post(
        "/api/v1/exchange-rates/", body, format="json").status_code == 403
    assert staff_client(member_factory, tenant_a, Role.VIEWER).get("/api/v1/exchange-rates/").json()["count"] == 0
    assert staff_client(member_factory, tenant_a, Role.FINANCE).post(
        "/api/v1/exchange-rates/", body, format="json").status_code == 201
    assert ExchangeRate.objects.for_tenant(tenant_b).get().rate == Decimal("0.0950000000")


def test_a_rate_that_converted_a_frozen_month_is_kept_and_none_is_added_there(tenant_a):
    october = ExchangeRateFactory(tenant=tenant_a, currency="EUR", rate=Decimal("1.05"), effective_on=date(2026, 10, 1))
    november = ExchangeRateFactory(tenant=tenant_a, currency="EUR", rate=Decimal("1.08"), effective_on=date(2026, 11, 1))
    MetricSnapshot.objects.create(tenant=tenant_a, month=date(2026, 10, 1), figures={})
    client = key_client(tenant_a)

    changed = client.patch(f"/api/v1/exchange-rates/{october.pk}/", {"rate": "1.06"}, format="json")
    deleted = client.delete(f"/api/v1/exchange-rates/{october.pk}/")
    backdated = client.post("/api/v1/exchange-rates/", {"currency": "EUR", "rate": "1.07", "effective_on": "2026-10-15"}, format="json")
    moved_back = client.patch(f"/api/v1/exchange-rates/{november.pk}/", {"effective_on": "2026-10-20"}, format="json")
    corrected = client.patch(f"/api/v1/exchange-rates/{november.pk}/", {"rate": "1.09"}, format="json")

    assert (changed.status_code, changed.json()) == (409, {"detail": (
        "The EUR rate from 2026-10-01 converted the figures of 2026-10, which are closed and frozen. "
        "Date the new rate after 2026-10."
    )})
    assert deleted.status_code == backdated.status_code == moved_back.status_code == 409
    assert corrected.status_code == 200
    assert sorted(ExchangeRate.objects.for_tenant(tenant_a).values_list("effective_on", "rate")) == [
        (date(2026, 10, 1), Decimal("1.0500000000")), (date(2026, 11, 1), Decimal("1.0900000000")),
    ]
