"""Stripe: a Checkout Session in payment mode for an invoice's amount due, and verified webhook events.

Everything goes through the official ``stripe`` library: ``StripeClient`` (one per tenant account,
never the library's global key) creates the session, ``stripe.Webhook.construct_event`` verifies a
delivery's ``Stripe-Signature`` (HMAC-SHA256 with the tenant's signing secret, timestamps older than
``WEBHOOK_TOLERANCE_SECONDS`` refused as replays).

The amount is sent in the currency's minor unit as ISO 4217 defines it (cents for USD and SEK, whole
yen for JPY: Stripe's zero-decimal currencies are the ones whose ISO minor unit is 0 among ours).
The session's metadata (and its payment intent's) carry the tenant id and the invoice id, and the
request's idempotency key names the tenant, the invoice, the amount due, the UTC day and the return
addresses (Stripe refuses a key reused with other parameters), so a
double click (or a retry) opens the same session, a changed amount due opens a new one, and a session
Stripe has expired (after 24 hours) is not handed out again the next day.

Nothing here logs or raises with a key: errors name the Stripe error class and status only.
"""

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import stripe
from django.utils import timezone
from django.utils.translation import gettext

from billing.payment_providers.base import Checkout, PaidCheckout, ProviderUnavailable, VerifiedEvent, WebhookRefused
from customers.money import MoneyError, minor_unit_places

logger = logging.getLogger(__name__)

WEBHOOK_TOLERANCE_SECONDS = 300
REQUEST_TIMEOUT_SECONDS = 20
# The events that complete a checkout's payment: at once (cards), or later for delayed methods.
CHECKOUT_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}

def _unavailable() -> str:
    return gettext("The card payment service could not open a payment page; try again later.")


# Tests put a recording ``stripe.HTTPClient`` here; None: the library's default client.
http_client: stripe.HTTPClient | None = None


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``amount`` in the currency's minor unit: 12.50 USD → 1250, 5000 JPY → 5000. Raises ValueError
    when the amount has more decimals than the currency allows (never rounded here)."""
    places = minor_unit_places(currency)
    minor = amount.scaleb(places)
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency} allows.")
    return int(minor)


def from_minor_units(minor: int, currency: str) -> Decimal:
    """The inverse of ``to_minor_units``: 1250 USD → Decimal("12.50"), 5000 JPY → Decimal("5000")."""
    places = minor_unit_places(currency)
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


class StripeProvider:
    name = "stripe"

    def __init__(self, account):
        self.account = account

    def _client(self) -> stripe.StripeClient:
        client = http_client or stripe.new_default_http_client(timeout=REQUEST_TIMEOUT_SECONDS)
        return stripe.StripeClient(self.account.secret_key, http_client=client, max_network_retries=1)

    def create_checkout(self, *, invoice, amount: Decimal, success_url: str, cancel_url: str) -> Checkout:
        currency = invoice.currency.upper()
        minor = to_minor_units(amount, currency)
        metadata = {
            "tenant_id": str(invoice.tenant_id),
            "invoice_id": str(invoice.pk),
            "invoice_number": invoice.number or "",
        }
        params = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": minor,
                        "product_data": {"name": f"Invoice {invoice.number}"},
                    },
                }
            ],
            "client_reference_id": f"{invoice.tenant_id}-{invoice.pk}",
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata, "description": f"Invoice {invoice.number}"},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        day = timezone.now().astimezone(UTC).date().isoformat()
        # Stripe refuses a key reused with other parameters: the return addresses are part of it too.
        returns = hashlib.sha256(f"{success_url}\n{cancel_url}".encode()).hexdigest()[:12]
        key = f"checkout-{invoice.tenant_id}-{invoice.pk}-{minor}-{currency}-{day}-{returns}"
        try:
            session = self._client().v1.checkout.sessions.create(params=params, options={"idempotency_key": key})
        except stripe.StripeError as exc:
            # The class and status say enough; the message may quote the key ("Invalid API Key provided: sk_…").
            logger.warning(
                "Stripe refused a checkout for invoice %s of tenant %s: %s (HTTP %s)",
                invoice.pk, invoice.tenant_id, type(exc).__name__, getattr(exc, "http_status", None),
            )
            raise ProviderUnavailable(_unavailable()) from None
        if not getattr(session, "url", None) or not getattr(session, "id", None):
            logger.warning("Stripe answered a checkout for invoice %s without a payment page.", invoice.pk)
            raise ProviderUnavailable(_unavailable())
        return Checkout(session_id=session.id, url=session.url)

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> VerifiedEvent:
        signature = headers.get("Stripe-Signature") or ""
        try:
            stripe.Webhook.construct_event(
                payload, signature, self.account.webhook_secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError as exc:
            if "tolerance" in str(exc):
                raise WebhookRefused("The signature's timestamp is too old (a replay?).") from None
            raise WebhookRefused("The Stripe-Signature header does not verify.") from None
        except (ValueError, UnicodeDecodeError, TypeError):  # not UTF-8 or not JSON
            raise WebhookRefused("The body is not a Stripe event.") from None
        # Verified: read the plain JSON (the library's event object is not a dict).
        event = json.loads(payload)
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
            raise WebhookRefused("The body is not a Stripe event.")
        created = event.get("created")
        if not isinstance(created, int) or isinstance(created, bool):
            raise WebhookRefused("The event has no creation time.")
        checkout = None
        if event["type"] in CHECKOUT_EVENTS:
            checkout = _paid_checkout(event)
        return VerifiedEvent(
            event_id=event["id"][:255],
            event_type=event["type"][:100],
            created=datetime.fromtimestamp(created, tz=UTC),
            checkout=checkout,
        )


def _paid_checkout(event: dict) -> PaidCheckout:
    session = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
    if not isinstance(session, dict):
        raise WebhookRefused("The event carries no checkout session.")
    metadata = session.get("metadata") if isinstance(session.get("metadata"), dict) else {}
    currency = session.get("currency")
    amount_total = session.get("amount_total")
    if not isinstance(currency, str) or not isinstance(amount_total, int) or isinstance(amount_total, bool):
        raise WebhookRefused("The checkout session has no amount and currency.")
    try:
        amount = from_minor_units(amount_total, currency.upper())
    except MoneyError:
        raise WebhookRefused("The checkout session's currency is not one we know.") from None
    intent = session.get("payment_intent")
    if isinstance(intent, dict):  # expanded
        intent = intent.get("id")
    session_id = session.get("id") if isinstance(session.get("id"), str) else ""
    return PaidCheckout(
        session_id=session_id[:255],
        reference=(intent if isinstance(intent, str) and intent else session_id)[:140],
        amount=amount,
        currency=currency.upper(),
        paid=session.get("payment_status") == "paid",
        tenant_id=str(metadata.get("tenant_id", ""))[:40],
        invoice_id=str(metadata.get("invoice_id", ""))[:40],
    )
