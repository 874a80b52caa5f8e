"""Bad input is refused with a clear message, through the admin forms and the services alike,
and a refusal leaves nothing half-saved."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from customers import services
from customers.models import Contract, ContractLine, Customer, PortalAccess, Role
from customers.money import Money
from customers.tenancy import platform_scope, tenant_scope
from revenue import services as revenue_services
from revenue.models import Opportunity
from tests.customers.factories import ContractFactory, CustomerFactory, PortalAccessFactory, UserFactory

PORTAL_ACCESS_ADD = "/admin/customers/portalaccess/add/"


def counts(tenant):
    with platform_scope():
        return {
            model.__name__: model.objects.for_tenant(tenant).count()
            for model in (Customer, Contract, ContractLine, Opportunity, PortalAccess)
        }


def form_errors(response):
    form = response.context["adminform"].form
    errors = {name: list(messages) for name, messages in form.errors.items()}
    for formset in response.context.get("inline_admin_formsets", []):
        for inline_form in formset.formset.forms:
            for name, messages in inline_form.errors.items():
                errors.setdefault(name, []).extend(messages)
    return errors


@pytest.fixture
def customer(tenant_a, tenant_b):
    with platform_scope():
        CustomerFactory(tenant=tenant_b, name="Beta AB", external_ref="shared-ref")
        return CustomerFactory(tenant=tenant_a, name="Alpha Inc", external_ref="alpha", currency="USD")


@pytest.fixture
def owner(client, member_factory, tenant_a):
    user = member_factory(tenant_a, Role.OWNER)
    client.force_login(user)
    return user


def customer_data(**overrides):
    data = {
        "name": "Delta Corp", "external_ref": "delta", "currency": "USD", "language": "en", "is_business": "on",
        "billing_emails": "", "acquisition_cost_0": "", "acquisition_cost_1": "USD", "country": "US",
        "einvoice_format": "pdf", "contacts-TOTAL_FORMS": 0, "contacts-INITIAL_FORMS": 0,
    }
    data.update(overrides)
    return data


def opportunity_data(customer, **overrides):
    data = {
        "title": "Expansion", "customer": customer.pk, "prospect_name": "", "kind": "recurring",
        "amount_0": "1000.00", "amount_1": "USD", "probability": 50, "stage": "lead",
        "expected_close_on": "", "owner": "", "next_step": "", "lost_reason": "",
    }
    data.update(overrides)
    return data


def contract_data(customer, **overrides):
    data = {
        "customer": customer.pk, "reference": "C-9", "title": "Platform", "status": "draft", "currency": "USD",
        "billing_interval": 1, "start_date": "2026-01-01", "end_date": "", "renewal_term_months": "",
        "signed_on": "", "notes": "",
        "lines-TOTAL_FORMS": 0, "lines-INITIAL_FORMS": 0, "changes-TOTAL_FORMS": 0, "changes-INITIAL_FORMS": 0,
    }
    data.update(overrides)
    return data


# Probability


@pytest.mark.parametrize(
    "probability, message", [(150, "less than or equal to 100"), (-1, "greater than or equal to 0")]
)
def test_admin_refuses_a_probability_outside_0_to_100(client, owner, customer, tenant_a, probability, message):
    before = counts(tenant_a)
    data = opportunity_data(customer, probability=probability)
    response = client.post(reverse("admin:revenue_opportunity_add"), data)
    assert response.status_code == 200
    assert message in " ".join(form_errors(response)["probability"])
    assert counts(tenant_a) == before


@pytest.mark.parametrize("probability", [150, -1])
def test_service_refuses_a_probability_outside_0_to_100(customer, tenant_a, probability):
    before = counts(tenant_a)
    with tenant_scope(tenant_a), pytest.raises(ValidationError) as error:
        revenue_services.opportunity_create(
            tenant=tenant_a, customer=customer, title="Expansion", amount=Money("1000", "USD"), probability=probability
        )
    assert "probability" in error.value.message_dict
    assert counts(tenant_a) == before


# Contract dates


def test_admin_refuses_a_contract_ending_before_it_starts(client, owner, customer, tenant_a):
    before = counts(tenant_a)
    response = client.post(reverse("admin:customers_contract_add"), contract_data(customer, end_date="2025-12-31"))
    assert response.status_code == 200
    assert "The end date cannot be before the start date." in " ".join(sum(form_errors(response).values(), []))
    assert counts(tenant_a) == before


def test_service_refuses_a_contract_ending_before_it_starts(customer, tenant_a):
    before = counts(tenant_a)
    with tenant_scope(tenant_a), pytest.raises(ValidationError, match="The end date cannot be before the start date."):
        services.contract_create(
            customer=customer, title="Platform", start_date=date(2026, 1, 1), end_date=date(2025, 12, 31),
            lines=[services.LineSpec(description="Fee", kind="recurring", unit_price=Money("100", "USD"))],
        )
    assert counts(tenant_a) == before


# Currencies


def test_admin_refuses_an_unknown_currency(client, owner, customer, tenant_a):
    before = counts(tenant_a)
    response = client.post(reverse("admin:customers_customer_add"), customer_data(currency="XXX"))
    assert response.status_code == 200
    assert "Select a valid choice. XXX is not one of the available choices." in form_errors(response)["currency"]
    assert counts(tenant_a) == before


def test_service_refuses_an_unknown_currency(customer, tenant_a):
    before = counts(tenant_a)
    with tenant_scope(tenant_a), pytest.raises(ValidationError) as error:
        services.customer_create(tenant=tenant_a, name="Delta Corp", external_ref="delta", currency="XXX")
    assert "currency" in error.value.message_dict
    assert counts(tenant_a) == before


def test_admin_refuses_a_line_in_another_currency_than_its_contract(client, owner, customer, tenant_a):
    with platform_scope():
        # A draft: a started contract takes no new line in its form (only the dated "Add line" action).
        contract = ContractFactory(customer=customer, tenant=tenant_a, reference="C-1", currency="USD",
                                   start_date=date(2026, 1, 1), status="draft")
    before = counts(tenant_a)
    data = contract_data(customer, reference="C-1", status="draft")
    data.update({
        "lines-TOTAL_FORMS": 1, "lines-0-description": "Fee", "lines-0-kind": "recurring", "lines-0-quantity": "1",
        "lines-0-unit_price_0": "100.00", "lines-0-unit_price_1": "EUR", "lines-0-discount_percent": "",
        "lines-0-starts_on": "2026-01-01", "lines-0-ends_on": "",
    })
    response = client.post(reverse("admin:customers_contract_change", args=(contract.pk,)), data)
    assert response.status_code == 200
    assert "The line's currency (EUR) differs from its contract's (USD)." in form_errors(response)["unit_price"]
    assert counts(tenant_a) == before


def test_admin_refuses_a_line_in_another_currency_when_adding_the_contract(client, owner, customer, tenant_a):
    before = counts(tenant_a)
    data = contract_data(customer)
    data.update({
        "lines-TOTAL_FORMS": 1, "lines-0-description": "Fee", "lines-0-kind": "recurring", "lines-0-quantity": "1",
        "lines-0-unit_price_0": "100.00", "lines-0-unit_price_1": "SEK", "lines-0-discount_percent": "",
        "lines-0-starts_on": "2026-01-01", "lines-0-ends_on": "",
    })
    response = client.post(reverse("admin:customers_contract_add"), data)
    assert response.status_code == 200
    assert "The line's currency (SEK) differs from its contract's (USD)." in form_errors(response)["unit_price"]
    assert counts(tenant_a) == before


def test_service_refuses_a_line_in_another_currency_and_saves_no_contract(customer, tenant_a):
    before = counts(tenant_a)
    message = r"The line's currency \(EUR\) differs from its contract's \(USD\)\."
    with tenant_scope(tenant_a), pytest.raises(ValidationError, match=message):
        services.contract_create(
            customer=customer, title="Platform", start_date=date(2026, 1, 1),
            lines=[services.LineSpec(description="Fee", kind="recurring", unit_price=Money("100", "EUR"))],
        )
    assert counts(tenant_a) == before


# Portal access


def test_admin_refuses_a_portal_access_without_a_customer(client, owner, customer, tenant_a):
    before = counts(tenant_a)
    response = client.post(PORTAL_ACCESS_ADD, {"email": "buyer@alpha.example", "customer": ""})
    assert response.status_code == 200
    assert form_errors(response)["customer"] == ["A portal user must belong to a customer."]
    assert counts(tenant_a) == before


def test_model_refuses_a_portal_access_without_a_customer(tenant_a):
    access = PortalAccess(tenant=tenant_a, user=UserFactory())
    with tenant_scope(tenant_a), pytest.raises(ValidationError) as error:
        access.full_clean()
    assert "customer" in error.value.message_dict


def test_admin_refuses_a_portal_access_to_another_tenants_customer(client, owner, customer, tenant_b, tenant_a):
    with platform_scope():
        other = Customer.objects.for_tenant(tenant_b).get()
    before = counts(tenant_a)
    response = client.post(PORTAL_ACCESS_ADD, {"email": "x@beta.example", "customer": other.pk})
    assert response.status_code == 200
    assert "customer" in form_errors(response)
    assert counts(tenant_a) == before


def test_admin_refuses_portal_access_for_a_user_who_already_has_one(client, owner, customer, tenant_a):
    with platform_scope():
        buyer = UserFactory(email="buyer@alpha.example")
        existing = PortalAccessFactory(customer=customer, tenant=tenant_a, user=buyer)
    before = counts(tenant_a)
    response = client.post(PORTAL_ACCESS_ADD, {"email": existing.user.email, "customer": customer.pk})
    assert response.status_code == 200
    assert "email" in form_errors(response)
    assert counts(tenant_a) == before


def test_admin_gives_portal_access_by_email(client, owner, customer, tenant_a):
    response = client.post(PORTAL_ACCESS_ADD, {"email": "buyer@alpha.example", "customer": customer.pk})
    assert response.status_code == 302
    with platform_scope():
        access = PortalAccess.objects.for_tenant(tenant_a).get()
    assert (access.user.email, access.user.is_staff, access.customer) == ("buyer@alpha.example", False, customer)


# Duplicate references


def test_admin_refuses_a_duplicate_customer_reference_in_the_same_tenant(client, owner, customer, tenant_a):
    before = counts(tenant_a)
    response = client.post(reverse("admin:customers_customer_add"), customer_data(external_ref="alpha"))
    assert response.status_code == 200
    assert "already exists" in " ".join(sum(form_errors(response).values(), []))
    assert counts(tenant_a) == before


def test_admin_allows_a_reference_another_tenant_uses(client, owner, customer, tenant_a):
    response = client.post(reverse("admin:customers_customer_add"), customer_data(external_ref="shared-ref"))
    assert response.status_code == 302
    with platform_scope():
        assert Customer.objects.for_tenant(tenant_a).filter(external_ref="shared-ref").count() == 1


def test_service_refuses_a_duplicate_customer_reference(customer, tenant_a):
    before = counts(tenant_a)
    with tenant_scope(tenant_a), pytest.raises(ValidationError, match="already exists"):
        services.customer_create(tenant=tenant_a, name="Alpha again", external_ref="alpha", currency="USD")
    assert counts(tenant_a) == before
