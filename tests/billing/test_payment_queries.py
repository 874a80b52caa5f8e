"""Recording a payment costs a fixed, small number of queries: a bank statement confirm records
hundreds in one request (issue 14 follow-up: 500 payments took 45 s, ~44 queries each)."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import Invoice, Payment, PaymentAllocation
from billing.services import payment_record
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_invoice
from tests.customers.factories import CustomerFactory

D = Decimal
RECEIVED = date(2026, 12, 2)


@pytest.fixture
def two_tenants(tenant_a, tenant_b):
    """Northwind of tenant A with invoices of 300.00 (October) and 424.00 (November); Sjöberg of
    tenant B with one of 100.00."""
    with platform_scope():
        northwind = CustomerFactory(tenant=tenant_a, name="Northwind")
        sjoberg = CustomerFactory(tenant=tenant_b, name="Sjöberg AB")
    october = build_invoice(northwind, lines=[("Platform fee", "1", "300.00")],
                            period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))
    november = build_invoice(northwind, lines=[("Platform fee", "1", "424.00")])
    foreign = build_invoice(sjoberg, lines=[("Konsult", "1", "100.00")])
    return {"northwind": northwind, "october": october, "november": november, "foreign": foreign}


def test_paying_one_named_invoice_in_full_takes_ten_queries(tenant_a, tenant_b, two_tenants, django_assert_num_queries):
    # Savepoint, bank reference free?, insert payment, lock the invoice, what it owes, insert the
    # allocation, mark it paid, invoice.paid and payment.received endpoints, release.
    with django_assert_num_queries(10):
        payment = payment_record(
            tenant=tenant_a, customer=two_tenants["northwind"], amount=D("300.00"), received_on=RECEIVED,
            allocations=[(two_tenants["october"], None)], reference="BANK-1", bank_reference="NTRY-1",
        )
    assert list(PaymentAllocation.objects.for_tenant(tenant_a).values_list("payment_id", "invoice_id", "amount")) == [
        (payment.pk, two_tenants["october"].pk, D("300.00"))
    ]
    assert Invoice.objects.for_tenant(tenant_a).get(pk=two_tenants["october"].pk).status == Invoice.Status.PAID
    assert Invoice.objects.for_tenant(tenant_b).get(pk=two_tenants["foreign"].pk).status == Invoice.Status.FINALIZED


def test_auto_allocation_over_two_invoices_takes_twelve_queries(tenant_a, two_tenants, django_assert_num_queries):
    # As above without a bank reference to check, plus the customer's open invoices, and for the
    # second invoice what it owes and its allocation (paid in part: not marked paid, no invoice.paid).
    with django_assert_num_queries(12):
        payment = payment_record(tenant=tenant_a, customer=two_tenants["northwind"], amount=D("500.00"), received_on=RECEIVED)
    assert sorted(PaymentAllocation.objects.for_tenant(tenant_a).filter(payment=payment).values_list("invoice_id", "amount")) == [
        (two_tenants["october"].pk, D("300.00")), (two_tenants["november"].pk, D("200.00")),
    ]


def test_a_bank_reference_already_recorded_is_still_refused(tenant_a, tenant_b, two_tenants):
    with platform_scope():
        sjoberg = two_tenants["foreign"].customer
    payment_record(tenant=tenant_b, customer=sjoberg, amount=D("100.00"), received_on=RECEIVED, bank_reference="NTRY-1")
    payment_record(tenant=tenant_a, customer=two_tenants["northwind"], amount=D("10.00"), received_on=RECEIVED,
                   allocations=None, bank_reference="NTRY-1")  # another tenant's bank transaction

    with pytest.raises(ValidationError) as refused:
        payment_record(tenant=tenant_a, customer=two_tenants["northwind"], amount=D("300.00"), received_on=RECEIVED,
                       allocations=[(two_tenants["october"], None)], bank_reference="NTRY-1")

    assert refused.value.messages == ["A payment with this bank reference is already recorded."]
    assert Payment.objects.for_tenant(tenant_a).count() == 1
    assert Invoice.objects.for_tenant(tenant_a).get(pk=two_tenants["october"].pk).status == Invoice.Status.FINALIZED
