from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class RevenueConfig(AppConfig):
    name = "revenue"
    verbose_name = gettext_lazy("Revenue")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from customers.contract_hooks import register_contract_hook
        from revenue import facts, roles

        roles.register()
        # Each contract change refreshes its customer's MRR facts in its own transaction (revenue.facts).
        register_contract_hook("revenue_facts", facts.contract_hook)
