"""Billing in the admin: invoices and credit notes to read and act on, credit requests to decide.

Invoices and credit notes are computed documents: nobody edits them here, drafts included (a
hand-edited total would no longer be the sum of its lines). Changes go through the services, as
admin actions: finalize, void, mark paid (a payment of what is owed); approve or reject a credit
request. Payments are recorded and allocated in ``billing.admin_payments``. An action refused
by a service shows its message and changes nothing.

An invoice's page shows its PDF (a draft's preview with its stamp) and has Finalize, Void and Mark
paid buttons, each with its confirmation page (``billing.admin_review``). Every amount due shown is
billing's one definition, ``Invoice.objects.with_balance_due``.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from billing import services
from billing.admin_base import ReadOnlyMixin, _may_bill
from billing.admin_payments import InvoicePaymentInline
from billing.admin_review import CreditNoteReviewMixin, InvoiceReviewMixin, credit_note_pdf_link
from billing.models import (
    BillableMetric,
    BillingSettings,
    CreditAuditEntry,
    CreditNote,
    CreditNoteLine,
    CreditRequest,
    Invoice,
    InvoiceLine,
    PaymentStatus,
    PriceTerms,
)
from billing.models.invoicing import TERMS_COMMON_KEYS, TERMS_EXAMPLES
from customers.admin_base import TenantAdmin, TenantInline, TenantModelForm, request_role


def _run(modeladmin, request, queryset, service, done: str):
    changed = 0
    for obj in queryset:
        try:
            with transaction.atomic():
                service(obj)
            changed += 1
        except ValidationError as exc:
            modeladmin.message_user(request, f"{obj}: {' '.join(exc.messages)}", messages.ERROR)
    if changed:
        modeladmin.message_user(request, f"{changed} {done}.", messages.SUCCESS)


class InvoiceLineInline(ReadOnlyMixin, TenantInline):
    model = InvoiceLine
    fields = ["position", "description", "kind", "quantity", "unit_price", "proration", "amount"]
    readonly_fields = fields
    money_fields, money_currency = ("amount",), "invoice.currency"
    ordering = ["position"]


class CreditNoteInline(ReadOnlyMixin, TenantInline):
    model = CreditNote
    fields = ["number", "issue_date", "reason", "total", "pdf_link"]
    readonly_fields = fields
    money_fields = ("total",)
    show_change_link = True

    @admin.display(description=_("PDF"))
    def pdf_link(self, obj):
        return credit_note_pdf_link(obj)


class PaymentStatusFilter(admin.SimpleListFilter):
    """Invoices by their derived payment status (``Invoice.objects.with_payment_status``): who is overdue."""

    title = _("payment status")
    parameter_name = "payment_status"

    def lookups(self, request, model_admin):
        return PaymentStatus.choices

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if self.value() not in PaymentStatus.values:
            return queryset.none()
        return queryset.filter(payment_status=self.value())


@admin.register(Invoice)
class InvoiceAdmin(InvoiceReviewMixin, ReadOnlyMixin, TenantAdmin):
    # Seven columns fit 1 280 px: one period column, amounts written with their currency.
    list_display = ["__str__", "customer", "period", "payment_status", "total_with_currency", "amount_due_now", "pdf_link"]
    money_fields = ("subtotal", "discount_total", "vat_amount", "total", "credit_applied", "amount_due")
    list_filter = [PaymentStatusFilter, "status", "period_start", "customer"]
    list_select_related = ["customer"]
    search_fields = ["number", "ocr_reference", "customer__name", "customer__external_ref"]
    date_hierarchy = "period_start"
    inlines = [InvoiceLineInline, CreditNoteInline, InvoicePaymentInline]
    actions = ["finalize", "void", "mark_paid"]
    fieldsets = [
        (None, {"fields": [
            "customer", "contract", "period_start", "period_end", "status", "payment_status", "number", "ocr_reference",
        ]}),
        (_("Dates"), {"fields": ["issue_date", "due_date", "finalized_at", "paid_at", "voided_at"]}),
        (
            _("Amounts"),
            {
                "fields": [
                    "currency", "subtotal", "discount_total", "vat_rate", "vat_amount", "total",
                    "credit_applied", "amount_due_as_issued", "credit_notes_total", "payments_total", "amount_due_now",
                    "reverse_charge", "vat_note",
                ]
            },
        ),
    ]
    readonly_fields = [f for _name, opts in fieldsets for f in opts["fields"]]

    def has_billing_permission(self, request):
        return _may_bill(request)

    @admin.action(description="Finalize selected drafts (assigns numbers)", permissions=["billing"])
    def finalize(self, request, queryset):
        _run(self, request, queryset.order_by("id"), lambda i: services.invoice_finalize(invoice=i), "finalized")

    @admin.action(description="Void selected invoices", permissions=["billing"])
    def void(self, request, queryset):
        _run(self, request, queryset, lambda i: services.invoice_void(invoice=i), "voided")

    @admin.action(description="Mark selected invoices paid", permissions=["billing"])
    def mark_paid(self, request, queryset):
        _run(self, request, queryset, lambda i: services.invoice_mark_paid(invoice=i, created_by=request.user), "marked paid")


class CreditNoteLineInline(ReadOnlyMixin, TenantInline):
    model = CreditNoteLine
    fields = ["position", "description", "quantity", "unit_price", "amount"]
    readonly_fields = fields
    money_fields, money_currency = ("amount",), "credit_note.currency"


@admin.register(CreditNote)
class CreditNoteAdmin(CreditNoteReviewMixin, ReadOnlyMixin, TenantAdmin):
    list_display = ["number", "invoice", "customer", "issue_date", "currency", "total", "pdf_link"]
    money_fields = ("subtotal", "vat_amount", "total")
    list_filter = ["issue_date", "customer"]
    list_select_related = ["invoice", "customer"]
    search_fields = ["number", "invoice__number", "customer__name"]
    fields = ["number", "invoice", "customer", "issue_date", "reason", "currency", "subtotal", "vat_rate",
              "vat_amount", "total", "created_by", "created_at"]
    readonly_fields = fields
    inlines = [CreditNoteLineInline]


class CreditAuditInline(ReadOnlyMixin, TenantInline):
    model = CreditAuditEntry
    fields = ["created_at", "action", "actor", "actor_role", "amount", "currency", "note"]
    readonly_fields = fields
    money_fields = ("amount",)


@admin.register(CreditRequest)
class CreditRequestAdmin(TenantAdmin):
    """Anyone who may edit billing requests a credit here; the services decide who may approve it."""

    list_display = ["__str__", "customer", "invoice", "amount", "currency", "status", "requested_by", "decided_by"]
    money_fields = ("amount",)
    list_filter = ["status", "customer"]
    list_select_related = ["customer", "invoice", "requested_by", "decided_by"]
    fields = ["customer", "invoice", "amount", "reason"]
    # A tenant has hundreds of invoices: searched (finalized and paid ones only, see
    # InvoiceAdmin.get_search_results), never one drop-down.
    autocomplete_fields = ["customer", "invoice"]

    class Media:
        js = ["admin/js/jquery.init.js", "billing/credit_request_invoice.js"]
    inlines = [CreditAuditInline]
    actions = ["approve", "reject"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["customer", "invoice", "amount", "currency", "reason", "status", "requested_by", "decided_by",
                "decided_at", "credit_note"]

    def get_fields(self, request, obj=None):
        return self.fields if obj is None else self.get_readonly_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        # Decisions are actions; the request itself is never edited.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request):
        return request_role(request) is not None

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "invoice" and field is not None:
            field.queryset = field.queryset.filter(status__in=CREDITABLE_STATUSES)
        return field

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (CreditRequestInvoiceForm, form), {}) if obj is None else form

    def save_model(self, request, obj, form, change):
        try:
            created = services.credit_request_create(
                customer=obj.customer, invoice=obj.invoice, amount=obj.amount, reason=obj.reason,
                requested_by=request.user,
            )
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None
        obj.pk = created.pk
        obj._state.adding = False

    def get_inlines(self, request, obj):
        # The service writes the first audit row; the trail is shown once the request exists.
        return self.inlines if obj is not None else []

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return redirect(request.path)

    @admin.action(description="Approve selected credit requests", permissions=["decide"])
    def approve(self, request, queryset):
        _run(self, request, queryset,
             lambda r: services.credit_request_approve(credit_request=r, approver=request.user), "approved")

    @admin.action(description="Reject selected credit requests", permissions=["decide"])
    def reject(self, request, queryset):
        _run(self, request, queryset,
             lambda r: services.credit_request_reject(credit_request=r, approver=request.user), "rejected")


CREDITABLE_STATUSES = [Invoice.Status.FINALIZED, Invoice.Status.PAID]


class CreditRequestInvoiceForm(forms.ModelForm):
    """The invoice of a credit request must be the chosen customer's (the service says so too,
    but here it is a field error beside the field)."""

    def clean(self):
        cleaned = super().clean()
        customer, invoice = cleaned.get("customer"), cleaned.get("invoice")
        if customer is not None and invoice is not None and invoice.customer_id != customer.pk:
            self.add_error("invoice", _("This invoice belongs to another customer; choose one of %(customer)s.")
                           % {"customer": customer})
        return cleaned


class PriceTermsContractFilter(admin.SimpleListFilter):
    """Price terms by contract. Contract lines are in another app, so there is no inline there;
    the choices come from the admin's own (tenant-scoped) rows, never from every tenant's contracts."""

    title = "contract"
    parameter_name = "contract"

    def lookups(self, request, model_admin):
        rows = (
            model_admin.get_queryset(request)
            .order_by("contract_line__contract__reference")
            .values_list("contract_line__contract_id", "contract_line__contract__reference",
                         "contract_line__contract__title")
            .distinct()
        )
        return [(str(pk), f"{reference} · {title}") for pk, reference, title in rows]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if not self.value().isdigit():
            return queryset.none()
        return queryset.filter(contract_line__contract_id=int(self.value()))


class CatalogGuardMixin:
    """Catalog rows the API's services guard: the admin refuses what they refuse (``delete_refusal``;
    a change is refused by the form), so an issued invoice's pricing is history on every surface."""

    def delete_refusal(self, obj) -> str | None:
        raise NotImplementedError

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or not self.delete_refusal(obj))

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            refusal = self.delete_refusal(obj)
            if refusal:
                self.message_user(request, f"{obj} was kept: {refusal}", messages.ERROR)
            else:
                obj.delete()


