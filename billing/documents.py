"""Invoice and credit-note PDFs: rendered with WeasyPrint from one HTML template per document kind.

- A finalized invoice's PDF is rendered once and kept in MEDIA storage at a deterministic path,
  ``invoices/<tenant slug>/<year>/<invoice number>.pdf``, named on ``Invoice.pdf``. Rendering it
  again returns the stored file. A draft is only ever previewed: bytes back, nothing stored.
- A credit note has no file field (it is immutable from the moment it is issued), so its PDF is
  found by its own deterministic path, ``credit-notes/<tenant slug>/<year>/<number>.pdf``, and
  rendered the first time it is asked for.
- The document speaks the customer's language (English or Swedish; ``billing.formatting``).
- WeasyPrint fetches nothing but the tenant's own logo: ``TenantLogoFetcher`` refuses every other URL
  (http(s), file:, data: and other tenants' logos alike). Fonts are the system's DejaVu, found
  through fontconfig, never downloaded.
"""

import functools
import mimetypes
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import translation
from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from billing import formatting
from billing.models import CreditNote, Invoice
from billing.payment_details import invoice_payment_details
from billing.selectors import invoice_with_balance_due
from customers.models import Tenant
from customers.tenancy import tenant_scope

INVOICE_TEMPLATE = "billing/invoice_pdf.html"
CREDIT_NOTE_TEMPLATE = "billing/credit_note_pdf.html"
LOGO_DIR = "tenant-logos"
# The only URL a document may contain that WeasyPrint will fetch; it stands for the tenant's logo.
LOGO_URL = "tenant-logo:current"
LOGO_TYPES = {"image/png", "image/jpeg", "image/gif", "image/svg+xml", "image/webp"}


class FetchRefused(ValueError):
    """WeasyPrint asked for a URL a document may not load."""


class TenantLogoFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that serves the tenant's own stored logo and nothing else.

    The logo must be a file in MEDIA_ROOT/tenant-logos/ (after resolving symlinks and ``..``);
    anything else, including every http(s), file: and data: URL, raises FetchRefused, which
    WeasyPrint logs and skips (the document renders without that resource). ``fetch`` never
    reaches urllib's handlers.
    """

    def __init__(self, tenant: Tenant):
        super().__init__(allowed_protocols=(), allow_redirects=False)
        self.tenant = tenant

    def logo_path(self) -> Path | None:
        name = self.tenant.logo.name if self.tenant.logo else ""
        if not name:
            return None
        root = (Path(settings.MEDIA_ROOT) / LOGO_DIR).resolve()
        path = (Path(settings.MEDIA_ROOT) / name).resolve()
        if root not in path.parents or not path.is_file():
            return None
        return path

    def fetch(self, url: str, headers=None) -> URLFetcherResponse:
        if url != LOGO_URL:
            raise FetchRefused(f"Documents may not load {url[:80]!r}.")
        path = self.logo_path()
        mime_type = mimetypes.guess_type(path.name)[0] if path else None
        if path is None or mime_type not in LOGO_TYPES:
            raise FetchRefused(f"Tenant {self.tenant.slug} has no usable logo in {LOGO_DIR}/.")
        return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime_type})


@dataclass(frozen=True)
class _Row:
    description: str
    note: str
    quantity: str
    unit_price: str
    amount: str
    is_reduction: bool


def _customer_address(customer) -> list[str]:
    lines = [customer.address_line1, customer.address_line2, " ".join(filter(None, [customer.postal_code, customer.city]))]
    if customer.country:
        lines.append(str(customer.country.name))
    return [line for line in lines if line]


def _money(language: str, currency: str):
    return lambda amount: formatting.format_money(amount, currency, language)


def _invoice_context(invoice: Invoice, language: str) -> dict:
    invoice = invoice_with_balance_due(invoice=invoice)
    currency = invoice.currency
    money = _money(language, currency)
    rows = []
    for line in invoice.lines.all():
        note = ""
        if line.proration not in ("", "1"):
            note = translation.gettext("Prorated: %(fraction)s of the period") % {"fraction": line.proration}
        rows.append(
            _Row(
                description=line.description,
                note=note,
                quantity=formatting.format_quantity(line.quantity, language),
                unit_price=formatting.format_unit_price(line.unit_price, currency, language),
                amount=money(line.amount),
                is_reduction=line.amount < 0,
            )
        )
    net = invoice.subtotal - invoice.discount_total
    return {
        "invoice": invoice,
        "tenant": invoice.tenant,
        "customer": invoice.customer,
        "customer_address": _customer_address(invoice.customer),
        "rows": rows,
        "is_draft": invoice.status == Invoice.Status.DRAFT,
        "is_void": invoice.status == Invoice.Status.VOID,
        "issue_date": formatting.format_day(invoice.issue_date, language),
        "due_date": formatting.format_day(invoice.due_date, language),
        "period_start": formatting.format_day(invoice.period_start, language),
        "period_end": formatting.format_day(invoice.period_end, language),
        "subtotal": money(invoice.subtotal),
        "discount_total": money(-invoice.discount_total) if invoice.discount_total else "",
        "net": money(net),
        "vat_rate": formatting.format_percent(invoice.vat_rate, language),
        "vat_amount": money(invoice.vat_amount),
        "total": money(invoice.total),
        "credit_applied": money(-invoice.credit_applied) if invoice.credit_applied else "",
        "credited_total": money(-invoice.credited_total) if invoice.credited_total else "",
        "paid_total": money(-invoice.paid_total) if invoice.paid_total else "",
        "amount_due": money(invoice.balance_due),
        "payment_terms_days": invoice.tenant.payment_terms_days,
        "payment_details": invoice_payment_details(invoice=invoice),
        "has_logo": tenant_has_logo(invoice.tenant),
        "logo_url": LOGO_URL,
    }


def _credit_note_context(note: CreditNote, language: str) -> dict:
    money = _money(language, note.currency)
    rows = [
        _Row(
            description=line.description,
            note="",
            quantity=formatting.format_quantity(line.quantity, language),
            unit_price=formatting.format_unit_price(line.unit_price, note.currency, language),
            amount=money(line.amount),
            is_reduction=False,
        )
        for line in note.lines.all()
    ]
    return {
        "note": note,
        "invoice": note.invoice,
        "tenant": note.tenant,
        "customer": note.customer,
        "customer_address": _customer_address(note.customer),
        "rows": rows,
        "issue_date": formatting.format_day(note.issue_date, language),
        "invoice_issue_date": formatting.format_day(note.invoice.issue_date, language),
        "subtotal": money(note.subtotal),
        "vat_rate": formatting.format_percent(note.vat_rate, language),
        "vat_amount": money(note.vat_amount),
        "total": money(note.total),
        "has_logo": tenant_has_logo(note.tenant),
        "logo_url": LOGO_URL,
    }


@functools.cache
def _font_config(pid: int, thread: int) -> FontConfiguration:
    # One font configuration per process and thread, reused: a new one per document (WeasyPrint's
    # default) is never freed, so a worker grew ~250 KB per invoice, and costs ~25 ms to build.
    return FontConfiguration()


def tenant_has_logo(tenant: Tenant) -> bool:
    """True when the tenant has a stored logo a document may show (at ``LOGO_URL``)."""
    return TenantLogoFetcher(tenant).logo_path() is not None


def html_to_pdf(html: str, *, tenant: Tenant, pdf_variant: str | None = None) -> bytes:
    """A PDF of ``html`` (WeasyPrint) that may load the tenant's own logo and nothing else, with the
    process's shared fonts. Every PDF the product makes (invoices, credit notes, reports) goes here.
    ``pdf_variant`` is WeasyPrint's, e.g. ``"pdf/a-3b"`` for the archival PDF a Factur-X file needs."""
    fonts = _font_config(os.getpid(), threading.get_ident())
    options = {"pdf_variant": pdf_variant} if pdf_variant else {}
    return HTML(string=html, url_fetcher=TenantLogoFetcher(tenant)).write_pdf(font_config=fonts, **options)


