"""OCR numbers and bankgiro numbers (Luhn), a tenant's payment details (bankgiro + OCR or IBAN), the
OCR an invoice gets at finalization, and the details printed on the invoice PDF and in its email."""

import io
from datetime import date

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import translation
from pypdf import PdfReader

from billing.delivery import invoice_send
from billing.documents import invoice_render_pdf
from billing.models import BillingSettings, Invoice
from billing.references import (
    bankgiro_format,
    bankgiro_problem,
    luhn_check_digit,
    luhn_is_valid,
    ocr_for_invoice,
    ocr_from_base,
    ocr_problem,
)
from billing.services import billing_payment_details_set
from customers.models import Role
from customers.tenancy import platform_scope, tenant_scope
from tests.api_clients import key_client
from tests.billing.document_builders import build_invoice
from tests.customers.factories import CustomerFactory


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


# --- Luhn, OCR, bankgiro -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "check"),
    [
        # 1234567 89: from the right 9,7,5,3,1 doubled → 18→9, 14→5, 10→1, 6, 2 = 23; 8+6+4+2 = 20; 43 → 7.
        ("123456789", "7"),
        ("7992739871", "3"),  # the textbook vector 79927398713
        ("0", "0"),
        ("123456", "6"),  # 6,4,2 doubled → 12→3, 8, 4 = 15; 5+3+1 = 9; 24 → 6
    ],
)
def test_luhn_check_digit_of_known_vectors(payload, check):
    assert luhn_check_digit(payload) == check
    assert luhn_is_valid(payload + check)
    assert not luhn_is_valid(payload + str((int(check) + 1) % 10))


def test_ocr_carries_a_length_digit_then_a_check_digit():
    # 123456 + length 8 → 1234568; its Luhn digit: 8,5,3,1 doubled → 16→7, 10→1, 6, 2 = 16; 6+4+2 = 12; 28 → 2.
    assert ocr_from_base("123456") == "12345682"
    # SK-2026-00012: base 202600012, eleven digits in all (length digit 1), check digit 7.
    assert ocr_for_invoice(year=2026, sequence_number=12) == "20260001217"


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("12345682", ""),
        ("20260001217", ""),
        ("12345683", "OCR 12345683 has a wrong check digit"),
        ("12345674", "OCR 12345674 has a wrong length digit"),  # 1234567 + its check digit 4: 7 is not the length
        ("1234-5682", "OCR '1234-5682' has characters other than digits"),
        ("1" * 26, f"OCR {'1' * 26} has 26 digits; an OCR number has 3 to 25"),
    ],
)
def test_ocr_problem_names_what_is_wrong(reference, problem):
    assert ocr_problem(reference) == problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("123-4566", ""),
        ("5050-1055", ""),
        ("1234566", ""),
        ("123-4567", "Bankgiro 123-4567 has a wrong check digit; check the number."),
        ("12-3456", "A bankgiro number has 7 or 8 digits, e.g. 123-4566 or 5050-1055."),
        ("123456789", "A bankgiro number has 7 or 8 digits, e.g. 123-4566 or 5050-1055."),
        ("abc-defg", "A bankgiro number has 7 or 8 digits, e.g. 123-4566 or 5050-1055."),
    ],
)
def test_bankgiro_is_seven_or_eight_digits_with_a_luhn_check_digit(value, problem):
    with translation.override("en"):
        assert bankgiro_problem(value) == problem


def test_a_wrong_bankgiro_is_explained_in_swedish_too():
    with translation.override("sv"):
        assert bankgiro_problem("123-4567") == "Bankgiro 123-4567 har fel kontrollsiffra; kontrollera numret."


def test_bankgiro_is_written_with_a_hyphen_before_the_last_four_digits():
    assert (bankgiro_format("1234566"), bankgiro_format("5050 1055")) == ("123-4566", "5050-1055")


# --- payment details -----------------------------------------------------------------------------


