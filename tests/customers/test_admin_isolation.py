"""Tenant isolation in the admin: as each role of tenant A, nothing of tenant B is seen or touched.

Every admin of a tenant-owned model registered by the customers and revenue apps is checked;
``build_world`` must know how to make one object of each, so registering a new one there without
extending it fails loudly. (Billing's admins are checked in tests/billing/test_billing_admin.py.)
"""

from datetime import date
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.urls import reverse

from customers.models import (
    Contract,
    Customer,
    Membership,
    PortalAccess,
    Role,
    TenantAPIKey,
)
from customers.money import Money
from customers.tenancy import TenantOwned, platform_scope, tenant_scope
from revenue.models import (
    AccountPlan,
    AnomalyAlert,
    AnomalyRule,
    CustomerCost,
    ExchangeRate,
    ModelPrice,
    Opportunity,
    PricePlan,
    QuarterTarget,
)
from tests.customers.factories import (
    ContactFactory,
    ContractFactory,
    ContractLineFactory,
    CustomerFactory,
    MembershipFactory,
    PortalAccessFactory,
    StaffUserFactory,
    UserFactory,
)
from tests.revenue.factories import OpportunityFactory
from tests.two_factor import verified_login

ROLES = [Role.OWNER, Role.ACCOUNT_MANAGER, Role.FINANCE, Role.VIEWER]
COVERED_APPS = {"customers", "revenue"}
TENANT_OWNED_ADMINS = sorted(
    (
        model
        for model in admin.site._registry
        if issubclass(model, TenantOwned) and model._meta.app_label in COVERED_APPS
    ),
    key=lambda m: m._meta.label,
)
# Extra query string so a list shows all of A's rows (account managers start on "Mine").
LIST_QUERY = {Customer: "?manager=all"}


def build_world(tenant, prefix):
    """One object of every admin-registered tenant-owned model, each with a name unique to the tenant."""
    with platform_scope():
        customer = CustomerFactory(tenant=tenant, name=f"{prefix} Customer Secret", external_ref=f"{prefix.lower()}-1")
        ContactFactory(customer=customer, tenant=tenant, name=f"{prefix} Contact Secret")
        contract = ContractFactory(
            customer=customer, tenant=tenant, reference=f"{prefix}-C-1", title=f"{prefix} Contract Secret",
            status=Contract.Status.DRAFT,
        )
        ContractLineFactory(contract=contract, tenant=tenant, description=f"{prefix} Line Secret")
        owner = StaffUserFactory(username=f"{prefix.lower()}-owner-secret")
        membership = MembershipFactory(tenant=tenant, user=owner, role=Role.OWNER)
        portal_user = UserFactory(username=f"{prefix.lower()}-portal-secret")
        access = PortalAccessFactory(customer=customer, tenant=tenant, user=portal_user)
        opportunity = OpportunityFactory(
            customer=customer, tenant=tenant, title=f"{prefix} Deal Secret", probability=70, owner=owner
        )
        api_key, _ = TenantAPIKey.objects.create_key(tenant=tenant, name=f"{prefix} Key Secret")
        # Values unique to the tenant, so a leaked row is recognizable in a page.
        alpha = prefix == "Alpha"
        rate = ExchangeRate.objects.create(
            tenant=tenant, currency="EUR", rate=Decimal("1.2345" if alpha else "7.6543"), effective_on=date(2026, 1, 1)
        )
        target = QuarterTarget.objects.create(
            tenant=tenant, year=2031 if alpha else 2032, quarter=1, target=Money("1000.00", "USD")
        )
        model_price = ModelPrice.objects.create(
            tenant=tenant, provider="openai", model=f"{prefix.lower()}-model-secret",
            input_price_per_million=Decimal("1"), output_price_per_million=Decimal("2"), effective_on=date(2026, 1, 1),
        )
        cost = CustomerCost.objects.create(tenant=tenant, customer=customer, month=date(2026, 10, 1), amount=Decimal("10"))
        rule = AnomalyRule.objects.create(tenant=tenant, name=f"{prefix} Rule Secret", metric="spend", threshold=Decimal("5"))
        alert = AnomalyAlert.objects.create(
            tenant=tenant, customer=customer, rule=rule, kind="threshold", measure="spend",
            period_start=date(2026, 10, 1), period_end=date(2026, 10, 1), observed=Decimal("9"), baseline=Decimal("5"),
        )
        account_plan = AccountPlan.objects.create(
            tenant=tenant, organisation_number="556611-7311" if alpha else "556622-7322", receivables_account="1511"
        )
        plan = PricePlan.objects.create(
            tenant=tenant, code=f"{prefix.lower()}-plan", name=f"{prefix} Plan Secret", currency="USD",
            charge_model="flat",
        )
    objects = {
        AccountPlan: account_plan,
        ExchangeRate: rate,
        QuarterTarget: target,
        ModelPrice: model_price,
        CustomerCost: cost,
        AnomalyRule: rule,
        AnomalyAlert: alert,
        PricePlan: plan,
        Customer: customer,
        Contract: contract,
        Membership: membership,
        PortalAccess: access,
        Opportunity: opportunity,
        TenantAPIKey: api_key,
    }
    markers = [
        customer.name, f"{prefix} Contact Secret", contract.title, f"{prefix} Line Secret", owner.username,
        portal_user.username, opportunity.title, api_key.name, str(rate.rate), f"{target.year}-Q",
        model_price.model, rule.name, plan.name, account_plan.organisation_number,
    ]
    return objects, markers


