"""What every card payment provider offers billing: a checkout page for an invoice, and verified events.

A provider is built from a tenant's ``PaymentProviderAccount`` and speaks for that tenant only.

- ``create_checkout(invoice=, amount=, success_url=, cancel_url=)`` opens a hosted payment page for
  ``amount`` (the invoice's amount due, in its currency) and returns where to send the customer.
  Raises ``ProviderUnavailable`` when the provider refuses or cannot be reached; its message is
  safe to show (never a key, never the provider's raw answer).
- ``parse_webhook(payload, headers)`` verifies a webhook delivery (signature and freshness) and
  returns a ``VerifiedEvent``, or raises ``WebhookRefused`` with a safe message.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Mapping, Protocol


class ProviderUnavailable(Exception):
    """The provider did not open a checkout (down, keys refused, ...). ``str()`` is safe to show."""


class WebhookRefused(Exception):
    """A webhook delivery that is not a verified event of this tenant's provider. ``str()`` is safe to show."""


@dataclass(frozen=True)
class Checkout:
    session_id: str
    url: str


@dataclass(frozen=True)
class PaidCheckout:
    """What a completed checkout says was paid. ``amount`` is in major units (``Decimal("12.50")``,
    ``Decimal("5000")`` for JPY), ``currency`` an upper-case ISO code; the ids come from the metadata
    we sent, as text (the event is the provider's word, checked by the caller)."""

    session_id: str
    reference: str  # the payment's id at the provider (a payment intent id), for the Payment row
    amount: Decimal
    currency: str
    paid: bool
    tenant_id: str
    invoice_id: str


@dataclass(frozen=True)
class VerifiedEvent:
    """An authentic event. ``checkout`` is set for the event types that complete a payment, else None."""

    event_id: str
    event_type: str
    created: datetime
    checkout: PaidCheckout | None


class PaymentProvider(Protocol):
    name: str

    def create_checkout(self, *, invoice, amount: Decimal, success_url: str, cancel_url: str) -> Checkout: ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> VerifiedEvent: ...
