"""Admin for the economics tables: the AI price table, entered (or imported) costs to serve, anomaly
rules and alerts, and the price-plan catalog of the what-ifs.

Costs to serve can also be imported from a CSV ("Import costs (CSV)" on their list), by whoever may
add and change them; the import is all rows or none (``revenue.economics.cost_import``).
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from customers.admin_base import TenantAdmin, is_platform_admin, request_role, request_tenant
from customers.models import Role, Tenant
from revenue.economics.cost_import import CSV_FIRST_ROW, MAX_CSV_BYTES, MAX_ROWS, customer_costs_import, rows_from_csv
from revenue.models import AnomalyAlert, AnomalyRule, CustomerCost, ModelPrice, PricePlan

# Alert rules and the price catalog are money policy: owners and finance keep them, others read.
POLICY_EDITORS = {Role.OWNER, Role.FINANCE}


class PolicyAdmin(TenantAdmin):
    def _role_may_edit(self, request, obj=None) -> bool:
        return request_role(request) in POLICY_EDITORS and self._owns(request, obj)


@admin.register(ModelPrice)
class ModelPriceAdmin(TenantAdmin):
    list_display = ["provider", "model", "input_price_per_million", "output_price_per_million", "effective_on"]
    list_filter = ["provider"]
    search_fields = ["provider", "model"]


class CostImportForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none())
    file = forms.FileField(
        label="CSV file",
        help_text=(
            "UTF-8, header customer,month,amount,note (note optional): the customer's reference, the month as "
            f"YYYY-MM, the amount like 1234.50. At most {MAX_ROWS} rows and {MAX_CSV_BYTES // (1024 * 1024)} MB."
        ),
    )
    source = forms.ChoiceField(
        choices=CustomerCost.Source.choices, initial=CustomerCost.Source.IMPORTED,
        help_text="A row replaces the customer-month's cost of this source (amount and note); the other source is kept.",
    )

    def __init__(self, *args, tenant=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fixed_tenant = tenant
        if tenant is None:  # a platform superuser picks the tenant
            self.fields["tenant"].queryset = Tenant.objects.order_by("name")
        else:
            del self.fields["tenant"]

    def clean(self):
        cleaned = super().clean()
        if self.fixed_tenant is not None:
            cleaned["tenant"] = self.fixed_tenant
        if cleaned.get("file") is not None:
            try:
                cleaned["rows"] = rows_from_csv(cleaned["file"])
            except ValidationError as exc:
                self.add_error("file", exc)
        return cleaned


@admin.register(CustomerCost)
class CustomerCostAdmin(TenantAdmin):
    list_display = ["customer", "month", "amount", "source", "note"]
    list_filter = ["source", "month"]
    search_fields = ["customer__name", "customer__external_ref"]
    change_list_template = "admin/economics/customercost/change_list.html"

    def _may_import(self, request) -> bool:
        # An import adds rows and replaces others: both rights, as for entering them one by one.
        return self.has_add_permission(request) and self.has_change_permission(request)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_import"
        return [path("import/", self.admin_site.admin_view(self.import_view), name=name), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_import_costs": self._may_import(request)}
        return super().changelist_view(request, extra_context)

    def import_view(self, request):
        """Upload a CSV of costs: all rows written (counts shown on the list) or none (every problem listed)."""
        if not self._may_import(request):
            raise PermissionDenied
        tenant = None if is_platform_admin(request) else request_tenant(request)
        posted = request.method == "POST"
        form = CostImportForm(request.POST, request.FILES, tenant=tenant) if posted else CostImportForm(tenant=tenant)
        row_errors = []
        if posted and form.is_valid():
            data = form.cleaned_data
            try:
                counts = customer_costs_import(
                    tenant=data["tenant"], rows=data["rows"], source=data["source"], first_row=CSV_FIRST_ROW
                )
            except ValidationError as exc:
                row_errors = exc.messages
            else:
                self.message_user(
                    request,
                    f"Costs imported from {data['file'].name}: {counts['created']} created, {counts['updated']} updated, "
                    f"{counts['unchanged']} unchanged.",
                    messages.SUCCESS,
                )
                return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import costs to serve (CSV)",
            "form": form,
            "row_errors": row_errors,
        }
        return TemplateResponse(request, "admin/economics/customercost/import.html", context)


@admin.register(AnomalyRule)
class AnomalyRuleAdmin(PolicyAdmin):
    list_display = ["name", "metric", "threshold", "window", "is_active"]
    list_filter = ["window", "is_active"]
    search_fields = ["name", "metric"]


@admin.register(AnomalyAlert)
class AnomalyAlertAdmin(TenantAdmin):
    """Alerts are raised by the detection only: read-only for everyone."""

    list_display = ["period_start", "customer", "kind", "measure", "observed", "baseline", "z_score", "rule", "emailed_at"]
    list_filter = ["kind", "measure", "period_start"]
    search_fields = ["customer__name", "customer__external_ref"]
    list_select_related = ["customer", "rule"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PricePlan)
class PricePlanAdmin(PolicyAdmin):
    list_display = ["code", "name", "currency", "base_fee", "charge_model", "metric", "unit_price"]
    list_filter = ["charge_model", "currency"]
    search_fields = ["code", "name"]
