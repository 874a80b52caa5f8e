"""Two 500s the generic isolation walk (tests/isolation) found in the admin base, now answered properly."""

from django.urls import reverse

from billing.models import BillingSettings
from customers.models import Role
from customers.tenancy import tenant_scope
from tests.billing.factories import BillingSettingsFactory


def test_adding_a_second_billing_settings_is_a_form_error_not_a_500(client, member_factory, tenant_a):
    with tenant_scope(tenant_a):
        BillingSettingsFactory(tenant=tenant_a)
    client.force_login(member_factory(tenant_a, Role.OWNER))

    response = client.post(reverse("admin:billing_billingsettings_add"), {"minimum_invoice_amount": "0"})

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "Billing settings with this Tenant already exists."
    ]
    assert BillingSettings.objects.for_tenant(tenant_a).count() == 1


def test_the_version_page_of_a_model_without_history_is_not_found(client, member_factory, tenant_a):
    with tenant_scope(tenant_a):
        settings = BillingSettingsFactory(tenant=tenant_a)
    client.force_login(member_factory(tenant_a, Role.OWNER))

    response = client.get(reverse("admin:billing_billingsettings_simple_history", args=[settings.pk, settings.pk]))

    assert response.status_code == 404
