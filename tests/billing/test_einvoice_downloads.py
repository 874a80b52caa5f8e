"""E-invoice downloads (API and portal) and the invoice email's attachments by the customer's choice.

Factur-X renders cost a PDF/A render each: three tests make one."""

import io
from datetime import date
from decimal import Decimal

import pytest
from django.core import mail
from facturx import get_xml_from_pdf
from pypdf import PdfReader

from billing.delivery import invoice_send
from customers.models import EInvoiceFormat
from customers.tenancy import platform_scope
from tests.api_clients import key_client
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.billing.einvoice_checks import assert_valid_cii, assert_valid_ubl, cii_figures, ubl_figures
from tests.customers.factories import CustomerFactory, PortalAccessFactory, UserFactory


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def world(tenant_a, tenant_b):
    """A Swedish seller (tenant_b) with a customer, a finalized invoice, a credit note and a draft; and a
    US tenant (tenant_a) with an invoice of its own."""
    tenant_b.legal_name, tenant_b.vat_number, tenant_b.vat_rate = "Bergström Konsult AB", "SE556732170701", Decimal("25")
    tenant_b.country, tenant_b.address, tenant_b.peppol_id = "SE", "Drottninggatan 55\n111 21 Stockholm", "0007:5567321707"
    tenant_b.save()
    tenant_a.country, tenant_a.address = "US", "548 Market St\nSan Francisco, CA 94104"
    tenant_a.save()
    with platform_scope():
        kund = CustomerFactory(
            tenant=tenant_b, name="Kund AB", currency="SEK", language="sv", vat_number="SE556000000101",
            peppol_id="0007:5560000001", address_line1="Storgatan 1", postal_code="411 38", city="Göteborg",
            country="SE", billing_emails=["ap@kund.example"], external_ref="kund",
        )
        other = CustomerFactory(tenant=tenant_a, name="Northwind LLC", currency="USD", country="US", city="Boston",
                                billing_emails=["ap@northwind.example"], external_ref="northwind")
        portal_user = PortalAccessFactory(customer=kund, tenant=tenant_b, user=UserFactory(username="kund")).user
    invoice = build_invoice(kund, lines=(("Workshop", "2", "12500.00"), ("Timmar", "7.5", "1350.00")), vat_rate="25")
    note = build_credit_note(invoice, amount="1000.00")
    draft = build_invoice(kund, period_start=date(2026, 12, 1), period_end=date(2026, 12, 31), finalize=False)
    foreign = build_invoice(other)
    return {"kund": kund, "invoice": invoice, "note": note, "draft": draft, "foreign": foreign, "portal_user": portal_user}


@pytest.fixture
def api(world, tenant_b):
    return key_client(tenant_b)


def _pdf_a_part(content: bytes) -> str:
    metadata = PdfReader(io.BytesIO(content)).trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    return metadata.split('pdfaid:part="')[1][0] if 'pdfaid:part="' in metadata else metadata.split("<pdfaid:part>")[1][0]


