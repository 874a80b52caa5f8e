"""What each role may do in the admin: everyone views, editing follows customers.roles."""

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.urls import reverse

from customers.models import Customer, Membership, Role, Tenant, TenantAPIKey
from customers.tenancy import platform_scope
from revenue.models import Opportunity
from tests.customers.factories import CustomerFactory
from tests.revenue.factories import OpportunityFactory


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def customer_data(**overrides):
    data = {
        "name": "Delta Corp", "external_ref": "delta", "currency": "USD", "language": "en", "is_business": "on",
        "billing_emails": "", "acquisition_cost_0": "", "acquisition_cost_1": "USD", "country": "US",
        "einvoice_format": "pdf", "contacts-TOTAL_FORMS": 0, "contacts-INITIAL_FORMS": 0,
    }
    data.update(overrides)
    return data


def opportunity_data(opportunity, **overrides):
    data = {
        "title": opportunity.title, "customer": opportunity.customer_id or "", "prospect_name": "",
        "kind": opportunity.kind,
        "amount_0": str(opportunity.amount.amount), "amount_1": str(opportunity.amount.currency),
        "probability": opportunity.probability, "stage": opportunity.stage,
        "expected_close_on": opportunity.expected_close_on or "", "owner": "", "next_step": "", "lost_reason": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def customer(tenant_a, tenant_b):
    with platform_scope():
        CustomerFactory(tenant=tenant_b, name="Beta Kund AB")
        return CustomerFactory(tenant=tenant_a, name="Alpha Inc", external_ref="alpha")


@pytest.fixture
def opportunity(customer):
    with platform_scope():
        return OpportunityFactory(customer=customer, tenant=customer.tenant, title="Alpha expansion")


def test_viewer_can_view_but_not_add_change_or_delete(client, member_factory, tenant_a, customer):
    client.force_login(member_factory(tenant_a, Role.VIEWER))
    assert client.get(admin_url(Customer, "change", customer.pk)).status_code == 200
    assert client.get(admin_url(Customer, "add")).status_code == 403
    assert client.post(admin_url(Customer, "add"), customer_data()).status_code == 403
    assert client.post(admin_url(Customer, "change", customer.pk), customer_data(name="Renamed")).status_code == 403
    assert client.post(admin_url(Customer, "delete", customer.pk), {"post": "yes"}).status_code == 403
    with platform_scope():
        assert list(Customer.objects.for_tenant(tenant_a).values_list("name", flat=True)) == ["Alpha Inc"]


def test_finance_can_view_an_opportunity_but_not_change_it(client, member_factory, tenant_a, opportunity):
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    assert client.get(admin_url(Opportunity, "change", opportunity.pk)).status_code == 200
    url = admin_url(Opportunity, "change", opportunity.pk)
    response = client.post(url, opportunity_data(opportunity, probability=90))
    assert response.status_code == 403
    opportunity.refresh_from_db()
    assert opportunity.probability == 50


def test_finance_can_edit_customers(client, member_factory, tenant_a, customer):
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    url = admin_url(Customer, "change", customer.pk)
    response = client.post(url, customer_data(name="Alpha Inc.", external_ref="alpha"))
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "Alpha Inc."


def test_account_manager_can_edit_the_pipeline_and_the_save_touches_it(client, member_factory, tenant_a, opportunity):
    client.force_login(member_factory(tenant_a, Role.ACCOUNT_MANAGER))
    touched_before = opportunity.last_touched_at
    url = admin_url(Opportunity, "change", opportunity.pk)
    response = client.post(url, opportunity_data(opportunity, probability=70))
    assert response.status_code == 302
    opportunity.refresh_from_db()
    assert opportunity.probability == 70
    assert opportunity.last_touched_at > touched_before


def test_list_editable_is_offered_to_account_managers_only(client, member_factory, tenant_a, opportunity):
    client.force_login(member_factory(tenant_a, Role.ACCOUNT_MANAGER))
    response = client.get(admin_url(Opportunity, "changelist"))
    assert list(response.context["cl"].list_editable) == ["probability", "stage", "expected_close_on"]
    assert response.context["cl"].formset is not None

    client.force_login(member_factory(tenant_a, Role.FINANCE))
    response = client.get(admin_url(Opportunity, "changelist"))
    assert list(response.context["cl"].list_editable) == []
    assert response.context["cl"].formset is None


def test_finance_cannot_post_the_list_editable_form(client, member_factory, tenant_a, opportunity):
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    response = client.post(
        admin_url(Opportunity, "changelist"),
        {
            "form-TOTAL_FORMS": 1, "form-INITIAL_FORMS": 1, "form-0-id": opportunity.pk, "form-0-probability": 90,
            "form-0-stage": "proposal", "form-0-expected_close_on": "2026-12-15", "_save": "Save",
        },
    )
    assert response.status_code in (200, 403)
    opportunity.refresh_from_db()
    assert opportunity.probability == 50


def test_account_managers_start_on_their_own_customers_and_can_see_all(client, member_factory, tenant_a, customer):
    manager = member_factory(tenant_a, Role.ACCOUNT_MANAGER)
    with platform_scope():
        CustomerFactory(tenant=tenant_a, name="Mine AB", account_manager=manager)
    client.force_login(manager)
    response = client.get(admin_url(Customer, "changelist"))
    assert [c.name for c in response.context["cl"].result_list] == ["Mine AB"]
    response = client.get(admin_url(Customer, "changelist") + "?manager=all")
    assert [c.name for c in response.context["cl"].result_list] == ["Alpha Inc", "Mine AB"]


def test_finance_sees_all_customers_by_default(client, member_factory, tenant_a, customer):
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    response = client.get(admin_url(Customer, "changelist"))
    assert [c.name for c in response.context["cl"].result_list] == ["Alpha Inc"]


def test_only_owners_manage_the_team(client, member_factory, tenant_a):
    client.force_login(member_factory(tenant_a, Role.ACCOUNT_MANAGER))
    assert client.get(admin_url(Membership, "changelist")).status_code == 200
    assert client.post(admin_url(Membership, "add"), {"email": "new@example.com", "role": "viewer"}).status_code == 403


def test_owner_adds_a_team_member_by_email(client, member_factory, tenant_a):
    client.force_login(member_factory(tenant_a, Role.OWNER))
    response = client.post(admin_url(Membership, "add"), {"email": "New.Hire@example.com", "role": "finance"})
    assert response.status_code == 302
    user = get_user_model().objects.get(email="new.hire@example.com")
    assert user.is_staff and not user.has_usable_password()
    with platform_scope():
        assert Membership.objects.for_tenant(tenant_a).get(user=user).role == Role.FINANCE


def test_adding_an_existing_member_again_is_a_form_error(client, member_factory, tenant_a):
    owner = member_factory(tenant_a, Role.OWNER)
    colleague = member_factory(tenant_a, Role.VIEWER, username="colleague")
    client.force_login(owner)
    response = client.post(admin_url(Membership, "add"), {"email": colleague.email, "role": "finance"})
    assert response.status_code == 200
    assert "already exists" in str(response.context["adminform"].form.errors)
    with platform_scope():
        assert Membership.objects.for_tenant(tenant_a).count() == 2


def test_owner_creates_an_api_key_and_sees_the_raw_key_once(client, member_factory, tenant_a):
    client.force_login(member_factory(tenant_a, Role.OWNER))
    data = {"name": "Usage pipeline", "expiry_date_0": "", "expiry_date_1": ""}
    response = client.post(admin_url(TenantAPIKey, "add"), data, follow=True)
    assert response.status_code == 200
    with platform_scope():
        api_key = TenantAPIKey.objects.for_tenant(tenant_a).get()
    message = [str(m) for m in response.context["messages"]][0]
    raw_key = message.split(" is ")[1].split(" ")[0]
    assert raw_key.startswith(api_key.prefix + ".")
    assert api_key.is_valid(raw_key)

    response = client.get(admin_url(TenantAPIKey, "changelist"))
    assert raw_key not in response.content.decode()
    response = client.get(admin_url(TenantAPIKey, "change", quote(api_key.pk)))
    assert raw_key not in response.content.decode()
    assert "hashed_key" not in response.content.decode()


def test_owner_revokes_an_api_key_with_the_action(client, member_factory, tenant_a):
    client.force_login(member_factory(tenant_a, Role.OWNER))
    api_key, _ = TenantAPIKey.objects.create_key(tenant=tenant_a, name="Old key")
    client.post(
        admin_url(TenantAPIKey, "changelist"), {"action": "revoke", "_selected_action": [api_key.pk], "index": 0}
    )
    api_key.refresh_from_db()
    assert api_key.revoked is True


def test_non_owners_cannot_create_api_keys(client, member_factory, tenant_a):
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    assert client.post(admin_url(TenantAPIKey, "add"), {"name": "Sneaky"}).status_code == 403
    with platform_scope():
        assert TenantAPIKey.objects.for_tenant(tenant_a).count() == 0


def test_owner_changes_own_tenant_settings_but_cannot_reach_another_tenant(client, member_factory, tenant_a, tenant_b):
    client.force_login(member_factory(tenant_a, Role.OWNER))
    assert client.get(admin_url(Tenant, "change", tenant_a.pk)).status_code == 200
    response = client.get(admin_url(Tenant, "change", tenant_b.pk))
    assert response.status_code == 404
    assert "Bergström" not in response.content.decode()
    body = client.get(admin_url(Tenant, "changelist")).content.decode()
    assert "Acme Optimizer" in body and "Bergström" not in body


def test_non_owners_have_no_tenant_settings(client, member_factory, tenant_a):

    client.force_login(member_factory(tenant_a, Role.ACCOUNT_MANAGER))
    assert client.get(admin_url(Tenant, "change", quote(tenant_a.pk))).status_code == 404
    assert client.get(admin_url(Tenant, "changelist")).status_code == 403
