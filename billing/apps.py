from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = gettext_lazy("Billing")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from billing import ai_usage, roles
        from customers.signals import tenant_time_zone_changed

        roles.register()
        tenant_time_zone_changed.connect(ai_usage.rebuild_on_new_time_zone, dispatch_uid="billing_ai_usage_rebuild")