def test_api_gives_a_finalized_invoice_as_ubl_xml(api, world):
    invoice = world["invoice"]
    response = api.get(f"/api/v1/invoices/{invoice.pk}/ubl/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}.xml"'
    figures = ubl_figures(assert_valid_ubl(response.content))
    assert (figures["net"], figures["tax"], figures["total"]) == (Decimal("35125.00"), Decimal("8781.25"), invoice.total)


def test_api_gives_a_finalized_invoice_as_factur_x_pdf_a3_with_its_cii_inside(api, world):
    invoice = world["invoice"]
    response = api.get(f"/api/v1/invoices/{invoice.pk}/facturx/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}-facturx.pdf"'
    assert _pdf_a_part(response.content) == "3"
    filename, xml = get_xml_from_pdf(response.content, check_xsd=False)
    assert filename == "factur-x.xml"
    figures = cii_figures(assert_valid_cii(xml))
    assert (figures["total"], figures["payable"]) == (Decimal("43906.25"), Decimal("43906.25")) == (invoice.total, invoice.amount_due)


def test_api_gives_a_credit_note_as_factur_x_type_381_naming_its_invoice(api, world):
    note = world["note"]
    response = api.get(f"/api/v1/credit-notes/{note.pk}/facturx/")

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{note.number}-facturx.pdf"'
    tree = assert_valid_cii(get_xml_from_pdf(response.content, check_xsd=False)[1])
    ns = {"rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
          "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}
    assert tree.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=ns) == "381"
    assert tree.findtext(".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", namespaces=ns) == world["invoice"].number
    assert cii_figures(tree)["total"] == note.total


def test_api_gives_a_credit_note_as_ubl(api, world):
    note = world["note"]
    response = api.get(f"/api/v1/credit-notes/{note.pk}/ubl/", HTTP_ACCEPT="application/xml")

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{note.number}.xml"'
    assert ubl_figures(assert_valid_ubl(response.content, credit_note=True))["total"] == note.total == Decimal("1250.00")


@pytest.mark.parametrize("form", ["ubl", "facturx"])
def test_api_refuses_a_draft_with_409_and_why(api, world, form):
    response = api.get(f"/api/v1/invoices/{world['draft'].pk}/{form}/")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "This invoice is a draft: e-invoices exist once it is finalized.", "code": "no_einvoice"
    }


@pytest.mark.parametrize("path", ["invoices/{foreign}/ubl/", "invoices/{foreign}/facturx/"])
def test_api_answers_another_tenants_invoice_with_404(api, world, path):
    response = api.get("/api/v1/" + path.format(foreign=world["foreign"].pk))

    assert response.status_code == 404
    assert world["foreign"].number not in response.content.decode()


def test_portal_offers_pdf_ubl_and_factur_x_on_invoice_and_credit_note(client, world):
    client.force_login(world["portal_user"])
    invoice, note = world["invoice"], world["note"]
    page = client.get(f"/invoices/{invoice.pk}/").content.decode()
    assert f'href="/invoices/{invoice.pk}/ubl/"' in page and f'href="/invoices/{invoice.pk}/facturx/"' in page
    page = client.get(f"/credit-notes/{note.pk}/").content.decode()
    assert f'href="/credit-notes/{note.pk}/ubl/"' in page and f'href="/credit-notes/{note.pk}/facturx/"' in page

    response = client.get(f"/invoices/{invoice.pk}/ubl/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}.xml"'
    assert ubl_figures(assert_valid_ubl(response.content))["payable"] == invoice.amount_due
    response = client.get(f"/credit-notes/{note.pk}/ubl/")
    assert response.status_code == 200
    assert_valid_ubl(response.content, credit_note=True)


@pytest.mark.parametrize("path", ["invoices/{draft}/ubl/", "invoices/{draft}/facturx/", "invoices/{foreign}/ubl/",
                                  "invoices/{foreign}/facturx/"])
def test_portal_answers_drafts_and_other_tenants_documents_with_404(client, world, path):
    client.force_login(world["portal_user"])
    response = client.get("/" + path.format(draft=world["draft"].pk, foreign=world["foreign"].pk))

    assert response.status_code == 404


def test_portal_answers_a_void_invoice_with_409_and_why(client, world):
    from billing.services import invoice_void

    client.force_login(world["portal_user"])
    invoice = build_invoice(world["kund"], period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))
    invoice_void(invoice=invoice)

    response = client.get(f"/invoices/{invoice.pk}/ubl/")
    assert response.status_code == 409
    assert "Fakturan är makulerad: den har ingen e-faktura." in response.content.decode()  # the customer reads Swedish


@pytest.mark.parametrize(
    ("choice", "attachments"),
    [
        (EInvoiceFormat.PDF, ["{n}.pdf application/pdf"]),
        (EInvoiceFormat.PDF_UBL, ["{n}.pdf application/pdf", "{n}.xml application/xml"]),
    ],
)
def test_invoice_email_carries_what_the_customer_chose(world, choice, attachments):
    kund, invoice = world["kund"], world["invoice"]
    with platform_scope():
        type(kund).objects.filter(pk=kund.pk).update(einvoice_format=choice)
    invoice.customer.refresh_from_db()

    invoice_send(invoice=invoice)

    (message,) = mail.outbox
    assert [f"{name} {mimetype}" for name, _content, mimetype in message.attachments] == [
        a.format(n=invoice.number) for a in attachments
    ]
    if choice == EInvoiceFormat.PDF_UBL:
        assert_valid_ubl(message.attachments[1][1])


def test_invoice_email_of_a_factur_x_customer_carries_the_factur_x_pdf_alone(world):
    kund, invoice = world["kund"], world["invoice"]
    with platform_scope():
        type(kund).objects.filter(pk=kund.pk).update(einvoice_format=EInvoiceFormat.FACTURX)
    invoice.customer.refresh_from_db()

    invoice_send(invoice=invoice)

    ((name, content, mimetype),) = mail.outbox[0].attachments
    assert (name, mimetype) == (f"{invoice.number}-facturx.pdf", "application/pdf")
    assert cii_figures(assert_valid_cii(get_xml_from_pdf(content, check_xsd=False)[1]))["total"] == invoice.total


def test_customer_api_shows_and_validates_the_peppol_id_and_invoice_format(api, world):
    kund = world["kund"]
    response = api.get(f"/api/v1/customers/{kund.pk}/")
    assert (response.json()["peppol_id"], response.json()["einvoice_format"]) == ("0007:5560000001", "pdf")

    response = api.patch(f"/api/v1/customers/{kund.pk}/", {"peppol_id": "0007:12345", "einvoice_format": "facturx"}, format="json")
    assert response.status_code == 400
    assert "Swedish organisation number of 10 digits" in response.json()["peppol_id"][0]

    response = api.patch(f"/api/v1/customers/{kund.pk}/", {"einvoice_format": "facturx"}, format="json")
    assert response.status_code == 200
    assert response.json()["einvoice_format"] == "facturx"


def test_an_invoice_without_lines_is_emailed_as_its_pdf_when_the_customer_chose_ubl(world, caplog):
    kund = world["kund"]
    with platform_scope():
        type(kund).objects.filter(pk=kund.pk).update(einvoice_format=EInvoiceFormat.PDF_UBL)
    empty = build_invoice(kund, lines=(), period_start=date(2026, 9, 1), period_end=date(2026, 9, 30))

    invoice_send(invoice=empty)

    assert [name for name, _content, _type in mail.outbox[0].attachments] == [f"{empty.number}.pdf"]
    assert f"emailed as PDF only, not pdf_ubl: Invoice {empty.number} has no lines" in caplog.text


def test_api_answers_an_invoice_without_lines_with_409(api, world):
    empty = build_invoice(world["kund"], lines=(), period_start=date(2026, 9, 1), period_end=date(2026, 9, 30))

    response = api.get(f"/api/v1/invoices/{empty.pk}/ubl/")

    assert response.status_code == 409
    assert response.json()["detail"].startswith(f"Invoice {empty.number} has no lines")


def test_portal_answers_an_invoice_without_lines_with_409_in_the_customers_language(client, world):
    client.force_login(world["portal_user"])
    empty = build_invoice(world["kund"], lines=(), period_start=date(2026, 9, 1), period_end=date(2026, 9, 30))

    response = client.get(f"/invoices/{empty.pk}/facturx/")

    assert response.status_code == 409
    assert "Inget debiterades på den här fakturan, så den har ingen e-faktura." in response.content.decode()


def test_admin_invoice_page_links_and_serves_the_e_invoices_of_its_tenant_only(client, world, member_factory, tenant_b):
    from customers.models import Role

    client.force_login(member_factory(tenant_b, Role.FINANCE))
    invoice, note = world["invoice"], world["note"]
    page = client.get(f"/admin/billing/invoice/{invoice.pk}/change/").content.decode()
    assert f'href="/admin/billing/invoice/{invoice.pk}/ubl/"' in page
    assert f'href="/admin/billing/invoice/{invoice.pk}/facturx/"' in page

    response = client.get(f"/admin/billing/invoice/{invoice.pk}/ubl/")
    assert response.status_code == 200
    assert ubl_figures(assert_valid_ubl(response.content))["total"] == invoice.total
    response = client.get(f"/admin/billing/creditnote/{note.pk}/ubl/")
    assert response.status_code == 200
    assert_valid_ubl(response.content, credit_note=True)
    assert client.get(f"/admin/billing/invoice/{world['foreign'].pk}/ubl/").status_code == 404

    draft = world["draft"]
    assert f'/admin/billing/invoice/{draft.pk}/ubl/' not in client.get(f"/admin/billing/invoice/{draft.pk}/change/").content.decode()
    response = client.get(f"/admin/billing/invoice/{draft.pk}/ubl/", follow=True)
    assert response.redirect_chain == [(f"/admin/billing/invoice/{draft.pk}/change/", 302)]
    assert "This invoice is a draft: e-invoices exist once it is finalized." in response.content.decode()
