"""Billing's catalog endpoints one by one: exact shapes, a message per field, tenants apart, roles, and
409 for what would change how an issued invoice was priced."""

from datetime import date
from decimal import Decimal

import pytest

from billing.models import BillableMetric, BillingRun, BillingSettings, Invoice, PriceTerms
from billing.services import invoice_compute_drafts, invoice_finalize
from customers.models import ContractLine, Role
from customers.tenancy import tenant_scope
from tests.api_clients import key_client, staff_client
from tests.billing.factories import BillableMetricFactory, PriceTermsFactory, UsageEventFactory
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

pytestmark = pytest.mark.django_db
NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)


def usage_line(tenant, reference="globex"):
    customer = CustomerFactory(tenant=tenant, external_ref=reference)
    contract = ContractFactory(tenant=tenant, customer=customer, start_date=NOV_START)
    return ContractLineFactory(contract=contract, kind=ContractLine.Kind.USAGE, description="Jobs")


@pytest.fixture
def invoiced(tenant_a):
    """Tenant A's metric ``processed_jobs``, priced per unit on a line invoiced for November (finalized)."""
    metric = BillableMetricFactory(tenant=tenant_a)
    terms = PriceTermsFactory(contract_line=usage_line(tenant_a), terms={"unit_price": "0.10"})
    UsageEventFactory(tenant=tenant_a, customer=terms.contract_line.contract.customer)
    with tenant_scope(tenant_a):
        invoice_compute_drafts(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END)
        invoice = invoice_finalize(invoice=Invoice.objects.for_tenant(tenant_a).get(), issue_date=date(2026, 12, 1))
    return {"metric": metric, "terms": terms, "invoice": invoice}


# --- billable metrics ----------------------------------------------------------------------------


