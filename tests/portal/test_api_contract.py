"""The API keeps the contract its OpenAPI schema states: JSON bodies only, every error status
documented with its JSON body, parameter constraints in the schema and enforced (400, never ignored)."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from customers.models import Customer, TenantAPIKey
from customers.tenancy import platform_scope
from tests.customers.factories import ContactFactory, CustomerFactory

pytestmark = pytest.mark.django_db

MONEY_SHAPE = 'Give money as an object, {"amount": "123.45", "currency": "USD"}, not a plain value.'


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def api_a(tenant_a):
    _, raw_key = TenantAPIKey.objects.create_key(tenant=tenant_a, name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def parameter(schema, path, name, method="get"):
    return next(p for p in schema["paths"][path][method]["parameters"] if p["name"] == name)


# Money given as a plain value: a 400 naming the shape (it was a KeyError, a 500)


@pytest.mark.parametrize(
    ("url", "payload", "field"),
    [
        ("/api/v1/customers/", {"name": "X", "reference": "x", "currency": "USD", "acquisition_cost": "12"}, "acquisition_cost"),
        ("/api/v1/opportunities/", {"title": "Deal", "prospect_name": "P", "amount": 5}, "amount"),
    ],
)
def test_a_plain_value_for_money_is_a_400_naming_the_shape(api_a, url, payload, field):
    response = api_a.post(url, payload, format="json")

    assert response.status_code == 400
    assert response.json()[field] == [MONEY_SHAPE]


# JSON is the one request body type


def test_a_form_encoded_write_is_415_and_writes_nothing(api_a):
    response = api_a.post("/api/v1/customers/", {"name": "X", "reference": "x", "currency": "USD"}, format="multipart")
    urlencoded = api_a.generic(
        "POST", "/api/v1/customers/", "name=X&reference=x&currency=USD&acquisition_cost=12",
        content_type="application/x-www-form-urlencoded",
    )

    assert (response.status_code, urlencoded.status_code) == (415, 415)
    assert urlencoded.json() == {"detail": 'Unsupported media type "application/x-www-form-urlencoded" in request.'}
    with platform_scope():
        assert Customer.objects.count() == 0


def test_the_schema_offers_only_json_request_bodies(schema):
    media_types = {
        media_type
        for _, _, operation in operations(schema)
        for media_type in operation.get("requestBody", {}).get("content", {})
    }

    assert media_types == {"application/json"}


# Every error status documented, with the JSON error body


def test_every_operation_documents_its_error_statuses(schema):
    for path, method, operation in operations(schema):
        statuses = set(operation["responses"])
        where = f"{method} {path}"
        assert {"401", "403", "429"} <= statuses, where
        if "{" in path:
            assert "404" in statuses, where
        if method in {"POST", "PUT", "PATCH", "DELETE"}:
            assert "409" in statuses, where
        if "requestBody" in operation:
            assert {"400", "415"} <= statuses, where
        if any(p["in"] == "query" for p in operation.get("parameters", [])):
            assert "400" in statuses, where
        for status, response in operation["responses"].items():
            if status.startswith("4"):
                assert "application/json" in response["content"], f"{where} {status}"


def test_error_bodies_are_components_and_429_names_retry_after(schema):
    components = schema["components"]["schemas"]
    customers = schema["paths"]["/api/v1/customers/"]["post"]["responses"]

    assert components["Error"]["required"] == ["detail"]
    assert set(components["ValidationErrors"]["properties"]) == {"detail", "non_field_errors"}
    assert customers["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ValidationErrors"}
    assert customers["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert customers["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 0}


def test_invoice_moves_document_that_api_keys_are_refused(schema, api_a, tenant_a):
    for action in ("finalize", "void", "mark-paid"):
        forbidden = schema["paths"][f"/api/v1/invoices/{{id}}/{action}/"]["post"]["responses"]["403"]
        assert "an API key only reads them" in forbidden["description"], action

    response = api_a.post("/api/v1/invoices/1/void/", format="json")

    assert response.status_code == 403
    assert response.json() == {"detail": "Only finance staff (finance or owner) may change invoices; an API key only reads them."}


def test_metric_endpoints_document_the_missing_exchange_rate_conflict(schema):
    assert "409" in schema["paths"]["/api/v1/metrics/mrr/"]["get"]["responses"]
    assert "409" in schema["paths"]["/api/v1/economics/churn-risk/"]["get"]["responses"]


# Parameter constraints: in the schema, and enforced


def test_parameter_constraints_are_in_the_schema(schema):
    month = {"type": "string", "pattern": r"^(19|[2-9][0-9])[0-9]{2}-(0[1-9]|1[0-2])$", "example": "2026-03"}

    assert parameter(schema, "/api/v1/metrics/mrr/", "from")["schema"] == month
    assert parameter(schema, "/api/v1/economics/costs/", "month")["schema"] == month
    assert parameter(schema, "/api/v1/economics/churn-risk/", "as_of")["schema"] == {"type": "string", "format": "date"}
    assert parameter(schema, "/api/v1/economics/churn-risk/", "limit")["schema"] == {
        "type": "integer", "minimum": 1, "maximum": 10_000, "default": 50,
    }
    assert parameter(schema, "/api/v1/economics/what-if/", "months")["schema"] == {
        "type": "integer", "minimum": 1, "maximum": 24, "default": 3,
    }
    assert parameter(schema, "/api/v1/customers/", "page_size")["schema"] == {
        "type": "integer", "minimum": 1, "maximum": 500, "default": 50,
    }
    assert parameter(schema, "/api/v1/metrics/mrr/", "group_by")["schema"]["enum"] == [
        "account_manager", "country", "segment", "tier",
    ]
    assert parameter(schema, "/api/v1/contacts/", "is_billing_contact")["schema"] == {"type": "boolean"}
    assert parameter(schema, "/api/v1/contacts/", "ordering")["schema"] == {
        "type": "array", "items": {"type": "string", "enum": ["name", "-name", "email", "-email"]},
    }


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/customers/?page_size=0",
        "/api/v1/customers/?page_size=501",
        "/api/v1/customers/?page_size=ten",
        "/api/v1/contacts/?is_billing_contact=null",
        "/api/v1/contacts/?is_billing_contact=",
        "/api/v1/opportunities/?stale=maybe",
        "/api/v1/contracts/?status=bogus",
        "/api/v1/invoices/?period_from=2026-13-01",
        "/api/v1/economics/churn-risk/?all=yes",
        "/api/v1/economics/churn-risk/?as_of=20260301",
        "/api/v1/economics/churn-risk/?limit=%C2%B2",
        "/api/v1/economics/churn-risk/?threshold=1e-1",
        "/api/v1/economics/what-if/?customers=some",
        "/api/v1/metrics/clv/?gross_margin=%200.5",
        "/api/v1/metrics/mrr/?group_by=planet",
        "/api/v1/customers/?search=a%00b",
        "/api/v1/customers/?ordering=password",
        "/api/v1/customers/?ordering=name,",
        "/api/v1/contacts/?customer=",
    ],
)
def test_invalid_parameter_values_are_400_not_ignored(api_a, url):
    response = api_a.get(url)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"


def test_valid_parameter_values_still_filter(api_a, tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    ContactFactory(tenant=tenant_a, customer=customer, is_billing_contact=True, name="Bill")
    ContactFactory(tenant=tenant_a, customer=customer, is_billing_contact=False, name="Other")

    billing = api_a.get("/api/v1/contacts/?is_billing_contact=true&page_size=500").json()
    others = api_a.get("/api/v1/contacts/?is_billing_contact=false").json()
    ordered = api_a.get("/api/v1/contacts/?ordering=-name,email").json()

    assert [c["name"] for c in billing["results"]] == ["Bill"]
    assert [c["name"] for c in others["results"]] == ["Other"]
    assert [c["name"] for c in ordered["results"]] == ["Other", "Bill"]


def test_an_api_url_that_matches_no_endpoint_is_a_json_404(api_a):
    response = api_a.get("/api/v1/contracts/1.5/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_a_pdf_error_is_labelled_json(api_a):
    response = api_a.get("/api/v1/invoices/999999/pdf/?format=pdf")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
