"""``/api/v1/payments/``: record with allocations, refusals per field, roles, tenants; invoice status."""

from datetime import date
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.models import Payment
from billing.services import payment_record
from customers.models import Role
from customers.periods import tenant_today
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_invoice
from tests.customers.factories import CustomerFactory

D = Decimal
URL = "/api/v1/payments/"


@pytest.fixture
def acme(tenant_a):
    with platform_scope():
        northwind = CustomerFactory(tenant=tenant_a, name="Northwind")
        contoso = CustomerFactory(tenant=tenant_a, name="Contoso")
    october = build_invoice(northwind, lines=[("Platform fee", "1", "300.00")],
                            period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))
    november = build_invoice(northwind, lines=[("Platform fee", "1", "424.00")])
    return {"northwind": northwind, "contoso": contoso, "october": october, "november": november}


def api(member_factory, tenant, role=Role.FINANCE):
    client = APIClient()
    client.force_login(member_factory(tenant, role))
    return client


def usd(amount):
    return {"amount": amount, "currency": "USD"}


def body(acme, amount="500.00", **extra):
    return {"customer": acme["northwind"].pk, "amount": usd(amount), "received_on": "2026-12-02",
            "method": "bank_transfer", "reference": "OCR 4711", **extra}


def test_record_a_payment_over_two_invoices(member_factory, tenant_a, acme):
    client = api(member_factory, tenant_a)
    response = client.post(URL, body(acme, allocations=[
        {"invoice": acme["october"].pk, "amount": usd("300.00")},
        {"invoice": acme["november"].pk, "amount": usd("150.00")},
    ]), format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["amount"], data["unallocated"], data["method"], data["reference"]) == (
        usd("500.00"), usd("50.00"), "bank_transfer", "OCR 4711")
    assert [(a["invoice_number"], a["amount"]["amount"]) for a in data["allocations"]] == [
        (acme["october"].number, "300.00"), (acme["november"].number, "150.00")]

    november = client.get(f"/api/v1/invoices/{acme['november'].pk}/").json()
    october = client.get(f"/api/v1/invoices/{acme['october'].pk}/").json()
    late = tenant_today(tenant_a) > acme["november"].due_date
    assert (november["payment_status"], november["paid_total"]["amount"], november["amount_due"]["amount"]) == (
        "overdue" if late else "partially_paid", "150.00", "274.00")
    assert (october["status"], october["payment_status"], october["amount_due"]["amount"]) == ("paid", "paid", "0.00")


def test_without_allocations_the_oldest_open_invoices_are_paid(member_factory, tenant_a, acme):
    response = api(member_factory, tenant_a).post(URL, body(acme, amount="350.00"), format="json")
    assert [(a["invoice_number"], a["amount"]["amount"]) for a in response.json()["allocations"]] == [
        (acme["october"].number, "300.00"), (acme["november"].number, "50.00")]


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"amount": usd("-1.00")}, "amount", "cannot be negative"),
        ({"amount": usd("0.00")}, "amount", "greater than zero"),
        ({"amount": usd("1.001")}, "amount", "decimal"),
        ({"received_on": "2999-01-01"}, "received_on", "cannot be received in the future"),
        ({"method": "cheque"}, "method", "not a valid choice"),
        ({"customer": 999999}, "customer", "object does not exist"),
        ({"allocations": [{"invoice": "ACME"}]}, "allocations", "Incorrect type"),
        ({"allocations": [{"invoice": 0, "amount": {"amount": "1.00", "currency": "SEK"}}]}, "allocations", "object does not exist"),
    ],
)
def test_bad_input_is_a_400_on_its_field(member_factory, tenant_a, acme, change, field, message):
    response = api(member_factory, tenant_a).post(URL, {**body(acme), **change}, format="json")
    assert response.status_code == 400
    assert field in response.json() and message in str(response.json()[field])
    assert not Payment.objects.for_tenant(tenant_a).exists()


