"""The metric endpoints: tenant isolation, parameter validation, snapshots, exact rounded output."""

from datetime import date
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from customers.money import Money
from revenue.models import MetricSnapshot
from revenue.services import snapshot_month
from tests.api_clients import key_client
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.factories import ExchangeRateFactory


@pytest.fixture
def world(tenant_a, tenant_b):
    for tenant, price, currency in ((tenant_a, "99.00", "USD"), (tenant_b, "5000.00", "SEK")):
        customer = CustomerFactory(tenant=tenant, tier="Starter", currency=currency)
        contract = ContractFactory(customer=customer, start_date=date(2025, 1, 15))
        ContractLineFactory(contract=contract, unit_price=Money(price, currency), starts_on=date(2025, 1, 15))
    return tenant_a, tenant_b


def test_mrr_endpoint_returns_the_tenants_months_rounded(world):
    body = key_client(world[0]).get("/api/v1/metrics/mrr/?from=2025-01&to=2025-02&segment=tier:Starter").json()

    assert body == {"currency": "USD", "source": "live", "months": [
        {"month": "2025-01", "segment": "", "mrr": "99.00", "arr": "1188.00", "customers": 1, "arpa": "99.00"},
        {"month": "2025-02", "segment": "", "mrr": "99.00", "arr": "1188.00", "customers": 1, "arpa": "99.00"},
    ]}


@pytest.mark.parametrize(
    "query, message",
    [
        ("from=2025-13", "Write the month as YYYY-MM"),
        ("from=2025-03&to=2025-01", "'from' must not be after 'to'"),
        ("segment=colour:red", "dimension:value"),
        ("group_by=planet", "group_by must be one of"),
    ],
)
def test_bad_parameters_are_400_with_a_message(world, query, message):
    response = key_client(world[0]).get(f"/api/v1/metrics/mrr/?{query}")

    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_missing_exchange_rate_is_409_naming_currency(world, tenant_a):
    swede = CustomerFactory(tenant=tenant_a, currency="SEK")
    contract = ContractFactory(customer=swede, start_date=date(2025, 1, 1))
    ContractLineFactory(contract=contract, unit_price=Money("100.00", "SEK"), starts_on=date(2025, 1, 1))

    response = key_client(tenant_a).get("/api/v1/metrics/movements/?from=2025-01&to=2025-01")

    assert response.status_code == 409
    assert "SEK to USD on or before 2025-01-31" in response.json()["detail"]
    ExchangeRateFactory(tenant=tenant_a, currency="SEK", rate=Decimal("0.1"), effective_on=date(2025, 1, 1))
    assert key_client(tenant_a).get("/api/v1/metrics/movements/?from=2025-01&to=2025-01").json()["months"][0][
        "mrr_end"
    ] == "109.00"


def test_closed_months_are_read_from_snapshots(world, tenant_a):
    snapshot_month(tenant=tenant_a, month=date(2025, 2, 1))
    MetricSnapshot.objects.for_tenant(tenant_a).update(figures={
        **MetricSnapshot.objects.for_tenant(tenant_a).get().figures, "mrr_end": "42",
    })

    body = key_client(tenant_a).get("/api/v1/metrics/mrr/?from=2025-02&to=2025-02").json()

    assert (body["source"], body["months"][0]["mrr"]) == ("snapshot", "42.00")


@pytest.mark.parametrize("name", ["movements", "retention", "concentration", "clv", "pipeline", "forecast"])
def test_every_metric_endpoint_answers_200(world, name):
    assert key_client(world[0]).get(f"/api/v1/metrics/{name}/?runs=100&seed=1").status_code == 200


def test_anonymous_request_is_refused(world):
    assert APIClient().get("/api/v1/metrics/mrr/").status_code == 401


def test_schema_documents_the_metric_endpoints(world, member_factory):
    client = APIClient()
    client.force_login(member_factory(world[0]))
    schema = client.get("/api/schema/?format=json").json()

    assert {"/api/v1/metrics/mrr/", "/api/v1/metrics/forecast/"} <= set(schema["paths"])


def test_snapshot_of_a_month_not_yet_ended_is_refused(world, tenant_a):
    from django.core.exceptions import ValidationError
    from django.utils import timezone

    with pytest.raises(ValidationError, match="has not ended yet"):
        snapshot_month(tenant=tenant_a, month=timezone.now().date())


def test_snapshot_is_idempotent_per_tenant_and_month(world, tenant_a, tenant_b):
    snapshot_month(tenant=tenant_a, month=date(2025, 2, 1))
    snapshot_month(tenant=tenant_a, month=date(2025, 2, 1))

    snapshot = MetricSnapshot.objects.for_tenant(tenant_a).get()
    assert (Decimal(snapshot.figures["mrr_end"]), Decimal(snapshot.figures["new"])) == (Decimal("99"), 0)
    assert not MetricSnapshot.objects.for_tenant(tenant_b).exists()