@pytest.fixture
def world(tenant_a, tenant_b):
    a_objects, a_markers = build_world(tenant_a, "Alpha")
    b_objects, b_markers = build_world(tenant_b, "Beta")
    return {"a": a_objects, "a_markers": a_markers, "b": b_objects, "b_markers": b_markers}


def listed_name(obj):
    """What a change list shows of the object."""
    if isinstance(obj, (Membership, PortalAccess)):
        return obj.user.username
    if isinstance(obj, Contract):
        return obj.title
    if isinstance(obj, ExchangeRate):
        return str(obj.rate)
    if isinstance(obj, AccountPlan):
        return obj.organisation_number
    if isinstance(obj, QuarterTarget):
        return f"{obj.year}-Q{obj.quarter}"
    if isinstance(obj, ModelPrice):
        return obj.model
    if isinstance(obj, (CustomerCost, AnomalyAlert)):
        return obj.customer.name
    if isinstance(obj, (AnomalyRule, PricePlan)):
        return obj.name
    return str(obj)


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def assert_no_leak(response, markers):
    body = response.content.decode()
    leaked = [marker for marker in markers if marker in body]
    assert leaked == [], f"{response.request['PATH_INFO']} shows tenant B's {leaked}"


def b_count(model, tenant_b):
    with platform_scope():
        return model.objects.for_tenant(tenant_b).count()


@pytest.fixture
def login_as(client, member_factory, tenant_a):
    def login(role):
        user = member_factory(tenant_a, role, username=f"a-{role}")
        client.force_login(user)
        return user

    return login


def test_every_registered_tenant_owned_admin_is_covered_by_these_tests(world):
    assert set(TENANT_OWNED_ADMINS) == set(world["b"]), "extend build_world() for the newly registered admin"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", TENANT_OWNED_ADMINS, ids=lambda m: m._meta.model_name)
def test_changelist_shows_only_own_tenants_rows(client, login_as, world, model, role):
    login_as(role)
    response = client.get(admin_url(model, "changelist") + LIST_QUERY.get(model, ""))
    assert response.status_code == 200
    assert listed_name(world["a"][model]) in response.content.decode()
    assert_no_leak(response, world["b_markers"])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", TENANT_OWNED_ADMINS, ids=lambda m: m._meta.model_name)
