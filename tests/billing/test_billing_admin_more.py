"""Metrics, usage events, price terms by contract, exchange rates and quarter targets in the admin:
each tenant sees only its own rows, another tenant's id is a 404, and only the right roles edit."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import BillableMetric, ChargeModel
from customers.models import ContractLine, Customer, Role
from customers.money import Money
from customers.tenancy import platform_scope
from revenue.models import ExchangeRate, QuarterTarget
from tests.billing.factories import BillableMetricFactory, PriceTermsFactory, UsageEventFactory
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory


@pytest.fixture
def world(tenant_a, tenant_b):
    """For each tenant: a metric, two customers' events, a contract with priced usage lines, a rate, a target."""
    rows = {}
    with platform_scope():
        for tenant, tag in ((tenant_a, "alpha"), (tenant_b, "beta")):
            metric = BillableMetricFactory(tenant=tenant, code=f"{tag}_jobs", name=f"{tag.title()} jobs")
            customers = [CustomerFactory(tenant=tenant, name=f"{tag.title()} Customer {n}") for n in (1, 2)]
            events = [
                UsageEventFactory(tenant=tenant, customer=customer, metric_code=code, idempotency_key=f"{tag}-{n}-{code}",
                                  timestamp=datetime(2026, 11, 5 + n, tzinfo=timezone.utc))
                for n, customer in enumerate(customers)
                for code in (metric.code, "data_gb")
            ]
            contracts = [
                ContractFactory(tenant=tenant, customer=customers[0], reference=f"{tag.upper()}-{n}", title=f"{tag} deal {n}")
                for n in (1, 2)
            ]
            terms = [
                PriceTermsFactory(
                    tenant=tenant, metric=metric.code, charge_model=ChargeModel.PER_UNIT,
                    contract_line=ContractLineFactory(contract=contract, tenant=tenant, kind=ContractLine.Kind.USAGE,
                                                      description=f"{tag} usage {contract.reference}",
                                                      unit_price=Money("0.10", contract.currency)),
                )
                for contract in contracts
            ]
            rate = ExchangeRate.objects.create(tenant=tenant, currency="EUR", rate=Decimal("1.0875000000"),
                                               effective_on=date(2026, 11, 1))
            target = QuarterTarget.objects.create(tenant=tenant, year=2026, quarter=4,
                                                  target=Money("250000", tenant.reporting_currency))
            rows[tag] = {"metric": metric, "events": events, "contracts": contracts, "terms": terms,
                         "rate": rate, "target": target}
    return rows


def url(app_model, view, *args):
    return reverse(f"admin:{app_model}_{view}", args=args)


@pytest.fixture
def as_role(client, member_factory, tenant_a):
    def login(role):
        client.force_login(member_factory(tenant_a, role))
        return client

    return login


@pytest.mark.parametrize(
    "app_model, key, shown",
    [
        ("billing_billablemetric", "metric", "Alpha jobs"),
        ("billing_priceterms", "terms", "alpha usage ALPHA-1"),
        ("revenue_exchangerate", "rate", "1.0875"),
        ("revenue_quartertarget", "target", "2026-Q4"),
    ],
)
def test_lists_show_only_the_own_tenant_and_another_tenants_id_is_404(as_role, world, app_model, key, shown):
    client = as_role(Role.VIEWER)
    theirs = world["beta"][key][0] if isinstance(world["beta"][key], list) else world["beta"][key]
    mine = world["alpha"][key][0] if isinstance(world["alpha"][key], list) else world["alpha"][key]

    listing = client.get(url(app_model, "changelist"))
    page = listing.content.decode()

    assert listing.status_code == 200
    assert shown in page and "beta" not in page.lower()
    assert client.get(url(app_model, "change", theirs.pk)).status_code == 404
    assert client.get(url(app_model, "change", mine.pk)).status_code == 200


