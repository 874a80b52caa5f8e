"""camt.053 bank statements: read (versions 02 and 08), matched by invoice number or OCR through the
same preview / confirm flow as CSV, written only on confirm and once per bank transaction."""

import html
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from billing.camt import camt053_read
from billing.models import Invoice, Payment
from billing.services import billing_payment_details_set
from billing.services.bank_statements import MAX_BYTES, bank_statement_import, bank_statement_preview
from customers.models import Role
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_invoice
from tests.customers.factories import CustomerFactory

D = Decimal
DATA = Path(__file__).parent / "data"


@pytest.fixture
def sek(tenant_a, tenant_b):
    """Bergström Konsult (tenant_b) is paid by bankgiro with OCR; Acme (tenant_a) by IBAN."""
    billing_payment_details_set(tenant=tenant_b, payment_method="bankgiro", bankgiro="123-4566")
    billing_payment_details_set(tenant=tenant_a, payment_method="iban", iban="SE4550000000058398257466")
    with platform_scope():
        norrsken = CustomerFactory(tenant=tenant_b, name="Norrsken Logistik AB", currency="SEK", language="sv")
        fjallvind = CustomerFactory(tenant=tenant_b, name="Fjällvind Fastigheter AB", currency="SEK", language="sv")
        acme_customer = CustomerFactory(tenant=tenant_a, name="Northwind", currency="SEK")
    by_ocr = build_invoice(norrsken, lines=[("Konsulttimmar", "10", "1250.00")])
    by_number = build_invoice(fjallvind, lines=[("Retainer", "1", "8333.00")])
    other_tenant = build_invoice(acme_customer, lines=[("Platform fee", "1", "700.00")])
    return {"by_ocr": by_ocr, "by_number": by_number, "other_tenant": other_tenant}


def camt(name: str, sek: dict, **extra) -> str:
    values = {
        "OCR": sek["by_ocr"].ocr_reference, "OCR_AMOUNT": "12500.00",
        "NUMBER": sek["by_number"].number, "NUMBER_AMOUNT": "8333.00", "BATCH_AMOUNT": "8433.00",
        "BAD_OCR": sek["by_ocr"].ocr_reference[:-1] + str((int(sek["by_ocr"].ocr_reference[-1]) + 1) % 10),
        **extra,
    }
    text = (DATA / name).read_text()
    for key, value in values.items():
        text = text.replace("{{%s}}" % key, value)
    return text


def by_label(rows):
    return {row.label: (row.status, row.message) for row in rows}


# --- reading -------------------------------------------------------------------------------------


def test_version_02_entries_are_read_with_amount_dates_references_and_payer(sek):
    entries = camt053_read(camt("camt053_v02.xml", sek).encode(), max_rows=100)

    first = entries[0]
    assert (first.kind, first.amount, first.currency, first.booked_on, first.value_on) == (
        "credit", D("12500.00"), "SEK", date(2026, 12, 2), date(2026, 12, 2))
    assert (first.references, first.payer, first.bank_reference) == (
        (sek["by_ocr"].ocr_reference,), "Norrsken Logistik AB", "BG-20261202-000101")
    assert (entries[1].references, entries[1].value_on) == ((f"Faktura {sek['by_number'].number}",), date(2026, 12, 3))
    assert [(e.number, e.kind) for e in entries] == [(1, "credit"), (2, "credit"), (3, "credit"), (4, "ignored"), (5, "ignored")]
    assert entries[3].reason == "A debit (money paid out), not a payment received."
    assert entries[4].reason == "Not booked (status PDNG): import the final statement."


def test_version_08_reads_status_code_debtor_party_and_splits_a_batch(sek):
    entries = camt053_read(camt("camt053_v08.xml", sek).encode(), max_rows=100)

    assert [(e.label, e.kind, e.amount) for e in entries] == [
        ("1", "credit", D("12500.00")), ("2.1", "credit", D("8333.00")), ("2.2", "credit", D("100.00")),
        ("3", "ignored", D("300.00")), ("4", "ignored", D("45.00")),
    ]
    assert (entries[0].payer, entries[0].bank_reference, entries[0].booked_on) == (
        "Norrsken Logistik AB", "SEB-8841-0001-TX", date(2026, 12, 2))
    assert [e.bank_reference for e in entries[1:3]] == ["E2E-A", "SEB-8841-0002/2"]  # NOTPROVIDED is no id
    assert entries[3].reason == "A reversal of an earlier entry, not a payment received."


