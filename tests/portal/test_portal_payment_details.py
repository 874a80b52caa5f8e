"""The customer portal's invoice page says how to pay while something is due: bankgiro and the
invoice's OCR number for a tenant paid by bankgiro, IBAN and the invoice number for one paid by IBAN."""

import pytest

from billing.services import billing_payment_details_set, invoice_mark_paid
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_invoice
from tests.customers.factories import CustomerFactory, PortalAccessFactory, UserFactory


@pytest.fixture
def customers(tenant_a, tenant_b):
    billing_payment_details_set(tenant=tenant_b, payment_method="bankgiro", bankgiro="123-4566")
    billing_payment_details_set(tenant=tenant_a, payment_method="iban", iban="SE4550000000058398257466", bic="ESSESESS")
    with platform_scope():
        swedish = CustomerFactory(tenant=tenant_b, name="Sjöberg AB", language="sv", currency="SEK", external_ref="sjoberg")
        american = CustomerFactory(tenant=tenant_a, name="Northwind", language="en", external_ref="northwind")
        for customer in (swedish, american):
            PortalAccessFactory(customer=customer, tenant=customer.tenant, user=UserFactory(username=customer.external_ref))
    return {"se": swedish, "us": american}


def page(client, customer, invoice) -> str:
    with platform_scope():
        user = customer.portal_accesses.get().user
    client.force_login(user)
    response = client.get(f"/invoices/{invoice.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_swedish_customer_sees_bankgiro_and_ocr(client, customers):
    invoice = build_invoice(customers["se"], lines=[("Konsulttimmar", "10", "1234.50")])

    body = page(client, customers["se"], invoice)

    assert "Betalningsuppgifter" in body and "Bankgiro 123-4566, OCR 20260000110" in body


def test_an_iban_tenants_customer_sees_iban_and_the_invoice_number(client, customers):
    invoice = build_invoice(customers["us"])

    body = page(client, customers["us"], invoice)

    assert "IBAN SE45 5000 0000 0583 9825 7466, BIC ESSESESS" in body and "Reference: ACME-2026-00001" in body
    assert "Bankgiro" not in body


def test_a_paid_invoice_shows_no_payment_details(client, customers):
    invoice = build_invoice(customers["us"])
    invoice_mark_paid(invoice=invoice)

    assert 'id="payment-details"' not in page(client, customers["us"], invoice)