def test_bankgiro_details_are_stored_formatted_and_clear_the_iban(tenant_b):
    billing_payment_details_set(tenant=tenant_b, payment_method="iban", iban="SE45 5000 0000 0583 9825 7466", bic="essesess")
    settings = billing_payment_details_set(tenant=tenant_b, payment_method="bankgiro", bankgiro="1234566")

    assert (settings.bankgiro, settings.iban, settings.bic) == ("123-4566", "", "")


def test_iban_details_are_validated_and_stored_compact(tenant_a):
    settings = billing_payment_details_set(
        tenant=tenant_a, payment_method="iban", iban="se45 5000 0000 0583 9825 7466", bic="ESSE SESS", bank_name="SEB")

    assert (settings.iban, settings.bic, settings.bank_name) == ("SE4550000000058398257466", "ESSESESS", "SEB")


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"payment_method": "bankgiro", "bankgiro": "123-4567"}, "bankgiro"),
        ({"payment_method": "bankgiro"}, "bankgiro"),
        ({"payment_method": "iban", "iban": "SE4550000000058398257467"}, "iban"),
        ({"payment_method": "iban", "iban": "SE4550000000058398257466", "bic": "NOTABIC!"}, "bic"),
        ({"payment_method": "cheque"}, "payment_method"),
    ],
)
def test_invalid_payment_details_are_refused_per_field(tenant_a, details, field):
    with pytest.raises(ValidationError) as refused:
        billing_payment_details_set(tenant=tenant_a, **details)

    assert list(refused.value.message_dict) == [field]
    assert not BillingSettings.objects.for_tenant(tenant_a).filter(payment_method__in=["bankgiro", "iban"]).exists()


def test_the_settings_api_sets_payment_details_and_answers_400_per_field(tenant_a, tenant_b):
    client = key_client(tenant_b)

    done = client.patch("/api/v1/billing-settings/", {"payment_method": "bankgiro", "bankgiro": "1234566"}, format="json")
    wrong = client.patch("/api/v1/billing-settings/", {"bankgiro": "123-4567"}, format="json")
    bad_iban = key_client(tenant_a).patch(
        "/api/v1/billing-settings/", {"payment_method": "iban", "iban": "DE00 1234"}, format="json")

    assert (done.status_code, done.json()["payment_method"], done.json()["bankgiro"]) == (200, "bankgiro", "123-4566")
    assert (wrong.status_code, wrong.json()) == (400, {"bankgiro": ["Bankgiro 123-4567 has a wrong check digit; check the number."]})
    assert (bad_iban.status_code, list(bad_iban.json())) == (400, ["iban"])
    assert BillingSettings.objects.for_tenant(tenant_b).get().bankgiro == "123-4566"
    assert key_client(tenant_a).get("/api/v1/billing-settings/").json()["payment_method"] == ""


def test_finance_sets_payment_details_in_the_admin(client, member_factory, tenant_b):
    client.force_login(member_factory(tenant_b, Role.FINANCE))
    with tenant_scope(tenant_b):
        settings = BillingSettings.objects.create(tenant=tenant_b)
    url = reverse("admin:billing_billingsettings_change", args=[settings.pk])
    form = {"minimum_invoice_amount": "0", "usage_max_future_hours": "24", "payment_method": "bankgiro"}

    refused = client.post(url, {**form, "bankgiro": "123-4567"})
    saved = client.post(url, {**form, "bankgiro": "1234566"})

    assert refused.status_code == 200 and "fel kontrollsiffra" in refused.content.decode()  # Bergström's staff read Swedish
    assert saved.status_code == 302
    assert BillingSettings.objects.for_tenant(tenant_b).get().bankgiro == "123-4566"


# --- OCR at finalization -------------------------------------------------------------------------


