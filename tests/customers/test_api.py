"""The REST API for customers, contacts and contracts: exact shapes, codes and tenant isolation."""

from datetime import date

import pytest

from customers.models import Contact, Contract, ContractLine, Customer, Role
from customers.money import Money
from customers.tenancy import platform_scope
from tests.api_clients import key_client
from tests.customers.factories import ContactFactory, ContractFactory, ContractLineFactory, CustomerFactory


@pytest.fixture
def api_a(tenant_a):
    return key_client(tenant_a)


@pytest.fixture
def customer_a(tenant_a):
    return CustomerFactory(tenant=tenant_a, name="Alpha Inc", external_ref="alpha", currency="USD")


@pytest.fixture
def customer_b(tenant_b):
    return CustomerFactory(tenant=tenant_b, name="Beta Hemlig AB", external_ref="beta", currency="SEK")


def contract_payload(customer, **overrides):
    payload = {
        "customer": customer.pk,
        "title": "Platform subscription",
        "start_date": "2026-01-01",
        "lines": [
            {"description": "Platform fee", "kind": "recurring", "unit_price": {"amount": "500.00", "currency": "USD"}},
            {
                "description": "Seats",
                "kind": "per_seat",
                "quantity": "12",
                "unit_price": {"amount": "29.99", "currency": "USD"},
            },
        ],
    }
    return {**payload, **overrides}


def count(model):
    with platform_scope():
        return model.objects.count()


# Customers