def test_prefixed_and_namespace_free_documents_read_the_same():
    entry = (
        "<{p}Ntry><{p}Amt Ccy='EUR'>12.50</{p}Amt><{p}CdtDbtInd>CRDT</{p}CdtDbtInd><{p}Sts>BOOK</{p}Sts>"
        "<{p}BookgDt><{p}Dt>2026-12-01</{p}Dt></{p}BookgDt><{p}AcctSvcrRef>R1</{p}AcctSvcrRef><{p}NtryDtls><{p}TxDtls>"
        "<{p}RmtInf><{p}Ustrd>INV-7</{p}Ustrd></{p}RmtInf></{p}TxDtls></{p}NtryDtls></{p}Ntry>"
    )
    prefixed = (
        "<c:Document xmlns:c='urn:iso:std:iso:20022:tech:xsd:camt.053.001.04'><c:BkToCstmrStmt><c:Stmt>"
        + entry.format(p="c:") + "</c:Stmt></c:BkToCstmrStmt></c:Document>"
    )
    bare = "<Document><BkToCstmrStmt><Stmt>" + entry.format(p="") + "</Stmt></BkToCstmrStmt></Document>"

    read = [camt053_read(text.encode(), max_rows=10)[0] for text in (prefixed, bare)]

    assert [(e.amount, e.currency, e.references, e.bank_reference) for e in read] == [
        (D("12.50"), "EUR", ("INV-7",), "R1")] * 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<Document><BkToCstmrStmt>", "not well-formed XML"),
        ("<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.09'><BkToCstmrStmt/></Document>",
         "camt.053.001.02 to camt.053.001.08"),
        ("<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'/>", "not a camt.053 bank statement"),
    ],
)
def test_malformed_and_foreign_xml_is_refused_with_the_reason(tenant_a, text, message):
    with pytest.raises(ValidationError, match=message):
        bank_statement_preview(tenant=tenant_a, text=text)


def test_a_camt_052_report_is_named_as_the_wrong_document_type(tenant_a):
    with pytest.raises(ValidationError, match="This is a camt.052 account report, not a camt.053 bank statement"):
        bank_statement_preview(tenant=tenant_a, text=(DATA / "camt052_report.xml").read_text())


def test_entity_tricks_are_refused_before_parsing(tenant_a):
    with pytest.raises(ValidationError, match="declares a DOCTYPE or entities"):
        bank_statement_preview(tenant=tenant_a, text=(DATA / "camt053_entities.xml").read_text())


def test_more_entries_than_the_limit_are_refused(sek, tenant_b):
    with pytest.raises(ValidationError, match="at most 3 entries"):
        camt053_read(camt("camt053_v02.xml", sek).encode(), max_rows=3)


# --- preview and confirm -------------------------------------------------------------------------


def test_preview_matches_by_ocr_and_number_reports_a_wrong_check_digit_and_writes_nothing(sek, tenant_b):
    rows = by_label(bank_statement_preview(tenant=tenant_b, text=camt("camt053_v02.xml", sek)))

    bad_ocr = camt("camt053_v02.xml", sek).split("<Ref>")[2].split("</Ref>")[0]
    assert {label: status for label, (status, _) in rows.items()} == {
        "1": "matched", "2": "matched", "3": "unmatched", "4": "ignored", "5": "ignored"}
    assert rows["1"][1] == f"Pays {sek['by_ocr'].number} (Norrsken Logistik AB), which owes 12500.00 SEK."
    assert rows["3"][1] == f"OCR {bad_ocr} has a wrong check digit; not matched: check the number with the payer, or record it by hand."
    assert Payment.objects.for_tenant(tenant_b).count() == 0