def test_refused_allocations_are_a_400_naming_the_invoice(member_factory, tenant_a, acme):
    client = api(member_factory, tenant_a)
    too_much = client.post(URL, body(acme, allocations=[{"invoice": acme["november"].pk, "amount": usd("424.01")}]), format="json")
    other_currency = client.post(URL, body(acme, allocations=[
        {"invoice": acme["november"].pk, "amount": {"amount": "10.00", "currency": "EUR"}}]), format="json")
    paid = client.post(URL, body(acme, amount="300.00"), format="json")  # pays October
    again = client.post(URL, body(acme, allocations=[{"invoice": acme["october"].pk}]), format="json")

    assert too_much.status_code == 400
    assert too_much.json() == {"allocations": [f"Invoice {acme['november'].number} owes 424.00 USD; 424.01 is more than that."]}
    assert other_currency.status_code == 400 and "payment's currency (USD)" in other_currency.json()["allocations"][0]
    assert paid.status_code == 201
    assert again.json() == {"allocations": [f"Invoice {acme['october'].number} is already paid."]}
    assert Payment.objects.for_tenant(tenant_a).count() == 1


def test_another_tenants_payments_customers_and_invoices_are_unknown(member_factory, tenant_a, tenant_b, acme):
    payment = payment_record(tenant=tenant_a, customer=acme["northwind"], amount=D("10.00"), received_on=date(2026, 12, 2))
    client = api(member_factory, tenant_b)

    assert client.get(URL).json()["count"] == 0
    assert client.get(f"{URL}{payment.pk}/").status_code == 404
    assert client.post(f"{URL}{payment.pk}/void/", {"reason": "x"}, format="json").status_code == 404
    foreign = client.post(URL, {**body(acme), "amount": {"amount": "5.00", "currency": "SEK"}}, format="json")
    assert foreign.status_code == 400 and "customer" in foreign.json()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ACCOUNT_MANAGER])
def test_roles_that_cannot_bill_read_but_cannot_record(member_factory, tenant_a, acme, role):
    payment = payment_record(tenant=tenant_a, customer=acme["northwind"], amount=D("10.00"), received_on=date(2026, 12, 2))
    client = api(member_factory, tenant_a, role)

    assert client.get(URL).status_code == 200
    assert client.post(URL, body(acme), format="json").status_code == 403
    assert client.post(f"{URL}{payment.pk}/void/", {"reason": "x"}, format="json").status_code == 403
    assert client.delete(f"{URL}{payment.pk}/").status_code in (403, 405)


def test_void_then_void_again_is_a_conflict(member_factory, tenant_a, acme):
    client = api(member_factory, tenant_a)
    created = client.post(URL, body(acme, amount="300.00"), format="json").json()

    void = client.post(f"{URL}{created['id']}/void/", {"reason": "Returned by the bank"}, format="json")
    again = client.post(f"{URL}{created['id']}/void/", {"reason": "again"}, format="json")
    blank = client.post(f"{URL}{created['id']}/void/", {}, format="json")

    assert (void.status_code, void.json()["void_reason"], void.json()["unallocated"]["amount"]) == (200, "Returned by the bank", "0.00")
    late = tenant_today(tenant_a) > acme["october"].due_date
    assert client.get(f"/api/v1/invoices/{acme['october'].pk}/").json()["payment_status"] == ("overdue" if late else "open")
    assert (again.status_code, blank.status_code) == (409, 400)


def test_filters_by_customer_and_date(member_factory, tenant_a, acme):
    payment_record(tenant=tenant_a, customer=acme["northwind"], amount=D("1.00"), received_on=date(2026, 11, 20), allocations=[])
    payment_record(tenant=tenant_a, customer=acme["contoso"], amount=D("2.00"), received_on=date(2026, 12, 2), allocations=[])
    client = api(member_factory, tenant_a)

    def amounts(**params):
        return [p["amount"]["amount"] for p in client.get(URL, params).json()["results"]]

    assert amounts(customer=acme["contoso"].pk) == ["2.00"]
    assert amounts(received_to="2026-11-30") == ["1.00"]
    assert amounts(received_from="2026-12-01") == ["2.00"]
    assert client.get(URL, {"received_from": "yesterday"}).status_code == 400