def test_a_metric_is_created_and_read_back_exactly(tenant_a):
    client = key_client(tenant_a)
    body = {"code": "failed_jobs", "name": "Failed jobs", "event_code": "jobs", "aggregation": "count",
            "filters": {"status": ["failed"]}, "unit": "jobs"}

    response = client.post("/api/v1/billable-metrics/", body, format="json")

    assert response.status_code == 201
    assert response.json() == {"id": response.json()["id"], "field": "quantity", **body}
    assert client.get(f"/api/v1/billable-metrics/{response.json()['id']}/").json() == response.json()


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"code": "processed_jobs"}, "code", 'The tenant has a metric "processed_jobs" already.'),
        ({"code": "has space"}, "code", None),
        ({"aggregation": "median"}, "aggregation", '"median" is not a valid choice.'),
        ({"aggregation": "sum", "field": ""}, "field", None),
        ({"filters": {"status": []}}, "filters", "Filter `status` needs a value or a non-empty list of plain values."),
        ({"filters": ["failed"]}, "filters", 'Filters must be an object, e.g. {"status": ["failed"]}.'),
        ({"tenant": 2}, "tenant", "The tenant comes from your credentials and cannot be set."),
    ],
)
def test_an_invalid_metric_is_a_400_naming_the_field(tenant_a, body, field, message):
    BillableMetricFactory(tenant=tenant_a)

    response = key_client(tenant_a).post(
        "/api/v1/billable-metrics/", {"code": "compute_ms", "name": "Compute", **body}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == [field]
    if message:
        assert response.json()[field] == [message]
    assert BillableMetric.objects.for_tenant(tenant_a).count() == 1


def test_another_tenants_metric_is_a_404_and_the_same_code_is_free_there(tenant_a, tenant_b):
    theirs = BillableMetricFactory(tenant=tenant_b)
    client = key_client(tenant_a)

    assert client.get(f"/api/v1/billable-metrics/{theirs.pk}/").status_code == 404
    assert client.patch(f"/api/v1/billable-metrics/{theirs.pk}/", {"name": "x"}, format="json").status_code == 404
    assert client.delete(f"/api/v1/billable-metrics/{theirs.pk}/").status_code == 404
    assert client.post("/api/v1/billable-metrics/", {"code": "processed_jobs", "name": "Jobs"}, format="json").status_code == 201
    assert client.get("/api/v1/billable-metrics/").json()["count"] == 1
    assert BillableMetric.objects.for_tenant(tenant_b).get().name == "Processed jobs"


@pytest.mark.parametrize("role, code", [(Role.FINANCE, 201), (Role.OWNER, 201), (Role.ACCOUNT_MANAGER, 403), (Role.VIEWER, 403)])
def test_finance_and_owners_write_the_catalog_other_roles_read_it(tenant_a, member_factory, role, code):
    client = staff_client(member_factory, tenant_a, role)

    assert client.post("/api/v1/billable-metrics/", {"code": "jobs", "name": "Jobs"}, format="json").status_code == code
    assert client.get("/api/v1/billable-metrics/").status_code == 200
    assert client.put("/api/v1/billing-settings/", {"minimum_invoice_amount": "2.00"}, format="json").status_code == (
        200 if code == 201 else 403
    )


@pytest.mark.usage_events
def test_a_metric_that_priced_an_issued_invoice_keeps_what_it_measures(tenant_a, invoiced):
    client = key_client(tenant_a)
    url = f"/api/v1/billable-metrics/{invoiced['metric'].pk}/"

    refused = client.patch(url, {"aggregation": "sum", "field": "quantity"}, format="json")
    renamed = client.patch(url, {"name": "Jobs processed", "unit": "runs"}, format="json")

    assert refused.status_code == 409
    assert refused.json() == {"detail": (
        f"Metric processed_jobs priced invoice {invoiced['invoice'].number} (2026-11); its aggregation cannot change, "
        "or that invoice could no longer be explained. Create a new metric and point new price terms at it."
    )}
    assert renamed.status_code == 200 and (renamed.json()["name"], renamed.json()["unit"]) == ("Jobs processed", "runs")
    assert BillableMetric.objects.for_tenant(tenant_a).get().aggregation == "count"


def test_a_metric_price_terms_use_is_not_deleted_nor_renamed(tenant_a):
    metric = BillableMetricFactory(tenant=tenant_a)
    PriceTermsFactory(contract_line=usage_line(tenant_a))
    client = key_client(tenant_a)

    deleted = client.delete(f"/api/v1/billable-metrics/{metric.pk}/")
    renamed = client.patch(f"/api/v1/billable-metrics/{metric.pk}/", {"code": "jobs"}, format="json")

    assert (deleted.status_code, deleted.json()) == (
        409, {"detail": "1 price terms use metric processed_jobs; delete or change them first."}
    )
    assert renamed.status_code == 409
    assert BillableMetric.objects.for_tenant(tenant_a).get().code == "processed_jobs"


def test_an_unused_metric_is_deleted(tenant_a):
    metric = BillableMetricFactory(tenant=tenant_a)

    assert key_client(tenant_a).delete(f"/api/v1/billable-metrics/{metric.pk}/").status_code == 204
    assert not BillableMetric.objects.for_tenant(tenant_a).exists()


# --- price terms ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "charge_model, metric, terms, errors",
    [
        ("package", "processed_jobs", {"package_price": "5.00"}, {"terms": ["package_size is required for package."]}),
        ("package", "processed_jobs", {"package_size": "0"}, {"terms": ["package_size must be greater than zero."]}),
        ("per_unit", "processed_jobs", {"unit_price": 0.1},
         {"terms": ['unit_price: write the number as a string, e.g. "0.50" (got 0.1).']}),
        ("per_unit", "processed_jobs", {"unit_price": "-1"}, {"terms": ["unit_price must not be negative."]}),
        ("percentage", "payment_volume", {"rate_percent": "120"}, {"terms": ["rate_percent must be between 0 and 100."]}),
        ("percentage", "processed_jobs", {"rate_percent": "2"}, {"metric": [
            'A percentage is taken of a summed amount: metric "processed_jobs" has the aggregation "count"; '
            'choose a metric with the aggregation "sum".']}),
        ("graduated", "processed_jobs", {"tiers": []},
         {"terms": ["tiers must be a non-empty list of {up_to, unit_price, flat_fee}."]}),
        ("per_unit", "processed_jobs", {"price": "1"},
         {"terms": ["Unknown terms for per_unit: price (it takes unit_price, minimum_commitment, failed_metric)."]}),
        ("per_unit", "", {}, {"metric": ["A metered charge model needs a metric."]}),
        ("per_unit", "gb_stored", {},
         {"metric": ['No billable metric "gb_stored"; create it first (POST /api/v1/billable-metrics/).']}),
        ("hourly", "processed_jobs", {}, {"charge_model": ['"hourly" is not a valid choice.']}),
        ("per_unit", "processed_jobs", ["0.10"], {"terms": ['Terms must be a JSON object, e.g. {"unit_price": "0.50"}.']}),
    ],
)
def test_price_terms_are_validated_per_charge_model_with_a_message_per_field(tenant_a, charge_model, metric, terms, errors):
    BillableMetricFactory(tenant=tenant_a)
    BillableMetricFactory(tenant=tenant_a, code="payment_volume", aggregation="sum", field="amount")
    line = usage_line(tenant_a)

    response = key_client(tenant_a).post("/api/v1/price-terms/", {
        "contract_line": line.pk, "charge_model": charge_model, "metric": metric, "terms": terms,
    }, format="json")

    assert (response.status_code, response.json()) == (400, errors)
    assert not PriceTerms.objects.for_tenant(tenant_a).exists()