def terms_help_html():
    """The terms field's help in the admin: each model's example as code, which the reader types as it is."""
    examples = format_html_join("; ", "<code>{}</code> <code>{}</code>", TERMS_EXAMPLES)
    keys = format_html_join(" and ", "<code>{}</code>", ((key,) for key in TERMS_COMMON_KEYS))
    return format_html(
        "{} {}. {} {}.", _("The charge model's parameters, amounts as strings, e.g."), examples,
        _("Any model also takes"), keys,
    )


class PriceTermsForm(TenantModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "terms" in self.fields:
            self.fields["terms"].help_text = terms_help_html()

    def clean(self):
        cleaned = super().clean()
        lines = {self.instance.contract_line} if self.instance.pk else set()
        if cleaned.get("contract_line") is not None:
            lines.add(cleaned["contract_line"])
        for line in lines:
            refusal = services.price_terms_refusal(contract_line=line, what="changed" if self.instance.pk else "added")
            if refusal:
                raise ValidationError(refusal)
        return cleaned


@admin.register(PriceTerms)
class PriceTermsAdmin(CatalogGuardMixin, TenantAdmin):
    form = PriceTermsForm
    list_display = ["__str__", "contract_line", "charge_model", "metric"]
    list_filter = ["charge_model", "metric", PriceTermsContractFilter]
    list_select_related = ["contract_line", "contract_line__contract"]
    fields = ["contract_line", "charge_model", "metric", "terms"]

    def delete_refusal(self, obj):
        return services.price_terms_refusal(contract_line=obj.contract_line, what="deleted")


@admin.register(BillingSettings)
class BillingSettingsAdmin(TenantAdmin):
    list_display = ["__str__", "minimum_invoice_amount", "usage_max_age_days", "usage_max_future_hours", "payment_method"]
    fieldsets = [
        (None, {"fields": ["minimum_invoice_amount", "usage_max_age_days", "usage_max_future_hours"]}),
        (_("Payment details on invoices"), {
            "fields": ["payment_method", "bankgiro", "iban", "bic", "bank_name", "payment_reference_text"],
            "description": _(
                "Bankgiro: invoices finalized from now on carry an OCR number, which bank statement imports "
                "match. IBAN: customers are asked to quote the invoice number."
            ),
        }),
    ]


class BillableMetricForm(TenantModelForm):
    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            refusal = services.billable_metric_change_refusal(metric=self.instance, changes=cleaned)
            if refusal:
                raise ValidationError(refusal)
        return cleaned


@admin.register(BillableMetric)
class BillableMetricAdmin(CatalogGuardMixin, TenantAdmin):
    """What usage events count for: kept by owners and finance (the billing area), read by all. What a
    metric measures is fixed once it priced an issued invoice, and one price terms use is kept."""

    form = BillableMetricForm
    list_display = ["code", "name", "aggregation", "field", "event_code", "filters", "unit"]
    list_filter = ["aggregation"]
    search_fields = ["code", "name"]
    fields = ["code", "name", "event_code", "aggregation", "field", "filters", "unit"]

    def delete_refusal(self, obj):
        return services.billable_metric_delete_refusal(metric=obj)


from billing import admin_month_end  # noqa: E402,F401  (runs, items and deliveries)
from billing import admin_usage  # noqa: E402,F401  (usage events, read through the store)
from billing import admin_card_payments  # noqa: E402,F401  (card payment providers and their events)
from billing import admin_dunning  # noqa: E402,F401  (reminder schedule, reminders, pending charges)
from billing import admin_webhooks  # noqa: E402,F401  (webhook endpoints, deliveries and events)
