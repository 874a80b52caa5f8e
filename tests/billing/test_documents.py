"""Invoice and credit-note PDFs: content, language, storage, the logo-only fetcher."""

import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from pypdf import PdfReader

from billing import documents
from billing.documents import (
    LOGO_URL,
    FetchRefused,
    TenantLogoFetcher,
    credit_note_render_pdf,
    invoice_preview_pdf,
    invoice_render_pdf,
)
from billing.formatting import format_money
from billing.models import Invoice
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.customers.factories import CustomerFactory


NBSP = "\u00a0"
# A 1×1 PNG: enough for WeasyPrint to embed.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc000"
    "0003010100c9fe92ef0000000049454e44ae426082"
)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test its own MEDIA_ROOT: stored PDFs have deterministic names, numbers restart per test."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def stored_bytes(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return handle.read()


@pytest.fixture
def us_customer(tenant_a):
    tenant_a.legal_name, tenant_a.vat_number, tenant_a.address = "Acme Optimizer Inc.", "US-EIN 12-3456789", "500 Market St"
    tenant_a.save()
    with platform_scope():
        return CustomerFactory(tenant=tenant_a, name="Northwind Analytics LLC", language="en", currency="USD")


@pytest.fixture
def se_customer(tenant_b):
    tenant_b.legal_name, tenant_b.vat_number, tenant_b.vat_rate = "Bergström Konsult AB", "SE556677889901", Decimal("25")
    tenant_b.save()
    with platform_scope():
        return CustomerFactory(
            tenant=tenant_b, name="Sjöberg & Söner AB", language="sv", currency="SEK", country="SE", org_number="556123-4567"
        )


@pytest.fixture
def usd_invoice(us_customer):
    return build_invoice(
        us_customer,
        lines=[("Platform fee", "1", "500.00"), ("Savings share 20%", "16224.50", "0.20"), ("Loyalty discount", "1", "-50.00")],
        credit_applied="120.00",
    )


@pytest.fixture
def sek_invoice(se_customer):
    return build_invoice(
        se_customer,
        lines=[("Startpaket 8 veckor", "1", "300000.00"), ("Licenser", "14", "150.00")],
        vat_rate="25",
    )


def test_english_usd_invoice_shows_parties_lines_and_totals(usd_invoice):
    text = pdf_text(stored_bytes(invoice_render_pdf(invoice=usd_invoice)))

    assert usd_invoice.number == "ACME-2026-00001"
    for expected in [
        "Invoice", "ACME-2026-00001", "Acme Optimizer Inc.", "US-EIN 12-3456789", "Northwind Analytics LLC",
        "Platform fee", "16,224.5", "$3,244.90", "-$50.00", "Subtotal $3,744.90", "Discounts and credits -$50.00",
        "Total $3,694.90", "Credit applied -$120.00", "Amount due $3,574.90", "Dec 1, 2026", "Dec 31, 2026",
        "Nov 1, 2026 – Nov 30, 2026", "Payment terms: 30 days net.", "Page 1 of 1",
    ]:
        assert expected in text, expected


def test_swedish_sek_invoice_is_in_swedish_with_swedish_amounts(sek_invoice):
    text = pdf_text(stored_bytes(invoice_render_pdf(invoice=sek_invoice)))

    for expected in [
        "Faktura", "BK-2026-00001", "Sjöberg & Söner AB", "Org.nr 556123-4567", "Momsreg.nr SE556677889901",
        f"300{NBSP}000,00{NBSP}kr", f"Moms 25{NBSP}% 75{NBSP}525,00{NBSP}kr", f"Att betala 377{NBSP}625,00{NBSP}kr",
        "2026-12-31", "Betalningsvillkor: 30 dagar netto.", "Sida 1 av 1",
    ]:
        assert expected in text, expected
    assert "Invoice" not in text


def test_money_is_formatted_per_language():
    assert format_money(Decimal("1234.5"), "SEK", "sv") == f"1{NBSP}234,50{NBSP}kr"
    assert format_money(Decimal("1234.5"), "USD", "en") == "$1,234.50"
    assert format_money(Decimal("-5"), "SEK", "en") == f"-SEK{NBSP}5.00"


def test_reverse_charge_invoice_carries_the_note(tenant_a, tenant_b):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_b, language="en", currency="SEK", country="DE", vat_number="DE123456789")
    invoice = build_invoice(customer, reverse_charge=True)

    text = pdf_text(invoice_preview_pdf(invoice=invoice))

    assert "VAT (reverse charge)" in text
    assert "Reverse charge: VAT to be accounted for by the recipient" in text


def test_sixty_lines_make_a_numbered_two_page_invoice(us_customer, tenant_b):
    invoice = build_invoice(us_customer, lines=[(f"Job batch {i:03d}", str(i), "0.35") for i in range(1, 61)])

    reader = PdfReader(io.BytesIO(stored_bytes(invoice_render_pdf(invoice=invoice))))

    assert len(reader.pages) == 2
    assert "Page 1 of 2" in reader.pages[0].extract_text()
    last = reader.pages[1].extract_text()
    assert "Page 2 of 2" in last and "Job batch 060" in last and "Amount due $640.50" in last


