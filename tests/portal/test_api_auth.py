"""Who may call the REST API, and for which tenant: API keys, staff sessions by role, nobody else."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import Customer, Role, TenantAPIKey
from customers.tenancy import tenant_scope
from tests.customers.factories import CustomerFactory, PortalAccessFactory, StaffUserFactory
from tests.revenue.factories import OpportunityFactory

NEW_CUSTOMER = {"name": "Gamma Ltd", "reference": "gamma", "currency": "USD"}


def key_client(raw_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


def session_client(user):
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def two_tenants_customers(tenant_a, tenant_b):
    CustomerFactory(tenant=tenant_a, name="Alpha Inc")
    CustomerFactory(tenant=tenant_a, name="Apex Corp")
    CustomerFactory(tenant=tenant_b, name="Beta AB")


def new_opportunity(customer):
    return {
        "customer": customer.pk,
        "title": "Deal",
        "amount": {"amount": "1000", "currency": customer.currency},
        "probability": 30,
    }


def test_no_credentials_gives_401_json(two_tenants_customers):
    response = APIClient().get("/api/v1/customers/")

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == "Api-Key"


def test_unknown_api_key_gives_401(two_tenants_customers):
    response = key_client("not.a-real-key").get("/api/v1/customers/")

    assert response.status_code == 401
    assert response.json() == {"detail": "The API key is unknown, revoked or expired."}


def test_revoked_api_key_gives_401(tenant_a, two_tenants_customers):
    api_key, raw_key = TenantAPIKey.objects.create_key(tenant=tenant_a, name="ci")
    api_key.revoked = True
    api_key.save()

    assert key_client(raw_key).get("/api/v1/customers/").status_code == 401


def test_expired_api_key_gives_401(tenant_a, two_tenants_customers):
    _, raw_key = TenantAPIKey.objects.create_key(
        tenant=tenant_a, name="ci", expiry_date=timezone.now() - timedelta(minutes=1)
    )

    assert key_client(raw_key).get("/api/v1/customers/").status_code == 401


def test_a_bad_api_key_is_refused_even_beside_a_valid_session(tenant_a, member_factory, two_tenants_customers):
    client = session_client(member_factory(tenant_a, Role.OWNER))
    client.credentials(HTTP_AUTHORIZATION="Api-Key not.a-real-key")

    assert client.get("/api/v1/customers/").status_code == 401


def test_api_key_lists_only_its_own_tenants_customers(tenant_a, tenant_b, two_tenants_customers):
    _, key_a = TenantAPIKey.objects.create_key(tenant=tenant_a, name="ci")
    _, key_b = TenantAPIKey.objects.create_key(tenant=tenant_b, name="ci")

    names_a = [c["name"] for c in key_client(key_a).get("/api/v1/customers/").json()["results"]]
    names_b = [c["name"] for c in key_client(key_b).get("/api/v1/customers/").json()["results"]]

    assert (names_a, names_b) == (["Alpha Inc", "Apex Corp"], ["Beta AB"])


def test_api_key_may_write(tenant_a):
    _, raw_key = TenantAPIKey.objects.create_key(tenant=tenant_a, name="ci")

    assert key_client(raw_key).post("/api/v1/customers/", NEW_CUSTOMER, format="json").status_code == 201


def test_portal_users_session_gives_403(tenant_a, two_tenants_customers):
    access = PortalAccessFactory(customer=CustomerFactory(tenant=tenant_a))

    response = session_client(access.user).get("/api/v1/customers/")

    assert response.status_code == 403
    assert response.json() == {"detail": "You need a tenant API key or a staff membership in a tenant."}


def test_staff_session_sees_only_its_membership_tenant(tenant_a, member_factory, two_tenants_customers):
    client = session_client(member_factory(tenant_a, Role.ACCOUNT_MANAGER))

    names = [c["name"] for c in client.get("/api/v1/customers/").json()["results"]]

    assert names == ["Alpha Inc", "Apex Corp"]


def test_viewer_session_can_read_but_not_write(tenant_a, member_factory, two_tenants_customers):
    client = session_client(member_factory(tenant_a, Role.VIEWER))

    read = client.get("/api/v1/customers/")
    write = client.post("/api/v1/customers/", NEW_CUSTOMER, format="json")

    assert (read.status_code, write.status_code) == (200, 403)
    assert write.json() == {"detail": "You need a tenant API key or a staff membership in a tenant."}


def test_finance_may_create_customers_but_not_opportunities(tenant_a, member_factory):
    client = session_client(member_factory(tenant_a, Role.FINANCE))
    customer = CustomerFactory(tenant=tenant_a)

    assert client.post("/api/v1/customers/", NEW_CUSTOMER, format="json").status_code == 201
    assert client.post("/api/v1/opportunities/", new_opportunity(customer), format="json").status_code == 403
    assert client.get("/api/v1/opportunities/").status_code == 200


def test_finance_cannot_win_an_opportunity(tenant_a, member_factory):
    client = session_client(member_factory(tenant_a, Role.FINANCE))
    opportunity = OpportunityFactory(customer=CustomerFactory(tenant=tenant_a))

    response = client.post(f"/api/v1/opportunities/{opportunity.pk}/win/", {"start_date": "2026-01-01"}, format="json")

    assert response.status_code == 403


def test_account_manager_may_create_opportunities(tenant_a, member_factory):
    client = session_client(member_factory(tenant_a, Role.ACCOUNT_MANAGER))
    customer = CustomerFactory(tenant=tenant_a)

    assert client.post("/api/v1/opportunities/", new_opportunity(customer), format="json").status_code == 201


def test_staff_user_without_membership_gives_403(tenant_a, two_tenants_customers):
    response = session_client(StaffUserFactory()).get("/api/v1/customers/")

    assert response.status_code == 403


def test_history_records_the_staff_user_and_no_user_for_an_api_key(tenant_a, member_factory):
    manager = member_factory(tenant_a, Role.ACCOUNT_MANAGER)
    _, raw_key = TenantAPIKey.objects.create_key(tenant=tenant_a, name="ci")

    by_key = key_client(raw_key).post("/api/v1/customers/", NEW_CUSTOMER, format="json").json()
    staff_payload = {**NEW_CUSTOMER, "reference": "g2"}
    by_staff = session_client(manager).post("/api/v1/customers/", staff_payload, format="json").json()

    customers = Customer.objects.for_tenant(tenant_a)
    with tenant_scope(tenant_a):  # the history tables are fenced by row-level security too
        assert customers.get(pk=by_key["id"]).history.get().history_user is None
        assert customers.get(pk=by_staff["id"]).history.get().history_user == manager