def test_confirm_records_exactly_the_matched_credits_with_their_bank_references(sek, tenant_b):
    bank_statement_import(tenant=tenant_b, text=camt("camt053_v02.xml", sek))

    payments = Payment.objects.for_tenant(tenant_b).with_unallocated().order_by("bank_reference")
    assert [(p.amount, p.currency, p.received_on, p.bank_reference, p.reference, p.unallocated, p.note) for p in payments] == [
        (D("12500.00"), "SEK", date(2026, 12, 2), "BG-20261202-000101", sek["by_ocr"].ocr_reference, D("0.00"),
         "Bank statement (camt.053), entry 1, from Norrsken Logistik AB"),
        (D("8333.00"), "SEK", date(2026, 12, 2), "BG-20261202-000102", f"Faktura {sek['by_number'].number}", D("0.00"),
         "Bank statement (camt.053), entry 2, from Fjällvind Fastigheter AB"),
    ]
    statuses = dict(Invoice.objects.for_tenant(tenant_b).values_list("number", "status"))
    assert statuses == {sek["by_ocr"].number: "paid", sek["by_number"].number: "paid"}


def test_importing_the_same_statement_again_records_nothing_twice(sek, tenant_b):
    text = camt("camt053_v02.xml", sek)
    bank_statement_import(tenant=tenant_b, text=text)

    again = by_label(bank_statement_import(tenant=tenant_b, text=text))

    assert again["1"] == ("duplicate", "Already recorded (bank reference BG-20261202-000101).")
    assert again["2"][0] == "duplicate"
    assert Payment.objects.for_tenant(tenant_b).count() == 2


def test_a_bank_reference_recorded_meanwhile_refuses_the_whole_import(sek, tenant_b, monkeypatch):
    # Another import records the second entry's bank transaction between this import's duplicate
    # checks and its insert: the unique constraint refuses it, and nothing of this import is kept.
    from billing.services import payments

    def insert_behind_the_checks(payment):
        if payment.bank_reference == "BG-20261202-000102":
            Payment.objects.for_tenant(tenant_b).bulk_create([Payment(
                tenant=tenant_b, customer=payment.customer, amount=D("1.00"), currency="SEK",
                received_on=payment.received_on, bank_reference=payment.bank_reference)])
        payment.save(force_insert=True)
        return payment

    monkeypatch.setattr(payments, "_payment_save", insert_behind_the_checks)

    with pytest.raises(ValidationError) as refused:
        bank_statement_import(tenant=tenant_b, text=camt("camt053_v02.xml", sek))

    assert refused.value.messages == [
        "Row 2: a payment with bank reference BG-20261202-000102 was recorded meanwhile; preview the statement again."
    ]
    assert not Payment.objects.for_tenant(tenant_b).exists()
    assert set(Invoice.objects.for_tenant(tenant_b).values_list("status", flat=True)) == {"finalized"}


def test_a_bank_reference_recorded_on_a_void_payment_is_still_a_duplicate(sek, tenant_b):
    from billing.services import payment_void

    text = camt("camt053_v02.xml", sek)
    bank_statement_import(tenant=tenant_b, text=text)
    payment_void(payment=Payment.objects.for_tenant(tenant_b).get(bank_reference="BG-20261202-000101"), reason="Bounced")

    assert by_label(bank_statement_preview(tenant=tenant_b, text=text))["1"][0] == "duplicate"


def test_a_batch_entry_records_one_payment_per_transaction(sek, tenant_b):
    rows = by_label(bank_statement_import(tenant=tenant_b, text=camt("camt053_v08.xml", sek)))

    assert {label: status for label, (status, _) in rows.items()} == {
        "1": "matched", "2.1": "matched", "2.2": "unmatched", "3": "ignored", "4": "ignored"}
    assert sorted(Payment.objects.for_tenant(tenant_b).values_list("bank_reference", "amount")) == [
        ("E2E-A", D("8333.00")), ("SEB-8841-0001-TX", D("12500.00"))]


def test_a_camt_statement_never_matches_another_tenants_invoice(sek, tenant_a, tenant_b):
    bergstrom_statement = camt("camt053_v02.xml", sek)
    naming_acme = camt("camt053_v02.xml", sek, NUMBER=sek["other_tenant"].number)

    in_acme = by_label(bank_statement_preview(tenant=tenant_a, text=bergstrom_statement))
    in_bergstrom = by_label(bank_statement_preview(tenant=tenant_b, text=naming_acme))

    assert in_acme["1"] == in_acme["2"] == ("unmatched", "No invoice number of yours in the reference.")
    assert in_bergstrom["2"] == ("unmatched", "No invoice number of yours in the reference.")
    bank_statement_import(tenant=tenant_a, text=bergstrom_statement)
    assert Payment.objects.for_tenant(tenant_a).count() == 0


