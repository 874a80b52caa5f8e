"""The pipeline in the admin: account managers keep it current, finance and viewers read it.

Winning and losing go through ``revenue.services``; every save marks the opportunity touched, so
the stale flag (above 60%, untouched for 7 days) means what it says.
"""

import re
from datetime import date

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.admin_base import request_tenant
from customers.periods import PeriodError, last_closed_month, parse_month
from revenue.api_accounting import journal_response, may_export
from revenue.selectors.common import MissingExchangeRate

from customers.admin_base import TenantAdmin, TenantModelForm, money_text, request_role
from customers.admin_filters import DROPDOWN_TEMPLATE, DefaultedListFilter
from customers.models import Role
from billing.services import CatalogInUse
from revenue import services
from revenue.catalog import exchange_rate_delete, exchange_rate_refusal
from revenue.facts import revenue_facts_refresh_currency
from revenue.admin_board import PipelineBoardMixin
from revenue.models import AccountPlan, Band, ExchangeRate, Opportunity, QuarterTarget

QUARTER_RE = re.compile(r"^(\d{4})-Q([1-4])$")
NO_DATE = "none"


class BandFilter(admin.SimpleListFilter):
    title = "band"
    parameter_name = "band"

    def lookups(self, request, model_admin):
        return Band.choices

    def queryset(self, request, queryset):
        if self.value() in Band.values:
            return queryset.in_band(self.value())
        return queryset


