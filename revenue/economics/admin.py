"""Admin for the economics tables: the AI price table, entered (or imported) costs to serve, anomaly
rules and alerts, and the price-plan catalog of the what-ifs."""

from django.contrib import admin

from customers.admin_base import TenantAdmin, request_role
from customers.models import Role
from revenue.economics.models import AnomalyAlert, AnomalyRule, CustomerCost, ModelPrice, PricePlan

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


@admin.register(CustomerCost)
class CustomerCostAdmin(TenantAdmin):
    list_display = ["customer", "month", "amount", "source", "note"]
    list_filter = ["source", "month"]
    search_fields = ["customer__name", "customer__external_ref"]


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
