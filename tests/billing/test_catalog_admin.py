"""The admin refuses what the catalog API refuses: an issued invoice's pricing and a frozen month's
exchange rate are history on every surface."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import BillableMetric, Invoice, PriceTerms
from billing.services import invoice_compute_drafts, invoice_finalize
from customers.models import ContractLine, Role
from customers.tenancy import tenant_scope
from revenue.models import ExchangeRate, MetricSnapshot
from tests.billing.factories import BillableMetricFactory, PriceTermsFactory, UsageEventFactory
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.factories import ExchangeRateFactory

pytestmark = pytest.mark.django_db
NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)


@pytest.fixture
def finance(client, member_factory, tenant_a):
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    return client


@pytest.fixture
def invoiced(tenant_a):
    metric = BillableMetricFactory(tenant=tenant_a)
    customer = CustomerFactory(tenant=tenant_a)
    contract = ContractFactory(tenant=tenant_a, customer=customer, start_date=NOV_START)
    line = ContractLineFactory(contract=contract, kind=ContractLine.Kind.USAGE, description="Jobs")
    terms = PriceTermsFactory(contract_line=line, terms={"unit_price": "0.10"})
    UsageEventFactory(tenant=tenant_a, customer=customer)
    with tenant_scope(tenant_a):
        invoice_compute_drafts(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END)
        invoice_finalize(invoice=Invoice.objects.for_tenant(tenant_a).get(), issue_date=date(2026, 12, 1))
    return {"metric": metric, "terms": terms}


@pytest.mark.usage_events
def test_the_admin_keeps_what_an_issued_invoice_was_priced_with(finance, tenant_a, invoiced):
    metric, terms = invoiced["metric"], invoiced["terms"]
    change_metric = reverse("admin:billing_billablemetric_change", args=[metric.pk])
    form = {"code": metric.code, "name": metric.name, "event_code": "", "aggregation": "sum", "field": "quantity",
            "filters": "{}", "unit": "jobs"}

    refused = finance.post(change_metric, form)
    renamed = finance.post(change_metric, {**form, "aggregation": "count", "name": "Jobs run"})
    terms_change = finance.post(reverse("admin:billing_priceterms_change", args=[terms.pk]), {
        "contract_line": terms.contract_line_id, "charge_model": "per_unit", "metric": metric.code,
        "terms": '{"unit_price": "0.20"}',
    })

    assert refused.status_code == 200
    assert "its aggregation cannot change" in str(refused.context["adminform"].form.non_field_errors())
    assert renamed.status_code == 302
    assert terms_change.status_code == 200
    assert "its price terms cannot be changed" in str(terms_change.context["adminform"].form.non_field_errors())
    assert finance.get(reverse("admin:billing_billablemetric_delete", args=[metric.pk])).status_code == 403
    assert finance.get(reverse("admin:billing_priceterms_delete", args=[terms.pk])).status_code == 403
    assert BillableMetric.objects.for_tenant(tenant_a).values_list("aggregation", "name").get() == ("count", "Jobs run")
    assert PriceTerms.objects.for_tenant(tenant_a).get().terms == {"unit_price": "0.10"}


def test_the_admin_keeps_a_rate_that_converted_a_frozen_month(finance, tenant_a):
    october = ExchangeRateFactory(tenant=tenant_a, currency="EUR", rate=Decimal("1.05"), effective_on=date(2026, 10, 1))
    MetricSnapshot.objects.create(tenant=tenant_a, month=date(2026, 10, 1), figures={})

    changed = finance.post(reverse("admin:revenue_exchangerate_change", args=[october.pk]),
                           {"currency": "EUR", "rate": "1.06", "effective_on": "2026-10-01"})
    backdated = finance.post(reverse("admin:revenue_exchangerate_add"),
                             {"currency": "EUR", "rate": "1.07", "effective_on": "2026-10-15"})
    later = finance.post(reverse("admin:revenue_exchangerate_add"),
                         {"currency": "EUR", "rate": "1.08", "effective_on": "2026-11-01"})

    assert changed.status_code == backdated.status_code == 200
    assert "closed and frozen" in str(changed.context["adminform"].form.non_field_errors())
    assert later.status_code == 302
    assert finance.get(reverse("admin:revenue_exchangerate_delete", args=[october.pk])).status_code == 403
    assert sorted(ExchangeRate.objects.for_tenant(tenant_a).values_list("effective_on", "rate")) == [
        (date(2026, 10, 1), Decimal("1.0500000000")), (date(2026, 11, 1), Decimal("1.0800000000")),
    ]
