"""Over the API a started contract changes only through POST /contracts/{id}/changes/ (or the older
dated actions); PUT and PATCH that would rewrite its lines or dates get 409 pointing there."""

from datetime import date
from decimal import Decimal

import pytest
from drf_spectacular.generators import SchemaGenerator

from customers.models import Contract, ContractLine
from customers.money import Money
from customers.services import LineSpec, contract_create
from customers.tenancy import tenant_scope
from tests.customers.contract_history import NOV, SEP, november_draft, timeline, versions
from tests.customers.factories import CustomerFactory
from tests.customers.test_api import key_client


@pytest.fixture
def api(seats_world):
    return key_client(seats_world["tenant"])


def changes_url(contract):
    return f"/api/v1/contracts/{contract.pk}/changes/"


def test_patch_of_a_started_contracts_lines_or_dates_is_409_pointing_to_the_changes_endpoint(api, seats_world):
    contract = seats_world["contract"]
    url = f"/api/v1/contracts/{contract.pk}/"
    current = api.get(url).json()
    seats = {**current["lines"][0], "quantity": "90.0000"}
    for payload in ({"lines": [seats]}, {"end_date": "2026-10-31"}, {"start_date": "2026-10-01", "title": "x"}):
        response = api.patch(url, payload, format="json")
        assert response.status_code == 409, payload
        body = response.json()
        assert body["change_endpoint"] == changes_url(contract)
        assert f"POST {changes_url(contract)} with an action" in body["detail"]
        assert body["detail"].startswith(f"Contract {contract.reference} has started: its ")
    assert api.put(url, {**current, "lines": [seats]}, format="json").status_code == 409
    assert versions(contract) == [("Seats", Decimal(79), SEP[0], None)]
    contract.refresh_from_db()
    assert (contract.title, contract.start_date, contract.end_date) == ("Team seats", SEP[0], None)
    # Echoing the contract unchanged, with a new title, is a plain update.
    response = api.put(url, {**current, "title": "Team seats 2027"}, format="json")
    assert response.status_code == 200 and response.json()["title"] == "Team seats 2027"


