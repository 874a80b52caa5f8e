"""The economics API: tenant isolation, exact rounded figures, 400 on bad input, 404 on foreign ids."""

from datetime import date

import pytest

from billing.models import InvoiceLine
from tests.api_clients import key_client
from tests.customers.factories import CustomerFactory
from tests.revenue.economics.helpers import billed, calls, price
from tests.revenue.economics.test_roi import mid  # noqa: F401  (fixture)

pytestmark = pytest.mark.usage_events  # the figures here are read from usage events

JAN = date(2026, 1, 1)


def test_profitability_lists_only_the_tenants_losers_rounded(tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        price(tenant, "m", "1000000", "0")
        customer = CustomerFactory(tenant=tenant, name=f"Loser of {tenant.slug}", tier="Starter")
        billed(customer, JAN, "29.00")
        calls(customer, 30)

    body = key_client(tenant_a).get("/api/v1/economics/profitability/?from=2026-01&to=2026-01").json()

    assert [(c["customer"], c["margin"], c["margin_rate"], c["recommendation"]["action"]) for c in body["customers"]] == [
        ("Loser of acme", "-1.00", "-0.0345", "price_change")
    ]
    assert body["revenue_at_risk"] == "29.00"
    assert body["customers"][0]["recommendation"]["figures"]["required_revenue"] == "42.86"


def test_margins_endpoint_totals(tenant_a):
    price(tenant_a, "m", "1000000", "0")
    customer = CustomerFactory(tenant=tenant_a, tier="Pro")
    billed(customer, JAN, "99.00")
    calls(customer, 9)

    body = key_client(tenant_a).get("/api/v1/economics/margins/?from=2026-01&to=2026-01").json()

    assert body["total"] == {"revenue": "99.00", "cost": "9.00", "costed_revenue": "99.00", "margin": "90.00",
                             "margin_rate": "0.9091", "has_cost_data": True, "calls": 9}
    assert body["cost_months"] == ["2026-01"]
    assert body["by_month"][0]["month"] == "2026-01"


def test_bad_thin_margin_is_400(tenant_a):
    response = key_client(tenant_a).get("/api/v1/economics/profitability/?thin_margin=lots")

    assert response.status_code == 400
    assert "thin_margin must be a decimal" in response.json()["detail"]


def test_roi_endpoint_and_another_tenants_customer_is_404(mid, tenant_a, tenant_b):  # noqa: F811
    ok = key_client(tenant_a).get(f"/api/v1/economics/roi/{mid.pk}/?from=2026-01&to=2026-02")
    foreign = key_client(tenant_b).get(f"/api/v1/economics/roi/{mid.pk}/?from=2026-01&to=2026-02")

    assert ok.status_code == 200
    assert ok.json()["cumulative"]["savings"] == "3100.00"
    assert ok.json()["cumulative"]["roi"] == "0.9136"
    assert foreign.status_code == 404


def test_evidence_endpoint_lists_the_events(mid, tenant_a, tenant_b):  # noqa: F811
    line = InvoiceLine.objects.for_tenant(tenant_a).get(invoice__customer=mid, invoice__period_start=JAN, contract_line__kind="usage")

    body = key_client(tenant_a).get(f"/api/v1/economics/invoice-lines/{line.pk}/evidence/").json()

    assert [(e["idempotency_key"], e["savings"]) for e in body["events"]] == [("a1", "300.00"), ("a2", "800.00")]
    assert key_client(tenant_b).get(f"/api/v1/economics/invoice-lines/{line.pk}/evidence/").status_code == 404
