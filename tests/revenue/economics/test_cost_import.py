"""Importing a month's cost to serve per customer: the service, the CSV reader, the API and the admin page.

All rows or none; every problem named with its row (CSV: the header is row 1); another tenant's
customer is "no customer"; viewers never write.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from customers.models import Role
from revenue.economics.cost_import import MAX_CSV_BYTES, MAX_ROWS, customer_costs_import, rows_from_csv
from revenue.models import CustomerCost
from tests.customers.factories import CustomerFactory
from tests.revenue.economics.test_api import key_client
from tests.two_factor import verified_login

MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)
IMPORT_URL = "/admin/revenue/customercost/import/"
CHANGELIST_URL = "/admin/revenue/customercost/"


@pytest.fixture
def customers(tenant_a, tenant_b):
    """Two customers of tenant A; tenant B has a customer whose ref tenant A does not have."""
    return {
        "acme": CustomerFactory(tenant=tenant_a, external_ref="acme", name="Acme AB"),
        "globex": CustomerFactory(tenant=tenant_a, external_ref="globex", name="Globex Inc"),
        "initech": CustomerFactory(tenant=tenant_b, external_ref="initech", name="Initech"),
    }


def stored(tenant):
    return sorted(
        CustomerCost.objects.for_tenant(tenant).values_list("customer__external_ref", "month", "amount", "source", "note")
    )


def refused(**kwargs) -> list[str]:
    with pytest.raises(ValidationError) as error:
        customer_costs_import(**kwargs)
    return error.value.messages


def row(customer="acme", month="2026-03", amount="100.00", **extra):
    return {"customer": customer, "month": month, "amount": amount, **extra}


# The service


def test_import_writes_exact_rows_and_counts(tenant_a, customers):
    result = customer_costs_import(tenant=tenant_a, rows=[
        row("acme", "2026-03", "1250.5", note=" cloud bill "),
        row("globex", "2026-03", "0"),
        row("acme", "2026-04", 12),
    ])

    assert result == {"created": 3, "updated": 0, "unchanged": 0}
    assert stored(tenant_a) == [
        ("acme", MARCH, Decimal("1250.50"), "imported", "cloud bill"),
        ("acme", APRIL, Decimal("12.00"), "imported", ""),
        ("globex", MARCH, Decimal("0.00"), "imported", ""),
    ]


def test_import_replaces_the_same_source_and_keeps_the_other(tenant_a, customers):
    CustomerCost.objects.create(tenant=tenant_a, customer=customers["acme"], month=MARCH, amount=Decimal("5"), source="imported", note="old")
    CustomerCost.objects.create(tenant=tenant_a, customer=customers["acme"], month=MARCH, amount=Decimal("7"), source="entered")

    result = customer_costs_import(tenant=tenant_a, rows=[row("acme", amount="6.25"), row("globex", amount="1")])

    assert result == {"created": 1, "updated": 1, "unchanged": 0}
    assert stored(tenant_a) == [
        ("acme", MARCH, Decimal("6.25"), "imported", ""),
        ("acme", MARCH, Decimal("7.00"), "entered", ""),
        ("globex", MARCH, Decimal("1.00"), "imported", ""),
    ]


def test_rerunning_the_same_rows_leaves_them_unchanged(tenant_a, customers):
    rows = [row("acme", amount="10.5", note="x"), row("globex", amount="20")]
    customer_costs_import(tenant=tenant_a, rows=rows)

    assert customer_costs_import(tenant=tenant_a, rows=rows) == {"created": 0, "updated": 0, "unchanged": 2}
    assert customer_costs_import(tenant=tenant_a, rows=[row("acme", amount="10.50")]) == {"created": 0, "updated": 1, "unchanged": 0}
    assert stored(tenant_a)[0] == ("acme", MARCH, Decimal("10.50"), "imported", "")


def test_entered_source_is_written_as_entered(tenant_a, customers):
    customer_costs_import(tenant=tenant_a, rows=[row()], source="entered")

    assert stored(tenant_a) == [("acme", MARCH, Decimal("100.00"), "entered", "")]


def test_every_problem_is_listed_with_its_row_and_nothing_is_written(tenant_a, customers):
    messages = refused(tenant=tenant_a, rows=[
        row("acme"),
        row("acme-x"),
        row("globex", month="2026-13"),
        row("globex", month="March"),
        row("acme", month="2026-04", amount="-3"),
        row("acme", month="2026-05", amount="abc"),
        row("acme", month="2026-06", amount="1.234"),
        row("acme", month="2026-07", amount="1,000.00"),
        {"customer": "acme", "month": "2026-08"},
        {"customer": "acme", "month": "2026-09", "amount": "1", "tenant": 2},
        row("acme"),
        row("globex", month="2026-10", note="n" * 201),
        {"customer": "", "month": "", "amount": ""},
        "acme,2026-03,1",
        row("acme", month="2026-11", amount="12345678901234567"),
    ])

    assert messages == [
        'Row 2: no customer "acme-x" in this tenant.',
        'Row 3: month "2026-13" is not a month; write it as YYYY-MM, e.g. 2026-03.',
        'Row 4: month "March" is not a month; write it as YYYY-MM, e.g. 2026-03.',
        'Row 5: amount "-3" is negative; a cost is 0 or more.',
        'Row 6: amount "abc" is not a number; write it like 1234.50 (no thousands separators).',
        'Row 7: amount "1.234" has more than 2 decimals; give whole cents.',
        'Row 8: amount "1,000.00" is not a number; write it like 1234.50 (no thousands separators).',
        "Row 9: amount is missing.",
        "Row 10: unknown field 'tenant'; the fields are customer, month, amount, note.",
        'Row 11: customer "acme" has a cost for 2026-03 on row 1 already; give each customer-month once.',
        "Row 12: note is 201 characters long; at most 200.",
        "Row 13: the row is empty; fill it in or delete it.",
        "Row 14: give an object with customer, month, amount and optionally note.",
        'Row 15: amount "12345678901234567" is too large: at most 16 digits before the decimal point.',
    ]
    assert stored(tenant_a) == []


def test_one_bad_row_keeps_existing_costs_as_they_were(tenant_a, customers):
    CustomerCost.objects.create(tenant=tenant_a, customer=customers["acme"], month=MARCH, amount=Decimal("5"), source="imported")

    assert refused(tenant=tenant_a, rows=[row("acme", amount="6"), row("globex", amount="-1")]) == [
        'Row 2: amount "-1" is negative; a cost is 0 or more.'
    ]
    assert stored(tenant_a) == [("acme", MARCH, Decimal("5.00"), "imported", "")]


def test_another_tenants_customer_is_no_customer(tenant_a, tenant_b, customers):
    assert refused(tenant=tenant_a, rows=[row("initech")]) == ['Row 1: no customer "initech" in this tenant.']
    assert stored(tenant_a) == [] and stored(tenant_b) == []


def test_missing_and_non_text_fields_are_named(tenant_a, customers):
    assert refused(tenant=tenant_a, rows=[
        {"note": "only a note"}, {"customer": 5, "month": "2026-03", "amount": True}, {"customer": "acme", "note": None},
    ]) == [
        "Row 1: customer, month and amount are missing.",
        "Row 2: customer must be text.",
        "Row 2: amount must be text.",
        "Row 3: month and amount are missing.",
    ]


def test_row_numbers_start_where_the_caller_says(tenant_a, customers):
    assert refused(tenant=tenant_a, rows=[row(), row("nobody")], first_row=2) == ['Row 3: no customer "nobody" in this tenant.']


def test_empty_and_oversized_imports_and_unknown_source_are_refused(tenant_a, customers):
    assert refused(tenant=tenant_a, rows=[]) == ["The import has no rows: nothing to do."]
    assert refused(tenant=tenant_a, rows=[row()] * (MAX_ROWS + 1)) == [
        f"The import has {MAX_ROWS + 1} rows; import at most {MAX_ROWS} at once."
    ]
    assert refused(tenant=tenant_a, rows=[row()], source="guessed") == ["source must be one of entered, imported (got 'guessed')."]


def test_import_queries_are_set_wise(tenant_a, tenant_b):
    for n in range(40):
        CustomerFactory(tenant=tenant_a, external_ref=f"c{n}")
    rows = [row(f"c{n}", amount=str(n)) for n in range(40)]
    customer_costs_import(tenant=tenant_a, rows=rows[:10])

    with CaptureQueriesContext(connection) as queries:
        result = customer_costs_import(tenant=tenant_a, rows=[row(f"c{n}", amount=str(n + 1)) for n in range(5)] + rows[5:])

    assert result == {"created": 30, "updated": 5, "unchanged": 5}
    # customers, existing costs, one upsert; plus the savepoint of the transaction
    assert [q["sql"].split()[0] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))] == [
        "SELECT", "SELECT", "INSERT",
    ]


# The CSV reader


def test_csv_rows_with_bom_any_column_order_and_optional_note(tenant_a, customers):
    text = "\ufeffMonth , customer,amount,\r\n2026-03,acme,10,\r\n2026-03,globex,\"2.50\"\r\n\r\n"

    rows = rows_from_csv(text.encode())

    assert rows == [
        {"month": "2026-03", "customer": "acme", "amount": "10"},
        {"month": "2026-03", "customer": "globex", "amount": "2.50"},
    ]


def test_csv_blank_line_keeps_its_row_number(tenant_a, customers):
    rows = rows_from_csv("customer,month,amount,note\nacme,2026-03,1,\n\nnobody,2026-03,1,\n")

    assert refused(tenant=tenant_a, rows=rows, first_row=2) == [
        "Row 3: the row is empty; fill it in or delete it.",
        'Row 4: no customer "nobody" in this tenant.',
    ]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "The file is empty; the first row must be the header customer,month,amount,note."),
    (b"acme,2026-03,10\n", "The first row must be the header customer,month,amount,note (note optional); missing columns customer, month, amount."),
    (b"customer,month\nacme,2026-03\n", "The first row must be the header customer,month,amount,note (note optional); missing column amount."),
    (b"customer,month,amount,vat\n", "Unknown column 'vat'; the columns are customer,month,amount,note."),
    (b"customer,month,amount,amount\n", "The column amount appears twice in the header."),
    (b"customer;month;amount\nacme;2026-03;10\n", 'The file is separated by semicolons; save it as "CSV UTF-8 (comma-delimited)".'),
    (b"%PDF-1.4\x00\x01\x02", "This is not a CSV text file; save the sheet as CSV UTF-8."),
    ("customer,month,amount\nålö,2026-03,1\n".encode("latin-1"), "The file is not UTF-8 text; save the sheet as CSV UTF-8."),
    (b"customer,month,amount\nacme,2026-03,1,extra\n", "Row 2: 4 cells but the header has 3 columns."),
])
def test_csv_problems_of_the_file_itself(content, message):
    with pytest.raises(ValidationError) as error:
        rows_from_csv(SimpleUploadedFile("costs.csv", content))

    assert error.value.messages == [message]


def test_csv_too_large_or_too_many_rows():
    with pytest.raises(ValidationError) as too_big:
        rows_from_csv("customer,month,amount\n" + "x" * MAX_CSV_BYTES)
    with pytest.raises(ValidationError) as too_long:
        rows_from_csv("customer,month,amount\n" + "acme,2026-03,1\n" * (MAX_ROWS + 1))

    assert too_big.value.messages == ["The file is larger than 5 MB; split it."]
    assert too_long.value.messages == [f"The file has {MAX_ROWS + 1} rows of costs; import at most {MAX_ROWS} at once."]


# The API


def test_api_import_writes_and_counts(tenant_a, customers):
    body = {"costs": [row("acme", amount="10.10", note="n"), row("globex", amount=3)]}

    first = key_client(tenant_a).post("/api/v1/economics/costs/", body, format="json")
    again = key_client(tenant_a).post("/api/v1/economics/costs/", {**body, "source": "imported"}, format="json")

    assert (first.status_code, first.json()) == (200, {"created": 2, "updated": 0, "unchanged": 0})
    assert (again.status_code, again.json()) == (200, {"created": 0, "updated": 0, "unchanged": 2})
    assert stored(tenant_a) == [
        ("acme", MARCH, Decimal("10.10"), "imported", "n"),
        ("globex", MARCH, Decimal("3.00"), "imported", ""),
    ]


def test_api_import_with_a_bad_row_is_400_with_every_error(tenant_a, customers):
    response = key_client(tenant_a).post(
        "/api/v1/economics/costs/",
        {"costs": [row("acme"), row("initech"), row("globex", amount="1.001")], "source": "entered"}, format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Nothing was imported: 2 problems to fix.",
        "errors": ['Row 2: no customer "initech" in this tenant.', 'Row 3: amount "1.001" has more than 2 decimals; give whole cents.'],
    }
    assert stored(tenant_a) == []


@pytest.mark.parametrize(("body", "detail"), [
    ({}, '"costs" must be a list of {customer, month, amount, note} objects.'),
    ({"costs": {"customer": "acme"}}, '"costs" must be a list of {customer, month, amount, note} objects.'),
    ([row()], 'Send a JSON object: {"costs": [...], "source": "imported"}.'),
    ({"costs": [row()], "source": "guessed"}, '"source" must be one of entered, imported.'),
    ({"costs": [row()], "tenant": 1}, 'Unknown field(s) tenant; send "costs" and optionally "source".'),
    ({"costs": []}, "Nothing was imported: 1 problem to fix."),
])
def test_api_import_malformed_body_is_400(tenant_a, customers, body, detail):
    response = key_client(tenant_a).post("/api/v1/economics/costs/", body, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert stored(tenant_a) == []


def test_api_import_broken_json_is_400(tenant_a):
    response = key_client(tenant_a).post("/api/v1/economics/costs/", "{costs: [", content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_api_import_of_a_huge_body_is_413_unread(tenant_a, customers):
    response = key_client(tenant_a).post(
        "/api/v1/economics/costs/", '{"costs": []}' + " " * (8 * 1024 * 1024), content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json()["detail"] == f"The body is larger than 8 MB; send at most {MAX_ROWS} rows at once."


def test_api_import_schema_is_documented():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    costs = schema["paths"]["/api/v1/economics/costs/"]

    assert set(costs) == {"get", "post"}
    assert set(costs["post"]["responses"]) == {"200", "400", "401", "403", "409", "413", "415", "429"}


def test_api_lists_the_months_costs_of_the_tenant_only(tenant_a, tenant_b, customers):
    customer_costs_import(tenant=tenant_a, rows=[row("globex", amount="2.5", note="n"), row("acme", month="2026-04")])
    customer_costs_import(tenant=tenant_a, rows=[row("acme", amount="7")], source="entered")
    customer_costs_import(tenant=tenant_b, rows=[row("initech")])

    response = key_client(tenant_a).get("/api/v1/economics/costs/?month=2026-03")

    assert response.status_code == 200
    assert response.json() == {"month": "2026-03", "costs": [
        {"customer": "acme", "name": "Acme AB", "month": "2026-03", "amount": "7.00", "source": "entered", "note": ""},
        {"customer": "globex", "name": "Globex Inc", "month": "2026-03", "amount": "2.50", "source": "imported", "note": "n"},
    ]}
    assert key_client(tenant_a).get("/api/v1/economics/costs/?month=03-2026").status_code == 400


def staff_api(tenant, member_factory, role):
    client = APIClient()
    client.force_login(member_factory(tenant, role))
    return client


def test_api_viewer_may_list_but_not_import(tenant_a, customers, member_factory):
    client = staff_api(tenant_a, member_factory, Role.VIEWER)

    assert client.get("/api/v1/economics/costs/?month=2026-03").status_code == 200
    response = client.post("/api/v1/economics/costs/", {"costs": [row()]}, format="json")
    assert response.status_code == 403
    assert stored(tenant_a) == []


def test_api_owner_session_may_import(tenant_a, customers, member_factory):
    response = staff_api(tenant_a, member_factory, Role.OWNER).post("/api/v1/economics/costs/", {"costs": [row()]}, format="json")

    assert (response.status_code, response.json()) == (200, {"created": 1, "updated": 0, "unchanged": 0})


@pytest.mark.parametrize("role", Role.values)
def test_owners_and_finance_import_costs_everywhere_the_others_nowhere(tenant_a, customers, member_factory, role):
    user = member_factory(tenant_a, role)
    api, admin = APIClient(), Client()
    api.force_login(user)
    admin.force_login(user)

    may_add = admin.get("/admin/revenue/customercost/add/").status_code
    api_import = api.post("/api/v1/economics/costs/", {"costs": [row()]}, format="json").status_code
    admin_import = admin.get(IMPORT_URL).status_code

    # Cost to serve is money: owners and finance keep it (customers/roles.py), the others read it.
    expected = {Role.OWNER: 200, Role.FINANCE: 200, Role.ACCOUNT_MANAGER: 403, Role.VIEWER: 403}[role]
    assert (may_add, api_import, admin_import) == (expected, expected, expected)


# The admin


def owner_admin(tenant, member_factory, role=Role.OWNER):
    client = Client()
    client.force_login(member_factory(tenant, role))
    return client


def upload(client, content: bytes, source="imported"):
    return client.post(IMPORT_URL, {"file": SimpleUploadedFile("march.csv", content, "text/csv"), "source": source}, follow=True)


def test_admin_changelist_offers_the_import_to_editors_only(tenant_a, member_factory):
    owner = owner_admin(tenant_a, member_factory).get(CHANGELIST_URL).content.decode()
    viewer = owner_admin(tenant_a, member_factory, Role.VIEWER).get(CHANGELIST_URL).content.decode()

    assert f'href="{IMPORT_URL}"' in owner and "Import costs (CSV)" in owner
    assert "Import costs (CSV)" not in viewer


def test_admin_import_page_has_the_form(tenant_a, member_factory):
    body = owner_admin(tenant_a, member_factory).get(IMPORT_URL).content.decode()

    assert 'enctype="multipart/form-data"' in body and 'name="csrfmiddlewaretoken"' in body
    assert 'type="file" name="file"' in body and 'name="source"' in body and 'name="tenant"' not in body


def test_admin_upload_imports_and_reports_counts(tenant_a, customers, member_factory):
    client = owner_admin(tenant_a, member_factory)
    CustomerCost.objects.create(tenant=tenant_a, customer=customers["acme"], month=MARCH, amount=Decimal("1"), source="entered")

    response = upload(client, b"customer,month,amount,note\nacme,2026-03,1250.00,cloud bill\nglobex,2026-03,3,\n", "entered")

    assert response.redirect_chain == [(CHANGELIST_URL, 302)]
    assert "Costs imported from march.csv: 1 created, 1 updated, 0 unchanged." in response.content.decode()
    assert stored(tenant_a) == [
        ("acme", MARCH, Decimal("1250.00"), "entered", "cloud bill"),
        ("globex", MARCH, Decimal("3.00"), "entered", ""),
    ]


def test_admin_upload_with_bad_rows_lists_them_and_writes_nothing(tenant_a, customers, member_factory):
    response = upload(
        owner_admin(tenant_a, member_factory),
        b"customer,month,amount\nacme,2026-03,10\ninitech,2026-03,1\nglobex,2026/03,-1\n",
    )
    body = response.content.decode()

    assert response.status_code == 200 and response.redirect_chain == []
    assert "Nothing was imported: 3 problems to fix" in body
    assert "<li>Row 3: no customer &quot;initech&quot; in this tenant.</li>" in body
    assert "<li>Row 4: month &quot;2026/03&quot; is not a month; write it as YYYY-MM, e.g. 2026-03.</li>" in body
    assert "<li>Row 4: amount &quot;-1&quot; is negative; a cost is 0 or more.</li>" in body
    assert stored(tenant_a) == []


def test_admin_upload_of_a_non_csv_file_is_a_form_error(tenant_a, member_factory):
    response = upload(owner_admin(tenant_a, member_factory), b"\x89PNG\r\n\x1a\n\x00\x00")

    assert response.status_code == 200
    assert "This is not a CSV text file; save the sheet as CSV UTF-8." in response.content.decode()


def test_admin_upload_without_a_file_is_a_form_error(tenant_a, member_factory):
    response = owner_admin(tenant_a, member_factory).post(IMPORT_URL, {"source": "imported"})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()


def test_admin_viewer_may_not_import(tenant_a, customers, member_factory):
    client = owner_admin(tenant_a, member_factory, Role.VIEWER)

    assert client.get(IMPORT_URL).status_code == 403
    assert upload(client, b"customer,month,amount\nacme,2026-03,10\n").status_code == 403
    assert stored(tenant_a) == []


def test_admin_import_into_another_tenants_customers_finds_no_customer(tenant_b, customers, member_factory):
    response = upload(owner_admin(tenant_b, member_factory), b"customer,month,amount\nacme,2026-03,10\n")

    assert '<li>Row 2: no customer &quot;acme&quot; in this tenant.</li>' in response.content.decode()


def test_platform_superuser_picks_the_tenant_to_import_into(tenant_a, tenant_b, customers):
    client = Client()
    verified_login(client, get_user_model().objects.create_superuser("platform", "platform@example.com", "pass-word-123"))
    csv_file = SimpleUploadedFile("b.csv", b"customer,month,amount\ninitech,2026-03,4.5\n", "text/csv")

    page = client.get(IMPORT_URL).content.decode()
    response = client.post(IMPORT_URL, {"tenant": tenant_b.pk, "file": csv_file, "source": "imported"})

    assert 'name="tenant"' in page
    assert response.status_code == 302
    assert stored(tenant_b) == [("initech", MARCH, Decimal("4.50"), "imported", "")] and stored(tenant_a) == []
