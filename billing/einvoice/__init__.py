"""E-invoices (EN 16931) of finalized invoices and credit notes, made when asked for, never stored.

Two forms, both from one neutral view of the document (``billing.einvoice.document``), so they
carry the same figures, which are the invoice's own to the cent:

- **Peppol BIS Billing 3.0 UBL 2.1 XML** (``invoice_ubl`` / ``credit_note_ubl``): the XML a Peppol
  access point or an accounts-payable system reads.
- **Factur-X / ZUGFeRD, profile EN 16931** (``invoice_facturx`` / ``credit_note_facturx``): the
  document's PDF rendered as PDF/A-3b by WeasyPrint with its CII XML embedded by the ``factur-x``
  library, which checks the XML against the Factur-X XSD first.

A draft (it has no number), a void invoice, an invoice without lines and a document whose tenant or
customer lacks what EN 16931 requires (a country; the tenant's VAT number for VAT categories S, Z and
AE) have none: ``EInvoiceError``, whose ``code`` says which and whose message what to set. Customers
choose which form their invoice email carries (``Customer.einvoice_format``, ``billing.delivery``).
"""

from django.http import HttpResponse
from django.utils import translation
from facturx import generate_from_binary

from billing.documents import _safe, credit_note_pdf_bytes, invoice_preview_pdf, pdf_response
from billing.einvoice.cii import cii_bytes
from billing.einvoice.document import EInvoiceError, EDocument, credit_note_document, invoice_document
from billing.einvoice.ubl import ubl_bytes
from billing.models import CreditNote, Invoice
from customers.tenancy import tenant_scope

FACTURX_LEVEL = "en16931"
PDF_VARIANT = "pdf/a-3b"
XML_CONTENT_TYPE = "application/xml"
LANGUAGE_TAGS = {"en": "en-GB", "sv": "sv-SE"}

__all__ = [
    "EInvoiceError",
    "credit_note_facturx",
    "credit_note_ubl",
    "invoice_facturx",
    "invoice_ubl",
    "xml_response",
]


def _filename(number: str, suffix: str) -> str:
    return f"{_safe(number)}{suffix}"


def _invoice(invoice: Invoice) -> EDocument:
    if invoice.status == Invoice.Status.VOID:
        raise EInvoiceError(f"Invoice {invoice.number or invoice.pk} is void: a void invoice has no e-invoice.", code="void")
    with tenant_scope(invoice.tenant):
        return invoice_document(invoice)


def _credit_note(credit_note: CreditNote) -> EDocument:
    with tenant_scope(credit_note.tenant):
        return credit_note_document(credit_note)


def invoice_ubl(*, invoice: Invoice) -> tuple[bytes, str]:
    """A finalized (or paid) invoice as Peppol BIS 3.0 UBL XML: ``(content, "<number>.xml")``.
    Raises EInvoiceError for a draft or a void invoice."""
    return ubl_bytes(_invoice(invoice)), _filename(invoice.number or "", ".xml")


def credit_note_ubl(*, credit_note: CreditNote) -> tuple[bytes, str]:
    """A credit note as Peppol BIS 3.0 UBL CreditNote XML: ``(content, "<number>.xml")``."""
    return ubl_bytes(_credit_note(credit_note)), _filename(credit_note.number, ".xml")


def _facturx(document: EDocument, pdf: bytes) -> bytes:
    subject = ("Credit note" if document.is_credit_note else "Invoice") + f" {document.number}"
    return generate_from_binary(
        pdf,
        cii_bytes(document),
        flavor="factur-x",
        level=FACTURX_LEVEL,
        check_xsd=True,
        pdf_metadata={
            "author": document.seller.legal_name,
            "keywords": "Factur-X, ZUGFeRD, EN 16931",
            "title": f"{document.seller.name}: {subject}",
            "subject": f"{subject} of {document.issue_date:%Y-%m-%d} from {document.seller.name}",
        },
        lang=LANGUAGE_TAGS.get(document.language, "en-GB"),
    )


def invoice_facturx(*, invoice: Invoice) -> tuple[bytes, str]:
    """A finalized (or paid) invoice as a Factur-X EN 16931 PDF: the invoice's PDF as it prints now,
    rendered PDF/A-3b, with the CII XML (``factur-x.xml``) inside: ``(content, "<number>-facturx.pdf")``.
    Raises EInvoiceError for a draft or a void invoice; the XML is checked against the XSD."""
    document = _invoice(invoice)
    with translation.override(document.language):
        pdf = invoice_preview_pdf(invoice=invoice, pdf_variant=PDF_VARIANT)
    return _facturx(document, pdf), _filename(invoice.number, "-facturx.pdf")


def credit_note_facturx(*, credit_note: CreditNote) -> tuple[bytes, str]:
    """A credit note as a Factur-X EN 16931 PDF (TypeCode 381): ``(content, "<number>-facturx.pdf")``."""
    document = _credit_note(credit_note)
    pdf = credit_note_pdf_bytes(credit_note=credit_note, pdf_variant=PDF_VARIANT)
    return _facturx(document, pdf), _filename(credit_note.number, "-facturx.pdf")


def xml_response(content: bytes, filename: str) -> HttpResponse:
    """``content`` as a private XML download."""
    response = HttpResponse(content, content_type=f"{XML_CONTENT_TYPE}; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def facturx_response(content: bytes, filename: str) -> HttpResponse:
    """A Factur-X PDF as a private download."""
    return pdf_response(content, filename)
