"""The invoice a customer's usage projects: the draft run's pricing to the cent, and nothing written."""

from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.metering import usage_ingest
from billing.models import (
    BillingSettings,
    CreditApplication,
    CreditRequest,
    Invoice,
    InvoiceLine,
    NumberSequence,
    UsageEvent,
)
from billing.projection import invoice_project
from billing.services import credit_request_approve, credit_request_create, invoice_compute_drafts
from customers.models import ContractLine, Role
from customers.money import Money
from customers.services import LineSpec
from customers.tenancy import platform_scope, tenant_scope
from portal.demo import billing as demo_billing
from portal.demo import jobapi, konsult
from portal.demo.contracts import subscribe
from tests.billing.factories import BillingSettingsFactory
from tests.customers.factories import CustomerFactory, PortalAccessFactory, UserFactory

NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)
D = Decimal
BILLING_TABLES = [BillingSettings, Invoice, InvoiceLine, CreditApplication, CreditRequest, NumberSequence, UsageEvent]


def priced_like_the_demo(tenant, module):
    with tenant_scope(tenant):
        demo_billing.metrics_ensure(tenant, module.METRICS)


def subscribed(customer, lines, module, start=NOV_START):
    with tenant_scope(customer.tenant):
        subscribe(customer, title="Subscription", start=start, lines=lines)
        demo_billing.price_terms_attach(customer.tenant, module.usage_terms)


def jobs(tenant, ref, count, *, failed=0, on=date(2026, 11, 3)):
    moment = datetime.combine(on, time(0, 30), tzinfo=ZoneInfo(tenant.time_zone)).isoformat()
    events = [
        {"customer": ref, "metric": "processed_jobs", "timestamp": moment, "idempotency_key": f"{ref}-{on}-{n}",
         "properties": {"status": "failed" if n < failed else "succeeded"}}
        for n in range(count)
    ]
    with tenant_scope(tenant):
        assert usage_ingest(tenant=tenant, events=events).rejected == 0


@pytest.fixture
def job_api(tenant_a, tenant_b):
    """tenant_a prices jobs as the demo's job API ($1 minimum); tenant_b has the same metrics."""
    BillingSettingsFactory(tenant=tenant_a, minimum_invoice_amount=D("1.00"))
    priced_like_the_demo(tenant_a, jobapi)
    priced_like_the_demo(tenant_b, jobapi)
    return tenant_a


@pytest.fixture
def professional(job_api, tenant_b, member_factory):
    """A Professional customer at 410 of its 500 jobs (3 failed) with an approved $20 balance
    credit, and a lookalike in tenant_b (same reference) with other usage."""
    with platform_scope():
        customer = CustomerFactory(tenant=job_api, external_ref="tidewater")
        lookalike = CustomerFactory(tenant=tenant_b, external_ref="tidewater", currency="USD")
    subscribed(customer, jobapi._plan_lines("Professional", 1, "USD"), jobapi)
    subscribed(lookalike, jobapi._plan_lines("Starter", 1, "USD"), jobapi)
    jobs(job_api, "tidewater", 410, failed=3)
    jobs(tenant_b, "tidewater", 250)
    requester, approver = member_factory(job_api, Role.ACCOUNT_MANAGER), member_factory(job_api, Role.FINANCE)
    with tenant_scope(job_api):
        request = credit_request_create(customer=customer, amount=D("20.00"), reason="Goodwill", requested_by=requester)
        credit_request_approve(credit_request=request, approver=approver)
    return customer


def row_counts(tenant_a, tenant_b):
    with platform_scope():
        return {model.__name__: model.objects.count() for model in BILLING_TABLES}


def as_rows(projection):
    return [(line.description, line.kind, line.quantity, line.unit_price, line.amount) for line in projection.lines]


@pytest.mark.usage_events
def test_projection_equals_the_draft_the_run_then_produces(professional):
    tenant = professional.tenant

    with tenant_scope(tenant):
        projection = invoice_project(customer=professional, period_start=NOV_START, period_end=NOV_END)
        invoice_compute_drafts(tenant=tenant, period_start=NOV_START, period_end=NOV_END)
        draft = Invoice.objects.for_tenant(tenant).get(customer=professional, period_start=NOV_START)
        draft_lines = [
            (line.description, line.kind, line.quantity, line.unit_price, line.amount)
            for line in InvoiceLine.objects.for_tenant(tenant).filter(invoice=draft).order_by("position")
        ]

    assert as_rows(projection) == draft_lines
    assert (projection.subtotal, projection.discount_total, projection.vat_amount, projection.total,
            projection.credit_applied, projection.amount_due, projection.currency) == (
        draft.subtotal, draft.discount_total, draft.vat_amount, draft.total, draft.credit_applied, draft.amount_due,
        draft.currency,
    )
    # 410 of 500 jobs (82 %): no overage, the failed ones inside the quota cost nothing to credit,
    # and 3 % off the $99 plan fee for using 80–100 % of the quota.
    assert (projection.total, projection.credit_applied, projection.amount_due) == (D("96.03"), D("20.00"), D("76.03"))