@pytest.mark.usage_events
def test_the_usage_event_list_shows_only_the_own_tenants_events_newest_first(as_role, world):
    listing = as_role(Role.VIEWER).get(url("billing_usageevent", "changelist"))

    assert listing.status_code == 200
    assert [e["row"].idempotency_key for e in listing.context["events"]] == [  # same time: the later arrival first
        "alpha-1-data_gb", "alpha-1-alpha_jobs", "alpha-0-data_gb", "alpha-0-alpha_jobs"
    ]
    assert [e["customer"] for e in listing.context["events"]] == ["Alpha Customer 2"] * 2 + ["Alpha Customer 1"] * 2
    assert "beta" not in listing.content.decode().lower()


@pytest.mark.usage_events
def test_usage_events_filter_by_metric_customer_period_and_key(as_role, world):
    client = as_role(Role.VIEWER)
    customer = world["alpha"]["events"][2].customer

    def keys(**query):
        response = client.get(url("billing_usageevent", "changelist"), query)
        assert response.status_code == 200
        return sorted(e["row"].idempotency_key for e in response.context["events"])

    assert keys(metric_code="alpha_jobs") == ["alpha-0-alpha_jobs", "alpha-1-alpha_jobs"]
    assert keys(customer=customer.pk) == ["alpha-1-alpha_jobs", "alpha-1-data_gb"]
    assert keys(start="2026-11-06 00:00:00", end="2026-11-07 00:00:00") == ["alpha-1-alpha_jobs", "alpha-1-data_gb"]
    assert keys(q="alpha-0-data_gb") == ["alpha-0-data_gb"]
    theirs = client.get(url("billing_usageevent", "changelist"), {"customer": world["beta"]["events"][0].customer_id})
    assert (theirs.status_code, theirs.context["events"]) == (400, [])  # another tenant's customer is no choice


@pytest.mark.usage_events
def test_a_bad_filter_is_400_with_its_reason_and_lists_nothing(as_role, world):
    client = as_role(Role.VIEWER)

    bad_date = client.get(url("billing_usageevent", "changelist"), {"start": "yesterday"})
    backwards = client.get(url("billing_usageevent", "changelist"), {"start": "2026-11-07", "end": "2026-11-06"})
    bad_page = client.get(url("billing_usageevent", "changelist"), {"p": "0"})

    assert (bad_date.status_code, backwards.status_code, bad_page.status_code) == (400, 400, 400)
    assert bad_date.context["events"] == [] and "Enter a valid date/time." in bad_date.content.decode()
    assert "The end must be after the start." in backwards.content.decode()


@pytest.mark.usage_events
def test_the_usage_event_list_pages_newest_first(as_role, world, tenant_a, monkeypatch):
    monkeypatch.setattr("billing.admin_usage.PER_PAGE", 3)
    client = as_role(Role.VIEWER)

    first = client.get(url("billing_usageevent", "changelist"), {"customer": "", "metric_code": ""})
    second = client.get(url("billing_usageevent", "changelist"), {"p": first.context["older"]})

    assert (len(first.context["events"]), first.context["older"], first.context["newer"]) == (3, 2, None)
    assert (len(second.context["events"]), second.context["older"], second.context["newer"]) == (1, None, 1)


def test_usage_events_have_no_page_to_add_or_change_one(as_role, world):
    client = as_role(Role.OWNER)
    event = world["alpha"]["events"][0]

    assert client.get(url("billing_usageevent", "add")).status_code == 403
    assert client.post(url("billing_usageevent", "change", event.pk), {"quantity": "99"}).status_code == 403
    assert client.get(url("billing_usageevent", "history", event.pk)).status_code == 403
    assert client.get(url("billing_usageevent", "changelist")).status_code == 200


def test_customer_filter_of_usage_events_offers_only_own_customers(as_role, world):
    page = as_role(Role.VIEWER).get(url("billing_usageevent", "changelist")).content.decode()

    assert "Alpha Customer 1" in page and "Beta Customer" not in page