def test_post_an_upgrade_from_a_date(api, seats_world):
    contract, line = seats_world["contract"], seats_world["line"]
    response = api.post(changes_url(contract), {"action": "upgrade", "effective_on": "2026-11-01", "line": line.pk,
                                                "quantity": "90"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: body[k] for k in ("kind", "effective_on", "note", "created_by")} == {
        "kind": "upgrade", "effective_on": "2026-11-01", "note": "Seats: quantity 79 → 90", "created_by": None}
    assert versions(contract) == [("Seats", Decimal(79), SEP[0], date(2026, 10, 31)), ("Seats", Decimal(90), NOV[0], None)]
    assert november_draft(seats_world["tenant"]) == ("draft", Decimal("1350.00"), Decimal("1350.00"))
    timeline_json = api.get(changes_url(contract)).json()
    assert [(c["kind"], c["effective_on"], c["note"]) for c in timeline_json] == [
        ("new", "2026-09-01", "Team seats starts"), ("upgrade", "2026-11-01", "Seats: quantity 79 → 90")]


def test_add_line_over_the_api(api, seats_world):
    contract = seats_world["contract"]
    response = api.post(changes_url(contract), {
        "action": "add_line", "effective_on": "2026-11-01",
        "new_line": {"description": "Support", "kind": "recurring", "unit_price": {"amount": "200", "currency": "USD"}},
    }, format="json")
    assert response.status_code == 201
    assert timeline(contract)[-1] == ("upgrade", NOV[0], "Support added: 1 × $200.00")
    assert november_draft(seats_world["tenant"])[2] == Decimal("1385.00")


def test_a_retroactive_change_is_409_with_the_invoice_and_the_first_open_date(api, seats_world):
    contract, line = seats_world["contract"], seats_world["line"]
    number = seats_world["oct"].number
    expected = {
        "detail": f"2026-10-15 falls in a period already invoiced: invoice {number} (2026-10-01 – 2026-10-31) is "
        "finalized. History is never rewritten: date the change from 2026-11-01, the first open date, and correct "
        "the past with a credit note.",
        "invoice": number,
        "first_open_date": "2026-11-01",
    }
    response = api.post(changes_url(contract), {"action": "change_price", "effective_on": "2026-10-15", "line": line.pk,
                                                "unit_price": {"amount": "18", "currency": "USD"}}, format="json")
    assert (response.status_code, response.json()) == (409, expected)
    older = api.post(f"/api/v1/contracts/{contract.pk}/change-line/", {
        "line": line.pk, "effective_on": "2026-10-15", "unit_price": {"amount": "18", "currency": "USD"}}, format="json")
    assert (older.status_code, older.json()) == (409, expected)
    assert versions(contract) == [("Seats", Decimal(79), SEP[0], None)]
    assert timeline(contract) == [("new", SEP[0], "Team seats starts")]


def test_bad_change_requests_are_400(api, seats_world, tenant_b):
    contract, line = seats_world["contract"], seats_world["line"]
    post = lambda payload: api.post(changes_url(contract), payload, format="json")  # noqa: E731
    assert post({"action": "rewrite", "effective_on": "2026-11-01"}).status_code == 400
    missing = post({"action": "change_quantity", "effective_on": "2026-11-01", "line": line.pk})
    assert (missing.status_code, missing.json()) == (400, {"quantity": ["Give the new quantity."]})
    no_line = post({"action": "change_quantity", "effective_on": "2026-11-01", "line": 987654, "quantity": "2"})
    assert no_line.status_code == 400 and set(no_line.json()) == {"line"}
    early = post({"action": "cancel", "effective_on": "2026-09-01"})
    assert (early.status_code, early.json()) == (
        400, {"effective_on": ["The contract starts on 2026-09-01: cancel it from the day after."]})
    assert len(timeline(contract)) == 1
    with tenant_scope(tenant_b):  # seats_world runs the test in tenant A's scope, where B's rows are refused
        b_client = key_client(tenant_b)
    other = b_client.post(changes_url(contract), {"action": "cancel", "effective_on": "2026-12-01"}, format="json")
    assert other.status_code == 404


def test_a_draft_contract_stays_editable_over_the_api(tenant_a, tenant_b):
    customer = CustomerFactory(tenant=tenant_a, currency="USD")
    with tenant_scope(tenant_a):
        contract = contract_create(customer=customer, title="Draft", start_date=NOV[0], status=Contract.Status.DRAFT,
                                   lines=[LineSpec(description="Seats", kind=ContractLine.Kind.PER_SEAT,
                                                   quantity=Decimal(79), unit_price=Money("15.00", "USD"))])
    api = key_client(tenant_a)
    response = api.patch(f"/api/v1/contracts/{contract.pk}/", {
        "start_date": "2026-12-01",
        "lines": [{"description": "Seats", "kind": "per_seat", "quantity": "90",
                   "unit_price": {"amount": "15", "currency": "USD"}}],
    }, format="json")
    assert response.status_code == 200, response.json()
    assert [(line["quantity"], line["starts_on"]) for line in response.json()["lines"]] == [("90.0000", "2026-12-01")]
    assert versions(contract) == [("Seats", Decimal(90), date(2026, 12, 1), None)]
    refused = api.post(changes_url(contract), {"action": "cancel", "effective_on": "2026-12-05"}, format="json")
    assert refused.status_code == 400


def test_the_changes_endpoint_is_in_the_openapi_schema(db):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    path = schema["paths"]["/api/v1/contracts/{id}/changes/"]
    assert set(path) >= {"get", "post"}
    assert set(path["post"]["responses"]) == {"201", "400", "401", "403", "404", "409", "415", "429"}
    request = path["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][request]["properties"]) == {
        "action", "effective_on", "line", "quantity", "unit_price", "new_line"}
