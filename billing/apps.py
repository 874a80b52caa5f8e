from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = gettext_lazy("Billing")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import pre_delete

        from billing import ai_usage, change_guards, metering, roles
        from billing.metering import usage_events_purge
        from customers.purge import register_purge_hook
        from billing.services.price_terms import price_terms_carry
        from customers.change_guards import register_change_guard
        from billing.services.webhooks import webhook_customer_churned
        from customers.models import Customer
        from customers.signals import contract_line_versioned, customer_churned, tenant_time_zone_changed

        roles.register()
        register_purge_hook("billing.usage_events", usage_events_purge)
        # History is never rewritten: contract changes dated into a finalized period are refused.
        register_change_guard("billing.finalized_period", change_guards.finalized_period_refusal)
        tenant_time_zone_changed.connect(ai_usage.rebuild_on_new_time_zone, dispatch_uid="billing_ai_usage_rebuild")
        contract_line_versioned.connect(price_terms_carry, dispatch_uid="billing_price_terms_carry")
        customer_churned.connect(webhook_customer_churned, dispatch_uid="billing_webhook_customer_churned")
        pre_delete.connect(
            metering.refuse_customer_delete_with_usage, sender=Customer, dispatch_uid="billing_customer_usage_protect"
        )