def _render(template: str, context: dict, *, tenant: Tenant, language: str, pdf_variant: str | None = None) -> bytes:
    with translation.override(language):
        html = render_to_string(template, {**context, "language": language})
    return html_to_pdf(html, tenant=tenant, pdf_variant=pdf_variant)


def _language(customer) -> str:
    return customer.language if customer.language in formatting.LOCALES else formatting.DEFAULT_LANGUAGE


def _safe(part: str) -> str:
    # Numbers come from a tenant-chosen prefix: keep them one path segment, whatever it holds.
    return re.sub(r"[^A-Za-z0-9._-]", "_", part).lstrip(".") or "_"


def invoice_pdf_path(*, invoice: Invoice) -> str:
    """The storage name of a finalized invoice's PDF: ``invoices/<slug>/<year>/<number>.pdf``."""
    if not invoice.number or invoice.issue_date is None:
        raise ValidationError(f"Invoice {invoice.pk} has no number or issue date yet; only a draft preview exists.")
    return f"invoices/{_safe(invoice.tenant.slug)}/{invoice.issue_date.year}/{_safe(invoice.number)}.pdf"


def credit_note_pdf_path(*, credit_note: CreditNote) -> str:
    """The storage name of a credit note's PDF: ``credit-notes/<slug>/<year>/<number>.pdf``."""
    return (
        f"credit-notes/{_safe(credit_note.tenant.slug)}/{credit_note.issue_date.year}/{_safe(credit_note.number)}.pdf"
    )


def _store(name: str, content: bytes) -> str:
    # A file left at this name by a rolled-back finalization is replaced: the number is reused.
    if default_storage.exists(name):
        default_storage.delete(name)
    stored = default_storage.save(name, ContentFile(content))
    if stored != name:
        raise RuntimeError(f"Storage wrote {stored!r} instead of {name!r}.")
    return stored


def invoice_preview_pdf(*, invoice: Invoice, pdf_variant: str | None = None) -> bytes:
    """The PDF of ``invoice`` as it would print now, as bytes; nothing is stored or saved.

    For drafts (marked "Draft" on the page, without number) and for checking a layout. Any status
    is accepted; for a finalized invoice the stored file (``invoice_render_pdf``) is the record.
    ``pdf_variant`` as ``html_to_pdf`` (the Factur-X PDF renders ``"pdf/a-3b"``).
    """
    language = _language(invoice.customer)
    with translation.override(language), tenant_scope(invoice.tenant):
        context = _invoice_context(invoice, language)
    return _render(INVOICE_TEMPLATE, context, tenant=invoice.tenant, language=language, pdf_variant=pdf_variant)


def credit_note_pdf_bytes(*, credit_note: CreditNote, pdf_variant: str | None = None) -> bytes:
    """The PDF of a credit note rendered now, as bytes (nothing stored): what ``credit_note_render_pdf``
    stores, or with ``pdf_variant="pdf/a-3b"`` the archival PDF a Factur-X file embeds its XML in."""
    language = _language(credit_note.customer)
    with translation.override(language), tenant_scope(credit_note.tenant):
        context = _credit_note_context(credit_note, language)
    return _render(CREDIT_NOTE_TEMPLATE, context, tenant=credit_note.tenant, language=language, pdf_variant=pdf_variant)


