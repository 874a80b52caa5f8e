from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from portal.admin_links import connect_customer_360_links
        from portal.schedule import connect_month_end_hooks
        from portal.staff_sessions import connect_staff_session_expiry

        connect_month_end_hooks()
        connect_staff_session_expiry()
        connect_customer_360_links()
