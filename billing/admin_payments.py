"""Payments in the admin: finance records money received, allocates it, voids it.

The add form records a payment through ``billing.services.payment_record`` once the form is
otherwise valid (in its ``_post_clean``), so a refusal (an invoice of another customer, more than it owes, a date in the future…)
shows beside the form with everything typed still there, and nothing is written. Which invoices
it pays: the numbers typed in "Pays invoices" (each as far as the money goes, oldest due first),
else the customer's open invoices oldest due first, unless "Keep as credit" is ticked. What is not
allocated is the customer's credit, which their next finalized invoice takes.

A recorded payment is never edited: its page shows its allocations and refunds and has *Allocate*
(a number and optionally an amount), *Refund credit* (an amount of what is unallocated, the day it
was paid back) and *Void* (with a reason) buttons, each a small form through the services. Who may
do it is the roles registry's billing area: finance, owners and platform admins; everyone else
reads. *Import bank statement* on the list reads a CSV or camt.053 XML statement
(``billing.services.bank_statements``), shows every row as matched, ambiguous, unmatched, duplicate,
ignored (camt.053 debits and unbooked entries) or invalid, and writes the matched ones only when
finance confirms.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from billing import services
from billing.admin_base import ReadOnlyMixin, _may_bill
from billing.models import Invoice, Payment, PaymentAllocation, Refund
from billing.services import bank_statements
from customers.admin_base import TenantAdmin, TenantInline, TenantModelForm, is_platform_admin, money_text, request_tenant
from customers.tenancy import tenant_scope


def _numbers(text: str) -> list[str]:
    return [part for part in text.replace(",", " ").split() if part]


def _invoices_by_number(tenant, numbers: list[str]) -> tuple[list[Invoice], list[str]]:
    found = {i.number: i for i in Invoice.objects.for_tenant(tenant).filter(number__in=numbers)}
    return [found[n] for n in numbers if n in found], [n for n in numbers if n not in found]


def _add_service_errors(form, exc: ValidationError, fallback: str | None = None) -> None:
    """Put a service's refusal beside the field it names, or on ``fallback`` / the whole form."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            target = name if name in form.fields else fallback
            for message in errors:
                form.add_error(target, message)
    else:
        for message in exc.messages:
            form.add_error(fallback, message)


