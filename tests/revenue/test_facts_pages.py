"""The staff revenue pages and the metrics API read the MRR facts: the reference's figures, with a query
count that does not grow with customers, and nothing of tenant B."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import ContractLine, Role
from customers.money import Money
from customers.services import LineSpec, contract_create
from revenue.facts import revenue_facts_rebuild, revenue_facts_refresh
from tests.api_clients import key_client
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.facts_reference import reference

WINDOW = "from=2025-01&to=2025-03"
API = [
    f"/api/v1/metrics/mrr/?{WINDOW}",
    f"/api/v1/metrics/movements/?{WINDOW}",
    f"/api/v1/metrics/retention/?{WINDOW}",
    "/api/v1/metrics/concentration/?month=2025-03",
]
PAGES = ["/staff/?" + WINDOW, "/staff/retention/?" + WINDOW, "/staff/concentration/?month=2025-03"]


def subscribe(customer, *, price, start=date(2025, 1, 1), end=None, interval=1):
    return contract_create(
        customer=customer, title="Plan", start_date=start, end_date=end, billing_interval=interval,
        lines=[LineSpec("Fee", ContractLine.Kind.RECURRING, Money(price, customer.currency))],
    )


@pytest.fixture
def world(tenant_a, tenant_b):
    """As tests/revenue/test_dashboards.py, through the services and with the facts built: Jan MRR 1 300,
    Feb 1 500, Mar 1 200; tenant B's large customer must never show."""
    for tenant in (tenant_a, tenant_b):
        revenue_facts_rebuild(tenant=tenant)
    subscribe(CustomerFactory(tenant=tenant_a, name="Alpha Corp"), price="1000.00")
    subscribe(CustomerFactory(tenant=tenant_a, name="Beta LLC"), price="300.00", end=date(2025, 2, 28))
    subscribe(CustomerFactory(tenant=tenant_a, name="Gamma AB"), price="2400.00", start=date(2025, 2, 1), interval=12)
    subscribe(CustomerFactory(tenant=tenant_b, name="Zeta Hidden AB", currency="SEK"), price="50000.00")
    return tenant_a


def grow(tenant, count):
    """``count`` more customers at 50 a month: their contracts made directly and their facts refreshed
    at once (what each contract service does per customer, without its cost per customer)."""
    customers = [CustomerFactory(tenant=tenant, name=f"Grown {i}") for i in range(count)]
    for customer in customers:
        contract = ContractFactory(customer=customer, reference=f"G-{customer.pk}")
        ContractLineFactory(contract=contract, unit_price=Money("50.00", customer.currency))
    revenue_facts_refresh(tenant=tenant, customer_ids=[c.pk for c in customers])


def read_facts(captured) -> bool:
    """Whether the request read the facts and never the reference's per-line MRR pipeline."""
    statements = [q["sql"] for q in captured.captured_queries]
    return any(
        "FROM revenue_revenuemonthfact" in s or ("revenue_customermrrfact" in s and "f.mrr" in s)
        or "FROM revenue_customertrailingrevenuefact" in s
        for s in statements
    ) and not any("line_events" in s for s in statements)


@pytest.mark.parametrize("path", API)
def test_metrics_api_reads_the_facts_with_a_constant_query_count(world, path, django_assert_num_queries):
    client = key_client(world)
    grow(world, 2)  # 5 customers
    client.get(path)
    with CaptureQueriesContext(connection) as few:
        response = client.get(path)
    assert response.status_code == 200
    assert read_facts(few)

    grow(world, 45)  # 50 customers
    with django_assert_num_queries(len(few)):
        response = client.get(path)

    assert response.json() == reference(lambda tenant: client.get(path).json(), tenant=world)


def test_metrics_api_mrr_from_the_facts_is_hand_computed(world):
    body = key_client(world).get(f"/api/v1/metrics/mrr/?{WINDOW}").json()

    assert [(m["month"], m["mrr"], m["customers"]) for m in body["months"]] == [
        ("2025-01", "1300.00", 2), ("2025-02", "1500.00", 3), ("2025-03", "1200.00", 2),
    ]


@pytest.mark.parametrize("path", PAGES)
def test_revenue_pages_read_the_facts_with_a_constant_query_count(
    client, member_factory, world, path, django_assert_num_queries
):
    client.force_login(member_factory(world, Role.OWNER))
    grow(world, 2)  # 5 customers
    client.get(path)
    with CaptureQueriesContext(connection) as few:
        response = client.get(path)
    assert response.status_code == 200
    assert read_facts(few)
    assert "Zeta" not in response.content.decode()

    grow(world, 45)  # 50 customers
    with django_assert_num_queries(len(few)):
        assert client.get(path).status_code == 200


def test_movements_page_figures_match_the_reference(client, member_factory, world):
    client.force_login(member_factory(world, Role.OWNER))

    facts_page = client.get("/staff/?" + WINDOW).context["panels"]
    reference_page = reference(lambda tenant: client.get("/staff/?" + WINDOW).context["panels"], tenant=world)

    assert facts_page == reference_page
    (panel,) = [p for p in facts_page if p["key"] == "mrr"]
    assert [Decimal(v) for v in panel["charts"][0]["series"][0]["values"]] == [1300, 1500, 1200]
