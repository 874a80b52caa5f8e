"""Payments in the admin: finance records, allocates and voids; other roles read; tenants stay apart."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Invoice, Payment, PaymentAllocation
from customers.models import Role
from customers.periods import tenant_today
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_invoice
from tests.customers.factories import CustomerFactory

D = Decimal
ADD = reverse("admin:billing_payment_add")


@pytest.fixture
def acme(tenant_a):
    with platform_scope():
        northwind = CustomerFactory(tenant=tenant_a, name="Northwind")
        contoso = CustomerFactory(tenant=tenant_a, name="Contoso")
    october = build_invoice(northwind, lines=[("Platform fee", "1", "300.00")],
                            period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))
    november = build_invoice(northwind, lines=[("Platform fee", "1", "424.00")])
    contoso_invoice = build_invoice(contoso, lines=[("Platform fee", "1", "50.00")])
    return {"northwind": northwind, "october": october, "november": november, "contoso_invoice": contoso_invoice}


def form(customer, amount, numbers="", **extra):
    return {"customer": customer.pk, "amount": amount, "currency": "", "received_on": "2026-12-02",
            "method": "bank_transfer", "reference": "OCR 4711", "note": "", "invoice_numbers": numbers, **extra}


def allocations(tenant):
    return sorted(PaymentAllocation.objects.for_tenant(tenant).values_list("invoice__number", "amount"))


def test_finance_records_a_payment_over_two_invoices(client, member_factory, tenant_a, acme):
    finance = member_factory(tenant_a, Role.FINANCE)
    client.force_login(finance)
    numbers = f"{acme['november'].number}, {acme['october'].number}"

    response = client.post(ADD, form(acme["northwind"], "500.00", numbers))

    payment = Payment.objects.for_tenant(tenant_a).get()
    assert response.status_code == 302 and response.url == reverse("admin:billing_payment_change", args=[payment.pk])
    assert (payment.amount, payment.currency, payment.reference, payment.created_by) == (D("500.00"), "USD", "OCR 4711", finance)
    # Oldest due first: October (due 2026-12-31, numbered first) in full, November in part.
    assert allocations(tenant_a) == [(acme["october"].number, D("300.00")), (acme["november"].number, D("200.00"))]
    page = client.get(reverse("admin:billing_invoice_change", args=[acme["november"].pk])).content.decode()
    assert "OCR 4711" in page and ("Partially paid" if tenant_today(tenant_a) <= acme["november"].due_date else "Overdue") in page and '<div class="readonly">$224.00</div>' in page


def test_a_refused_payment_shows_why_and_writes_nothing(client, member_factory, tenant_a, acme):
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    response = client.post(ADD, form(acme["northwind"], "50.00", acme["contoso_invoice"].number))

    assert response.status_code == 200
    assert "belongs to another customer than this payment" in response.content.decode()
    assert not Payment.objects.for_tenant(tenant_a).exists()

    unknown = client.post(ADD, form(acme["northwind"], "50.00", "NOPE-1"))
    assert "No invoice numbered NOPE-1." in unknown.content.decode()
    assert not Payment.objects.for_tenant(tenant_a).exists()


def test_keep_as_credit_then_allocate_and_void_with_the_buttons(client, member_factory, tenant_a, acme):
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    client.post(ADD, form(acme["northwind"], "300.00", keep_as_credit="on"))
    payment = Payment.objects.for_tenant(tenant_a).get()
    assert allocations(tenant_a) == []

    page = client.get(reverse("admin:billing_payment_change", args=[payment.pk])).content.decode()
    assert reverse("admin:billing_payment_allocate", args=[payment.pk]) in page

    allocate = client.post(reverse("admin:billing_payment_allocate", args=[payment.pk]),
                           {"invoice_number": acme["october"].number, "amount": ""})
    assert allocate.status_code == 302
    assert Invoice.objects.for_tenant(tenant_a).get(pk=acme["october"].pk).status == "paid"

    too_much = client.post(reverse("admin:billing_payment_allocate", args=[payment.pk]),
                           {"invoice_number": acme["november"].number, "amount": "1.00"})
    assert too_much.status_code == 409 and "has 0.00 USD unallocated" in too_much.content.decode()

    void = client.post(reverse("admin:billing_payment_void", args=[payment.pk]), {"reason": "Returned by the bank"})
    assert void.status_code == 302
    assert Invoice.objects.for_tenant(tenant_a).get(pk=acme["october"].pk).status == "finalized"
    assert Payment.objects.for_tenant(tenant_a).get().void_reason == "Returned by the bank"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ACCOUNT_MANAGER])
def test_other_roles_read_payments_but_cannot_record_or_void(client, member_factory, tenant_a, acme, role):
    from billing.services import payment_record

    payment = payment_record(tenant=tenant_a, customer=acme["northwind"], amount=D("10.00"), received_on=date(2026, 12, 2))
    client.force_login(member_factory(tenant_a, role))

    assert client.get(reverse("admin:billing_payment_changelist")).status_code == 200
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, form(acme["northwind"], "5.00")).status_code == 403
    assert client.post(reverse("admin:billing_payment_void", args=[payment.pk]), {"reason": "x"}).status_code == 403
    assert Payment.objects.for_tenant(tenant_a).count() == 1


def test_another_tenants_payment_is_not_there(client, member_factory, tenant_a, tenant_b, acme):
    from billing.services import payment_record

    payment = payment_record(tenant=tenant_a, customer=acme["northwind"], amount=D("12.34"), received_on=date(2026, 12, 2))
    client.force_login(member_factory(tenant_b, Role.FINANCE))

    listing = client.get(reverse("admin:billing_payment_changelist")).content.decode()
    assert "12.34" not in listing and "Northwind" not in listing
    assert client.get(reverse("admin:billing_payment_change", args=[payment.pk])).status_code == 404
    assert client.post(reverse("admin:billing_payment_void", args=[payment.pk]), {"reason": "x"}).status_code == 404
    # Another tenant's customer cannot be picked on the add form.
    response = client.post(ADD, form(acme["northwind"], "5.00"))
    assert response.status_code == 200 and not Payment.objects.for_tenant(tenant_b).exists()


def test_invoice_list_filters_by_payment_status(client, member_factory, tenant_a, acme):
    from billing.services import payment_record

    payment_record(tenant=tenant_a, customer=acme["northwind"], amount=D("300.00"), received_on=date(2026, 12, 2))
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    url = reverse("admin:billing_invoice_changelist")

    unpaid = "open" if tenant_today(tenant_a) <= acme["november"].due_date else "overdue"
    paid = client.get(url, {"payment_status": "paid"}).content.decode()
    open_ = client.get(url, {"payment_status": unpaid}).content.decode()

    assert acme["october"].number in paid and acme["november"].number not in paid
    assert acme["november"].number in open_ and acme["contoso_invoice"].number in open_ and acme["october"].number not in open_