@pytest.mark.usage_events
def test_projection_writes_nothing(professional, tenant_b):
    before = row_counts(professional.tenant, tenant_b)

    with tenant_scope(professional.tenant), CaptureQueriesContext(connection) as queries:
        invoice_project(customer=professional, period_start=NOV_START, period_end=NOV_END)

    writes = [q["sql"] for q in queries if q["sql"].split()[0].upper() in {"INSERT", "UPDATE", "DELETE", "CREATE"}]
    assert writes == []
    assert row_counts(professional.tenant, tenant_b) == before


@pytest.mark.usage_events
def test_projection_of_a_starter_over_its_quota_counts_overage_and_failed_jobs(job_api):
    with platform_scope():
        customer = CustomerFactory(tenant=job_api, external_ref="quillon")
    subscribed(customer, jobapi._plan_lines("Starter", 1, "USD"), jobapi)
    jobs(job_api, "quillon", 110, failed=4)

    with tenant_scope(job_api):
        projection = invoice_project(customer=customer, period_start=NOV_START, period_end=NOV_END)

    # 10 over 100 (beyond 1 % grace) × $0.50 = $5.00; without the 4 failed, 6 over = $3.00: credit $2.00.
    assert as_rows(projection) == [
        ("Plan fee", "charge", D(1), D("29.00"), D("29.00")),
        ("Processed jobs: jobs above 100 included", "charge", D(10), D("0.50"), D("5.00")),
        ("Processed jobs: 4 failed jobs credited", "credit", D(1), D("-2.00"), D("-2.00")),
    ]
    assert (projection.subtotal, projection.discount_total, projection.total) == (D("34.00"), D("2.00"), D("32.00"))


@pytest.mark.usage_events
def test_projection_of_a_swedish_customer_adds_moms_like_the_draft(tenant_a, tenant_b):
    tenant_b.vat_rate = D("25")
    tenant_b.save()
    priced_like_the_demo(tenant_b, konsult)
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_b, external_ref="norrsken", currency="SEK", country="SE")
    lines = {
        "retainer": LineSpec(description="Rådgivningsretainer", kind=ContractLine.Kind.RECURRING,
                             unit_price=Money("8333", "SEK")),
        "hours": LineSpec(description="Konsulttimmar", kind=ContractLine.Kind.USAGE, unit_price=Money("1450", "SEK")),
    }
    subscribed(customer, lines, konsult)
    moment = datetime(2026, 11, 4, 16, tzinfo=ZoneInfo("UTC")).isoformat()
    with tenant_scope(tenant_b):
        usage_ingest(tenant=tenant_b, events=[
            {"customer": "norrsken", "metric": "hours", "timestamp": moment, "quantity": "3.5", "idempotency_key": "h1"}
        ])
        projection = invoice_project(customer=customer, period_start=NOV_START, period_end=NOV_END)
        invoice_compute_drafts(tenant=tenant_b, period_start=NOV_START, period_end=NOV_END)
        draft = Invoice.objects.for_tenant(tenant_b).get(customer=customer)

    # 3.5 h × 1 450 = 5 075.00 + 8 333.00 = 13 408.00; moms 3 352.00; 16 760.00.
    assert (projection.vat_amount, projection.total) == (draft.vat_amount, draft.total) == (D("3352.00"), D("16760.00"))


def test_a_customer_with_nothing_to_bill_projects_an_empty_invoice(tenant_a, tenant_b):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a)

    with tenant_scope(tenant_a):
        projection = invoice_project(customer=customer, period_start=NOV_START, period_end=NOV_END)

    assert (projection.lines, projection.total, projection.problems) == ([], D(0), [])


def test_a_period_ending_before_it_starts_is_refused(tenant_a, tenant_b):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a)

    with pytest.raises(ValueError, match="cannot end before it starts"):
        invoice_project(customer=customer, period_start=NOV_END, period_end=NOV_START)


@pytest.mark.usage_events
def test_usage_page_shows_the_invoice_this_usage_projects(client, job_api, tenant_b):
    today = timezone.localdate()
    first = today.replace(day=1)
    with platform_scope():
        customer = CustomerFactory(tenant=job_api, external_ref="quillon", language="en")
        user = PortalAccessFactory(customer=customer, tenant=job_api, user=UserFactory()).user
    subscribed(customer, jobapi._plan_lines("Starter", 1, "USD"), jobapi, start=first)
    jobs(job_api, "quillon", 103, on=first)
    client.force_login(user)

    response = client.get("/usage/")

    assert response.status_code == 200
    projection = response.context["projection"]
    assert [(line.description, line.amount) for line in projection.lines] == [
        ("Plan fee", D("29.00")),
        ("Processed jobs: jobs above 100 included", D("1.50")),
    ]
    page = response.content.decode()
    assert "The invoice this usage projects" in page
    assert "Processed jobs: jobs above 100 included" in page and "$30.50" in page
