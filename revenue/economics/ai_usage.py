"""The AI-usage roll-up (``AiUsageDay``): rebuilt for a tenant whose time zone changes.

The roll-up's day is the tenant's calendar day when the events arrived; the database triggers
of migration 0004 keep it equal to the events' sum. A new time zone moves events across days,
so the tenant's rows are made again from its events, in the same transaction as the change.
"""

from django.db import connection
from django.db.models.signals import post_save, pre_save

from customers.models import Tenant


def ai_usage_rebuild(*, tenant: Tenant) -> int:
    """Make ``tenant``'s roll-up again from its usage events; returns the rows made. One statement
    in the database (``revenue_ai_usage_rebuild``), set-wise."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT revenue_ai_usage_rebuild(%s)", [tenant.pk])
        return cursor.fetchone()[0]


def _remember_time_zone(sender, instance: Tenant, **kwargs) -> None:
    instance._time_zone_before = (
        Tenant.objects.filter(pk=instance.pk).values_list("time_zone", flat=True).first() if instance.pk else None
    )


def _rebuild_on_new_time_zone(sender, instance: Tenant, created: bool, **kwargs) -> None:
    before = getattr(instance, "_time_zone_before", None)
    if not created and before is not None and before != instance.time_zone:
        ai_usage_rebuild(tenant=instance)


def connect() -> None:
    pre_save.connect(_remember_time_zone, sender=Tenant, dispatch_uid="ai_usage_time_zone_before")
    post_save.connect(_rebuild_on_new_time_zone, sender=Tenant, dispatch_uid="ai_usage_time_zone_after")
