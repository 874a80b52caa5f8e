"""Finance review in the admin: an invoice's page with its PDF, amount due and Finalize / Void / Mark paid.

Each move is a button on the invoice page that opens a confirmation page (GET) and acts on POST
(CSRF-checked by the admin), through the same service as the list actions and the API, for the
same people: roles that may edit billing (finance, owners) and platform admins; anyone else gets
403 and sees no button. Finalizing an invoice whose period is still running needs the explicit
"close this period early" choice, which the confirmation explains; the service refuses it
otherwise (``billing.services.invoice_finalize(close_early=…)``).

Staff open any invoice's or credit note's PDF from its page and its list (a draft: the preview with
its stamp), and a finalized invoice's or a credit note's e-invoice (UBL XML, Factur-X PDF) from its page;
one that has none (a draft, void, without lines) comes back to the page with the reason. Amounts due
come from ``Invoice.objects.with_balance_due``, the one definition.
"""

from dataclasses import dataclass
from typing import Callable

from csp.constants import SELF
from csp.decorators import csp_replace
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.clickjacking import xframe_options_sameorigin

from billing import services
from billing.admin_base import _may_bill
from billing.documents import credit_note_staff_pdf, invoice_staff_pdf, pdf_response
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
from customers.admin_base import money_text, request_tenant
from customers.periods import month_end, tenant_today
from customers.tenancy import tenant_scope


@dataclass(frozen=True)
class InvoiceMove:
    """One button on an invoice's page: what it is called, which statuses offer it, what it runs."""

    slug: str
    label: str
    from_statuses: tuple[str, ...]
    explanation: str
    done: str
    service: Callable


MOVES = {
    move.slug: move
    for move in [
        InvoiceMove(
            "finalize", _("Finalize"), (Invoice.Status.DRAFT,),
            _("Finalizing numbers the invoice with the next number of the sequence, freezes it (corrections are "
              "then credit notes) and emails it with its PDF to the customer's billing addresses."),
            _("Invoice %(invoice)s finalized."), services.invoice_finalize,
        ),
        InvoiceMove(
            "void", pgettext_lazy("invoice action", "Void"), (Invoice.Status.DRAFT, Invoice.Status.FINALIZED),
            _("Voiding keeps the invoice and its number but it asks for nothing any more; balance credits taken "
              "off it return to the customer's balance."),
            _("Invoice %(invoice)s voided."), services.invoice_void,
        ),
        InvoiceMove(
            "mark-paid", _("Mark paid"), (Invoice.Status.FINALIZED,),
            _("Marking it paid records a payment of the amount due (method “other”, the invoice number as "
              "reference) received today; it then owes nothing. To record a part, or money received on "
              "another day, add a payment under Payments instead."),
            _("Invoice %(invoice)s marked paid."), services.invoice_mark_paid,
        ),
    ]
}


def credit_note_pdf_link(note: CreditNote) -> str:
    return format_html('<a href="{}">{}</a>', reverse("admin:billing_creditnote_pdf", args=[note.pk]), _("PDF"))


class _PdfViewMixin:
    """An admin whose rows have a PDF at ``<id>/pdf/`` (``?inline=1`` shows it in the page)."""

    pdf_url_name = ""

    def staff_pdf(self, obj) -> tuple[bytes, str]:
        raise NotImplementedError

    def staff_einvoice(self, obj, form: str) -> tuple[bytes, str]:
        """``(content, filename)`` of the object's e-invoice ``form`` ("ubl" or "facturx")."""
        raise NotImplementedError

    def pdf_urls(self, *extra):
        view = self.admin_site.admin_view
        base = self.pdf_url_name.removesuffix("_pdf")
        return [
            path("<path:object_id>/pdf/", view(self.pdf_view), name=self.pdf_url_name),
            path("<path:object_id>/ubl/", view(self.ubl_view), name=f"{base}_ubl"),
            path("<path:object_id>/facturx/", view(self.facturx_view), name=f"{base}_facturx"),
            *extra,
        ]

    def _einvoice_view(self, request, object_id, form: str, respond):
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404(_("No such document."))
        try:
            with tenant_scope(obj.tenant):
                return respond(*self.staff_einvoice(obj, form))
        except EInvoiceError as exc:
            messages.error(request, str(exc))
            return redirect(reverse(f"admin:{self.pdf_url_name.removesuffix('_pdf')}_change", args=[obj.pk]))

    def ubl_view(self, request, object_id):
        return self._einvoice_view(request, object_id, "ubl", xml_response)

    def facturx_view(self, request, object_id):
        return self._einvoice_view(request, object_id, "facturx", facturx_response)

    @method_decorator(xframe_options_sameorigin)  # the object's own page embeds the preview
    @method_decorator(csp_replace({"frame-ancestors": [SELF]}))
    def pdf_view(self, request, object_id):
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404(_("No such document."))
        with tenant_scope(obj.tenant):
            content, filename = self.staff_pdf(obj)
        return pdf_response(content, filename, inline=request.GET.get("inline") == "1")

    def pdf_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse(f"admin:{self.pdf_url_name}", args=[obj.pk]), _("PDF"))

    pdf_link.short_description = _("PDF")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        base = self.pdf_url_name.removesuffix("_pdf")
        extra_context = {
            **(extra_context or {}),
            "pdf_url": reverse(f"admin:{self.pdf_url_name}", args=[object_id]),
            "ubl_url": reverse(f"admin:{base}_ubl", args=[object_id]),
            "facturx_url": reverse(f"admin:{base}_facturx", args=[object_id]),
        }
        return super().change_view(request, object_id, form_url, extra_context)


