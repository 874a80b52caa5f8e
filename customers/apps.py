from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = gettext_lazy("Customers")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from customers.money import money_checks
        from customers.rls import secure_after_migrate

        checks.register(money_checks, checks.Tags.compatibility)
        # Once per migrate (sender: this app), after every app's migrations: no tenant table left open.
        post_migrate.connect(secure_after_migrate, sender=self, dispatch_uid="customers.rls")
