"""The billing admin: invoices read-only, actions through the services, credit decisions by the rules."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import BillingSettings, CreditAuditEntry, CreditNote, CreditRequest, Invoice, PriceTerms
from billing.services import (
    CreditNoteLineSpec,
    billing_settings_for,
    credit_note_issue,
    credit_request_create,
    invoice_compute_drafts,
    invoice_finalize,
)
from customers.models import Role
from customers.money import Money
from tests.billing.factories import PriceTermsFactory
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)


def draft_for(tenant, name):
    customer = CustomerFactory(tenant=tenant, name=name)
    ContractLineFactory(
        contract=ContractFactory(customer=customer, tenant=tenant, start_date=NOV_START),
        tenant=tenant, unit_price=Money("100.00", customer.currency),
    )
    invoice_compute_drafts(tenant=tenant, period_start=NOV_START, period_end=NOV_END)
    return Invoice.objects.for_tenant(tenant).get(customer=customer)


@pytest.fixture
def invoices(tenant_a, tenant_b):
    return draft_for(tenant_a, "Alpha Secret Inc"), draft_for(tenant_b, "Beta Secret AB")


def url(name, *args):
    return reverse(f"admin:billing_{name}", args=args)


def act(client, model, action, ids):
    return client.post(url(f"{model}_changelist"), {"action": action, "_selected_action": ids, "index": 0})


def test_invoice_list_shows_only_own_tenant_and_filters_by_status(client, member_factory, tenant_a, invoices):
    client.force_login(member_factory(tenant_a, Role.VIEWER))

    everything = client.get(url("invoice_changelist")).content.decode()
    finalized = client.get(url("invoice_changelist") + "?status__exact=finalized").content.decode()

    assert "Alpha Secret Inc" in everything and "Beta Secret AB" not in everything
    assert "Alpha Secret Inc" not in finalized


def test_finalize_action_numbers_the_draft_for_finance(client, member_factory, tenant_a, invoices):
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    response = act(client, "invoice", "finalize", [invoices[0].pk])

    assert response.status_code == 302
    invoices[0].refresh_from_db()
    assert (invoices[0].status, invoices[0].number) == (Invoice.Status.FINALIZED, "ACME-2026-00001")


def test_finalize_action_is_not_offered_to_account_managers(client, member_factory, tenant_a, invoices):
    client.force_login(member_factory(tenant_a, Role.ACCOUNT_MANAGER))

    act(client, "invoice", "finalize", [invoices[0].pk])

    invoices[0].refresh_from_db()
    assert invoices[0].status == Invoice.Status.DRAFT


def test_finalize_action_ignores_another_tenants_invoice(client, member_factory, tenant_a, invoices):
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    act(client, "invoice", "finalize", [invoices[1].pk])

    invoices[1].refresh_from_db()
    assert invoices[1].status == Invoice.Status.DRAFT


def test_a_finalized_invoice_is_read_only_in_the_admin(client, member_factory, tenant_a, invoices):
    invoice = invoice_finalize(invoice=invoices[0], issue_date=date(2026, 12, 1))
    client.force_login(member_factory(tenant_a, Role.OWNER))

    page = client.get(url("invoice_change", invoice.pk))
    post = client.post(url("invoice_change", invoice.pk), {"vat_note": "edited"})
    delete = client.post(url("invoice_delete", invoice.pk), {"post": "yes"})

    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert (post.status_code, delete.status_code) == (403, 403)
    invoice.refresh_from_db()
    assert (invoice.vat_note, invoice.total) == ("", Decimal("100.00"))


def test_credit_request_is_approved_by_an_allowed_member_only(client, member_factory, tenant_a, invoices):
    requester = member_factory(tenant_a, Role.FINANCE, "req")
    request = credit_request_create(
        customer=invoices[0].customer, amount=Decimal("150.00"), reason="Late", requested_by=requester
    )
    client.force_login(requester)
    act(client, "creditrequest", "approve", [request.pk])
    request.refresh_from_db()
    assert request.status == CreditRequest.Status.REQUESTED

    client.force_login(member_factory(tenant_a, Role.VIEWER, "viewer"))
    act(client, "creditrequest", "approve", [request.pk])
    request.refresh_from_db()
    assert request.status == CreditRequest.Status.REQUESTED

    client.force_login(member_factory(tenant_a, Role.OWNER, "boss"))
    act(client, "creditrequest", "approve", [request.pk])
    request.refresh_from_db()
    assert (request.status, request.decided_by.username) == (CreditRequest.Status.APPROVED, "boss")


def test_credit_request_added_in_the_admin_is_requested_by_the_user_and_audited(
    client, member_factory, tenant_a, invoices
):
    client.force_login(member_factory(tenant_a, Role.FINANCE, "fin"))

    response = client.post(
        url("creditrequest_add"),
        {"customer": invoices[0].customer_id, "amount": "25.00", "reason": "Goodwill",
         "audit_entries-TOTAL_FORMS": "0", "audit_entries-INITIAL_FORMS": "0"},
    )

    assert response.status_code == 302
    request = CreditRequest.objects.for_tenant(tenant_a).get()
    assert (request.requested_by.username, request.amount, request.currency, request.status) == (
        "fin", Decimal("25.00"), "USD", CreditRequest.Status.REQUESTED,
    )
    audit = CreditAuditEntry.objects.for_tenant(tenant_a).filter(credit_request=request)
    assert list(audit.values_list("action", "actor__username")) == [("requested", "fin")]


# --- isolation: every billing admin, as every role of tenant A, never shows tenant B ----------

BILLING_ADMINS = [Invoice, CreditNote, CreditRequest, PriceTerms, BillingSettings]


def billing_world(tenant, prefix, member_factory):
    invoice = invoice_finalize(invoice=draft_for(tenant, f"{prefix} Secret Customer"), issue_date=date(2026, 12, 1))
    customer = invoice.customer
    requester = member_factory(tenant, Role.FINANCE, f"{prefix.lower()}-requester")
    return {
        Invoice: invoice,
        CreditNote: credit_note_issue(invoice=invoice, lines=[CreditNoteLineSpec("Refund", Decimal("1.00"))],
                                      reason=f"{prefix} Refund"),
        CreditRequest: credit_request_create(customer=customer, amount=Decimal("5.00"), reason="x", requested_by=requester),
        PriceTerms: PriceTermsFactory(
            tenant=tenant, contract_line__description=f"{prefix} Line Secret",
            contract_line__contract__customer=customer, contract_line__contract__tenant=tenant,
        ),
        BillingSettings: billing_settings_for(tenant=tenant),
    }


@pytest.fixture
def two_worlds(tenant_a, tenant_b, member_factory):
    return billing_world(tenant_a, "Alpha", member_factory), billing_world(tenant_b, "Beta", member_factory)


@pytest.mark.parametrize("role", [Role.OWNER, Role.FINANCE, Role.VIEWER])
@pytest.mark.parametrize("model", BILLING_ADMINS, ids=lambda m: m._meta.model_name)
def test_billing_changelists_show_only_own_tenant(client, member_factory, tenant_a, two_worlds, model, role):
    client.force_login(member_factory(tenant_a, role, f"a-{role}"))

    body = client.get(url(f"{model._meta.model_name}_changelist")).content.decode()

    assert "Beta Secret" not in body and "Beta Line Secret" not in body
    assert f"/{two_worlds[0][model].pk}/change/" in body


@pytest.mark.parametrize("model", BILLING_ADMINS, ids=lambda m: m._meta.model_name)
def test_another_tenants_billing_objects_are_not_found(client, member_factory, tenant_a, two_worlds, model):
    client.force_login(member_factory(tenant_a, Role.OWNER, "a-owner"))

    response = client.get(url(f"{model._meta.model_name}_change", two_worlds[1][model].pk))

    assert response.status_code == 404


def test_owners_edit_the_usage_window_in_the_billing_settings_admin(client, member_factory, tenant_a):
    settings = billing_settings_for(tenant=tenant_a)
    client.force_login(member_factory(tenant_a, Role.OWNER))
    form = {"minimum_invoice_amount": "0", "usage_max_age_days": "90", "usage_max_future_hours": "2"}

    saved = client.post(url("billingsettings_change", settings.pk), form)
    refused = client.post(url("billingsettings_change", settings.pk), {**form, "usage_max_future_hours": "745"})

    assert saved.status_code == 302
    assert refused.status_code == 200
    assert "Ensure this value is less than or equal to 744." in refused.content.decode()
    settings.refresh_from_db()
    assert (settings.usage_max_age_days, settings.usage_max_future_hours) == (90, 2)