def test_finalized_invoice_pdf_is_stored_at_its_deterministic_path(usd_invoice, tenant_b):
    name = invoice_render_pdf(invoice=usd_invoice)

    assert name == "invoices/acme/2026/ACME-2026-00001.pdf"
    assert (Path(settings.MEDIA_ROOT) / name).read_bytes().startswith(b"%PDF")
    assert Invoice.objects.for_tenant(usd_invoice.tenant).get(pk=usd_invoice.pk).pdf.name == name


def test_rendering_a_rendered_invoice_returns_the_stored_file_without_rendering(usd_invoice, tenant_b, monkeypatch):
    name = invoice_render_pdf(invoice=usd_invoice)
    before = stored_bytes(name)
    monkeypatch.setattr(documents, "_render", lambda *a, **k: pytest.fail("rendered again"))

    again = invoice_render_pdf(invoice=Invoice.objects.for_tenant(usd_invoice.tenant).get(pk=usd_invoice.pk))

    assert again == name
    assert stored_bytes(name) == before


def test_the_database_guard_lets_the_pdf_be_named_once_and_never_renamed(usd_invoice, tenant_b):
    # The guard is the migration's: the suite always migrates (row-level security needs it), and the
    # application role the tests run as may not create triggers.
    name = invoice_render_pdf(invoice=usd_invoice)

    invoices = Invoice.objects.for_tenant(usd_invoice.tenant)
    assert name == invoices.get(pk=usd_invoice.pk).pdf.name == "invoices/acme/2026/ACME-2026-00001.pdf"
    with pytest.raises(IntegrityError), transaction.atomic():
        invoices.filter(pk=usd_invoice.pk).update(pdf="invoices/acme/2026/forged.pdf")
    assert invoices.get(pk=usd_invoice.pk).pdf.name == name


def test_draft_preview_returns_bytes_and_stores_nothing(us_customer, tenant_b):
    draft = build_invoice(us_customer, finalize=False)

    data = invoice_preview_pdf(invoice=draft)

    assert data.startswith(b"%PDF")
    assert "DRAFT – NOT A VALID INVOICE" in pdf_text(data)
    assert not default_storage.exists("invoices/acme")
    assert Invoice.objects.for_tenant(draft.tenant).get(pk=draft.pk).pdf.name == ""


def test_a_draft_cannot_be_stored(us_customer, tenant_b):
    draft = build_invoice(us_customer, finalize=False)

    with pytest.raises(ValidationError, match="draft"):
        invoice_render_pdf(invoice=draft)


def test_credit_note_pdf_is_a_swedish_kreditfaktura_stored_once(sek_invoice, tenant_a, monkeypatch):
    note = build_credit_note(sek_invoice, amount="5000.00", reason="Workshop flyttad")

    name = credit_note_render_pdf(credit_note=note)
    text = pdf_text(stored_bytes(name))

    assert name == f"credit-notes/bergstrom/{note.issue_date.year}/{note.number}.pdf"
    for expected in ["Kreditfaktura", note.number, "BK-2026-00001", "Workshop flyttad", f"6{NBSP}250,00{NBSP}kr", "Moms"]:
        assert expected in text, expected
    monkeypatch.setattr(documents, "_render", lambda *a, **k: pytest.fail("rendered again"))
    assert credit_note_render_pdf(credit_note=note) == name


def test_tenant_logo_is_embedded(usd_invoice, tenant_b):
    tenant = usd_invoice.tenant
    tenant.logo.save("acme.png", ContentFile(PNG))

    reader = PdfReader(io.BytesIO(invoice_preview_pdf(invoice=usd_invoice)))

    assert len(list(reader.pages[0].images)) == 1


def test_fetcher_serves_only_the_tenants_own_logo(tenant_a, tenant_b):
    tenant_a.logo.save("acme.png", ContentFile(PNG))
    fetcher = TenantLogoFetcher(tenant_a)

    assert fetcher.fetch(LOGO_URL).read() == PNG
    for url in [
        "http://127.0.0.1:9/x.png",
        "https://example.com/logo.png",
        f"file://{settings.MEDIA_ROOT}/{tenant_a.logo.name}",
        "file:///etc/passwd",
        "data:image/png;base64,AAAA",
    ]:
        with pytest.raises(FetchRefused):
            fetcher.fetch(url)
    with pytest.raises(FetchRefused):
        TenantLogoFetcher(tenant_b).fetch(LOGO_URL)  # tenant_b has no logo, and never gets tenant_a's


def test_fetcher_refuses_a_logo_outside_the_logo_folder(tenant_a, tenant_b, media_root):
    (media_root / "tenant-logos").mkdir(parents=True)
    (media_root / "secret.png").write_bytes(PNG)
    tenant_a.logo.name = "tenant-logos/../secret.png"

    with pytest.raises(FetchRefused):
        TenantLogoFetcher(tenant_a).fetch(LOGO_URL)


@pytest.mark.django_db(transaction=True)
def test_finalizing_renders_the_pdf_and_emails_it_once_committed(tenant_a, tenant_b, mailoutbox):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a, currency="USD", billing_emails=["ap@northwind.example.com"])
    invoice = build_invoice(customer)  # finalized through invoice_finalize

    stored = Invoice.objects.for_tenant(tenant_a).get(pk=invoice.pk)
    assert stored.pdf.name == f"invoices/acme/{stored.issue_date.year}/{stored.number}.pdf"
    assert [m.to for m in mailoutbox] == [["ap@northwind.example.com"]]
    assert stored.number in mailoutbox[0].subject
    assert mailoutbox[0].attachments[0][2] == "application/pdf"
