"""The page-speed benchmark crawls every staff page as each role, and the worst pages' query counts
stay the same however many customers a tenant has (1× against 3× the data: exact equality)."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from benchmarks.pages import CRAWL_SETTINGS, Page, crawl, p95, page_measure, table
from billing.models import BillableMetric, ChargeModel, CreditRequest, UsageEvent
from customers.models import ContractLine, Role
from customers.periods import add_months, month_start
from customers.tenancy import platform_scope
from tests.billing.factories import PriceTermsFactory
from tests.customers.factories import ContactFactory, ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.economics.helpers import billed, entered_cost, price
from tests.revenue.factories import OpportunityFactory

# The pages that were slow on the demo, and the lists of the biggest tables.
WORST_PAGES = [
    "/staff/economics/churn-risk/",
    "/staff/economics/",
    "/staff/economics/roi/",
    "/staff/unit-economics/",
    "/staff/",
    "/staff/retention/",
    "/staff/concentration/",
    "/staff/pipeline/",
    "/admin/customers/customer/",
    "/admin/customers/contract/",
    "/admin/billing/usageevent/",
    "/admin/billing/invoice/",
    "/admin/revenue/opportunity/",
    "/api/schema/",
]
_refs = iter(range(10**6))


def _customers(tenant, count: int, manager) -> None:
    """``count`` customers with what each page reads: a contract with a recurring line for a year,
    a contact, three months' invoices (unpaid, so overdue), usage events over the last 90 days
    (jobs, AI calls and verified savings, which a line prices at 20 %), an entered cost, an open
    deal and an open credit request."""
    today = timezone.localdate()
    last_closed = add_months(month_start(today), -1)
    BillableMetric.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, code="savings", defaults={"name": "Verified savings", "aggregation": "sum", "field": "savings"},
    )
    for _ in range(count):
        n = next(_refs)
        customer = CustomerFactory(tenant=tenant, tier=["Starter", "Business"][n % 2], country=["SE", "DE"][n % 2],
                                   account_manager=manager)
        ContactFactory(customer=customer, tenant=tenant)
        contract = ContractFactory(customer=customer, tenant=tenant, start_date=add_months(last_closed, -14))
        ContractLineFactory(contract=contract, tenant=tenant)
        share = ContractLineFactory(contract=contract, tenant=tenant, kind=ContractLine.Kind.USAGE,
                                    description="Share of verified savings")
        PriceTermsFactory(contract_line=share, tenant=tenant, charge_model=ChargeModel.PERCENTAGE, metric="savings",
                          terms={"rate_percent": "20"})
        invoices = [billed(customer, add_months(last_closed, -back), "100.00") for back in range(3)]  # unpaid: overdue
        entered_cost(customer, last_closed, "12.50")
        OpportunityFactory(tenant=tenant, customer=customer)
        CreditRequest.objects.create(
            tenant=tenant, customer=customer, invoice=invoices[-1], amount=Decimal("5.00"), currency=customer.currency,
            reason="late delivery", requested_by=manager,
        )
        UsageEvent.objects.bulk_create(
            UsageEvent(
                tenant=tenant, customer=customer, metric_code=["jobs", "ai_call", "savings"][day % 3],
                timestamp=datetime.combine(today - timedelta(days=day), datetime.min.time(), dt_timezone.utc),
                idempotency_key=f"e-{n}-{day}", quantity=Decimal(1),
                properties=[{}, {"provider": "openai", "model": "m", "input_tokens": 10, "output_tokens": 5},
                            {"baseline": "40.00", "optimized": "25.50"}][day % 3],
            )
            for day in range(0, 90, 2)
        )


def _query_counts(client) -> dict[str, int]:
    counts = {}
    for url in WORST_PAGES:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, url
        counts[url] = len(captured.captured_queries)
    return counts


@pytest.mark.django_db
def test_worst_pages_make_the_same_queries_at_three_times_the_customers(tenant_a, tenant_b, member_factory):
    owner = member_factory(tenant_a, Role.OWNER)
    price(tenant_a, "m", "1000000", "0")
    with platform_scope():
        _customers(tenant_b, 2, member_factory(tenant_b))  # another tenant's rows must not count
    _customers(tenant_a, 3, owner)
    client = Client()
    client.force_login(owner)
    client.get("/api/schema/")  # generated once per process; every request after reads it from memory
    small = _query_counts(client)

    _customers(tenant_a, 6, owner)
    big = _query_counts(client)

    assert big == small


@pytest.mark.slow  # some 300 pages
@pytest.mark.django_db
def test_crawl_opens_every_staff_page_of_each_role(tenant_a, member_factory):
    users = {
        role: member_factory(tenant_a, role, username=f"{tenant_a.slug}-{suffix}")
        for suffix, role in (("owner", Role.OWNER), ("manager", Role.ACCOUNT_MANAGER), ("finance", Role.FINANCE),
                             ("viewer", Role.VIEWER))
    }
    price(tenant_a, "m", "1000000", "0")
    _customers(tenant_a, 2, users[Role.OWNER])

    rows = crawl(tenant_a.slug, runs=0, objects=1, write=lambda line: None)

    assert {m.role for m in rows} == {"owner", "manager", "finance", "viewer"}
    assert [(m.role, m.key, m.status) for m in rows if m.status != 200] == []
    keys = {m.key for m in rows if m.role == "viewer"}
    assert {"admin:customers_customer_changelist", "admin:customers_customer_change[1]",
            "admin:customers_customer_history[1]", "economics:churn_risk", "economics:roi_detail[1]",
            "dashboards:unit_economics", "customer_360[busiest]", "api-docs", "api-schema"} <= keys
    assert "admin:customers_customer_add" not in keys  # a viewer may not add: not crawled as a viewer
    assert "admin:customers_customer_add" in {m.key for m in rows if m.role == "manager"}
    assert all(m.times_ms == [m.first_ms] and m.p50_ms == m.p95_ms == m.first_ms for m in rows)
    lines = table(rows)
    assert len(lines) == 2 + len(rows) and all(line.endswith("SLOW") == (m.p95_ms > 500) for line, m in zip(
        lines[2:], sorted(rows, key=lambda m: -m.p95_ms), strict=True))


def test_p95_is_the_nearest_rank():
    assert p95([5.0]) == 5.0
    assert p95([float(n) for n in range(1, 21)]) == 19.0
    assert p95([float(n) for n in range(100, 0, -1)]) == 95.0


@pytest.mark.django_db
def test_page_measure_counts_the_last_requests_queries(tenant_a, member_factory, settings):
    for name, value in CRAWL_SETTINGS.items():
        setattr(settings, name, value)
    client = Client()
    client.force_login(member_factory(tenant_a, Role.VIEWER))
    CustomerFactory(tenant=tenant_a)

    status, queries, times = page_measure(client, Page("customers", "/admin/customers/customer/"), runs=2)

    assert status == 200 and queries > 0 and len(times) == 3