class PaymentAddForm(TenantModelForm):
    request_user = None  # set by PaymentAdmin.get_form: who recorded it
    invoice_numbers = forms.CharField(
        label=_("Pays invoices"),
        required=False,
        help_text=_("Invoice numbers, separated by spaces or commas. Empty: the customer's open invoices, oldest due first."),
    )
    keep_as_credit = forms.BooleanField(
        label=_("Keep as credit"),
        required=False,
        help_text=_("Allocate nothing now: the customer's next invoice takes it (or allocate it later)."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "currency" in self.fields:
            self.fields["currency"].required = False
            self.fields["currency"].help_text = _("Empty: the customer's currency.")
        self.recorded = None
        self.invoices = []

    def clean(self):
        cleaned = super().clean()
        customer = cleaned.get("customer")
        if customer is not None and not cleaned.get("currency"):
            cleaned["currency"] = customer.currency
        numbers = _numbers(cleaned.get("invoice_numbers", ""))
        if numbers and cleaned.get("keep_as_credit"):
            self.add_error("keep_as_credit", _("Either name invoices to pay or keep it as credit, not both."))
        elif numbers and customer is not None:
            self.invoices, unknown = _invoices_by_number(customer.tenant, numbers)
            if unknown:
                self.add_error("invoice_numbers", _("No invoice numbered %(numbers)s.") % {"numbers": ", ".join(unknown)})
        return cleaned

    def _post_clean(self):
        # Model validation first; the service records the payment only when everything else is
        # valid, so an invalid form never leaves a payment behind.
        super()._post_clean()
        if self.errors:
            return
        cleaned = self.cleaned_data
        customer = cleaned["customer"]
        if cleaned.get("keep_as_credit"):
            allocations = []
        elif _numbers(cleaned.get("invoice_numbers", "")):
            allocations = [(invoice, None) for invoice in self.invoices]
        else:
            allocations = services.AUTO
        try:
            with transaction.atomic(), tenant_scope(customer.tenant):
                self.recorded = services.payment_record(
                    tenant=customer.tenant,
                    customer=customer,
                    amount=cleaned["amount"],
                    currency=cleaned["currency"],
                    received_on=cleaned["received_on"],
                    method=cleaned["method"],
                    reference=cleaned.get("reference", ""),
                    note=cleaned.get("note", ""),
                    allocations=allocations,
                    created_by=self.request_user,
                )
        except ValidationError as exc:
            _add_service_errors(self, exc, fallback="invoice_numbers" if allocations else None)


class AllocateForm(forms.Form):
    invoice_number = forms.CharField(label=_("Invoice number"))
    amount = forms.DecimalField(
        label=_("Amount"), required=False, max_digits=18, decimal_places=2,
        help_text=_("Empty: as much as the payment has left and the invoice owes."),
    )


class StatementForm(forms.Form):
    """A CSV or camt.053 XML file on the first post; the same text, carried back by the preview, on confirm."""

    file = forms.FileField(label=_("Bank statement (CSV or camt.053 XML)"), required=False)
    statement = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is not None:
            if upload.size > bank_statements.MAX_BYTES:
                raise ValidationError(_("The file is larger than 2 MB; split the statement."))
            try:
                cleaned["statement"] = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ValidationError(_("Save the statement as CSV or camt.053 XML in UTF-8 and upload it again.")) from None
        if not cleaned.get("statement"):
            raise ValidationError(_("Choose the statement's CSV or camt.053 file."))
        return cleaned

    def statement_text(self) -> str:
        return self.cleaned_data["statement"]


class RefundForm(forms.Form):
    amount = forms.DecimalField(label=_("Amount"), max_digits=18, decimal_places=2, help_text=_("At most the payment's unallocated credit."))
    refunded_on = forms.DateField(label=_("Paid back on"), help_text=_("YYYY-MM-DD; not in the future."))
    method = forms.ChoiceField(label=_("Method"), choices=Payment.Method.choices, initial=Payment.Method.BANK_TRANSFER)
    reference = forms.CharField(label=_("Reference"), max_length=140, required=False)


class VoidForm(forms.Form):
    reason = forms.CharField(label=_("Why is it voided?"), max_length=300, help_text=_("E.g. returned by the bank."))


class PaymentAllocationInline(ReadOnlyMixin, TenantInline):
    model = PaymentAllocation
    fk_name = "payment"
    fields = ["invoice", "amount", "created_at"]
    readonly_fields = fields
    money_fields, money_currency = ("amount",), "payment.currency"


class RefundInline(ReadOnlyMixin, TenantInline):
    model = Refund
    fk_name = "payment"
    fields = ["refunded_on", "amount", "method", "reference", "created_by"]
    readonly_fields = fields
    money_fields, money_currency = ("amount",), "payment.currency"


class InvoicePaymentInline(ReadOnlyMixin, TenantInline):
    """On an invoice's page: the payments allocated to it."""

    model = PaymentAllocation
    fk_name = "invoice"
    verbose_name = _("payment")
    verbose_name_plural = _("payments")
    fields = ["payment", "received_on", "method", "reference", "amount", "state"]
    readonly_fields = fields
    money_fields, money_currency = ("amount",), "invoice.currency"
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("payment")

    @admin.display(description=_("Received on"))
    def received_on(self, obj):
        return obj.payment.received_on

    @admin.display(description=_("Method"))
    def method(self, obj):
        return obj.payment.get_method_display()

    @admin.display(description=_("Reference"))
    def reference(self, obj):
        return obj.payment.reference

    @admin.display(description=_("State"))
    def state(self, obj):
        return _("Void (not counted): %(reason)s") % {"reason": obj.payment.void_reason} if obj.payment.is_void else ""


@admin.register(Payment)
class PaymentAdmin(TenantAdmin):
    list_display = ["received_on", "customer", "amount_text", "method", "reference", "unallocated_text", "state"]
    list_filter = ["method", "received_on", "customer"]
    list_select_related = ["customer"]
    search_fields = ["reference", "bank_reference", "customer__name", "allocations__invoice__number"]
    date_hierarchy = "received_on"
    autocomplete_fields = ["customer"]
    form = PaymentAddForm
    change_form_template = "admin/billing/payment/change_form.html"
    change_list_template = "admin/billing/payment/change_list.html"
    readonly_fields_on_change = [
        "customer", "amount_text", "received_on", "method", "reference", "bank_reference", "note", "unallocated_text", "state",
        "created_by", "created_at", "voided_at", "void_reason",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).with_unallocated()

    fields_on_add = [
        "customer", "amount", "currency", "received_on", "method", "reference", "note", "invoice_numbers", "keep_as_credit",
    ]

    def get_fields(self, request, obj=None):
        if obj is not None:
            return self.readonly_fields_on_change
        return ["tenant", *self.fields_on_add] if is_platform_admin(request) else self.fields_on_add

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields_on_change if obj is not None else []

    def get_inlines(self, request, obj):
        return [PaymentAllocationInline, RefundInline] if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request_user": request.user})

    def has_change_permission(self, request, obj=None):
        # Recorded payments are never edited; the page's buttons allocate and void.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # The form recorded it through the service when it was cleaned.
        obj.pk = form.recorded.pk
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        pass

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, _("Payment recorded."), messages.SUCCESS)
        return redirect("admin:billing_payment_change", obj.pk)

    # Columns

    @admin.display(description=_("Amount"), ordering="amount")
    def amount_text(self, obj):
        return money_text(obj.amount, obj.currency)

    @admin.display(description=_("Unallocated (credit)"), ordering="unallocated")
    def unallocated_text(self, obj):
        return money_text(obj.unallocated, obj.currency)

    @admin.display(description=_("State"))
    def state(self, obj):
        return _("Void") if obj.is_void else _("Received")

    # Buttons: allocate, void

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/allocate/", view(self.allocate_view), name="billing_payment_allocate"),
            path("<path:object_id>/void/", view(self.void_view), name="billing_payment_void"),
            path("<path:object_id>/refund/", view(self.refund_view), name="billing_payment_refund"),
            path("import/", view(self.import_view), name="billing_payment_import"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        payment = self.get_object(request, unquote(object_id))
        buttons = []
        if payment is not None and not payment.is_void and _may_bill(request):
            if payment.unallocated > 0:
                buttons.append({"label": _("Allocate"), "url": reverse("admin:billing_payment_allocate", args=[payment.pk])})
                buttons.append({"label": _("Refund credit"), "url": reverse("admin:billing_payment_refund", args=[payment.pk])})
            buttons.append({"label": _("Void"), "url": reverse("admin:billing_payment_void", args=[payment.pk])})
        extra_context = {**(extra_context or {}), "moves": buttons}
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_import": _may_bill(request) and request_tenant(request) is not None}
        return super().changelist_view(request, extra_context)

    def import_view(self, request):
        """Upload a CSV statement → preview of every row → confirm: only then are payments written."""
        tenant = request_tenant(request)
        if not _may_bill(request) or tenant is None:
            raise PermissionDenied
        form = StatementForm(request.POST or None, request.FILES or None)
        rows, text, status, error = None, "", 200, ""
        if request.method == "POST":
            if not form.is_valid():
                status = 400
            else:
                text = form.statement_text()
                try:
                    with tenant_scope(tenant):
                        if request.POST.get("confirm") == "1":
                            rows = bank_statements.bank_statement_import(tenant=tenant, text=text, created_by=request.user)
                            written = sum(1 for row in rows if row.status == bank_statements.MATCHED)
                            self.message_user(
                                request, _("%(count)s payments recorded from the statement.") % {"count": written},
                                messages.SUCCESS,
                            )
                            return redirect("admin:billing_payment_changelist")
                        rows = bank_statements.bank_statement_preview(tenant=tenant, text=text)
                except ValidationError as exc:
                    error, status, rows = " ".join(exc.messages), 400, None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Import a bank statement"),
            "form": form,
            "rows": rows,
            "statement": text,
            "error": error,
            "matched": sum(1 for row in rows or [] if row.status == bank_statements.MATCHED),
        }
        return TemplateResponse(request, "admin/billing/payment/import.html", context, status=status)

    def _payment_for_action(self, request, object_id):
        if not _may_bill(request):
            raise PermissionDenied
        payment = self.get_object(request, unquote(object_id))
        if payment is None:
            raise Http404(_("No such payment."))
        return payment

    def _act(self, request, payment, form_class, title, run):
        form = form_class(request.POST or None)
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic(), tenant_scope(payment.tenant):
                    run(form.cleaned_data)
            except ValidationError as exc:
                _add_service_errors(form, exc)
                status = 409
            else:
                self.message_user(request, _("Done: %(title)s.") % {"title": title}, messages.SUCCESS)
                return redirect("admin:billing_payment_change", payment.pk)
        elif request.method == "POST":
            status = 400
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "payment": payment,
            "amount": money_text(payment.amount, payment.currency),
            "unallocated": money_text(payment.unallocated, payment.currency),
            "form": form,
        }
        return TemplateResponse(request, "admin/billing/payment/act.html", context, status=status)

    def allocate_view(self, request, object_id):
        payment = self._payment_for_action(request, object_id)

        def run(data):
            invoices, unknown = _invoices_by_number(payment.tenant, [data["invoice_number"].strip()])
            if unknown:
                raise ValidationError({"invoice_number": _("No invoice numbered %(number)s.") % {"number": unknown[0]}})
            services.payment_allocate(payment=payment, invoice=invoices[0], amount=data.get("amount"))

        return self._act(request, payment, AllocateForm, _("Allocate payment %(payment)s") % {"payment": payment}, run)

    def void_view(self, request, object_id):
        payment = self._payment_for_action(request, object_id)

        def run(data):
            services.payment_void(payment=payment, reason=data["reason"])

        return self._act(request, payment, VoidForm, _("Void payment %(payment)s") % {"payment": payment}, run)


    def refund_view(self, request, object_id):
        payment = self._payment_for_action(request, object_id)

        def run(data):
            services.payment_refund(
                payment=payment, amount=data["amount"], refunded_on=data["refunded_on"], method=data["method"],
                reference=data["reference"], created_by=request.user,
            )

        return self._act(request, payment, RefundForm, _("Refund credit of payment %(payment)s") % {"payment": payment}, run)
