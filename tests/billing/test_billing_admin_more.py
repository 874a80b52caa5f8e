"""Metrics, usage events, price terms by contract, exchange rates and quarter targets in the admin:
each tenant sees only its own rows, another tenant's id is a 404, and only the right roles edit."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import BillableMetric, ChargeModel
from customers.models import ContractLine, Role
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
        ("billing_usageevent", "events", "alpha-0-alpha_jobs"),
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


def test_usage_events_filter_by_metric_and_customer(as_role, world):
    client = as_role(Role.VIEWER)
    customer = world["alpha"]["events"][2].customer

    by_metric = client.get(url("billing_usageevent", "changelist") + "?metric_code=alpha_jobs").context["cl"]
    by_customer = client.get(url("billing_usageevent", "changelist"), {"customer__id__exact": customer.pk}).context["cl"]
    by_date = client.get(url("billing_usageevent", "changelist"),
                         {"timestamp__gte": "2026-11-06 00:00:00+00:00", "timestamp__lt": "2026-11-07 00:00:00+00:00"}).context["cl"]

    assert sorted(e.idempotency_key for e in by_metric.result_list) == ["alpha-0-alpha_jobs", "alpha-1-alpha_jobs"]
    assert sorted(e.idempotency_key for e in by_customer.result_list) == ["alpha-1-alpha_jobs", "alpha-1-data_gb"]
    assert sorted(e.idempotency_key for e in by_date.result_list) == ["alpha-1-alpha_jobs", "alpha-1-data_gb"]


def test_usage_events_cannot_be_added_or_changed_even_by_the_owner(as_role, world):
    client = as_role(Role.OWNER)
    event = world["alpha"]["events"][0]

    assert client.get(url("billing_usageevent", "add")).status_code == 403
    client.post(url("billing_usageevent", "change", event.pk), {"quantity": "99"})

    event.refresh_from_db()
    assert event.quantity == 1


def test_customer_filter_of_usage_events_offers_only_own_customers(as_role, world):
    page = as_role(Role.VIEWER).get(url("billing_usageevent", "changelist")).content.decode()

    assert "Alpha Customer 1" in page and "Beta Customer" not in page


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
