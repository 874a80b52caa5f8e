"""The customer portal: a customer's own invoices, credit notes and usage, in the customer's language.

Every view runs for ``request.customer`` only (set by ``portal.tenancy.TenantMiddleware``) and
looks documents up by id *within* that customer, so another customer's or tenant's id is a 404
like an id that does not exist. Drafts are internal to the tenant and never shown. PDFs are
streamed by a view after that check; MEDIA files have no public URL. Staff users are sent to
the admin; a login without a customer gets the "no access" page.
"""

import csv
from datetime import date
from decimal import Decimal
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _

from billing.documents import credit_note_render_pdf, invoice_render_pdf
from billing.einvoice import (
    EInvoiceError,
    credit_note_facturx,
    credit_note_ubl,
    facturx_response,
    invoice_facturx,
    invoice_ubl,
    xml_response,
)
from billing.models import CreditNote, Invoice, PaymentStatus
from billing.payment_details import invoice_payment_details
from billing.projection import invoice_project
from billing.selectors import customer_usage, invoice_reminders_sent
from billing.services.card_payments import card_payment_account, card_payment_off_reason
from customers.periods import PeriodError, add_months, month_end, month_start, parse_month, tenant_today

PAGE_SIZE = 50
EXPORT_FORMATS = ("csv", "json")
# Characters that make a spreadsheet read a CSV cell as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def customer_view(view):
    """Login required; staff to the admin; no customer → 403; the view runs in the customer's language."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.is_staff or request.user.is_superuser:
            return redirect("admin:index")
        if request.customer is None:
            return render(request, "portal/no_access.html", status=403)
        language = request.customer.language or "en"
        with translation.override(language):
            response = view(request, *args, **kwargs)
        response.headers.setdefault("Content-Language", language)
        return response

    return wrapper


def status_labels() -> dict[str, str]:
    """What a customer reads for an invoice's payment status (``Invoice.objects.with_payment_status``):
    open (not paid yet), partially paid, overdue (due date passed with something due), paid, void."""
    return {
        PaymentStatus.OPEN: _("Open"),
        PaymentStatus.PARTIALLY_PAID: _("Partially paid"),
        PaymentStatus.OVERDUE: _("Overdue"),
        PaymentStatus.PAID: _("Paid"),
        PaymentStatus.VOID: _("Void"),
    }


def customer_invoices(request):
    """The invoices the portal may show: this customer's, issued (never drafts), each with its
    ``balance_due`` (the amount due after credit notes and payments, billing's one definition) and
    its ``payment_status`` as of the tenant's today."""
    return (
        Invoice.objects.for_tenant(request.tenant)
        .with_payment_status(today=tenant_today(request.tenant))
        .filter(customer=request.customer, number__isnull=False)  # a draft voided unissued has none
        .exclude(status=Invoice.Status.DRAFT)
    )


def card_payment_context(request) -> dict:
    """Whether *Pay now* works for this tenant (it has card payment set up), and why not when not."""
    on = card_payment_account(tenant=request.tenant) is not None
    return {"card_payment_on": on, "card_payment_off_reason": "" if on else card_payment_off_reason(request.tenant)}


def customer_credit_notes(request):
    return CreditNote.objects.for_tenant(request.tenant).filter(customer=request.customer)


def _get_or_404(queryset, pk):
    try:
        return queryset.get(pk=pk)
    except queryset.model.DoesNotExist:
        raise Http404(_("No such document.")) from None


def _month(value: str) -> date | None:
    """The month of a ``YYYY-MM`` filter, or None when it is not one (the page then says so)."""
    try:
        return parse_month(value)
    except PeriodError:
        return None


@customer_view
def home(request):
    invoices = customer_invoices(request)
    open_invoices = list(invoices.filter(status=Invoice.Status.FINALIZED).order_by("due_date", "id"))
    context = {
        "customer": request.customer,
        "open_invoices": open_invoices,
        "latest": invoices.order_by("-issue_date", "-id").first(),
        "status_labels": status_labels(),
        **card_payment_context(request),
    }
    return render(request, "portal/home.html", context)


@customer_view
def invoice_list(request):
    """Invoices by period, newest first; ``?status=open|partially_paid|overdue|paid|void`` and
    ``?period=YYYY-MM`` filter."""
    invoices = customer_invoices(request).order_by("-period_start", "-id")
    errors = []
    status = request.GET.get("status", "")
    if status:
        if status in status_labels():
            invoices = invoices.filter(payment_status=status)
        else:
            errors.append(
                _("Unknown status %(status)s: choose open, partially_paid, overdue, paid or void.") % {"status": status[:20]}
            )
    period = request.GET.get("period", "")
    if period:
        month = _month(period)
        if month is None:
            errors.append(_("Write the period as year-month, e.g. 2026-11."))
        else:
            invoices = invoices.filter(period_start__gte=month, period_start__lt=add_months(month, 1))
    page = Paginator(invoices, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "invoices": page.object_list,
        "status": status,
        "period": period,
        "errors": errors,
        "status_labels": status_labels(),
        **card_payment_context(request),
    }
    return render(request, "portal/invoice_list.html", context, status=400 if errors else 200)


@customer_view
def invoice_detail(request, invoice_id: int):
    invoice = _get_or_404(customer_invoices(request), invoice_id)
    context = {
        "invoice": invoice,
        "lines": list(invoice.lines.all()),
        "credit_notes": list(customer_credit_notes(request).filter(invoice=invoice).order_by("sequence_number")),
        "net": invoice.subtotal - invoice.discount_total,
        "status_labels": status_labels(),
        **card_payment_context(request),
        "reminders": invoice_reminders_sent(tenant=request.tenant, invoice=invoice),
        # How to pay (bankgiro + OCR, or IBAN + invoice number), while something is still due.
        "payment_details": invoice_payment_details(invoice=invoice) if invoice.balance_due > 0 else None,
    }
    return render(request, "portal/invoice_detail.html", context)


def _pdf_response(name: str, filename: str) -> FileResponse:
    response = FileResponse(default_storage.open(name, "rb"), as_attachment=True, filename=filename)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@customer_view
def invoice_pdf(request, invoice_id: int):
    """The stored PDF of one of the customer's invoices (rendered first if it never was)."""
    invoice = _get_or_404(customer_invoices(request).select_related("tenant", "customer"), invoice_id)
    return _pdf_response(invoice_render_pdf(invoice=invoice), f"{invoice.number}.pdf")


def _einvoice(request, make, respond):
    """``respond(*make())``, or a 409 page saying, in the customer's language, why there is no e-invoice."""
    try:
        return respond(*make())
    except EInvoiceError as exc:
        messages = {
            "void": _("This invoice is void: it has no e-invoice."),
            "no_lines": _("Nothing was billed on this invoice, so it has no e-invoice. The PDF is the invoice."),
        }
        message = messages.get(exc.code, _("This document has no e-invoice yet. Ask us and we will put it right."))
        return render(request, "portal/no_einvoice.html", {"message": message}, status=409)


def _customer_invoice(request, invoice_id: int) -> Invoice:
    return _get_or_404(customer_invoices(request).select_related("tenant", "customer", "contract"), invoice_id)


def _customer_credit_note(request, credit_note_id: int) -> CreditNote:
    return _get_or_404(customer_credit_notes(request).select_related("tenant", "customer", "invoice"), credit_note_id)


@customer_view
def invoice_ubl_download(request, invoice_id: int):
    """One of the customer's invoices as Peppol BIS 3.0 UBL XML. A void invoice has none (409)."""
    invoice = _customer_invoice(request, invoice_id)
    return _einvoice(request, lambda: invoice_ubl(invoice=invoice), xml_response)


@customer_view
def invoice_facturx_download(request, invoice_id: int):
    """One of the customer's invoices as a Factur-X PDF. A void invoice has none (409)."""
    invoice = _customer_invoice(request, invoice_id)
    return _einvoice(request, lambda: invoice_facturx(invoice=invoice), facturx_response)


@customer_view
def credit_note_ubl_download(request, credit_note_id: int):
    note = _customer_credit_note(request, credit_note_id)
    return _einvoice(request, lambda: credit_note_ubl(credit_note=note), xml_response)


@customer_view
def credit_note_facturx_download(request, credit_note_id: int):
    note = _customer_credit_note(request, credit_note_id)
    return _einvoice(request, lambda: credit_note_facturx(credit_note=note), facturx_response)


def _cell(value) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _csv_response(filename: str, header: list[str], rows: list[list]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return response


def _json_response(filename: str, payload: dict) -> JsonResponse:
    response = JsonResponse(payload, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _decimal(value: Decimal) -> str:
    # Exports are for machines: plain decimals as strings, never floats, never localized.
    return format(value, "f")


def _invoice_payload(invoice: Invoice, lines) -> dict:
    return {
        "number": invoice.number,
        "status": invoice.status,
        "currency": invoice.currency,
        "customer": invoice.customer.name,
        "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "period_start": invoice.period_start.isoformat(),
        "period_end": invoice.period_end.isoformat(),
        "reverse_charge": invoice.reverse_charge,
        "lines": [
            {
                "position": line.position,
                "description": line.description,
                "kind": line.kind,
                "quantity": _decimal(line.quantity.normalize()),
                "unit_price": _decimal(line.unit_price.normalize()),
                "amount": _decimal(line.amount),
            }
            for line in lines
        ],
        "totals": {
            "subtotal": _decimal(invoice.subtotal),
            "discount_total": _decimal(invoice.discount_total),
            "vat_rate_percent": _decimal(invoice.vat_rate),
            "vat_amount": _decimal(invoice.vat_amount),
            "total": _decimal(invoice.total),
            "credit_applied": _decimal(invoice.credit_applied),
            "credit_notes": _decimal(invoice.credited_total),
            "paid": _decimal(invoice.paid_total),
            "amount_due": _decimal(invoice.balance_due),
        },
    }


@customer_view
def invoice_export(request, invoice_id: int, export_format: str):
    """One invoice as CSV (its lines, then its totals as labelled rows) or JSON (lines and totals)."""
    if export_format not in EXPORT_FORMATS:
        raise Http404(_("Exports are CSV or JSON."))
    invoice = _get_or_404(customer_invoices(request).select_related("customer"), invoice_id)
    lines = list(invoice.lines.all())
    payload = _invoice_payload(invoice, lines)
    if export_format == "json":
        return _json_response(f"{invoice.number}.json", payload)
    rows = [
        [line["position"], line["description"], line["kind"], line["quantity"], line["unit_price"], line["amount"], invoice.currency]
        for line in payload["lines"]
    ]
    rows += [["", name, "total", "", "", amount, invoice.currency] for name, amount in payload["totals"].items() if name != "vat_rate_percent"]
    header = ["position", "description", "kind", "quantity", "unit_price", "amount", "currency"]
    return _csv_response(f"{invoice.number}.csv", header, rows)


@customer_view
def credit_note_list(request):
    notes = customer_credit_notes(request).select_related("invoice").order_by("-sequence_number")
    page = Paginator(notes, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "portal/credit_note_list.html", {"page": page, "credit_notes": page.object_list})


@customer_view
def credit_note_detail(request, credit_note_id: int):
    note = _get_or_404(customer_credit_notes(request).select_related("invoice"), credit_note_id)
    return render(request, "portal/credit_note_detail.html", {"note": note, "lines": list(note.lines.all())})


@customer_view
def credit_note_pdf(request, credit_note_id: int):
    note = _get_or_404(customer_credit_notes(request).select_related("tenant", "customer", "invoice"), credit_note_id)
    return _pdf_response(credit_note_render_pdf(credit_note=note), f"{note.number}.pdf")


@customer_view
def credit_note_export(request, credit_note_id: int, export_format: str):
    """One credit note as CSV (lines, then totals) or JSON."""
    if export_format not in EXPORT_FORMATS:
        raise Http404(_("Exports are CSV or JSON."))
    note = _get_or_404(customer_credit_notes(request).select_related("invoice"), credit_note_id)
    lines = [
        {
            "position": line.position,
            "description": line.description,
            "quantity": _decimal(line.quantity.normalize()),
            "unit_price": _decimal(line.unit_price.normalize()),
            "amount": _decimal(line.amount),
        }
        for line in note.lines.all()
    ]
    totals = {"subtotal": _decimal(note.subtotal), "vat_amount": _decimal(note.vat_amount), "total": _decimal(note.total)}
    if export_format == "json":
        payload = {
            "number": note.number,
            "invoice_number": note.invoice.number,
            "currency": note.currency,
            "issue_date": note.issue_date.isoformat(),
            "reason": note.reason,
            "vat_rate_percent": _decimal(note.vat_rate),
            "lines": lines,
            "totals": totals,
        }
        return _json_response(f"{note.number}.json", payload)
    rows = [[line["position"], line["description"], line["quantity"], line["unit_price"], line["amount"], note.currency] for line in lines]
    rows += [["", name, "", "", amount, note.currency] for name, amount in totals.items()]
    return _csv_response(f"{note.number}.csv", ["position", "description", "quantity", "unit_price", "amount", "currency"], rows)


def _current_period(tenant) -> tuple[date, date, date]:
    today = tenant_today(tenant)
    return month_start(today), month_end(today), today


@customer_view
def usage(request):
    """This calendar month's usage so far (tenant's time zone), per billable metric of the tenant,
    and the invoice it projects: the month priced now by ``billing.projection.invoice_project``,
    the same pricing as the month-end draft run, nothing written."""
    tenant, customer = request.tenant, request.customer
    start, end, today = _current_period(tenant)
    metrics = customer_usage(tenant=tenant, customer_id=customer.pk, period_start=start, period_end=end)
    projection = invoice_project(customer=customer, period_start=start, period_end=end)
    context = {
        "metrics": metrics, "period_start": start, "period_end": end, "today": today, "projection": projection,
    }
    return render(request, "portal/usage.html", context)