def test_changelist_filtered_by_other_tenants_id_is_empty(client, login_as, world, model, role):
    login_as(role)
    query = urlencode({"id": world["b"][model].pk})
    response = client.get(admin_url(model, "changelist") + "?" + query)
    assert response.status_code == 200
    assert_no_leak(response, world["b_markers"])


@pytest.mark.parametrize("view", ["change", "delete", "history"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", TENANT_OWNED_ADMINS, ids=lambda m: m._meta.model_name)
def test_other_tenants_object_urls_are_not_found(client, login_as, world, model, role, view):
    login_as(role)
    url = admin_url(model, view, quote(world["b"][model].pk))
    response = client.get(url)
    assert response.status_code == 404
    assert_no_leak(response, world["b_markers"])
    response = client.post(url, {"post": "yes"})
    assert response.status_code in (403, 404)
    assert_no_leak(response, world["b_markers"])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", [Customer, Contract, Opportunity], ids=lambda m: m._meta.model_name)
def test_other_tenants_history_versions_are_not_found(client, login_as, world, model, role):
    login_as(role)
    obj = world["b"][model]
    with platform_scope():
        version = obj.history.latest("history_date")
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_simple_history", args=(obj.pk, version.pk))
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", TENANT_OWNED_ADMINS, ids=lambda m: m._meta.model_name)
def test_delete_action_with_other_tenants_ids_deletes_nothing(client, login_as, world, model, role, tenant_b):
    login_as(role)
    before = b_count(model, tenant_b)
    response = client.post(
        admin_url(model, "changelist"),
        {"action": "delete_selected", "_selected_action": [world["b"][model].pk], "post": "yes", "index": 0},
    )
    assert response.status_code in (200, 302)
    assert_no_leak(response, world["b_markers"])
    assert b_count(model, tenant_b) == before


@pytest.mark.parametrize("role", [Role.OWNER, Role.ACCOUNT_MANAGER, Role.FINANCE])
def test_activate_action_with_other_tenants_draft_changes_nothing(client, login_as, world, role):
    login_as(role)
    contract = world["b"][Contract]
    client.post(
        admin_url(Contract, "changelist"), {"action": "activate", "_selected_action": [contract.pk], "index": 0}
    )
    with platform_scope():
        contract.refresh_from_db()
    assert contract.status == Contract.Status.DRAFT


@pytest.mark.parametrize("role", [Role.OWNER, Role.ACCOUNT_MANAGER])
def test_mark_won_action_with_other_tenants_opportunity_changes_nothing(client, login_as, world, role, tenant_b):
    login_as(role)
    opportunity = world["b"][Opportunity]
    contracts_before = b_count(Contract, tenant_b)
    client.post(
        admin_url(Opportunity, "changelist"), {"action": "mark_won", "_selected_action": [opportunity.pk], "index": 0}
    )
    with platform_scope():
        opportunity.refresh_from_db()
    assert opportunity.stage == Opportunity.Stage.PROPOSAL
    assert b_count(Contract, tenant_b) == contracts_before


def test_revoke_action_with_other_tenants_key_changes_nothing(client, login_as, world):
    login_as(Role.OWNER)
    api_key = world["b"][TenantAPIKey]
    client.post(
        admin_url(TenantAPIKey, "changelist"), {"action": "revoke", "_selected_action": [api_key.pk], "index": 0}
    )
    with platform_scope():
        api_key.refresh_from_db()
    assert api_key.revoked is False


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "source", [("revenue", "opportunity"), ("customers", "contract"), ("customers", "portalaccess")]
)
def test_customer_autocomplete_returns_only_own_tenants_customers(client, login_as, world, role, source):
    login_as(role)
    app_label, model_name = source
    query = urlencode({"app_label": app_label, "model_name": model_name, "field_name": "customer", "term": "Secret"})
    response = client.get(f"/admin/autocomplete/?{query}")
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["Alpha Customer Secret"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("field", [("customers", "customer", "account_manager"), ("revenue", "opportunity", "owner")])
def test_user_autocomplete_is_refused(client, login_as, world, role, field):
    login_as(role)
    app_label, model_name, field_name = field
    query = urlencode({"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": "secret"})
    response = client.get(f"/admin/autocomplete/?{query}")
    assert response.status_code == 403


@pytest.mark.parametrize(
    "role, model",
    [
        (Role.OWNER, Customer),
        (Role.OWNER, Contract),
        (Role.OWNER, Opportunity),
        (Role.OWNER, PortalAccess),
        (Role.OWNER, Membership),
        (Role.OWNER, TenantAPIKey),
        (Role.ACCOUNT_MANAGER, Customer),
        (Role.ACCOUNT_MANAGER, Opportunity),
        (Role.FINANCE, Contract),
    ],
)
def test_add_form_choices_hold_only_own_tenants_customers_and_users(client, login_as, world, role, model):
    login_as(role)
    response = client.get(admin_url(model, "add"))
    assert response.status_code == 200
    assert_no_leak(response, world["b_markers"])


def test_add_form_user_choices_are_own_tenants_members(client, login_as, world, tenant_a):
    user = login_as(Role.ACCOUNT_MANAGER)
    response = client.get(admin_url(Opportunity, "add"))
    with tenant_scope(tenant_a):  # as the request read them: the choices join memberships, fenced by RLS
        field = response.context["adminform"].form.fields["owner"]
        choices = {label for _, label in field.choices if label != "---------"}
    assert choices == {"alpha-owner-secret", user.username}


def test_superuser_sees_every_tenant_with_a_tenant_column(client, world):
    superuser = get_user_model().objects.create_superuser("platform", "platform@example.com", "pass-word-123")
    verified_login(client, superuser)
    response = client.get(admin_url(Customer, "changelist"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Alpha Customer Secret" in body and "Beta Customer Secret" in body
    assert "column-tenant" in body
    assert "tenant__id__exact" in body  # the tenant filter


def test_superuser_picks_the_tenant_when_adding(client, world, tenant_b):
    superuser = get_user_model().objects.create_superuser("platform", "platform@example.com", "pass-word-123")
    verified_login(client, superuser)
    response = client.post(
        admin_url(Customer, "add"),
        {
            "tenant": tenant_b.pk, "name": "Gamma AB", "external_ref": "gamma", "currency": "SEK", "language": "sv",
            "is_business": "on", "billing_emails": "", "acquisition_cost_0": "", "acquisition_cost_1": "SEK",
            "einvoice_format": "pdf", "contacts-TOTAL_FORMS": 0, "contacts-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302
    with platform_scope():
        assert Customer.objects.get(external_ref="gamma").tenant == tenant_b


def test_staff_user_without_membership_sees_no_tenant_admin(client, world):
    client.force_login(StaffUserFactory(username="drifter"))
    assert client.get(admin_url(Customer, "changelist")).status_code == 403
    assert client.get(admin_url(Customer, "change", world["a"][Customer].pk)).status_code in (403, 404)


def test_switcher_lists_only_the_users_own_tenants(client, member_factory, tenant_a, tenant_b, world):
    user = member_factory(tenant_a, Role.VIEWER, username="two-hats")
    with platform_scope():
        Membership.objects.create(tenant=tenant_b, user=user, role=Role.VIEWER)
    client.force_login(user)
    body = client.get(reverse("admin:index")).content.decode()
    assert 'action="/tenant/switch/"' in body
    assert "Acme Optimizer" in body and "Bergström Konsult" in body

    response = client.post("/tenant/switch/", {"tenant": tenant_b.pk, "next": "/admin/"})
    assert response.status_code == 302
    body = client.get(admin_url(Customer, "changelist")).content.decode()
    assert "Beta Customer Secret" in body and "Alpha Customer Secret" not in body


def test_single_tenant_member_gets_no_switcher(client, login_as, world):
    login_as(Role.OWNER)
    body = client.get(reverse("admin:index")).content.decode()
    assert "/tenant/switch/" not in body
    assert "Acme Optimizer" in body
