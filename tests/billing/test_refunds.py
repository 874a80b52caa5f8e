"""A credit note on a paid invoice returns the excess to the customer's credit; finance refunds credit."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from billing.models import Invoice, Payment, PaymentAllocation, PaymentStatus, Refund
from billing.selectors import customer_payment_credit
from billing.services import payment_record, payment_refund, payment_void
from customers.models import Role
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.customers.factories import CustomerFactory

D = Decimal
RECEIVED = date(2026, 12, 2)


@pytest.fixture
def acme(tenant_a):
    """Northwind (USD) with one finalized invoice of 424.00 (no VAT), issued 2026-12-01."""
    with platform_scope():
        northwind = CustomerFactory(tenant=tenant_a, name="Northwind")
    november = build_invoice(northwind, lines=[("Platform fee", "1", "424.00")])
    return {"tenant": tenant_a, "northwind": northwind, "november": november}


def pay(acme, amount, **kwargs):
    return payment_record(tenant=acme["tenant"], customer=acme["northwind"], amount=D(amount), received_on=RECEIVED, **kwargs)


def unallocated(payment):
    return Payment.objects.for_tenant(payment.tenant).with_unallocated().get(pk=payment.pk).unallocated


def standing(invoice):
    fresh = Invoice.objects.for_tenant(invoice.tenant).with_payment_status(today=date(2026, 12, 4)).get(pk=invoice.pk)
    return fresh.payment_status, fresh.paid_total, fresh.balance_due


def test_a_credit_note_on_a_paid_invoice_returns_the_excess_to_credit(acme):
    payment = pay(acme, "424.00")
    assert unallocated(payment) == D("0.00")

    build_credit_note(acme["november"], amount="100.00")

    assert PaymentAllocation.objects.for_tenant(acme["tenant"]).get().amount == D("324.00")
    assert unallocated(payment) == D("100.00")
    assert customer_payment_credit(customer=acme["northwind"]) == {"USD": D("100.00")}
    assert standing(acme["november"]) == (PaymentStatus.PAID, D("324.00"), D("0.00"))


def test_the_newest_payment_gives_back_first_and_a_fully_released_allocation_goes(acme):
    older = payment_record(tenant=acme["tenant"], customer=acme["northwind"], amount=D("400.00"), received_on=date(2026, 12, 1))
    newer = pay(acme, "24.00")
    build_credit_note(acme["november"], amount="50.00")

    rows = sorted(PaymentAllocation.objects.for_tenant(acme["tenant"]).values_list("payment_id", "amount"))
    assert rows == [(older.pk, D("374.00"))]
    assert (unallocated(older), unallocated(newer)) == (D("26.00"), D("24.00"))


def test_a_credit_note_on_a_partly_paid_invoice_releases_only_what_is_over(acme):
    payment = pay(acme, "400.00")
    build_credit_note(acme["november"], amount="30.00")  # asks 394.00 now; 400.00 paid: 6.00 over

    assert unallocated(payment) == D("6.00")
    assert standing(acme["november"]) == (PaymentStatus.PAID, D("394.00"), D("0.00"))


def test_a_credit_note_on_an_unpaid_invoice_releases_nothing(acme):
    payment = pay(acme, "100.00")
    build_credit_note(acme["november"], amount="24.00")

    assert unallocated(payment) == D("0.00")
    assert standing(acme["november"]) == (PaymentStatus.PARTIALLY_PAID, D("100.00"), D("300.00"))


def test_refund_pays_credit_back_and_is_refused_beyond_it(acme):
    payment = pay(acme, "500.00")  # 76.00 credit
    refund = payment_refund(payment=payment, amount=D("50.00"), refunded_on=date(2026, 12, 3), reference="PAYOUT-1")

    assert (refund.amount, refund.currency, refund.customer_id) == (D("50.00"), "USD", acme["northwind"].pk)
    assert unallocated(payment) == D("26.00")
    assert customer_payment_credit(customer=acme["northwind"]) == {"USD": D("26.00")}
    with pytest.raises(ValidationError, match="26.00 USD of credit left; 26.01 is more"):
        payment_refund(payment=payment, amount=D("26.01"), refunded_on=date(2026, 12, 3))
    assert Refund.objects.for_tenant(acme["tenant"]).count() == 1


@pytest.mark.parametrize(
    ("amount", "day", "message"),
    [
        (D("0.00"), date(2026, 12, 3), "greater than zero"),
        (D("1.001"), date(2026, 12, 3), "more decimals than USD"),
        (D("1.00"), date(2026, 12, 1), "arrived on 2026-12-02"),
        (D("1.00"), date(2099, 1, 1), "future"),
    ],
)
def test_refund_refusals_write_nothing(acme, amount, day, message):
    payment = pay(acme, "500.00")
    with pytest.raises(ValidationError, match=message):
        payment_refund(payment=payment, amount=amount, refunded_on=day)
    assert not Refund.objects.for_tenant(acme["tenant"]).exists()


def test_a_refunded_payment_cannot_be_voided_and_a_void_one_cannot_be_refunded(acme):
    refunded = pay(acme, "500.00")
    payment_refund(payment=refunded, amount=D("10.00"), refunded_on=date(2026, 12, 3))
    with pytest.raises(ValidationError, match="refunded"):
        payment_void(payment=refunded, reason="Bounced")

    void = pay(acme, "5.00", allocations=None)
    payment_void(payment=void, reason="Mistake")
    with pytest.raises(ValidationError, match="void"):
        payment_refund(payment=void, amount=D("1.00"), refunded_on=date(2026, 12, 3))


def test_refund_over_the_api(member_factory, tenant_a, tenant_b, acme):
    payment = pay(acme, "500.00")
    client = APIClient()
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    url = f"/api/v1/payments/{payment.pk}/refund/"

    response = client.post(url, {"amount": "70.00", "refunded_on": "2026-12-03", "reference": "PAYOUT-9"}, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["unallocated"] == {"amount": "6.00", "currency": "USD"}
    assert [(r["amount"]["amount"], r["refunded_on"], r["reference"]) for r in data["refunds"]] == [
        ("70.00", "2026-12-03", "PAYOUT-9")]

    too_much = client.post(url, {"amount": "6.01", "refunded_on": "2026-12-03"}, format="json")
    assert too_much.status_code == 409 and "6.00 USD of credit left" in too_much.json()["detail"]
    as_number = client.post(url, {"amount": 1, "refunded_on": "2026-12-03"}, format="json")
    assert as_number.status_code == 400 and "amount" in as_number.json()

    viewer = APIClient()
    viewer.force_login(member_factory(tenant_a, Role.VIEWER))
    assert viewer.post(url, {"amount": "1.00", "refunded_on": "2026-12-03"}, format="json").status_code == 403
    other = APIClient()
    other.force_login(member_factory(tenant_b, Role.FINANCE))
    assert other.post(url, {"amount": "1.00", "refunded_on": "2026-12-03"}, format="json").status_code == 404
    assert list(Refund.objects.for_tenant(tenant_a).values_list("amount", flat=True)) == [D("70.00")]


def test_refund_with_the_admin_button(client, member_factory, tenant_a, tenant_b, acme):
    payment = pay(acme, "500.00")
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    url = reverse("admin:billing_payment_refund", args=[payment.pk])
    page = client.get(reverse("admin:billing_payment_change", args=[payment.pk])).content.decode()
    assert url in page

    refused = client.post(url, {"amount": "80.00", "refunded_on": "2026-12-03", "method": "bank_transfer", "reference": ""})
    assert refused.status_code == 409 and "76.00 USD of credit left" in refused.content.decode()
    done = client.post(url, {"amount": "76.00", "refunded_on": "2026-12-03", "method": "bank_transfer", "reference": "R-1"})
    assert done.status_code == 302
    assert unallocated(payment) == D("0.00")
    assert "R-1" in client.get(reverse("admin:billing_payment_change", args=[payment.pk])).content.decode()

    client.force_login(member_factory(tenant_b, Role.FINANCE))
    assert client.post(url, {"amount": "1.00", "refunded_on": "2026-12-03", "method": "bank_transfer"}).status_code == 404
