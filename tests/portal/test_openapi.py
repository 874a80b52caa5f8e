"""The OpenAPI schema generates cleanly and documents the endpoints; the docs page is served."""

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema():
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        generated = SchemaGenerator().get_schema(request=None, public=True)
    yield generated
    GENERATOR_STATS.reset()


def test_schema_generates_without_warnings_or_errors(schema):
    assert dict(GENERATOR_STATS._warn_cache) == {}
    assert dict(GENERATOR_STATS._error_cache) == {}
    validate_schema(schema)


def test_schema_has_the_api_paths(schema):
    expected = {
        "/api/v1/customers/",
        "/api/v1/customers/{id}/",
        "/api/v1/contacts/",
        "/api/v1/contacts/{id}/",
        "/api/v1/contracts/",
        "/api/v1/contracts/{id}/",
        "/api/v1/contracts/{id}/cancel/",
        "/api/v1/contracts/{id}/change-line/",
        "/api/v1/contracts/{id}/activate/",
        "/api/v1/opportunities/",
        "/api/v1/opportunities/{id}/",
        "/api/v1/opportunities/{id}/win/",
        "/api/v1/opportunities/{id}/lose/",
    }

    assert expected <= set(schema["paths"])
    assert "delete" not in schema["paths"]["/api/v1/contracts/{id}/"]


def test_schema_documents_money_filters_and_the_api_key(schema):
    money = schema["components"]["schemas"]["Customer"]["properties"]["acquisition_cost"]
    filters = {p["name"] for p in schema["paths"]["/api/v1/opportunities/"]["get"]["parameters"]}

    assert set(money["properties"]) == {"amount", "currency"}
    assert {"quarter", "band", "stale", "stage", "owner", "page", "page_size", "search", "ordering"} <= filters
    assert schema["components"]["securitySchemes"]["tenantApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`Api-Key <key>`; the key decides the tenant.",
    }


def test_schema_and_docs_are_served():
    client = APIClient()

    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")

    assert (schema.status_code, docs.status_code) == (200, 200)
    assert b"/api/v1/opportunities/{id}/win/" in schema.content
    assert b"swagger-ui" in docs.content