class CreditNoteReviewMixin(_PdfViewMixin):
    pdf_url_name = "billing_creditnote_pdf"
    change_form_template = "admin/billing/document_change_form.html"

    def staff_pdf(self, obj):
        return credit_note_staff_pdf(credit_note=obj)

    def staff_einvoice(self, obj, form):
        return (credit_note_ubl if form == "ubl" else credit_note_facturx)(credit_note=obj)

    def get_urls(self):
        return self.pdf_urls(*super().get_urls())


class InvoiceReviewMixin(_PdfViewMixin):
    pdf_url_name = "billing_invoice_pdf"
    change_form_template = "admin/billing/document_change_form.html"

    def staff_pdf(self, obj):
        return invoice_staff_pdf(invoice=obj)

    def staff_einvoice(self, obj, form):
        return (invoice_ubl if form == "ubl" else invoice_facturx)(invoice=obj)

    def get_queryset(self, request):
        tenant = request_tenant(request)
        today = tenant_today(tenant) if tenant is not None else timezone.localdate()
        return super().get_queryset(request).with_payment_status(today=today)

    def payment_status(self, obj):
        return PaymentStatus(obj.payment_status).label

    payment_status.short_description = _("Payment status")
    payment_status.admin_order_field = "payment_status"

    def get_search_results(self, request, queryset, search_term):
        # The credit-request form's invoice autocomplete offers only invoices a credit can be asked for,
        # of the customer chosen in the form when there is one (static/billing/credit_request_invoice.js).
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if request.GET.get("model_name") == "creditrequest" and request.GET.get("field_name") == "invoice":
            queryset = queryset.filter(status__in=[Invoice.Status.FINALIZED, Invoice.Status.PAID])
            customer = request.GET.get("customer", "")
            if customer.isdigit():
                queryset = queryset.filter(customer_id=int(customer))
        return queryset, may_have_duplicates

    # Amounts, read from the annotation (billing's one definition of the amount due)

    @staticmethod
    def _annotated(obj, name):
        return money_text(getattr(obj, name), obj.currency)

    def amount_due_now(self, obj):
        return self._annotated(obj, "balance_due")

    amount_due_now.short_description = _("Amount due")
    amount_due_now.admin_order_field = "balance_due"

    def total_with_currency(self, obj):
        return money_text(obj.total, obj.currency)

    total_with_currency.short_description = _("Total")
    total_with_currency.admin_order_field = "total"

    def period(self, obj):
        # Most invoices cover one calendar month: "2026-12"; other periods show both days.
        if obj.period_start.day == 1 and obj.period_end == month_end(obj.period_start):
            return f"{obj.period_start:%Y-%m}"
        return f"{obj.period_start.isoformat()} – {obj.period_end.isoformat()}"

    period.short_description = _("Period")
    period.admin_order_field = "period_start"

    def amount_due_as_issued(self, obj):
        return money_text(obj.amount_due, obj.currency)

    amount_due_as_issued.short_description = _("Amount due as issued")

    def credit_notes_total(self, obj):
        return self._annotated(obj, "credited_total")

    credit_notes_total.short_description = _("Credit notes")

    def payments_total(self, obj):
        return self._annotated(obj, "paid_total")

    payments_total.short_description = _("Paid")

    # Buttons and their confirmations

    def get_urls(self):
        view = self.admin_site.admin_view
        moves = [
            path(f"<path:object_id>/{slug}/", view(self.move_view), {"slug": slug}, name=f"billing_invoice_{slug.replace('-', '_')}")
            for slug in MOVES
        ]
        return self.pdf_urls(*moves, *super().get_urls())

    def offered_moves(self, request, invoice) -> list[dict]:
        if invoice is None or not _may_bill(request):
            return []
        return [
            {"label": move.label, "url": reverse(f"admin:billing_invoice_{move.slug.replace('-', '_')}", args=[invoice.pk])}
            for move in MOVES.values()
            if invoice.status in move.from_statuses
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, unquote(object_id))
        extra_context = {**(extra_context or {}), "moves": self.offered_moves(request, invoice)}
        return super().change_view(request, object_id, form_url, extra_context)

    def move_view(self, request, object_id, slug):
        if not _may_bill(request):
            raise PermissionDenied
        move = MOVES[slug]
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None:
            raise Http404(_("No such invoice."))
        period_open = slug == "finalize" and services.invoice_period_is_open(invoice=invoice)
        error, status = "", 200
        if request.method == "POST":
            options = {"close_early": request.POST.get("close_early") == "on"} if slug == "finalize" else {}
            if slug == "mark-paid":
                options["created_by"] = request.user
            try:
                with tenant_scope(invoice.tenant):
                    move.service(invoice=invoice, **options)
            except ValidationError as exc:
                error, status = " ".join(exc.messages), 409
            else:
                invoice.refresh_from_db()
                self.message_user(request, move.done % {"invoice": invoice}, messages.SUCCESS)
                return redirect("admin:billing_invoice_change", invoice.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("%(move)s invoice %(invoice)s?") % {"move": move.label, "invoice": invoice},
            "invoice": invoice,
            "move": move,
            "allowed": invoice.status in move.from_statuses,
            "amount_due": self.amount_due_now(invoice),
            "period_open": period_open,
            "early_close_warning": services.early_close_warning(invoice=invoice) if period_open else "",
            "error": error,
        }
        return TemplateResponse(request, "admin/billing/invoice/confirm_move.html", context, status=status)
