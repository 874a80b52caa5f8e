from django.apps import AppConfig
from django.core import checks


class CustomersConfig(AppConfig):
    name = "customers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from customers.money import money_checks

        checks.register(money_checks, checks.Tags.compatibility)
