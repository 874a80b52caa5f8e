from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = gettext_lazy("Customers")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from customers.money import money_checks

        checks.register(money_checks, checks.Tags.compatibility)
