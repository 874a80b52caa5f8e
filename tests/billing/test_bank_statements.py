"""Bank statement import: every row matched / ambiguous / unmatched / duplicate / invalid, nothing
written before finance confirms, exactly the matched rows written after."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from billing.models import Invoice, Payment, PaymentAllocation
from billing.services import invoice_mark_paid
from billing.services.bank_statements import bank_statement_import, bank_statement_preview
from customers.models import Role
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_invoice
from tests.customers.factories import CustomerFactory

D = Decimal


@pytest.fixture
def acme(tenant_a, tenant_b):
    with platform_scope():
        northwind = CustomerFactory(tenant=tenant_a, name="Northwind")
        contoso = CustomerFactory(tenant=tenant_a, name="Contoso")
        foreign = CustomerFactory(tenant=tenant_b, name="Sjöberg AB")
    october = build_invoice(northwind, lines=[("Platform fee", "1", "300.00")],
                            period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))
    november = build_invoice(northwind, lines=[("Platform fee", "1", "424.00")])
    paid = build_invoice(contoso, lines=[("Platform fee", "1", "50.00")])
    invoice_mark_paid(invoice=paid)
    other_tenant = build_invoice(foreign, lines=[("Konsult", "1", "100.00")])
    return {"october": october, "november": november, "paid": paid, "other_tenant": other_tenant}


def statement(acme):
    o, n, p, x = (acme[k].number for k in ("october", "november", "paid", "other_tenant"))
    return (
        "date,amount,currency,reference,payer\n"
        f"2026-12-02,350.00,USD,Invoice {o.lower()} thanks,Northwind\n"  # 2: matched, 50.00 over → credit
        f"2026-12-02,100.00,USD,{o} and {n},Northwind\n"  # 3: ambiguous
        f"2026-12-02,50.00,USD,{p},Contoso\n"  # 4: unmatched, already paid
        f"2026-12-02,100.00,,{x},Someone\n"  # 5: unmatched: another tenant's number is unknown here
        "2026-12-02,10.00,USD,no number at all,\n"  # 6: unmatched
        f"02/12/2026,ten,USD,{n},\n"  # 7: invalid
        f"2026-12-03,124.00,,{n}\n"  # 8: matched, partial
    )


def by_line(rows):
    return {row.line: (row.status, row.message) for row in rows}


def test_preview_sorts_every_row_and_writes_nothing(tenant_a, acme):
    rows = by_line(bank_statement_preview(tenant=tenant_a, text=statement(acme)))

    assert {line: status for line, (status, _) in rows.items()} == {
        2: "matched", 3: "ambiguous", 4: "unmatched", 5: "unmatched", 6: "unmatched", 7: "invalid", 8: "matched",
    }
    assert rows[2][1] == f"Pays {acme['october'].number} (Northwind), which owes 300.00 USD."
    assert rows[4][1] == f"{acme['paid'].number} is already paid."
    assert rows[5][1] == rows[6][1] == "No invoice number of yours in the reference."
    assert rows[7][1] == "Date '02/12/2026' is not YYYY-MM-DD; amount 'ten' is not a positive amount like 1250.00."
    assert Payment.objects.for_tenant(tenant_a).count() == 1  # only the paid fixture's


def test_confirm_writes_exactly_the_matched_rows_and_twice_is_a_duplicate(tenant_a, acme):
    bank_statement_import(tenant=tenant_a, text=statement(acme))

    allocations = sorted(
        PaymentAllocation.objects.for_tenant(tenant_a).exclude(invoice=acme["paid"]).values_list("invoice__number", "amount")
    )
    assert allocations == [(acme["october"].number, D("300.00")), (acme["november"].number, D("124.00"))]
    assert Invoice.objects.for_tenant(tenant_a).get(pk=acme["october"].pk).status == "paid"
    new = Payment.objects.for_tenant(tenant_a).exclude(reference=acme["paid"].number).with_unallocated()
    assert sorted((p.amount, p.unallocated, p.method) for p in new) == [
        (D("124.00"), D("0.00"), "bank_transfer"), (D("350.00"), D("50.00"), "bank_transfer")]

    again = by_line(bank_statement_import(tenant=tenant_a, text=statement(acme)))
    assert again[8][0] == "duplicate" and again[2][0] == "unmatched"  # October is paid now
    assert again[3][0] == "matched"  # "October and November": only November is still open
    assert Payment.objects.for_tenant(tenant_a).count() == 4


def test_a_file_without_the_columns_is_refused(tenant_a, acme):
    with pytest.raises(ValidationError, match="missing: amount, reference"):
        bank_statement_preview(tenant=tenant_a, text="date,belopp,meddelande\n2026-12-02,1,x\n")


def test_semicolons_and_decimal_commas_are_read(tenant_a, acme):
    text = f"Date;Amount;Reference\n2026-12-02;1 300,50;{acme['november'].number}\n"
    (row,) = bank_statement_preview(tenant=tenant_a, text=text)
    assert (row.status, row.amount, row.invoice) == ("matched", D("1300.50"), acme["november"])


def test_admin_preview_then_confirm(client, member_factory, tenant_a, acme):
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    url = reverse("admin:billing_payment_import")
    upload = SimpleUploadedFile("statement.csv", statement(acme).encode(), content_type="text/csv")

    preview = client.post(url, {"file": upload})
    page = preview.content.decode()
    assert preview.status_code == 200 and page.count('class="row-matched"') == 2 and 'class="row-ambiguous"' in page
    assert Payment.objects.for_tenant(tenant_a).count() == 1

    done = client.post(url, {"statement": statement(acme), "confirm": "1"})
    assert done.status_code == 302 and Payment.objects.for_tenant(tenant_a).count() == 3

    viewer = member_factory(tenant_a, Role.VIEWER)
    client.force_login(viewer)
    assert client.post(url, {"statement": statement(acme), "confirm": "1"}).status_code == 403
