"""Finalizing: gapless numbers per tenant, even under concurrency, and invoices frozen afterwards."""

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, connections, transaction

from billing.models import ImmutableRecordError, Invoice, InvoiceLine
from billing.services import invoice_compute_drafts, invoice_finalize, invoice_mark_paid, invoice_void
from customers.tenancy import platform_scope
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory, TenantFactory


NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)
ISSUED = date(2026, 12, 1)


def drafts_for(tenant, count):
    for _ in range(count):
        customer = CustomerFactory(tenant=tenant)
        ContractLineFactory(contract=ContractFactory(customer=customer, tenant=tenant, start_date=NOV_START), tenant=tenant)
    invoice_compute_drafts(tenant=tenant, period_start=NOV_START, period_end=NOV_END)
    return list(Invoice.objects.for_tenant(tenant).order_by("id"))


@pytest.fixture
def draft(tenant_a):
    return drafts_for(tenant_a, 1)[0]


def test_finalizing_numbers_invoices_in_sequence_per_tenant(tenant_a, tenant_b):
    a1, a2 = drafts_for(tenant_a, 2)
    (b1,) = drafts_for(tenant_b, 1)

    numbers = [invoice_finalize(invoice=i, issue_date=ISSUED).number for i in (a1, b1, a2)]

    assert numbers == ["ACME-2026-00001", "BK-2026-00001", "ACME-2026-00002"]


def test_finalizing_stamps_status_dates_and_due_date(draft):
    invoice = invoice_finalize(invoice=draft, issue_date=ISSUED)

    invoice.refresh_from_db()
    assert (invoice.status, invoice.sequence_number, invoice.issue_date, invoice.due_date) == (
        Invoice.Status.FINALIZED, 1, ISSUED, date(2026, 12, 31),
    )
    assert invoice.finalized_at is not None


def test_finalizing_twice_is_refused_and_uses_no_number(tenant_a, draft):
    invoice_finalize(invoice=draft, issue_date=ISSUED)

    with pytest.raises(ValidationError, match="only a draft can be finalized"):
        invoice_finalize(invoice=draft, issue_date=ISSUED)

    (second,) = drafts_for(tenant_a, 1)[1:]
    assert invoice_finalize(invoice=second, issue_date=ISSUED).number == "ACME-2026-00002"


def test_a_finalized_invoice_refuses_save_with_changes(draft):
    invoice = invoice_finalize(invoice=draft, issue_date=ISSUED)
    invoice.total = Decimal("1.00")

    with pytest.raises(ImmutableRecordError):
        invoice.save()

    invoice.refresh_from_db()
    assert invoice.total == Decimal("100.00")


def test_a_finalized_invoice_refuses_delete(draft):
    invoice = invoice_finalize(invoice=draft, issue_date=ISSUED)

    with pytest.raises(ImmutableRecordError):
        invoice.delete()

    assert Invoice.objects.for_tenant(invoice.tenant).filter(pk=invoice.pk).exists()


def test_the_lines_of_a_finalized_invoice_refuse_save_and_delete(draft):
    invoice = invoice_finalize(invoice=draft, issue_date=ISSUED)
    line = InvoiceLine.objects.for_tenant(invoice.tenant).get(invoice=invoice)
    line.amount = Decimal("0.01")

    with pytest.raises(ImmutableRecordError):
        line.save()
    with pytest.raises(ImmutableRecordError):
        line.delete()
    with pytest.raises(ImmutableRecordError):
        InvoiceLine(tenant=invoice.tenant, invoice=invoice, position=9, description="Extra", kind="charge",
                    quantity=1, unit_price=1, amount=1).save()


def test_a_finalized_invoice_can_be_paid_but_then_not_voided(draft):
    invoice = invoice_finalize(invoice=draft, issue_date=ISSUED)

    paid = invoice_mark_paid(invoice=invoice)

    assert paid.status == Invoice.Status.PAID and paid.paid_at is not None
    with pytest.raises(ValidationError, match="cannot be voided"):
        invoice_void(invoice=paid)


def test_voiding_keeps_the_invoice_and_its_number_and_frees_the_period(tenant_a, draft):
    invoice = invoice_finalize(invoice=draft, issue_date=ISSUED)

    invoice_void(invoice=invoice)
    counts = invoice_compute_drafts(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END)

    voided = Invoice.objects.for_tenant(tenant_a).get(pk=invoice.pk)
    assert (voided.status, voided.number) == (Invoice.Status.VOID, "ACME-2026-00001")
    assert counts["created"] == 1


def test_a_draft_cannot_be_paid(draft):
    with pytest.raises(ValidationError, match="only a finalized invoice can be paid"):
        invoice_mark_paid(invoice=draft)


def test_the_database_refuses_updates_that_bypass_save(draft):
    # The triggers are the migration's (billing 0002, 0004); the application role may not create them.
    invoice = invoice_finalize(invoice=draft, issue_date=ISSUED)
    tenant = invoice.tenant

    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic():
        Invoice.objects.for_tenant(tenant).filter(pk=invoice.pk).update(total=Decimal("1.00"))
    with pytest.raises(DatabaseError, match="cannot be deleted"), transaction.atomic():
        Invoice.objects.for_tenant(tenant).filter(pk=invoice.pk)._raw_delete(connection.alias)
    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic():
        InvoiceLine.objects.for_tenant(tenant).filter(invoice=invoice).update(amount=Decimal("0.01"))

    assert invoice_mark_paid(invoice=invoice).status == Invoice.Status.PAID


@pytest.mark.django_db(transaction=True)
def test_parallel_finalizations_get_numbers_one_to_n_without_gaps():
    threads_count = 10
    with platform_scope():
        tenant = TenantFactory(slug="parallel", invoice_number_prefix="P-")
        TenantFactory(slug="other-tenant", invoice_number_prefix="O-")
    drafts = drafts_for(tenant, threads_count)
    barrier = threading.Barrier(threads_count)
    errors = []

    def finalize(invoice):
        try:
            barrier.wait()
            invoice_finalize(invoice=invoice, issue_date=ISSUED)
        except Exception as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=finalize, args=(invoice,)) for invoice in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    finalized = Invoice.objects.for_tenant(tenant).order_by("sequence_number")
    assert [i.sequence_number for i in finalized] == list(range(1, threads_count + 1))
    assert sorted(i.number for i in finalized) == [f"P-2026-{n:05d}" for n in range(1, threads_count + 1)]