@pytest.fixture
def konsult(tenant_a, tenant_b):
    """Bergström Konsult (Swedish, SEK) is paid by bankgiro with OCR; Acme (USD) to an IBAN."""
    billing_payment_details_set(tenant=tenant_b, payment_method="bankgiro", bankgiro="123-4566")
    billing_payment_details_set(
        tenant=tenant_a, payment_method="iban", iban="SE4550000000058398257466", bic="ESSESESS", bank_name="SEB",
        payment_reference_text="Questions about payments: ap@acme.example.com",
    )
    with platform_scope():
        swedish = CustomerFactory(tenant=tenant_b, name="Sjöberg AB", currency="SEK", language="sv",
                                  billing_emails=["ekonomi@sjoberg.example.se"])
        american = CustomerFactory(tenant=tenant_a, name="Northwind", currency="USD", language="en",
                                   billing_emails=["ap@northwind.example.com"])
    return {
        "se": build_invoice(swedish, lines=[("Konsulttimmar", "10", "1234.50")]),
        "us": build_invoice(american),
    }


def test_a_bankgiro_tenants_invoice_gets_its_ocr_at_finalization_and_others_none(konsult):
    assert (konsult["se"].number, konsult["se"].ocr_reference) == ("BK-2026-00001", "20260000110")
    assert konsult["us"].ocr_reference == ""
    assert Invoice.objects.for_tenant(konsult["se"].tenant).get(pk=konsult["se"].pk).ocr_reference == "20260000110"


def test_a_draft_has_no_ocr_yet(konsult, tenant_b):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_b, currency="SEK")
    draft = build_invoice(customer, finalize=False)

    assert draft.ocr_reference == ""


def test_an_ocr_is_unique_per_tenant(konsult, tenant_b):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_b, currency="SEK")
    draft = build_invoice(customer, finalize=False, period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))

    with pytest.raises(IntegrityError), transaction.atomic(), tenant_scope(tenant_b):
        Invoice.objects.for_tenant(tenant_b).filter(pk=draft.pk).update(ocr_reference=konsult["se"].ocr_reference)


# --- on the PDF and in the email -----------------------------------------------------------------


def pdf_text(name: str) -> str:
    with default_storage.open(name, "rb") as handle:
        return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(handle.read())).pages)


def test_the_swedish_pdf_shows_bankgiro_and_ocr(konsult):
    text = pdf_text(invoice_render_pdf(invoice=konsult["se"]))

    assert "Betalningsuppgifter" in text
    assert "Bankgiro 123-4566, OCR 20260000110" in text
    assert "Ange alltid OCR-numret som referens när du betalar." in text


def test_the_english_pdf_shows_iban_bic_and_the_invoice_number_as_reference(konsult):
    text = pdf_text(invoice_render_pdf(invoice=konsult["us"]))

    assert "IBAN SE45 5000 0000 0583 9825 7466, BIC ESSESESS (SEB)" in text
    assert "Reference: ACME-2026-00001" in text
    assert "Questions about payments: ap@acme.example.com" in text
    assert "Bankgiro" not in text and "OCR" not in text


def test_the_swedish_email_gives_bankgiro_and_ocr(konsult):
    invoice_send(invoice=konsult["se"])

    (message,) = mail.outbox
    assert "Betalningsuppgifter:\nBankgiro 123-4566, OCR 20260000110\n" in message.body
    assert "Bankgiro 123-4566, OCR 20260000110" in message.alternatives[0][0]


def test_the_english_email_gives_iban_and_reference(konsult):
    invoice_send(invoice=konsult["us"])

    (message,) = mail.outbox
    assert "Payment details:\nIBAN SE45 5000 0000 0583 9825 7466, BIC ESSESESS (SEB)\nReference: ACME-2026-00001\n" in message.body
    assert "Reference: ACME-2026-00001" in message.alternatives[0][0]


def test_without_payment_details_the_invoice_asks_for_the_number_as_before(tenant_a, tenant_b):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a, currency="USD", language="en", billing_emails=["ap@x.example.com"])
    invoice = build_invoice(customer)

    text = pdf_text(invoice_render_pdf(invoice=invoice))
    invoice_send(invoice=invoice)

    assert "Please mark your payment with ACME-2026-00001." in text and "Payment details" not in text
    assert "Payment details" not in mail.outbox[0].body