def test_an_unknown_but_valid_ocr_is_named(sek, tenant_b):
    text = camt("camt053_v02.xml", sek, OCR="12345682")

    assert by_label(bank_statement_preview(tenant=tenant_b, text=text))["1"] == (
        "unmatched", "No invoice of yours has OCR 12345682.")


def test_an_ocr_with_a_wrong_length_digit_is_reported(sek, tenant_b):
    # 123456 + length digit 7 (it has 8 digits, so 8 is right) + the Luhn check digit of 1234567, which is 4.
    text = camt("camt053_v02.xml", sek, OCR="12345674")

    assert by_label(bank_statement_preview(tenant=tenant_b, text=text))["1"] == ("unmatched", (
        "OCR 12345674 has a wrong length digit; not matched: check the number with the payer, or record it by hand."))


def test_csv_rows_match_by_ocr_too(sek, tenant_b):
    ocr = sek["by_ocr"].ocr_reference
    typo = ocr[:-1] + str((int(ocr[-1]) + 1) % 10)
    text = f"date,amount,currency,reference\n2026-12-02,12500.00,SEK,OCR {ocr}\n2026-12-02,10.00,SEK,{typo}\n"

    rows = bank_statement_preview(tenant=tenant_b, text=text)

    assert [(row.status, row.invoice) for row in rows] == [("matched", sek["by_ocr"]), ("unmatched", None)]
    assert rows[1].message == (
        f"OCR {typo} has a wrong check digit; not matched: check the number with the payer, or record it by hand.")


def test_a_credit_in_another_currency_or_with_a_bad_amount_is_not_matched(sek, tenant_b):
    text = camt("camt053_v02.xml", sek).replace('<Amt Ccy="SEK">12500.00</Amt>', '<Amt Ccy="EUR">12500.00</Amt>', 1)
    text = text.replace('<Amt Ccy="SEK">8333.00</Amt>', '<Amt Ccy="SEK">8333.005</Amt>', 1)

    rows = by_label(bank_statement_preview(tenant=tenant_b, text=text))

    assert rows["1"] == ("unmatched", f"{sek['by_ocr'].number} is in SEK, not EUR.")
    assert rows["2"] == ("invalid", "The amount is not a positive amount with at most 2 decimals.")


# --- the admin ------------------------------------------------------------------------------------


def test_admin_upload_previews_a_camt_file_then_confirm_records_it(client, member_factory, sek, tenant_b):
    client.force_login(member_factory(tenant_b, Role.FINANCE))
    url = reverse("admin:billing_payment_import")
    text = camt("camt053_v08.xml", sek)

    preview = client.post(url, {"file": SimpleUploadedFile("statement.xml", text.encode(), content_type="application/xml")})
    page = preview.content.decode()
    assert preview.status_code == 200 and page.count('class="row-matched"') == 2 and page.count('class="row-ignored"') == 2
    assert "Norrsken Logistik AB" in page and Payment.objects.for_tenant(tenant_b).count() == 0

    carried = html.unescape(re.search(r'name="statement" value="([^"]*)"', page).group(1))
    assert carried == text  # the preview carries the file back unchanged
    done = client.post(url, {"statement": carried, "confirm": "1"})
    assert done.status_code == 302 and Payment.objects.for_tenant(tenant_b).count() == 2


def test_admin_answers_malformed_xml_with_400_and_the_reason(client, member_factory, tenant_b):
    client.force_login(member_factory(tenant_b, Role.FINANCE))
    upload = SimpleUploadedFile("statement.xml", b"<Document><BkToCstmrStmt>", content_type="application/xml")

    response = client.post(reverse("admin:billing_payment_import"), {"file": upload})

    assert response.status_code == 400 and "not well-formed XML" in response.content.decode()


def test_admin_refuses_a_file_over_the_size_limit_with_400(client, member_factory, tenant_b):
    client.force_login(member_factory(tenant_b, Role.FINANCE))
    upload = SimpleUploadedFile("statement.xml", b"<Document>" + b" " * MAX_BYTES + b"</Document>")

    response = client.post(reverse("admin:billing_payment_import"), {"file": upload})

    assert response.status_code == 400 and "larger than 2 MB" in response.content.decode()
