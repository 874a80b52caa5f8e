from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class RevenueConfig(AppConfig):
    name = "revenue"
    verbose_name = gettext_lazy("Revenue")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from revenue import roles

        roles.register()
