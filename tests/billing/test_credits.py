"""Credit notes (numbered, never above what is creditable) and manual credits with approval."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import CreditAuditEntry, CreditNote, CreditRequest, ImmutableRecordError, Invoice
from billing.services import (
    CreditNoteLineSpec,
    credit_note_issue,
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
    invoice_compute_drafts,
    invoice_finalize,
    invoice_void,
)
from customers.models import Role
from customers.money import Money
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)
D = Decimal


def finalized_invoice(tenant, amount="2000.00", **customer_fields):
    customer = CustomerFactory(tenant=tenant, **customer_fields)
    contract = ContractFactory(customer=customer, tenant=tenant, start_date=NOV_START)
    ContractLineFactory(contract=contract, tenant=tenant, unit_price=Money(amount, customer.currency))
    invoice_compute_drafts(tenant=tenant, period_start=NOV_START, period_end=NOV_END)
    draft = Invoice.objects.for_tenant(tenant).get(customer=customer)
    return invoice_finalize(invoice=draft, issue_date=date(2026, 12, 1))


def credit(description, amount):
    return CreditNoteLineSpec(description=description, unit_price=D(amount))


def test_credit_notes_have_their_own_gapless_sequence(tenant_a, tenant_b):
    first, second = finalized_invoice(tenant_a), finalized_invoice(tenant_a)
    other = finalized_invoice(tenant_b)

    notes = [
        credit_note_issue(invoice=first, lines=[credit("Outage", "10.00")], reason="Outage"),
        credit_note_issue(invoice=other, lines=[credit("Goodwill", "10.00")], reason="Goodwill"),
        credit_note_issue(invoice=second, lines=[credit("Outage", "5.00")], reason="Outage"),
    ]

    assert [note.number for note in notes] == [
        f"ACME-CN-{notes[0].issue_date.year}-00001",
        f"BK-CN-{notes[1].issue_date.year}-00001",
        f"ACME-CN-{notes[2].issue_date.year}-00002",
    ]
    assert first.number == "ACME-2026-00001"


def test_credit_note_adds_the_invoice_vat_rate(tenant_b):
    tenant_b.vat_rate = D(25)
    tenant_b.save()
    invoice = finalized_invoice(tenant_b, "1000.00")

    note = credit_note_issue(invoice=invoice, lines=[credit("Workshop cancelled", "100.00")], reason="Cancelled")

    assert (note.subtotal, note.vat_amount, note.total, note.currency) == (D("100.00"), D("25.00"), D("125.00"), "SEK")


def test_credit_notes_can_credit_exactly_the_invoice_total_and_not_a_cent_more(tenant_a):
    invoice = finalized_invoice(tenant_a, "100.00")
    credit_note_issue(invoice=invoice, lines=[credit("Part", "60.00")], reason="Partial refund")

    with pytest.raises(ValidationError, match=r"exceeds what invoice ACME-2026-00001 still has creditable \(40.00 USD\)"):
        credit_note_issue(invoice=invoice, lines=[credit("Rest", "40.01")], reason="Too much")
    last = credit_note_issue(invoice=invoice, lines=[credit("Rest", "40.00")], reason="Rest")

    assert last.total == D("40.00")
    assert CreditNote.objects.for_tenant(tenant_a).count() == 2


def test_a_refused_credit_note_uses_no_number(tenant_a):
    invoice = finalized_invoice(tenant_a, "100.00")
    with pytest.raises(ValidationError):
        credit_note_issue(invoice=invoice, lines=[credit("Too much", "500.00")], reason="No")

    note = credit_note_issue(invoice=invoice, lines=[credit("Fine", "5.00")], reason="Yes")

    assert note.sequence_number == 1


def test_a_draft_cannot_be_credited(tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    ContractLineFactory(contract=ContractFactory(customer=customer, tenant=tenant_a, start_date=NOV_START), tenant=tenant_a)
    invoice_compute_drafts(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END)
    draft = Invoice.objects.for_tenant(tenant_a).get(customer=customer)

    with pytest.raises(ValidationError, match="only a finalized or paid invoice can be credited"):
        credit_note_issue(invoice=draft, lines=[credit("x", "1.00")], reason="x")


def test_an_issued_credit_note_cannot_be_changed_or_deleted(tenant_a):
    note = credit_note_issue(invoice=finalized_invoice(tenant_a), lines=[credit("x", "1.00")], reason="x")
    note.reason = "Changed"

    with pytest.raises(ImmutableRecordError):
        note.save()
    with pytest.raises(ImmutableRecordError):
        note.delete()


# --- approvals ---------------------------------------------------------------------------------


@pytest.fixture
def staff(tenant_a, tenant_b, member_factory):
    return {
        "requester": member_factory(tenant_a, Role.ACCOUNT_MANAGER, "requester"),
        "viewer": member_factory(tenant_a, Role.VIEWER, "viewer"),
        "finance": member_factory(tenant_a, Role.FINANCE, "finance"),
        "owner": member_factory(tenant_a, Role.OWNER, "owner"),
        "outsider": member_factory(tenant_b, Role.OWNER, "outsider"),
    }


def request_credit(tenant, staff, amount, **kwargs):
    customer = kwargs.pop("customer", None) or CustomerFactory(tenant=tenant)
    return credit_request_create(
        customer=customer, amount=D(amount), reason="Late delivery", requested_by=staff["requester"], **kwargs
    )


def test_nobody_approves_their_own_credit(tenant_a, staff):
    request = request_credit(tenant_a, staff, "50.00")

    with pytest.raises(ValidationError, match="cannot approve your own credit request"):
        credit_request_approve(credit_request=request, approver=staff["requester"])


def test_up_to_100_any_other_member_may_approve(tenant_a, staff):
    request = request_credit(tenant_a, staff, "100.00")

    approved = credit_request_approve(credit_request=request, approver=staff["viewer"])

    assert approved.status == CreditRequest.Status.APPROVED


def test_150_needs_a_manager(tenant_a, staff):
    request = request_credit(tenant_a, staff, "150.00")

    with pytest.raises(ValidationError, match="must be decided by: account manager, finance, owner"):
        credit_request_approve(credit_request=request, approver=staff["viewer"])
    approved = credit_request_approve(credit_request=request, approver=staff["finance"])

    assert approved.status == CreditRequest.Status.APPROVED


def test_1500_needs_an_owner(tenant_a, staff):
    request = request_credit(tenant_a, staff, "1500.00")

    with pytest.raises(ValidationError, match="must be decided by: owner"):
        credit_request_approve(credit_request=request, approver=staff["finance"])
    approved = credit_request_approve(credit_request=request, approver=staff["owner"])

    assert (approved.status, approved.decided_by) == (CreditRequest.Status.APPROVED, staff["owner"])


def test_a_member_of_another_tenant_cannot_approve(tenant_a, staff):
    request = request_credit(tenant_a, staff, "10.00")

    with pytest.raises(ValidationError, match="must be decided by"):
        credit_request_approve(credit_request=request, approver=staff["outsider"])


def test_a_decided_request_cannot_be_decided_again(tenant_a, staff):
    request = request_credit(tenant_a, staff, "10.00")
    credit_request_reject(credit_request=request, approver=staff["finance"], note="Not justified")

    with pytest.raises(ValidationError, match="already rejected"):
        credit_request_approve(credit_request=request, approver=staff["owner"])


def audit_rows(request):
    return [
        (entry.action, entry.actor.username if entry.actor else None, entry.actor_role, entry.amount, entry.currency)
        for entry in CreditAuditEntry.objects.for_tenant(request.tenant).filter(credit_request=request)
    ]


def test_every_request_and_decision_is_audited_exactly(tenant_a, staff):
    rejected = request_credit(tenant_a, staff, "1500.00")
    with pytest.raises(ValidationError):
        credit_request_approve(credit_request=rejected, approver=staff["finance"])
    credit_request_reject(credit_request=rejected, approver=staff["owner"], note="No")

    assert audit_rows(rejected) == [
        ("requested", "requester", "account_manager", D("1500.00"), "USD"),
        ("rejected", "owner", "owner", D("1500.00"), "USD"),
    ]


def test_an_approved_invoice_credit_becomes_a_credit_note(tenant_a, staff):
    invoice = finalized_invoice(tenant_a, "2000.00")
    request = request_credit(tenant_a, staff, "150.00", customer=invoice.customer, invoice=invoice)

    applied = credit_request_approve(credit_request=request, approver=staff["finance"])

    assert applied.status == CreditRequest.Status.APPLIED
    assert (applied.credit_note.total, applied.credit_note.invoice_id) == (D("150.00"), invoice.pk)
    assert [row[0] for row in audit_rows(applied)] == ["requested", "approved", "applied"]


def test_an_approved_balance_credit_reduces_the_next_amount_due_and_is_applied_on_finalize(tenant_a, staff):
    customer = CustomerFactory(tenant=tenant_a)
    ContractLineFactory(
        contract=ContractFactory(customer=customer, tenant=tenant_a, start_date=NOV_START),
        tenant=tenant_a, unit_price=Money("100.00", "USD"),
    )
    request = request_credit(tenant_a, staff, "30.00", customer=customer)
    credit_request_approve(credit_request=request, approver=staff["viewer"])

    invoice_compute_drafts(tenant=tenant_a, period_start=NOV_START, period_end=NOV_END)
    draft = Invoice.objects.for_tenant(tenant_a).get(customer=customer)
    assert (draft.total, draft.credit_applied, draft.amount_due) == (D("100.00"), D("30.00"), D("70.00"))

    invoice_finalize(invoice=draft, issue_date=date(2026, 12, 1))
    request.refresh_from_db()
    assert request.status == CreditRequest.Status.APPLIED
    assert audit_rows(request)[-1] == ("applied", None, "", D("30.00"), "USD")

    invoice_void(invoice=draft)
    request.refresh_from_db()
    assert request.status == CreditRequest.Status.APPROVED


def test_only_members_can_request_credits(tenant_a, staff):
    with pytest.raises(ValidationError, match="Only a member of this tenant"):
        credit_request_create(
            customer=CustomerFactory(tenant=tenant_a), amount=D("5"), reason="x", requested_by=staff["outsider"]
        )