def test_create_customer_answers_201_with_the_stored_fields(api_a, tenant_a):
    response = api_a.post(
        "/api/v1/customers/",
        {
            "name": "Gamma Ltd",
            "reference": "gamma",
            "currency": "USD",
            "country": "GB",
            "tier": "Mid",
            "segment": "mid-market",
            "billing_emails": ["ap@gamma.example.com"],
            "acquisition_cost": {"amount": "1500", "currency": "USD"},
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: v for k, v in body.items() if k not in ("id", "created_at", "updated_at")} == {
        "name": "Gamma Ltd",
        "reference": "gamma",
        "org_number": "",
        "vat_number": "",
        "peppol_id": "",
        "is_business": True,
        "billing_emails": ["ap@gamma.example.com"],
        "address_line1": "",
        "address_line2": "",
        "postal_code": "",
        "city": "",
        "country": "GB",
        "currency": "USD",
        "language": "en",
        "einvoice_format": "pdf",
        "segment": "mid-market",
        "tier": "Mid",
        "account_manager": None,
        "first_contact_on": None,
        "acquisition_cost": {"amount": "1500.00", "currency": "USD"},
    }
    customer = Customer.objects.for_tenant(tenant_a).get(pk=body["id"])
    assert (customer.tenant, customer.external_ref, customer.acquisition_cost) == (
        tenant_a,
        "gamma",
        Money("1500.00", "USD"),
    )


def test_duplicate_customer_reference_is_refused_with_a_message(api_a, customer_a):
    payload = {"name": "Again", "reference": "alpha", "currency": "USD"}

    response = api_a.post("/api/v1/customers/", payload, format="json")

    assert response.status_code == 400
    assert response.json() == {"reference": ["A customer with this reference already exists."]}


def test_the_same_reference_is_free_in_another_tenant(api_a, customer_b):
    payload = {"name": "Beta US", "reference": "beta", "currency": "USD"}

    response = api_a.post("/api/v1/customers/", payload, format="json")

    assert response.status_code == 201


def test_unknown_currency_is_refused_with_a_message(api_a):
    response = api_a.post("/api/v1/customers/", {"name": "X", "reference": "x", "currency": "XYZ"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "currency": ['Unknown currency "XYZ"; use one of USD, EUR, SEK, GBP, NOK, DKK, CHF, JPY, CAD, AUD.']
    }


def test_acquisition_cost_in_another_currency_is_refused_by_the_model(api_a):
    response = api_a.post(
        "/api/v1/customers/",
        {"name": "X", "reference": "x", "currency": "USD", "acquisition_cost": {"amount": "10", "currency": "EUR"}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"acquisition_cost": ["Acquisition cost must be in the customer's currency."]}


def test_malformed_money_is_refused_per_part(api_a):
    response = api_a.post(
        "/api/v1/customers/",
        {"name": "X", "reference": "x", "currency": "USD", "acquisition_cost": {"amount": "1.234", "currency": "usd"}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "acquisition_cost": {
            "amount": ["Ensure there are no more than 2 decimal places."],
            "currency": ['Unknown currency "usd"; use one of USD, EUR, SEK, GBP, NOK, DKK, CHF, JPY, CAD, AUD.'],
        }
    }


def test_a_client_supplied_tenant_is_refused(api_a, tenant_b):
    response = api_a.post(
        "/api/v1/customers/",
        {"name": "X", "reference": "x", "currency": "USD", "tenant": tenant_b.pk},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"tenant": ["The tenant comes from your credentials and cannot be set."]}
    assert count(Customer) == 0


def test_account_manager_must_be_a_member_of_the_tenant(api_a, tenant_a, tenant_b, member_factory):
    own = member_factory(tenant_a, Role.ACCOUNT_MANAGER)
    foreign = member_factory(tenant_b, Role.ACCOUNT_MANAGER)

    refused = api_a.post(
        "/api/v1/customers/",
        {"name": "X", "reference": "x", "currency": "USD", "account_manager": foreign.pk},
        format="json",
    )
    accepted = api_a.post(
        "/api/v1/customers/",
        {"name": "Y", "reference": "y", "currency": "USD", "account_manager": own.pk},
        format="json",
    )

    assert refused.status_code == 400
    assert refused.json() == {"account_manager": [f'Invalid pk "{foreign.pk}" - object does not exist.']}
    assert accepted.status_code == 201
    assert accepted.json()["account_manager"] == own.pk


def test_patch_customer_changes_only_the_given_fields(api_a, customer_a):
    response = api_a.patch(f"/api/v1/customers/{customer_a.pk}/", {"tier": "Enterprise"}, format="json")

    assert response.status_code == 200
    assert (response.json()["tier"], response.json()["name"]) == ("Enterprise", "Alpha Inc")
    customer_a.refresh_from_db()
    assert customer_a.tier == "Enterprise"


def test_delete_customer_answers_204(api_a, customer_a, tenant_a):
    response = api_a.delete(f"/api/v1/customers/{customer_a.pk}/")

    assert response.status_code == 204
    assert not Customer.objects.for_tenant(tenant_a).exists()


def test_delete_customer_with_contracts_answers_409(api_a, customer_a):
    ContractFactory(customer=customer_a)

    response = api_a.delete(f"/api/v1/customers/{customer_a.pk}/")

    assert response.status_code == 409
    assert response.json() == {"detail": "This object is still referenced by other records and cannot be deleted."}


def test_customer_list_is_paginated_50_a_page(api_a, tenant_a, tenant_b):
    CustomerFactory.create_batch(51, tenant=tenant_a)
    CustomerFactory(tenant=tenant_b)

    body = api_a.get("/api/v1/customers/").json()

    assert set(body) == {"count", "next", "previous", "results"}
    assert (body["count"], len(body["results"]), body["previous"]) == (51, 50, None)
    assert body["next"] == "http://testserver/api/v1/customers/?page=2"


def test_customer_list_page_size_can_be_asked_for(api_a, tenant_a):
    CustomerFactory.create_batch(3, tenant=tenant_a)

    body = api_a.get("/api/v1/customers/?page_size=2&page=2").json()

    assert (body["count"], len(body["results"]), body["next"]) == (3, 1, None)
    assert body["previous"] == "http://testserver/api/v1/customers/?page_size=2"


def test_customers_filter_by_tier_segment_country_and_currency(api_a, tenant_a):
    CustomerFactory(tenant=tenant_a, name="Match", tier="Mid", segment="smb", country="SE", currency="SEK")
    CustomerFactory(tenant=tenant_a, name="Other tier", tier="Early", segment="smb", country="SE", currency="SEK")
    CustomerFactory(tenant=tenant_a, name="Other country", tier="Mid", segment="smb", country="US", currency="SEK")

    body = api_a.get("/api/v1/customers/?tier=Mid&segment=smb&country=SE&currency=SEK").json()

    assert [c["name"] for c in body["results"]] == ["Match"]


def test_customers_filter_by_account_manager(api_a, tenant_a, member_factory):
    manager = member_factory(tenant_a)
    CustomerFactory(tenant=tenant_a, name="Managed", account_manager=manager)
    CustomerFactory(tenant=tenant_a, name="Unmanaged")

    body = api_a.get(f"/api/v1/customers/?account_manager={manager.pk}").json()

    assert [c["name"] for c in body["results"]] == ["Managed"]


def test_customers_search_by_name_or_reference_and_order(api_a, tenant_a):
    CustomerFactory(tenant=tenant_a, name="Zeta Widgets", external_ref="zw")
    CustomerFactory(tenant=tenant_a, name="Acme Widgets", external_ref="aw")
    CustomerFactory(tenant=tenant_a, name="Nothing", external_ref="widgets-legacy")
    CustomerFactory(tenant=tenant_a, name="Unrelated", external_ref="u")

    names = [c["name"] for c in api_a.get("/api/v1/customers/?search=widgets&ordering=-name").json()["results"]]

    assert names == ["Zeta Widgets", "Nothing", "Acme Widgets"]


# Isolation


def test_another_tenants_customer_is_404_to_read_change_and_delete(api_a, customer_b):
    url = f"/api/v1/customers/{customer_b.pk}/"

    responses = [api_a.get(url), api_a.patch(url, {"name": "Taken"}, format="json"), api_a.delete(url)]

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert all("Beta" not in r.content.decode() for r in responses)
    customer_b.refresh_from_db()
    assert customer_b.name == "Beta Hemlig AB"


def test_contract_for_another_tenants_customer_fails_as_if_it_did_not_exist(api_a, customer_b):
    missing_pk = customer_b.pk + 1000

    foreign = api_a.post("/api/v1/contracts/", contract_payload(customer_b), format="json")
    nobody = api_a.post("/api/v1/contracts/", {**contract_payload(customer_b), "customer": missing_pk}, format="json")

    assert foreign.status_code == nobody.status_code == 400
    assert foreign.json() == {"customer": [f'Invalid pk "{customer_b.pk}" - object does not exist.']}
    assert nobody.json() == {"customer": [f'Invalid pk "{missing_pk}" - object does not exist.']}
    assert "Beta" not in foreign.content.decode()
    assert count(Contract) == 0


def test_contact_for_another_tenants_customer_is_refused(api_a, customer_b):
    response = api_a.post("/api/v1/contacts/", {"customer": customer_b.pk, "name": "Spy"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"customer": [f'Invalid pk "{customer_b.pk}" - object does not exist.']}
    assert count(Contact) == 0


def test_list_filters_and_search_cannot_reach_another_tenant(api_a, customer_a, customer_b):
    ContactFactory(customer=customer_b, name="Hidden contact")
    ContractFactory(customer=customer_b)

    assert api_a.get(f"/api/v1/contacts/?customer={customer_b.pk}").json()["count"] == 0
    assert api_a.get(f"/api/v1/contracts/?customer={customer_b.pk}").json()["count"] == 0
    assert api_a.get("/api/v1/customers/?search=Beta").json()["count"] == 0
    assert api_a.get("/api/v1/customers/?currency=SEK").json()["count"] == 0


# Contacts


def test_create_and_filter_contacts_by_customer(api_a, tenant_a, customer_a):
    other = CustomerFactory(tenant=tenant_a)
    ContactFactory(customer=other, name="Someone else")

    created = api_a.post(
        "/api/v1/contacts/",
        {"customer": customer_a.pk, "name": "Ada", "email": "ada@alpha.example.com", "is_billing_contact": True},
        format="json",
    )
    listed = api_a.get(f"/api/v1/contacts/?customer={customer_a.pk}").json()

    assert created.status_code == 201
    assert {k: v for k, v in created.json().items() if k != "id"} == {
        "customer": customer_a.pk,
        "name": "Ada",
        "email": "ada@alpha.example.com",
        "phone": "",
        "title": "",
        "is_billing_contact": True,
    }
    assert [c["name"] for c in listed["results"]] == ["Ada"]


# Contracts


def test_create_contract_with_two_lines_answers_201_with_exact_amounts(api_a, tenant_a, customer_a):
    response = api_a.post("/api/v1/contracts/", contract_payload(customer_a, notes="Signed at the fair"), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: v for k, v in body.items() if k not in ("id", "created_at", "lines")} == {
        "customer": customer_a.pk,
        "customer_name": "Alpha Inc",
        "reference": "C-00001",
        "title": "Platform subscription",
        "status": "active",
        "currency": "USD",
        "billing_interval": 1,
        "start_date": "2026-01-01",
        "end_date": None,
        "auto_renew": False,
        "renewal_term_months": None,
        "signed_on": None,
        "notes": "Signed at the fair",
    }
    assert [{k: v for k, v in line.items() if k != "id"} for line in body["lines"]] == [
        {
            "description": "Platform fee",
            "kind": "recurring",
            "quantity": "1.0000",
            "unit_price": {"amount": "500.00", "currency": "USD"},
            "discount_percent": None,
            "starts_on": "2026-01-01",
            "ends_on": None,
        },
        {
            "description": "Seats",
            "kind": "per_seat",
            "quantity": "12.0000",
            "unit_price": {"amount": "29.99", "currency": "USD"},
            "discount_percent": None,
            "starts_on": "2026-01-01",
            "ends_on": None,
        },
    ]
    lines = ContractLine.objects.for_tenant(tenant_a).order_by("id")
    assert [(line.unit_price, line.quantity) for line in lines] == [
        (Money("500.00", "USD"), 1),
        (Money("29.99", "USD"), 12),
    ]


def test_contract_line_in_another_currency_is_refused_and_nothing_saved(api_a, customer_a):
    payload = contract_payload(customer_a)
    payload["lines"][1]["unit_price"] = {"amount": "29.99", "currency": "EUR"}

    response = api_a.post("/api/v1/contracts/", payload, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "lines": [{}, {"unit_price": ["The line's currency (EUR) differs from the contract's (USD)."]}]
    }
    assert (count(Contract), count(ContractLine)) == (0, 0)


def test_contract_ending_before_it_starts_is_refused(api_a, customer_a):
    response = api_a.post("/api/v1/contracts/", contract_payload(customer_a, end_date="2025-12-31"), format="json")

    assert response.status_code == 400
    assert response.json() == {"end_date": ["The end date cannot be before the start date."]}
    assert count(Contract) == 0


def test_contract_without_lines_is_refused(api_a, customer_a):
    response = api_a.post("/api/v1/contracts/", contract_payload(customer_a, lines=[]), format="json")

    assert response.status_code == 400
    assert response.json() == {"lines": {"non_field_errors": ["This list may not be empty."]}}


def test_line_starting_before_its_contract_is_refused_by_the_service(api_a, customer_a):
    payload = contract_payload(customer_a)
    payload["lines"][0]["starts_on"] = "2025-06-01"

    response = api_a.post("/api/v1/contracts/", payload, format="json")

    assert response.status_code == 400
    assert response.json() == {"starts_on": ["A line cannot start before its contract."]}
    assert (count(Contract), count(ContractLine)) == (0, 0)


def test_duplicate_contract_reference_is_refused(api_a, customer_a):
    ContractFactory(customer=customer_a, reference="C-77")

    response = api_a.post("/api/v1/contracts/", contract_payload(customer_a, reference="C-77"), format="json")

    assert response.status_code == 400
    assert response.json() == {"reference": ["A contract with this reference already exists."]}


def test_cancel_contract_ends_it_and_its_lines(api_a, customer_a):
    contract = ContractFactory(customer=customer_a, start_date=date(2025, 1, 1))
    ContractLineFactory(contract=contract)

    response = api_a.post(f"/api/v1/contracts/{contract.pk}/cancel/", {"last_day": "2025-06-30"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["end_date"]) == ("cancelled", "2025-06-30")
    assert [line["ends_on"] for line in body["lines"]] == ["2025-06-30"]


def test_cancel_before_the_contract_starts_is_refused(api_a, customer_a):
    contract = ContractFactory(customer=customer_a, start_date=date(2025, 1, 1))

    response = api_a.post(f"/api/v1/contracts/{contract.pk}/cancel/", {"last_day": "2024-12-31"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"last_day": ["A contract cannot end before it starts."]}


def test_cancel_without_a_last_day_is_refused(api_a, customer_a):
    contract = ContractFactory(customer=customer_a)

    response = api_a.post(f"/api/v1/contracts/{contract.pk}/cancel/", {}, format="json")

    assert response.status_code == 400
    assert response.json() == {"last_day": ["This field is required."]}


def test_change_line_starts_a_new_price_version(api_a, customer_a):
    contract = ContractFactory(customer=customer_a, start_date=date(2025, 1, 1))
    line = ContractLineFactory(contract=contract, quantity=10, unit_price=Money("15.00", "USD"))

    response = api_a.post(
        f"/api/v1/contracts/{contract.pk}/change-line/",
        {"line": line.pk, "effective_on": "2025-04-01", "quantity": "25"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    versions = [
        (v["quantity"], v["unit_price"]["amount"], v["starts_on"], v["ends_on"]) for v in response.json()["lines"]
    ]
    assert versions == [
        ("10.0000", "15.00", "2025-01-01", "2025-03-31"),
        ("25.0000", "15.00", "2025-04-01", None),
    ]


def test_change_line_of_another_contract_is_refused(api_a, customer_a):
    contract = ContractFactory(customer=customer_a)
    other_line = ContractLineFactory(contract=ContractFactory(customer=customer_a))

    response = api_a.post(
        f"/api/v1/contracts/{contract.pk}/change-line/",
        {"line": other_line.pk, "effective_on": "2025-04-01", "quantity": "2"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"line": [f'Invalid pk "{other_line.pk}" - object does not exist.']}


def test_change_line_without_a_change_is_refused(api_a, customer_a):
    line = ContractLineFactory(contract=ContractFactory(customer=customer_a))

    response = api_a.post(
        f"/api/v1/contracts/{line.contract_id}/change-line/",
        {"line": line.pk, "effective_on": "2025-04-01"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Give a new quantity or a new unit price."]}


def test_change_line_price_in_another_currency_is_refused(api_a, customer_a):
    line = ContractLineFactory(contract=ContractFactory(customer=customer_a, start_date=date(2025, 1, 1)))

    response = api_a.post(
        f"/api/v1/contracts/{line.contract_id}/change-line/",
        {"line": line.pk, "effective_on": "2025-04-01", "unit_price": {"amount": "120", "currency": "EUR"}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"unit_price": ["The line's currency (EUR) differs from its contract's (USD)."]}
    assert ContractLine.objects.for_tenant(customer_a.tenant).get().ends_on is None


def test_patch_contract_changes_descriptive_fields_only(api_a, customer_a):
    contract = ContractFactory(customer=customer_a, start_date=date(2025, 1, 1), title="Old")
    url = f"/api/v1/contracts/{contract.pk}/"

    refused = api_a.patch(url, {"title": "New", "start_date": "2020-01-01"}, format="json")
    response = api_a.patch(url, {"title": "New"}, format="json")

    # A started contract's dates change only as dated changes (tests/customers/test_api_contract_changes.py).
    assert (refused.status_code, refused.json()["fields"]) == (409, ["start_date"])
    assert response.status_code == 200
    assert (response.json()["title"], response.json()["start_date"]) == ("New", "2025-01-01")


def test_contracts_cannot_be_deleted(api_a, customer_a):
    contract = ContractFactory(customer=customer_a)

    assert api_a.delete(f"/api/v1/contracts/{contract.pk}/").status_code == 405


def test_activate_a_draft_contract(api_a, customer_a):
    contract = ContractFactory(customer=customer_a, status=Contract.Status.DRAFT)

    response = api_a.post(f"/api/v1/contracts/{contract.pk}/activate/")

    assert response.status_code == 200
    assert response.json()["status"] == "active"


def test_contract_list_query_count_does_not_grow_with_contracts(api_a, tenant_a, django_assert_num_queries):
    for _ in range(3):
        contract = ContractFactory(customer=CustomerFactory(tenant=tenant_a))
        ContractLineFactory.create_batch(2, contract=contract)

    # API key, its tenant, the view's savepoint and its release (one transaction per request), count,
    # contracts with customers, their lines.
    with django_assert_num_queries(7):
        response = api_a.get("/api/v1/contracts/")

    assert [len(c["lines"]) for c in response.json()["results"]] == [2, 2, 2]