def test_price_terms_are_set_changed_and_deleted_on_a_line_not_yet_invoiced(tenant_a):
    BillableMetricFactory(tenant=tenant_a)
    line = usage_line(tenant_a)
    client = key_client(tenant_a)

    created = client.post("/api/v1/price-terms/", {
        "contract_line": line.pk, "charge_model": "volume", "metric": "processed_jobs",
        "terms": {"tiers": [{"up_to": "100", "unit_price": "0.50"}, {"up_to": None, "unit_price": "0.40"}]},
    }, format="json")
    url = f"/api/v1/price-terms/{created.json()['id']}/"
    second = client.post("/api/v1/price-terms/", {"contract_line": line.pk, "charge_model": "flat"}, format="json")
    changed = client.patch(url, {"charge_model": "package", "terms": {"package_size": "10", "package_price": "4"}}, format="json")

    assert created.status_code == 201
    assert created.json() == {
        "id": created.json()["id"], "contract_line": line.pk, "contract": line.contract_id, "currency": "USD",
        "charge_model": "volume", "metric": "processed_jobs",
        "terms": {"tiers": [{"up_to": "100", "unit_price": "0.50"}, {"up_to": None, "unit_price": "0.40"}]},
    }
    assert (second.status_code, second.json()) == (
        400, {"contract_line": ["This line has price terms already; change them instead."]}
    )
    assert changed.status_code == 200
    assert (changed.json()["charge_model"], changed.json()["metric"], changed.json()["contract_line"]) == (
        "package", "processed_jobs", line.pk
    )
    assert client.get(f"/api/v1/price-terms/?contract={line.contract_id}").json()["count"] == 1
    assert client.delete(url).status_code == 204
    assert not PriceTerms.objects.for_tenant(tenant_a).exists()


def test_another_tenants_line_and_terms_are_not_found(tenant_a, tenant_b):
    BillableMetricFactory(tenant=tenant_a)
    theirs = PriceTermsFactory(contract_line=usage_line(tenant_b))
    client = key_client(tenant_a)

    posted = client.post("/api/v1/price-terms/", {
        "contract_line": theirs.contract_line_id, "charge_model": "per_unit", "metric": "processed_jobs",
    }, format="json")

    assert (posted.status_code, list(posted.json())) == (400, ["contract_line"])
    assert client.get(f"/api/v1/price-terms/{theirs.pk}/").status_code == 404
    assert client.put(f"/api/v1/price-terms/{theirs.pk}/", {"charge_model": "flat"}, format="json").status_code == 404
    assert client.delete(f"/api/v1/price-terms/{theirs.pk}/").status_code == 404
    assert client.get("/api/v1/price-terms/").json()["count"] == 0


@pytest.mark.usage_events
def test_terms_of_an_invoiced_line_are_history(tenant_a, invoiced):
    client = key_client(tenant_a)
    url = f"/api/v1/price-terms/{invoiced['terms'].pk}/"

    changed = client.patch(url, {"terms": {"unit_price": "0.20"}}, format="json")
    deleted = client.delete(url)

    line = invoiced["terms"].contract_line
    assert changed.status_code == deleted.status_code == 409
    assert changed.json()["detail"] == (
        f"Contract line {line.pk} (Jobs) was invoiced on {invoiced['invoice'].number} (2026-11); its price terms "
        f"cannot be changed. Change the line from a date instead (POST /api/v1/contracts/{line.contract_id}/changes/): "
        "the new line version keeps these terms, and its own terms can then be changed."
    )
    assert PriceTerms.objects.for_tenant(tenant_a).get().terms == {"unit_price": "0.10"}


# --- billing settings ----------------------------------------------------------------------------

NO_PAYMENT_DETAILS = {"payment_method": "", "bankgiro": "", "iban": "", "bic": "", "bank_name": "", "payment_reference_text": ""}