def test_a_platform_admin_chooses_the_tenant_whose_events_are_listed(admin_client, world, tenant_b):
    unchosen = admin_client.get(url("billing_usageevent", "changelist"))
    chosen = admin_client.get(url("billing_usageevent", "changelist"), {"tenant": tenant_b.pk})

    assert unchosen.status_code == 200 and unchosen.context["events"] == []
    assert "Choose a tenant to list its usage events." in unchosen.content.decode()
    assert sorted(e["row"].idempotency_key for e in chosen.context["events"]) == [
        "beta-0-beta_jobs", "beta-0-data_gb", "beta-1-beta_jobs", "beta-1-data_gb"
    ]


def test_price_terms_filter_by_contract(as_role, world):
    client = as_role(Role.VIEWER)
    first, second = world["alpha"]["contracts"]
    theirs = world["beta"]["contracts"][0]

    listing = client.get(url("billing_priceterms", "changelist"))
    filtered = client.get(url("billing_priceterms", "changelist"), {"contract": first.pk}).context["cl"]
    foreign = client.get(url("billing_priceterms", "changelist"), {"contract": theirs.pk}).context["cl"]
    garbage = client.get(url("billing_priceterms", "changelist"), {"contract": "1; drop"})

    page = listing.content.decode()
    assert "ALPHA-1 · alpha deal 1" in page and "ALPHA-2 · alpha deal 2" in page and "BETA-1" not in page
    assert [t.pk for t in filtered.result_list] == [world["alpha"]["terms"][0].pk]
    assert list(foreign.result_list) == []
    assert garbage.status_code == 200 and list(garbage.context["cl"].result_list) == []


@pytest.mark.parametrize("role, allowed", [(Role.FINANCE, True), (Role.OWNER, True), (Role.ACCOUNT_MANAGER, False),
                                           (Role.VIEWER, False)])
def test_metrics_are_kept_by_owners_and_finance(as_role, world, tenant_a, role, allowed):
    client = as_role(role)

    response = client.post(url("billing_billablemetric", "add"), {
        "code": "compute_ms", "name": "Compute time", "event_code": "processed_jobs", "aggregation": "sum",
        "field": "compute_ms", "filters": "{}", "unit": "ms",
    })

    created = BillableMetric.objects.for_tenant(tenant_a).filter(code="compute_ms").exists()
    assert (response.status_code, created) == ((302, True) if allowed else (403, False))


@pytest.mark.parametrize("role, allowed", [(Role.FINANCE, True), (Role.OWNER, True), (Role.ACCOUNT_MANAGER, False)])
def test_exchange_rates_are_kept_by_owners_and_finance(as_role, world, tenant_a, role, allowed):
    client = as_role(role)

    response = client.post(url("revenue_exchangerate", "add"),
                           {"currency": "SEK", "rate": "0.0950000000", "effective_on": "2026-11-01"})

    created = ExchangeRate.objects.for_tenant(tenant_a).filter(currency="SEK").exists()
    assert (response.status_code, created) == ((302, True) if allowed else (403, False))


def test_account_manager_sets_a_quarter_target_and_a_duplicate_is_a_form_error(as_role, world, tenant_a):
    client = as_role(Role.ACCOUNT_MANAGER)
    form = {"year": "2027", "quarter": "1", "target_0": "300000", "target_1": "USD"}

    created = client.post(url("revenue_quartertarget", "add"), form)
    duplicate = client.post(url("revenue_quartertarget", "add"), form)

    assert created.status_code == 302
    assert duplicate.status_code == 200 and duplicate.context["adminform"].form.errors
    assert QuarterTarget.objects.for_tenant(tenant_a).filter(year=2027).count() == 1


@pytest.mark.usage_events
def test_a_customer_with_usage_events_is_not_deleted_from_the_admin_in_either_store(as_role, world, tenant_a):
    client = as_role(Role.OWNER)
    customer = world["alpha"]["events"][2].customer  # events, and nothing else that holds on to it

    one = client.post(reverse("admin:customers_customer_delete", args=[customer.pk]), {"post": "yes"})
    selected = client.post(url("customers_customer", "changelist"),
                           {"action": "delete_selected", "_selected_action": [customer.pk], "post": "yes"})

    assert one.status_code in (200, 302) and selected.status_code in (200, 302)  # refused, never a 500
    with platform_scope():
        assert Customer.objects.filter(pk=customer.pk).exists()
