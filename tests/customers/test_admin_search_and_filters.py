"""Search covers the whole tenant; long filters are drop-downs; long choice lists are searched."""

import pytest

from customers.models import Role
from customers.money import Money
from customers.tenancy import platform_scope, tenant_scope
from revenue.models import Opportunity
from revenue.services import opportunity_win
from tests.customers.factories import CustomerFactory
from tests.revenue.factories import OpportunityFactory

CUSTOMERS = "/admin/customers/customer/"


def names(response):
    return sorted(c.name for c in response.context["cl"].result_list)


@pytest.fixture
def world(tenant_a, tenant_b, member_factory):
    manager = member_factory(tenant_a, Role.ACCOUNT_MANAGER, username="anna")
    colleague = member_factory(tenant_a, Role.ACCOUNT_MANAGER, username="bo")
    with platform_scope():
        CustomerFactory(tenant=tenant_a, name="Mine Co", account_manager=manager, country="US")
        CustomerFactory(tenant=tenant_a, name="Northwind Analytics", account_manager=colleague, country="SE")
        CustomerFactory(tenant=tenant_b, name="Northwind Sverige", country="NO")
    return {"manager": manager, "colleague": colleague}


def test_a_manager_starts_on_their_own_customers(client, world):
    client.force_login(world["manager"])
    assert names(client.get(CUSTOMERS)) == ["Mine Co"]


def test_a_managers_search_finds_a_customer_someone_else_manages(client, world):
    client.force_login(world["manager"])
    response = client.get(CUSTOMERS + "?q=Northwind")
    assert names(response) == ["Northwind Analytics"]  # never the other tenant's
    manager_filter = next(f for f in response.context["cl"].filter_specs if f.parameter_name == "manager")
    assert manager_filter.current() == "all"


def test_a_filter_the_manager_picked_still_narrows_the_search(client, world):
    client.force_login(world["manager"])
    assert names(client.get(CUSTOMERS + "?q=Northwind&manager=mine")) == []
    assert names(client.get(CUSTOMERS + "?q=o&manager=mine")) == ["Mine Co"]


def test_the_customer_a_won_deal_created_is_found_by_the_manager(client, world, tenant_a):
    with platform_scope():
        deal = OpportunityFactory(tenant=tenant_a, customer=None, prospect_name="Freshly Won Ltd",
                                  owner=world["manager"], amount=Money("12000.00", "USD"))
    with tenant_scope(tenant_a):
        opportunity_win(opportunity=deal, start_date=deal.expected_close_on)
    client.force_login(world["manager"])
    assert names(client.get(CUSTOMERS)) == ["Mine Co"]
    assert names(client.get(CUSTOMERS + "?q=Freshly")) == ["Freshly Won Ltd"]


def test_a_search_of_the_pipeline_finds_won_deals_too(client, world, tenant_a):
    with platform_scope():
        alpha = CustomerFactory(tenant=tenant_a, name="Alpha Inc")
        OpportunityFactory(tenant=tenant_a, customer=alpha, title="Rollout won", stage=Opportunity.Stage.WON,
                           probability=100)
        OpportunityFactory(tenant=tenant_a, customer=alpha, title="Rollout phase 2")
    client.force_login(world["manager"])
    listed = client.get("/admin/revenue/opportunity/")
    assert sorted(o.title for o in listed.context["cl"].result_list) == ["Rollout phase 2"]
    found = client.get("/admin/revenue/opportunity/?q=Rollout")
    assert sorted(o.title for o in found.context["cl"].result_list) == ["Rollout phase 2", "Rollout won"]
    picked = client.get("/admin/revenue/opportunity/?q=Rollout&state=open")
    assert sorted(o.title for o in picked.context["cl"].result_list) == ["Rollout phase 2"]


def test_the_country_filter_is_a_drop_down_of_the_countries_in_use(client, world):
    client.force_login(world["manager"])
    response = client.get(CUSTOMERS + "?manager=all")
    country = next(f for f in response.context["cl"].filter_specs if getattr(f, "field_path", "") == "country")
    displays = [choice["display"] for choice in country.choices(response.context["cl"])]
    assert displays == ["All", "Sweden", "United States of America"]
    body = response.content.decode()
    assert '<select class="dropdown-filter"' in body
    assert "Norway" not in body  # the other tenant's country, and no list of 249 countries


def test_relation_filters_are_drop_downs_of_the_rows_in_use(client, world, tenant_a, tenant_b, member_factory):
    with platform_scope():
        for owner in (world["manager"], world["colleague"]):
            OpportunityFactory(tenant=tenant_a, customer=CustomerFactory(tenant=tenant_a), owner=owner)
        OpportunityFactory(tenant=tenant_b, customer=CustomerFactory(tenant=tenant_b),
                           owner=member_factory(tenant_b, username="sven"))
    client.force_login(world["manager"])
    response = client.get("/admin/revenue/opportunity/")
    owner = next(f for f in response.context["cl"].filter_specs if getattr(f, "field_path", "") == "owner")
    assert [choice["display"] for choice in owner.choices(response.context["cl"])] == ["All", "anna", "bo", "-"]
    body = response.content.decode()
    assert '<select class="dropdown-filter" aria-label="By owner">' in body
    assert "sven" not in body


def test_customers_are_searched_as_you_type_and_only_the_tenants(client, world, tenant_a, member_factory):
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    form = client.get("/admin/revenue/customercost/add/").context["adminform"].form
    assert type(form.fields["customer"].widget.widget).__name__ == "AutocompleteSelect"
    response = client.get("/admin/autocomplete/", {
        "app_label": "revenue", "model_name": "customercost", "field_name": "customer", "term": "Northwind"})
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["Northwind Analytics"]


def test_people_stay_a_short_select_of_the_tenants_members(client, world, tenant_a):
    client.force_login(world["manager"])
    field = client.get(CUSTOMERS + "add/").context["adminform"].form.fields["account_manager"]
    assert type(field.widget.widget).__name__ == "Select"
    with tenant_scope(tenant_a):  # as the request read them: the choices join memberships, fenced by RLS
        assert sorted(u.username for u in field.queryset) == ["anna", "bo"]
