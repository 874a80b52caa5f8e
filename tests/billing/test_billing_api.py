"""The invoice and credit-note API: exact shapes and codes, read-only documents, tenant isolation."""

from datetime import date
from decimal import Decimal

import pytest

from billing.models import Invoice
from billing.services import CreditNoteLineSpec, credit_note_issue, invoice_compute_drafts, invoice_finalize
from customers.models import Role
from customers.money import Money
from tests.api_clients import key_client, staff_client
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)


def draft_for(tenant, name, amount="100.00"):
    customer = CustomerFactory(tenant=tenant, name=name)
    ContractLineFactory(
        contract=ContractFactory(customer=customer, tenant=tenant, start_date=NOV_START),
        tenant=tenant, description="Platform fee", unit_price=Money(amount, customer.currency),
    )
    invoice_compute_drafts(tenant=tenant, period_start=NOV_START, period_end=NOV_END)
    return Invoice.objects.for_tenant(tenant).get(customer=customer)


@pytest.fixture
def invoices(tenant_a, tenant_b):
    final = invoice_finalize(invoice=draft_for(tenant_a, "Alpha Inc"), issue_date=date(2026, 12, 1))
    return {"final": final, "draft": draft_for(tenant_a, "Alpha Two"), "other": draft_for(tenant_b, "Beta AB")}


def test_list_shows_the_tenants_invoices_with_exact_money(tenant_a, invoices):
    response = key_client(tenant_a).get("/api/v1/invoices/?status=finalized")

    assert response.status_code == 200
    assert response.json()["count"] == 1
    row = response.json()["results"][0]
    assert (row["number"], row["customer_name"], row["total"], row["amount_due"]) == (
        "ACME-2026-00001", "Alpha Inc", {"amount": "100.00", "currency": "USD"}, {"amount": "100.00", "currency": "USD"},
    )


def test_list_filters_by_customer_and_month(tenant_a, invoices):
    client = key_client(tenant_a)

    by_customer = client.get(f"/api/v1/invoices/?customer={invoices['draft'].customer_id}").json()
    october = client.get("/api/v1/invoices/?period=2026-10").json()
    november = client.get("/api/v1/invoices/?period=2026-11").json()

    assert [r["id"] for r in by_customer["results"]] == [invoices["draft"].pk]
    assert (october["count"], november["count"]) == (0, 2)


def test_a_bad_filter_is_a_400_not_a_500(tenant_a, invoices):
    client = key_client(tenant_a)

    assert client.get("/api/v1/invoices/?period=2026-13").status_code == 400
    assert client.get("/api/v1/invoices/?status=lost").status_code == 400


def test_detail_carries_the_lines(tenant_a, invoices):
    response = key_client(tenant_a).get(f"/api/v1/invoices/{invoices['final'].pk}/")

    assert response.status_code == 200
    assert response.json()["lines"] == [
        {
            "position": 1, "description": "Platform fee", "kind": "charge", "quantity": "1.000000",
            "unit_price": {"amount": "100.00", "currency": "USD"}, "proration": "1",
            "amount": {"amount": "100.00", "currency": "USD"}, "contract_line": response.json()["lines"][0]["contract_line"],
        }
    ]


def test_another_tenants_invoice_is_not_found(tenant_a, invoices):
    assert key_client(tenant_a).get(f"/api/v1/invoices/{invoices['other'].pk}/").status_code == 404


def test_invoices_cannot_be_written_through_the_api(member_factory, tenant_a, invoices):
    client = staff_client(member_factory, tenant_a, Role.OWNER)
    url = f"/api/v1/invoices/{invoices['final'].pk}/"

    codes = [
        client.put(url, {"total": "1.00"}, format="json").status_code,
        client.patch(url, {"total": "1.00"}, format="json").status_code,
        client.delete(url).status_code,
        client.post("/api/v1/invoices/", {}, format="json").status_code,
    ]

    assert codes == [405, 405, 405, 405]
    invoices["final"].refresh_from_db()
    assert invoices["final"].total == Decimal("100.00")


def test_finance_finalizes_a_draft_and_a_second_finalize_is_a_conflict(member_factory, tenant_a, invoices):
    client = staff_client(member_factory, tenant_a, Role.FINANCE)
    url = f"/api/v1/invoices/{invoices['draft'].pk}/finalize/"

    first, second = client.post(url), client.post(url)

    assert (first.status_code, first.json()["number"], first.json()["status"]) == (200, "ACME-2026-00002", "finalized")
    assert second.status_code == 409
    assert second.json() == {"detail": "Invoice ACME-2026-00002 is finalized; only a draft can be finalized."}


def test_mark_paid_then_void_is_a_conflict(member_factory, tenant_a, invoices):
    client = staff_client(member_factory, tenant_a, Role.OWNER)
    base = f"/api/v1/invoices/{invoices['final'].pk}"

    paid = client.post(f"{base}/mark-paid/")
    void = client.post(f"{base}/void/")

    assert (paid.status_code, paid.json()["status"], void.status_code) == (200, "paid", 409)


@pytest.mark.parametrize("role", [Role.ACCOUNT_MANAGER, Role.VIEWER])
def test_only_finance_staff_may_move_invoices(member_factory, tenant_a, invoices, role):
    response = staff_client(member_factory, tenant_a, role).post(f"/api/v1/invoices/{invoices['draft'].pk}/finalize/")

    assert response.status_code == 403
    invoices["draft"].refresh_from_db()
    assert invoices["draft"].status == Invoice.Status.DRAFT


def test_api_keys_read_but_never_move_invoices(tenant_a, invoices):
    response = key_client(tenant_a).post(f"/api/v1/invoices/{invoices['draft'].pk}/finalize/")

    assert response.status_code == 403


def test_finance_of_another_tenant_cannot_finalize(member_factory, tenant_b, invoices):
    response = staff_client(member_factory, tenant_b, Role.FINANCE).post(
        f"/api/v1/invoices/{invoices['draft'].pk}/finalize/"
    )

    assert response.status_code == 404


def test_invoice_list_runs_a_fixed_number_of_queries(tenant_a, invoices, django_assert_num_queries):
    client = key_client(tenant_a)
    for n in range(3):
        draft_for(tenant_a, f"More {n}")

    # The API key, its tenant, the view's savepoint and its release, the count, the page with its
    # customers: not one query per invoice.
    with django_assert_num_queries(6):
        response = client.get("/api/v1/invoices/")

    assert response.json()["count"] == 5


def test_credit_notes_are_listed_with_lines(tenant_a, tenant_b, invoices):
    note = credit_note_issue(
        invoice=invoices["final"], lines=[CreditNoteLineSpec("Outage", Decimal("12.50"))], reason="Outage"
    )

    response = key_client(tenant_a).get("/api/v1/credit-notes/")
    other = key_client(tenant_b).get("/api/v1/credit-notes/")

    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert (row["number"], row["invoice_number"], row["total"]) == (
        note.number, "ACME-2026-00001", {"amount": "12.50", "currency": "USD"},
    )
    assert [line["amount"]["amount"] for line in row["lines"]] == ["12.50"]
    assert other.json()["count"] == 0
