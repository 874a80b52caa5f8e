from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from billing import ai_usage, roles
        from customers.signals import tenant_time_zone_changed

        roles.register()
        tenant_time_zone_changed.connect(ai_usage.rebuild_on_new_time_zone, dispatch_uid="billing_ai_usage_rebuild")
