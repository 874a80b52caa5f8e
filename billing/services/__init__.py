"""Invoicing writes, by domain. Every service runs in one transaction and validates before it
writes, so a refused call leaves nothing behind.

- ``pricing``: pricing one customer and a period, read-only (``price_period``, ``price_line``),
  shared by the draft run, the portal's projection and the what-ifs.
- ``drafts``: the draft run (``invoice_compute_drafts``) writing what ``price_period`` priced.
- ``invoices``: finalizing with gapless numbers, voiding, marking paid.
- ``payments``: payments received, their allocation to invoices, voiding, customer credit.
- ``credits``: credit notes, manual credit requests and their approvals.
- ``price_terms``: a tenant's billing settings and a contract line's price terms.
- ``catalog``: the catalog's writes as the API makes them (metrics, price terms, billing settings),
  refusing with ``CatalogInUse`` what would change how an issued invoice was priced.
- ``webhooks``: outgoing webhook endpoints (secrets, rotation, redelivery) and the events the other
  services emit in their own transactions (``webhook_event_emit``).

This package re-exports every public name so ``from billing.services import invoice_finalize``
keeps working for callers in other apps; modules inside billing import from the precise module
(and the submodules never import this package, which imports them all).
"""

from billing.services.catalog import (
    CatalogInUse,
    billable_metric_change_refusal,
    billable_metric_create,
    billable_metric_delete,
    billable_metric_delete_refusal,
    billable_metric_update,
    billing_payment_details_set,
    billing_settings_update,
    price_terms_create,
    price_terms_delete,
    price_terms_refusal,
    price_terms_update,
)
from billing.services.credits import (
    ANY_STAFF_LIMIT,
    DIRECTOR_ROLES,
    MANAGER_LIMIT,
    MANAGER_ROLES,
    CreditNoteLineSpec,
    credit_approver_roles,
    credit_note_issue,
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
)
from billing.services.drafts import REVERSE_CHARGE_NOTE, invoice_compute_drafts
from billing.services.dunning import (
    dunning_late_fee,
    dunning_run,
    dunning_schedule_for,
    dunning_steps_validate,
)
from billing.services.invoices import (
    PERIOD_OPEN,
    early_close_warning,
    invoice_finalize,
    invoice_mark_paid,
    invoice_period_is_open,
    invoice_void,
)
from billing.services.payments import (
    AUTO,
    payment_allocate,
    payment_credit_apply,
    payment_open_invoices,
    payment_record,
    payment_refund,
    payment_release_overpayment,
    payment_void,
)
from billing.services.price_terms import billing_settings_for, price_terms_set
from billing.services.pricing import (
    BILLED_CONTRACT_STATUSES,
    EU_COUNTRIES,
    POSITIVE_KINDS,
    RECURRING_KINDS,
    Period,
    PricedInvoice,
    PricedLine,
    PricedPeriod,
    PricingContext,
    price_line,
    price_period,
)
from billing.services.webhooks import (
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_event_emit,
    webhook_overdue_announce,
)

__all__ = [
    "AUTO",
    "ANY_STAFF_LIMIT",
    "CatalogInUse",
    "BILLED_CONTRACT_STATUSES",
    "DIRECTOR_ROLES",
    "EU_COUNTRIES",
    "MANAGER_LIMIT",
    "MANAGER_ROLES",
    "PERIOD_OPEN",
    "POSITIVE_KINDS",
    "RECURRING_KINDS",
    "REVERSE_CHARGE_NOTE",
    "CreditNoteLineSpec",
    "Period",
    "PricedInvoice",
    "PricedLine",
    "PricedPeriod",
    "PricingContext",
    "billable_metric_change_refusal",
    "billable_metric_create",
    "billable_metric_delete",
    "billable_metric_delete_refusal",
    "billable_metric_update",
    "billing_payment_details_set",
    "billing_settings_for",
    "billing_settings_update",
    "credit_approver_roles",
    "credit_note_issue",
    "credit_request_approve",
    "credit_request_create",
    "credit_request_reject",
    "dunning_late_fee",
    "dunning_run",
    "dunning_schedule_for",
    "dunning_steps_validate",
    "early_close_warning",
    "invoice_compute_drafts",
    "invoice_finalize",
    "invoice_mark_paid",
    "invoice_period_is_open",
    "invoice_void",
    "payment_allocate",
    "payment_credit_apply",
    "payment_open_invoices",
    "payment_record",
    "payment_refund",
    "payment_release_overpayment",
    "payment_void",
    "price_line",
    "price_period",
    "price_terms_create",
    "price_terms_delete",
    "price_terms_refusal",
    "price_terms_set",
    "price_terms_update",
    "webhook_delivery_redeliver",
    "webhook_endpoint_create",
    "webhook_endpoint_rotate_secret",
    "webhook_endpoint_update",
    "webhook_event_emit",
    "webhook_overdue_announce",
]
