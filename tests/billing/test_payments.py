"""Payments: partial payments over several invoices, overpayment as credit, every refusal, status."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import Invoice, Payment, PaymentAllocation, PaymentStatus
from billing.selectors import customer_payment_credit
from billing.services import (
    invoice_finalize,
    invoice_mark_paid,
    invoice_void,
    payment_allocate,
    payment_record,
    payment_void,
)
from customers.periods import tenant_today
from customers.tenancy import platform_scope, tenant_cursor
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.customers.factories import CustomerFactory

D = Decimal
RECEIVED = date(2026, 12, 2)


@pytest.fixture
def acme(tenant_a):
    """Northwind (USD) with two finalized invoices, 424.00 for November and 300.00 for October
    (both issued 2026-12-01, due 30 days later), and Contoso, another customer of the tenant."""
    with platform_scope():
        northwind = CustomerFactory(tenant=tenant_a, name="Northwind")
        contoso = CustomerFactory(tenant=tenant_a, name="Contoso")
    october = build_invoice(northwind, lines=[("Platform fee", "1", "300.00")],
                            period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))
    november = build_invoice(northwind, lines=[("Platform fee", "1", "424.00")])
    return {"tenant": tenant_a, "northwind": northwind, "contoso": contoso, "october": october, "november": november}


def standing(invoice, today=date(2026, 12, 4)):
    """(stored status, derived payment status, paid, amount due) of ``invoice`` now."""
    fresh = Invoice.objects.for_tenant(invoice.tenant).with_payment_status(today=today).get(pk=invoice.pk)
    return fresh.status, fresh.payment_status, fresh.paid_total, fresh.balance_due


def record(acme, amount, **kwargs):
    kwargs.setdefault("received_on", RECEIVED)
    return payment_record(tenant=acme["tenant"], customer=acme["northwind"], amount=D(amount), **kwargs)


def test_partial_payments_over_two_invoices_then_paid(acme):
    october, november = acme["october"], acme["november"]
    first = record(acme, "500.00", reference="BANK-1",
                   allocations=[(october, D("300.00")), (november, D("200.00"))])
    assert standing(october) == ("paid", PaymentStatus.PAID, D("300.00"), D("0.00"))
    assert standing(november) == ("finalized", PaymentStatus.PARTIALLY_PAID, D("200.00"), D("224.00"))

    second = record(acme, "224.00", allocations=[(november, D("224.00"))])
    assert standing(november) == ("paid", PaymentStatus.PAID, D("424.00"), D("0.00"))
    assert sorted(PaymentAllocation.objects.for_tenant(acme["tenant"]).values_list("payment_id", "invoice_id", "amount")) == [
        (first.pk, october.pk, D("300.00")), (first.pk, november.pk, D("200.00")), (second.pk, november.pk, D("224.00")),
    ]
    # Paid on the day the money came in, not on the day it was recorded.
    november.refresh_from_db()
    assert november.paid_at.date() == RECEIVED


def test_auto_allocation_pays_the_oldest_due_first_and_keeps_the_rest_as_credit(acme, tenant_b):
    payment = record(acme, "800.00")  # no allocations given: oldest due first
    assert standing(acme["october"])[1:] == (PaymentStatus.PAID, D("300.00"), D("0.00"))
    assert standing(acme["november"])[1:] == (PaymentStatus.PAID, D("424.00"), D("0.00"))
    assert customer_payment_credit(customer=acme["northwind"]) == {"USD": D("76.00")}
    assert Payment.objects.for_tenant(acme["tenant"]).with_unallocated().get(pk=payment.pk).unallocated == D("76.00")


def test_overpayment_is_credit_the_next_invoice_uses(acme):
    record(acme, "800.00")  # 724.00 owed: 76.00 left over
    december = build_invoice(acme["northwind"], lines=[("Platform fee", "1", "100.00")],
                             period_start=date(2026, 12, 1), period_end=date(2026, 12, 31), issue_date=date(2027, 1, 1),
                             finalize=False)
    december = invoice_finalize(invoice=december, issue_date=date(2026, 12, 4), close_early=True)
    assert standing(december)[1:] == (PaymentStatus.PARTIALLY_PAID, D("76.00"), D("24.00"))
    assert customer_payment_credit(customer=acme["northwind"]) == {}


def test_credit_covering_a_whole_new_invoice_pays_it(acme):
    record(acme, "1000.00")  # 276.00 left over
    december = build_invoice(acme["northwind"], lines=[("Platform fee", "1", "100.00")],
                             period_start=date(2026, 12, 1), period_end=date(2026, 12, 31), finalize=False)
    invoice_finalize(invoice=december, issue_date=date(2026, 12, 4), close_early=True)
    assert standing(december)[:2] == ("paid", PaymentStatus.PAID)
    assert customer_payment_credit(customer=acme["northwind"]) == {"USD": D("176.00")}


def test_status_open_then_overdue_by_date(acme):
    november = acme["november"]
    assert november.due_date == date(2026, 12, 31)
    assert standing(november, today=date(2026, 12, 31))[1] == PaymentStatus.OPEN
    assert standing(november, today=date(2027, 1, 1))[1] == PaymentStatus.OVERDUE
    record(acme, "100.00", allocations=[(november, D("100.00"))])
    assert standing(november, today=date(2026, 12, 31))[1] == PaymentStatus.PARTIALLY_PAID
    assert standing(november, today=date(2027, 1, 1))[1:] == (PaymentStatus.OVERDUE, D("100.00"), D("324.00"))


def test_credit_notes_and_payments_add_up(acme):
    november = acme["november"]
    build_credit_note(november, amount="24.00")
    record(acme, "400.00", allocations=[(november, D("400.00"))])
    assert standing(november) == ("paid", PaymentStatus.PAID, D("400.00"), D("0.00"))


def test_mark_paid_records_a_payment_of_what_is_owed(acme):
    november = acme["november"]
    record(acme, "24.00", allocations=[(november, D("24.00"))])
    invoice_mark_paid(invoice=november)
    payment = Payment.objects.for_tenant(acme["tenant"]).order_by("-pk").first()
    assert (payment.amount, payment.method, payment.reference) == (D("400.00"), "other", november.number)
    assert standing(november)[1:] == (PaymentStatus.PAID, D("424.00"), D("0.00"))


def test_voiding_a_payment_reopens_what_it_paid(acme):
    october, november = acme["october"], acme["november"]
    payment = record(acme, "500.00", allocations=[(october, D("300.00")), (november, D("200.00"))])
    payment_void(payment=payment, reason="Returned by the bank")
    assert standing(october) == ("finalized", PaymentStatus.OPEN, D("0.00"), D("300.00"))
    assert standing(november) == ("finalized", PaymentStatus.OPEN, D("0.00"), D("424.00"))
    october.refresh_from_db()
    assert october.paid_at is None
    assert customer_payment_credit(customer=acme["northwind"]) == {}
    with pytest.raises(ValidationError, match="already void"):
        payment_void(payment=payment, reason="again")


def test_voiding_an_invoice_releases_its_payments_as_credit(acme):
    november = acme["november"]
    record(acme, "100.00", allocations=[(november, D("100.00"))])
    invoice_void(invoice=november)
    assert not PaymentAllocation.objects.for_tenant(acme["tenant"]).filter(invoice=november).exists()
    assert customer_payment_credit(customer=acme["northwind"]) == {"USD": D("100.00")}


def test_allocating_the_rest_of_a_payment_later(acme):
    payment = record(acme, "350.00", allocations=[])
    assert customer_payment_credit(customer=acme["northwind"]) == {"USD": D("350.00")}
    payment_allocate(payment=payment, invoice=acme["october"])  # as much as both allow: 300.00
    payment_allocate(payment=payment, invoice=acme["november"], amount=D("50.00"))
    assert standing(acme["october"])[1] == PaymentStatus.PAID
    assert standing(acme["november"])[2:] == (D("50.00"), D("374.00"))
    with pytest.raises(ValidationError, match="has 0.00 USD unallocated"):
        payment_allocate(payment=payment, invoice=acme["november"], amount=D("0.01"))


@pytest.mark.parametrize(
    "case, message",
    [
        ("draft", "is a draft"),
        ("void", "is void"),
        ("paid", "is already paid"),
        ("other_customer", "belongs to another customer"),
        ("currency", "is in USD; this payment is in EUR"),
        ("above_due", "owes 424.00 USD; 424.01 is more than that"),
        ("above_payment", "add up to 424.00 USD, more than the payment"),
        ("zero", "greater than zero"),
        ("decimals", "more decimals than USD allows"),
        ("future", "cannot be received in the future"),
        ("method", "Unknown method"),
    ],
)
def test_refusals_write_nothing(acme, case, message):
    tenant, northwind, november = acme["tenant"], acme["northwind"], acme["november"]
    kwargs = {"tenant": tenant, "customer": northwind, "amount": D("424.01"), "received_on": RECEIVED,
              "allocations": [(november, D("424.00"))]}
    if case == "draft":
        draft = build_invoice(northwind, period_start=date(2026, 9, 1), period_end=date(2026, 9, 30), finalize=False)
        kwargs["allocations"] = [(draft, D("10.00"))]
    elif case == "void":
        kwargs["allocations"] = [(invoice_void(invoice=november), D("10.00"))]
    elif case == "paid":
        invoice_mark_paid(invoice=november)
    elif case == "other_customer":
        kwargs["customer"] = acme["contoso"]
    elif case == "currency":
        kwargs["currency"] = "EUR"
    elif case == "above_due":
        kwargs["allocations"] = [(november, D("424.01"))]
    elif case == "above_payment":
        kwargs.update(amount=D("400.00"))
    elif case == "zero":
        kwargs.update(amount=D("0"))
    elif case == "decimals":
        kwargs.update(amount=D("10.005"))
    elif case == "future":
        kwargs.update(received_on=tenant_today(tenant) + timedelta(days=1))
    elif case == "method":
        kwargs.update(method="cheque")
    before = Payment.objects.for_tenant(tenant).count(), PaymentAllocation.objects.for_tenant(tenant).count()
    with pytest.raises(ValidationError, match=message):
        payment_record(**kwargs)
    assert (Payment.objects.for_tenant(tenant).count(), PaymentAllocation.objects.for_tenant(tenant).count()) == before


def test_another_tenants_customer_or_invoice_is_refused(acme, tenant_b):
    with platform_scope():
        foreign = CustomerFactory(tenant=tenant_b)
    foreign_invoice = build_invoice(foreign)
    with pytest.raises(ValidationError, match="another tenant"):
        payment_record(tenant=acme["tenant"], customer=foreign, amount=D("1.00"), received_on=RECEIVED)
    with pytest.raises(ValidationError, match="another tenant"):
        record(acme, "1.00", allocations=[(foreign_invoice, D("1.00"))])
    payment = record(acme, "1.00", allocations=[])
    with pytest.raises(ValidationError, match="another tenant"):
        payment_allocate(payment=payment, invoice=foreign_invoice)


def test_a_void_payment_cannot_be_allocated(acme):
    payment = record(acme, "10.00", allocations=[])
    payment_void(payment=payment, reason="Recorded twice")
    with pytest.raises(ValidationError, match="void"):
        payment_allocate(payment=payment, invoice=acme["november"], amount=D("10.00"))


def test_database_allows_paid_back_to_finalized_but_no_money_change(acme):
    november = acme["november"]
    invoice_mark_paid(invoice=november)
    with tenant_cursor(november.tenant) as cursor:  # as the tenant: row-level security shows no row otherwise
        cursor.execute("UPDATE billing_invoice SET status = 'finalized', paid_at = NULL WHERE id = %s", [november.pk])
        assert cursor.rowcount == 1
        with pytest.raises(Exception, match="cannot be changed"):
            cursor.execute("UPDATE billing_invoice SET total = 1 WHERE id = %s", [november.pk])


@pytest.mark.django_db(transaction=True)
def test_two_payments_at_once_cannot_pay_more_than_is_owed():
    import threading

    from django.db import connections

    from tests.customers.factories import TenantFactory

    with platform_scope():
        tenant = TenantFactory(slug="parallel-pay", invoice_number_prefix="PP-")
        customer = CustomerFactory(tenant=tenant)
    invoice = build_invoice(customer, lines=[("Platform fee", "1", "424.00")])
    barrier = threading.Barrier(2)
    outcomes = []

    def pay():
        try:
            barrier.wait()
            payment_record(tenant=tenant, customer=customer, amount=D("300.00"), received_on=RECEIVED,
                           allocations=[(invoice, D("300.00"))])
            outcomes.append("recorded")
        except ValidationError as exc:
            outcomes.append(" ".join(exc.messages))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=pay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == [f"Invoice {invoice.number} owes 124.00 USD; 300.00 is more than that.", "recorded"]
    assert standing(invoice)[2:] == (D("300.00"), D("124.00"))