def quarter_of(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


class CloseQuarterFilter(admin.SimpleListFilter):
    """By the quarter of the expected close date; opportunities without a date are a choice of their own."""

    title = "expected close quarter"
    parameter_name = "quarter"
    template = DROPDOWN_TEMPLATE  # two years of history and four quarters ahead

    def lookups(self, request, model_admin):
        months = model_admin.get_queryset(request).dates("expected_close_on", "month")
        quarters = sorted({quarter_of(month) for month in months})
        return [(q, q) for q in quarters] + [(NO_DATE, "No date")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == NO_DATE:
            return queryset.filter(expected_close_on__isnull=True)
        match = QUARTER_RE.match(value or "")
        if not match:
            return queryset
        year, quarter = int(match[1]), int(match[2])
        first_month = 3 * (quarter - 1) + 1
        return queryset.filter(
            expected_close_on__year=year,
            expected_close_on__month__gte=first_month,
            expected_close_on__month__lte=first_month + 2,
        )


class OpenFilter(DefaultedListFilter):
    """The list starts on open opportunities: the pipeline people work; won and lost are one click away.
    A search looks through all of them unless a state was picked."""

    title = "state"
    parameter_name = "state"
    OPEN, WON, LOST, ALL = "open", "won", "lost", "all"
    search_default = ALL

    def lookups(self, request, model_admin):
        return [(self.OPEN, "Open"), (self.WON, "Won"), (self.LOST, "Lost"), (self.ALL, "All")]

    def __init__(self, request, params, model, model_admin):
        # A stage picked in the stage filter wins over the default, so ?stage=won is never empty.
        self.default = self.ALL if "stage__exact" in params else self.OPEN
        super().__init__(request, params, model, model_admin)

    def queryset(self, request, queryset):
        current = self.current()
        if current == self.OPEN:
            return queryset.open()
        if current == self.ALL:
            return queryset
        return queryset.filter(stage=current)


class StaleFilter(admin.SimpleListFilter):
    title = "stale"
    parameter_name = "stale"

    def lookups(self, request, model_admin):
        return [("yes", "Stale"), ("no", "Not stale")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.stale()
        if self.value() == "no":
            return queryset.exclude(pk__in=queryset.stale().values("pk"))
        return queryset


class OpportunityActionForm(ActionForm):
    lost_reason = forms.CharField(required=False, label="Reason (for “mark lost”)", max_length=200)


CLOSE_BY_ACTION = "Use the “Mark won” or “Mark lost” action: winning creates the contract, losing records why."


class OpportunityForm(TenantModelForm):
    """The rules the API keeps, in the admin too: won and lost are reached only through the actions
    (winning creates the contract), and a closed opportunity is history that takes no edits."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "stage" in self.fields and (self.instance.pk is None or self.instance.is_open):
            stage = self.fields["stage"]
            stage.choices = [(value, label) for value, label in stage.choices if value in Opportunity.OPEN_STAGES]
            stage.error_messages["invalid_choice"] = CLOSE_BY_ACTION

    def clean(self):
        cleaned = super().clean()
        stored = self.instance  # still as stored: the form's values reach it after clean()
        if stored.pk is not None and not stored.is_open and self.has_changed():
            raise ValidationError(f"“{stored.title}” is {stored.get_stage_display().lower()}: a closed "
                                  "opportunity is history and is not edited.")
        return cleaned


@admin.register(Opportunity)
class OpportunityAdmin(PipelineBoardMixin, TenantAdmin):
    list_display = [
        "title",
        "account",
        "amount",
        "probability",
        "weighted",
        "stage",
        "expected_close_on",
        "owner",
        "stale",
    ]
    list_editable = ["probability", "stage", "expected_close_on"]
    list_filter = [OpenFilter, BandFilter, CloseQuarterFilter, "stage", "owner", StaleFilter, "kind"]
    search_fields = ["title", "prospect_name", "customer__name"]
    list_select_related = ["customer", "owner"]
    autocomplete_fields = ["customer"]
    action_form = OpportunityActionForm
    actions = ["mark_won", "mark_lost"]
    fieldsets = [
        (None, {"fields": ["title", "customer", "prospect_name", "kind", "amount"]}),
        ("Forecast", {"fields": ["probability", "stage", "expected_close_on", "owner", "next_step"]}),
        ("Outcome", {"fields": ["lost_reason", "won_contract", "closed_on", "last_touched_at"]}),
    ]
    readonly_fields = ["won_contract", "closed_on", "last_touched_at"]
    form = OpportunityForm

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.is_open:  # won or lost: shown, not edited
            shown = [field for fields in (spec["fields"] for _, spec in self.fieldsets) for field in fields]
            return self._as_money(shown, self._money_names())
        return super().get_readonly_fields(request, obj)

    @admin.display(description="account", ordering="customer__name")
    def account(self, obj):
        return obj.account_name

    @admin.display(description="weighted")
    def weighted(self, obj):
        weighted = obj.weighted_amount
        return money_text(weighted.amount, str(weighted.currency))

    @admin.display(description="stale", boolean=True)
    def stale(self, obj):
        return obj.is_stale

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("owner", request.user.pk)
        return initial

    def save_model(self, request, obj, form, change):
        obj.last_touched_at = timezone.now()
        super().save_model(request, obj, form, change)

    @admin.action(description="Mark won (creates a draft contract starting today)", permissions=["change"])
    def mark_won(self, request, queryset):
        won = 0
        for opportunity in queryset.select_related("customer", "tenant"):
            try:
                services.opportunity_win(opportunity=opportunity, start_date=timezone.localdate())
                won += 1
            except ValidationError as error:
                self.message_user(request, f"{opportunity}: {'; '.join(error.messages)}", messages.ERROR)
        if won:
            self.message_user(request, f"Marked {won} opportunity(ies) won; their draft contracts await activation.")

    @admin.action(description="Mark lost (give the reason in the field beside the action)", permissions=["change"])
    def mark_lost(self, request, queryset):
        reason = request.POST.get("lost_reason", "").strip()
        if not reason:
            self.message_user(
                request, "Say why they were lost: fill in the reason, then run the action.", messages.ERROR
            )
            return
        lost = 0
        for opportunity in queryset:
            try:
                services.opportunity_lose(opportunity=opportunity, reason=reason)
                lost += 1
            except ValidationError as error:
                self.message_user(request, f"{opportunity}: {'; '.join(error.messages)}", messages.ERROR)
        if lost:
            self.message_user(request, f"Marked {lost} opportunity(ies) lost.")


class ExchangeRateForm(TenantModelForm):
    """Refuses, as the API does (``revenue.catalog``), a rate that converted a frozen month or would."""

    def clean(self):
        cleaned = super().clean()
        tenant = self.instance.tenant if self.instance.tenant_id else None
        if tenant is None or not cleaned.get("currency") or not cleaned.get("effective_on"):
            return cleaned
        refusal = None
        if self.instance.pk:
            refusal = exchange_rate_refusal(
                tenant=tenant, currency=self.instance.currency, effective_on=self.instance.effective_on, what="converted"
            )
        refusal = refusal or exchange_rate_refusal(
            tenant=tenant, currency=cleaned["currency"], effective_on=cleaned["effective_on"], what="would change"
        )
        if refusal:
            raise ValidationError(refusal)
        return cleaned


@admin.register(ExchangeRate)
class ExchangeRateAdmin(TenantAdmin):
    """Stored rates into the reporting currency; metrics never fetch one. Money, so kept by owners and
    finance (not the pipeline's account managers); everyone reads them. A rate that converted a closed
    month's frozen figures is kept as it is."""

    form = ExchangeRateForm
    list_display = ["currency", "rate", "effective_on"]
    list_filter = ["currency"]
    fields = ["currency", "rate", "effective_on"]
    ordering = ["currency", "-effective_on"]

    def _role_may_edit(self, request, obj=None) -> bool:
        return request_role(request) in (Role.OWNER, Role.FINANCE) and self._owns(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or not exchange_rate_refusal(
            tenant=obj.tenant, currency=obj.currency, effective_on=obj.effective_on, what="converted"))

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # The form's clean asked the frozen-month rule; the MRR facts convert with the new rate now.
        currencies = {obj.currency, *([form.initial.get("currency")] if change else [])} - {None}
        revenue_facts_refresh_currency(tenant=obj.tenant, currencies=currencies)

    def delete_model(self, request, obj):
        exchange_rate_delete(exchange_rate=obj)

    def delete_queryset(self, request, queryset):
        for rate in queryset:
            try:
                exchange_rate_delete(exchange_rate=rate)
            except CatalogInUse as exc:
                self.message_user(request, f"{rate} was kept: {exc}", messages.ERROR)


@admin.register(QuarterTarget)
class QuarterTargetAdmin(TenantAdmin):
    """The revenue to close each quarter, which pipeline coverage is measured against. A sales and a
    money figure at once: owners, finance and account managers set it; viewers read it."""

    list_display = ["__str__", "year", "quarter", "target"]
    list_filter = ["year"]
    fields = ["year", "quarter", "target"]

    def _role_may_edit(self, request, obj=None) -> bool:
        return request_role(request) in (Role.OWNER, Role.FINANCE, Role.ACCOUNT_MANAGER) and self._owns(request, obj)

import revenue.economics.admin  # noqa: E402,F401


class JournalExportForm(forms.Form):
    month = forms.CharField(label=_("Month"), max_length=7, help_text=_("YYYY-MM, e.g. 2026-11."))
    journal_format = forms.ChoiceField(label=_("Format"), choices=AccountPlan.Format.choices)

    def clean_month(self):
        try:
            return parse_month(self.cleaned_data["month"])
        except PeriodError as exc:
            raise ValidationError(exc.messages) from None


@admin.register(AccountPlan)
class AccountPlanAdmin(TenantAdmin):
    """The accounts the journal export posts to (BAS defaults) and its format; *Export journal*
    on the list downloads a month's journal. Finance and owners keep it and export."""

    list_display = [
        "__str__", "journal_format", "organisation_number", "receivables_account", "sales_account", "output_vat_account",
        "bank_account",
    ]
    fields = [
        "journal_format", "organisation_number", "receivables_account", "sales_account", "sales_reverse_charge_account",
        "output_vat_account", "bank_account", "credits_granted_account",
    ]
    change_list_template = "admin/revenue/accountplan/change_list.html"

    def get_urls(self):
        return [
            path("export/", self.admin_site.admin_view(self.export_view), name="revenue_accountplan_export"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_export": may_export(request) and request_tenant(request) is not None}
        return super().changelist_view(request, extra_context)

    def export_view(self, request):
        """A month and a format → the journal file; a bad month or a missing rate shows why."""
        from revenue.accounting import account_plan_for

        tenant = request_tenant(request)
        if tenant is None or not may_export(request):
            raise PermissionDenied
        plan = account_plan_for(tenant=tenant)
        initial = {"month": f"{last_closed_month(tenant):%Y-%m}", "journal_format": plan.journal_format}
        form = JournalExportForm(request.POST or None, initial=initial)
        status = 200
        if request.method == "POST":
            if form.is_valid():
                try:
                    return journal_response(
                        tenant=tenant, month=form.cleaned_data["month"], journal_format=form.cleaned_data["journal_format"]
                    )
                except MissingExchangeRate as exc:
                    form.add_error(None, str(exc))
                    status = 409
            else:
                status = 400
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": _("Export the journal"), "form": form}
        return TemplateResponse(request, "admin/revenue/accountplan/export.html", context, status=status)
