"""Payment reminders (dunning) in the admin.

*Payment reminders* opens the tenant's schedule (created with the default 3 / 10 / 20 day steps the
first time): whether reminders go out, and its steps, each with its days overdue, subject and body
in English and Swedish and an optional late fee. Finance and owners edit it (the billing area of
``customers.roles``); every step is validated when saved (texts in both languages, only known
placeholders, a consistent fee) and the steps together (positive days, no two on the same day).

*Reminders sent* lists every reminder decided for an invoice, read-only: when, which step, the
amount due and late fee, and each recipient's delivery. *Pending charges* lists late fees and the
invoice that bills them (empty while they wait for the customer's next draft).
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from billing.admin_base import ReadOnlyMixin
from billing.models import DunningReminder, DunningReminderDelivery, DunningSchedule, DunningStep, PendingCharge
from billing.models.dunning import REMINDER_PLACEHOLDERS
from billing.services.dunning import dunning_schedule_for, dunning_steps_validate
from customers.admin_base import TenantAdmin, TenantInline, TenantInlineFormSet, is_platform_admin, request_tenant
from customers.tenancy import tenant_scope


class DunningStepFormSet(TenantInlineFormSet):
    def clean(self):
        # The schedule's own rule first: it names the day (Django's unique check would only say "duplicate").
        days = [
            form.cleaned_data.get("days_overdue")
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        errors = dunning_steps_validate(days=days)
        if errors:
            raise ValidationError(errors)
        super().clean()


class DunningStepInline(TenantInline):
    model = DunningStep
    formset = DunningStepFormSet
    template = "admin/edit_inline/stacked.html"
    fields = ["days_overdue", "subject_en", "body_en", "subject_sv", "body_sv", "fee", "fee_amount", "fee_percent"]
    ordering = ["days_overdue"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # Literal text to type, so shown as code: {invoice_number}, {amount_due}, …
        placeholders = format_html_join(", ", "<code>{}</code>", (("{" + name + "}",) for name in REMINDER_PLACEHOLDERS))
        for name in ("subject_en", "body_en", "subject_sv", "body_sv"):
            field = formset.form.base_fields[name]
            field.help_text = format_html("{} {}.", _("Placeholders:"), placeholders)
            if name.startswith("body"):
                field.widget = forms.Textarea(attrs={"rows": 9, "cols": 80})
        return formset


@admin.register(DunningSchedule)
class DunningScheduleAdmin(TenantAdmin):
    list_display = ["__str__", "enabled", "updated_at"]
    fields = ["enabled"]
    inlines = [DunningStepInline]

    def has_add_permission(self, request):
        # One schedule per tenant, created with the defaults when first opened.
        return is_platform_admin(request) and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        tenant = request_tenant(request)
        if tenant is None or is_platform_admin(request):
            return super().changelist_view(request, extra_context)
        # The tenant's one schedule, with its default steps on first use, listed like any other row
        # (a redirect here would send bookmarks and crawlers somewhere they did not ask for).
        with tenant_scope(tenant):
            dunning_schedule_for(tenant=tenant)
        return super().changelist_view(request, extra_context)


class DunningDeliveryInline(ReadOnlyMixin, TenantInline):
    model = DunningReminderDelivery
    fields = ["recipient", "status", "attempts", "sent_at", "error"]
    readonly_fields = fields


@admin.register(DunningReminder)
class DunningReminderAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ["invoice", "customer", "days_overdue", "status", "amount_due", "late_fee", "created_at", "sent_at"]
    money_fields = ("amount_due", "late_fee")
    list_filter = ["status", "days_overdue", "created_at"]
    list_select_related = ["invoice", "customer"]
    search_fields = ["invoice__number", "customer__name"]
    date_hierarchy = "created_at"
    fields = [
        "invoice", "customer", "days_overdue", "status", "note", "amount_due", "late_fee", "currency", "language",
        "created_at", "sent_at", "charge_invoices",
    ]
    readonly_fields = fields
    inlines = [DunningDeliveryInline]

    @admin.display(description=_("late fee billed on"))
    def charge_invoices(self, obj):
        charges = [charge for charge in obj.charges.all() if charge.invoice_id]
        if not charges:
            return "—"
        return format_html_join(
            ", ", '<a href="{}">{}</a>',
            ((reverse("admin:billing_invoice_change", args=[c.invoice_id]), str(c.invoice)) for c in charges),
        )


@admin.register(PendingCharge)
class PendingChargeAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ["description", "customer", "amount", "invoice", "created_at"]
    money_fields = ("amount",)
    list_filter = ["created_at"]
    list_select_related = ["customer", "invoice"]
    search_fields = ["description", "customer__name"]
    fields = ["customer", "description", "amount", "currency", "reminder", "invoice", "created_at"]
    readonly_fields = fields
