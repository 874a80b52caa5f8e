"""The catalog endpoints are in the schema, each write with request and response examples."""

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

WRITES = {
    "/api/v1/billable-metrics/": "post",
    "/api/v1/billable-metrics/{id}/": "put",
    "/api/v1/price-terms/": "post",
    "/api/v1/price-terms/{id}/": "patch",
    "/api/v1/price-plans/": "post",
    "/api/v1/price-plans/{id}/": "put",
    "/api/v1/exchange-rates/": "post",
    "/api/v1/exchange-rates/{id}/": "patch",
    "/api/v1/billing-settings/": "put",
    "/api/v1/billing-runs/": "post",
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


@pytest.mark.parametrize("path, method", WRITES.items())
def test_each_catalog_write_has_request_and_response_examples(schema, path, method):
    operation = schema["paths"][path][method]
    success = next(code for code in operation["responses"] if code.startswith("2"))

    assert operation["requestBody"]["content"]["application/json"]["examples"]
    assert operation["responses"][success]["content"]["application/json"]["examples"]
    assert "400" in operation["responses"]


def test_the_catalog_documents_its_conflicts(schema):
    assert {"409"} <= set(schema["paths"]["/api/v1/billable-metrics/{id}/"]["delete"]["responses"])
    assert {"409"} <= set(schema["paths"]["/api/v1/price-terms/{id}/"]["put"]["responses"])
    assert {"409"} <= set(schema["paths"]["/api/v1/exchange-rates/"]["post"]["responses"])
    money = schema["components"]["schemas"]["PricePlan"]["properties"]["base_fee"]
    assert set(money["properties"]) == {"amount", "currency"}