def test_billing_settings_are_one_object_per_tenant(tenant_a, tenant_b):
    client = key_client(tenant_a)

    first = client.get("/api/v1/billing-settings/")
    patched = client.patch("/api/v1/billing-settings/", {"minimum_invoice_amount": "1.00"}, format="json")
    negative = client.put("/api/v1/billing-settings/", {"minimum_invoice_amount": "-1"}, format="json")
    not_a_number = client.put("/api/v1/billing-settings/", {"minimum_invoice_amount": "one"}, format="json")

    defaults = {"usage_max_age_days": None, "usage_max_future_hours": 24, **NO_PAYMENT_DETAILS}
    assert (first.status_code, first.json()) == (200, {"minimum_invoice_amount": "0.00", **defaults})
    assert (patched.status_code, patched.json()) == (200, {"minimum_invoice_amount": "1.00", **defaults})
    assert (negative.status_code, negative.json()) == (
        400, {"minimum_invoice_amount": ["Ensure this value is greater than or equal to 0."]}
    )
    assert (not_a_number.status_code, list(not_a_number.json())) == (400, ["minimum_invoice_amount"])
    assert key_client(tenant_b).get("/api/v1/billing-settings/").json() == {"minimum_invoice_amount": "0.00", **defaults}
    assert BillingSettings.objects.for_tenant(tenant_a).get().minimum_invoice_amount == Decimal("1.00")


def test_billing_settings_set_the_usage_plausibility_window(tenant_a):
    client = key_client(tenant_a)

    window = client.patch("/api/v1/billing-settings/", {"usage_max_age_days": 90, "usage_max_future_hours": 2},
                          format="json")
    too_short = client.patch("/api/v1/billing-settings/", {"usage_max_age_days": 0}, format="json")
    too_far = client.patch("/api/v1/billing-settings/", {"usage_max_future_hours": 745}, format="json")
    minimum_only = client.put("/api/v1/billing-settings/", {"minimum_invoice_amount": "3.00"}, format="json")

    assert (window.status_code, window.json()) == (
        200, {"minimum_invoice_amount": "0.00", "usage_max_age_days": 90, "usage_max_future_hours": 2, **NO_PAYMENT_DETAILS})
    assert (too_short.status_code, list(too_short.json())) == (400, ["usage_max_age_days"])
    assert (too_far.status_code, list(too_far.json())) == (400, ["usage_max_future_hours"])
    assert minimum_only.json() == {
        "minimum_invoice_amount": "3.00", "usage_max_age_days": 90, "usage_max_future_hours": 2, **NO_PAYMENT_DETAILS}
    stored = BillingSettings.objects.for_tenant(tenant_a).get()
    assert (stored.usage_max_age_days, stored.usage_max_future_hours) == (90, 2)


# --- month-end runs ------------------------------------------------------------------------------


def test_only_finance_staff_start_a_month_end_run(tenant_a, member_factory):
    body = {"period": "2026-10"}

    assert key_client(tenant_a).post("/api/v1/billing-runs/", body, format="json").status_code == 403
    manager = staff_client(member_factory, tenant_a, Role.ACCOUNT_MANAGER)
    assert manager.post("/api/v1/billing-runs/", body, format="json").status_code == 403
    assert key_client(tenant_a).get("/api/v1/billing-runs/").json()["count"] == 0


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"period": "2026-13"}, "period", "Write the month as YYYY-MM, e.g. 2026-03 (got '2026-13')."),
        ({"period": "2999-01"}, "period", "2999-01 has not begun yet in UTC."),
        ({}, "period", "This field is required."),
    ],
)
def test_a_bad_month_end_request_is_a_400(tenant_a, member_factory, body, field, message):
    response = staff_client(member_factory, tenant_a, Role.FINANCE).post("/api/v1/billing-runs/", body, format="json")

    assert (response.status_code, response.json()) == (400, {field: [message]})
    assert not BillingRun.objects.for_tenant(tenant_a).exists()


def test_a_running_month_is_drafted_never_finalized_by_a_run(tenant_a, member_factory):
    from customers.periods import month_key, tenant_today

    response = staff_client(member_factory, tenant_a, Role.FINANCE).post(
        "/api/v1/billing-runs/", {"period": month_key(tenant_today(tenant_a)), "finalize": True}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["finalize"]


def test_text_and_decimals_of_the_wrong_json_type_are_refused_not_converted(tenant_a):
    client = key_client(tenant_a)

    metric = client.post("/api/v1/billable-metrics/", {"code": 0, "name": 7, "event_code": "", "aggregation": "count",
                                                       "field": "quantity", "unit": "jobs"}, format="json")
    minimum = client.patch("/api/v1/billing-settings/", {"minimum_invoice_amount": 1.5}, format="json")

    assert (metric.status_code, metric.json()) == (
        400, {"code": ["Give text as a JSON string."], "name": ["Give text as a JSON string."]})
    assert (minimum.status_code, minimum.json()) == (
        400, {"minimum_invoice_amount": ['Write the number as a string, e.g. "1.00".']})
    assert not BillableMetric.objects.for_tenant(tenant_a).exists()
