"""Staff economics pages and the customer portal's ROI page: reachable, tenant-scoped, exact figures."""

from datetime import date

import pytest
from django.test import Client
from django.utils import timezone

from customers.models import Role
from tests.customers.factories import CustomerFactory, PortalAccessFactory
from tests.revenue.economics.helpers import billed, calls, price
from tests.revenue.economics.test_roi import mid  # noqa: F401  (fixture)

JAN = date(2026, 1, 1)


@pytest.fixture
def now_in_march(monkeypatch):
    # The ROI page and default windows end with the last closed month: make that February 2026.
    fixed = timezone.datetime(2026, 3, 10, 12, tzinfo=timezone.get_current_timezone())
    monkeypatch.setattr(timezone, "now", lambda: fixed)


@pytest.mark.usage_events
def test_profitability_page_shows_the_tenants_loser_and_its_advice(tenant_a, tenant_b, member_factory):
    for tenant in (tenant_a, tenant_b):
        price(tenant, "m", "1000000", "0")
        customer = CustomerFactory(tenant=tenant, name=f"Loser {tenant.slug}", tier="Starter")
        billed(customer, JAN, "29.00")
        calls(customer, 30)
    client = Client()
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    response = client.get("/staff/economics/?from=2026-01&to=2026-01")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Loser acme" in body and "Loser bergstrom" not in body
    assert "<strong>Price change</strong>: " in body and "$29.00" in body
    assert "price_change" not in body  # the code stays in the API; people read words


def test_profitability_page_bad_month_is_400(tenant_a, member_factory):
    client = Client()
    client.force_login(member_factory(tenant_a))

    assert client.get("/staff/economics/?from=2026-13").status_code == 400


@pytest.mark.usage_events
def test_staff_roi_detail_of_another_tenants_customer_is_404(mid, tenant_b, member_factory):  # noqa: F811
    client = Client()
    client.force_login(member_factory(tenant_b))

    assert client.get(f"/staff/economics/roi/{mid.pk}/").status_code == 404


@pytest.mark.usage_events
def test_staff_roi_list_shows_cumulative_savings(mid, tenant_a, member_factory):  # noqa: F811
    client = Client()
    client.force_login(member_factory(tenant_a))

    body = client.get("/staff/economics/roi/?from=2026-01&to=2026-02").content.decode()

    assert "Kestrel" in body and "$3,100.00" in body and "$1,620.00" in body


@pytest.mark.usage_events
def test_portal_roi_page_in_the_customers_language(mid, now_in_march):  # noqa: F811
    mid.language = "sv"
    mid.save()
    client = Client()
    client.force_login(PortalAccessFactory(customer=mid, tenant=mid.tenant).user)

    response = client.get("/roi/")

    assert response.status_code == 200
    assert response.headers["Content-Language"] == "sv"
    body = response.content.decode()
    assert "3\xa0100,00" in body and 'href="/roi/"' in body


def test_portal_roi_page_for_a_customer_not_billed_on_savings(tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    client = Client()
    client.force_login(PortalAccessFactory(customer=customer, tenant=tenant_a).user)

    body = client.get("/roi/").content.decode()

    assert "not billed on savings" in body