@transaction.atomic
def invoice_render_pdf(*, invoice: Invoice) -> str:
    """The storage name of a finalized (or paid, or void) invoice's PDF, rendering it the first time.

    A file already stored (named on ``invoice.pdf``, or at ``invoice_pdf_path``) is returned as
    is: nothing is rendered. Otherwise the PDF is rendered, written at ``invoice_pdf_path``, and
    recorded on ``pdf``: the one change the finalized-invoice guards allow, from empty to a name.
    The invoice row is locked, so concurrent callers render once. A draft raises ValidationError:
    preview it with ``invoice_preview_pdf``.
    """
    locked = (
        Invoice.objects.for_tenant(invoice.tenant)
        .select_for_update(of=("self",))
        .select_related("tenant", "customer")
        .get(pk=invoice.pk)
    )
    if locked.status == Invoice.Status.DRAFT:
        raise ValidationError(f"Invoice {locked} is a draft: drafts are previewed, not stored.")
    name = locked.pdf.name or invoice_pdf_path(invoice=locked)
    if not default_storage.exists(name):
        _store(name, invoice_preview_pdf(invoice=locked))
    if not locked.pdf.name:
        # The finalized-invoice guards (model and trigger) allow exactly this: naming the PDF once.
        Invoice.objects.for_tenant(locked.tenant).filter(pk=locked.pk, pdf="").update(pdf=name)
    invoice.pdf.name = name
    return name


def invoice_pdf_refresh_on_commit(*, invoice: Invoice) -> None:
    """Once the caller's transaction commits, drop the stored PDF of ``invoice`` so the next download
    renders it again: a credit note or a payment changed the amount due it prints.

    The file's name on ``Invoice.pdf`` stays (the guards allow naming it once); only its content is
    rendered anew, at the same path, by ``invoice_render_pdf``. Emails already sent keep the PDF they
    carried. A draft has no stored PDF: nothing happens.
    """
    if not (invoice.number and invoice.issue_date):
        return
    name = invoice.pdf.name or invoice_pdf_path(invoice=invoice)

    def discard():
        if default_storage.exists(name):
            default_storage.delete(name)

    transaction.on_commit(discard)


@transaction.atomic
def credit_note_render_pdf(*, credit_note: CreditNote) -> str:
    """The storage name of a credit note's PDF, rendered and stored the first time it is asked for.

    The path is deterministic (``credit_note_pdf_path``), so nothing is written to the credit
    note itself. Credit notes never change, so a stored file is always current. The credit note's
    row is locked (read, not written) so concurrent callers render once.
    """
    list(CreditNote.objects.for_tenant(credit_note.tenant).select_for_update().filter(pk=credit_note.pk).values_list("pk"))
    name = credit_note_pdf_path(credit_note=credit_note)
    if default_storage.exists(name):
        return name
    return _store(name, credit_note_pdf_bytes(credit_note=credit_note))


def invoice_staff_pdf(*, invoice: Invoice) -> tuple[bytes, str]:
    """The PDF staff open for any invoice, with its file name: ``(content, filename)``.

    A draft (and a draft voided before it was numbered) gives the preview with its stamp, stored
    nowhere; a numbered invoice gives its stored PDF (rendered the first time, see
    ``invoice_render_pdf``).
    """
    if not invoice.number or invoice.issue_date is None:
        return invoice_preview_pdf(invoice=invoice), f"draft-{invoice.customer_id}-{invoice.period_start:%Y-%m}.pdf"
    with default_storage.open(invoice_render_pdf(invoice=invoice), "rb") as handle:
        return handle.read(), f"{_safe(invoice.number)}.pdf"


def credit_note_staff_pdf(*, credit_note: CreditNote) -> tuple[bytes, str]:
    """A credit note's stored PDF (rendered the first time) and its file name: ``(content, filename)``."""
    with default_storage.open(credit_note_render_pdf(credit_note=credit_note), "rb") as handle:
        return handle.read(), f"{_safe(credit_note.number)}.pdf"


def pdf_response(content: bytes, filename: str, *, inline: bool = False) -> HttpResponse:
    """``content`` as a private PDF download (``inline`` to show it in the browser, e.g. a preview)."""
    response = HttpResponse(content, content_type="application/pdf")
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
