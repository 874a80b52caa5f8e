"""Signals customers sends: extension points for the apps above it, which connect in their
``AppConfig.ready`` (customers never imports them).

- ``tenant_time_zone_changed(sender=Tenant, tenant=...)``: sent by
  ``customers.services.tenant_update`` inside its transaction, after a tenant's new time zone is
  saved; nothing else changes a tenant's time zone. Receivers that keep days in the tenant's
  calendar make them again (billing's AI-usage roll-up).
"""

from django.dispatch import Signal

tenant_time_zone_changed = Signal()
