"""Signals customers sends: extension points for the apps above it, which connect in their
``AppConfig.ready`` (customers never imports them).

- ``tenant_time_zone_changed(sender=Tenant, tenant=...)``: sent by
  ``customers.services.tenant_update`` inside its transaction, after a tenant's new time zone is
  saved; nothing else changes a tenant's time zone. Receivers that keep days in the tenant's
  calendar make them again (billing's AI-usage roll-up).
- ``contract_line_versioned(sender=ContractLine, previous=..., line=...)``: sent by the contract
  services inside their transaction when a dated change starts ``line`` as the new version of
  ``previous`` (``contract_line_change``) or a reactivation resumes ``previous`` as ``line``
  (``contract_reactivate``). Receivers carry what they keep per line to the new version (billing's
  price terms), so a new version is priced like the old one.
- ``customer_churned(sender=Customer, customer=..., contract=..., churned_on=...)``: sent by
  ``contract_cancel`` inside its transaction when, once it is cancelled, no started contract of the
  customer runs on without a set end (open-ended or auto-renewing); ``churned_on`` is the first day
  without a contract (after the latest end date still ahead), which may be in the future. Receivers
  announce it (billing's ``customer.churned`` webhook).
"""

from django.dispatch import Signal

tenant_time_zone_changed = Signal()
contract_line_versioned = Signal()
customer_churned = Signal()
