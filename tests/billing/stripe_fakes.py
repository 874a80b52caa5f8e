"""Stripe without the network: a recording HTTP client for the library, and locally signed webhook deliveries.

``StripeRecorder`` is a ``stripe.HTTPClient``: the official library builds and encodes each request as
it would for api.stripe.com and hands it here; the recorder keeps it and answers with a canned JSON
body (a Checkout Session by default). ``signed_delivery`` signs an event body exactly as Stripe does
(``stripe.WebhookSignature.generate_signature_header``: HMAC-SHA256 over ``"<t>.<body>"`` with the
endpoint's signing secret, sent as ``Stripe-Signature: t=…,v1=…``).
"""

import json
import time
from urllib.parse import parse_qsl

import stripe


class StripeRecorder(stripe.HTTPClient):
    name = "recorder"

    def __init__(self, *, status: int = 200, body: dict | None = None):
        super().__init__()
        self.status = status
        self.body = body or {
            "id": "cs_test_a1b2c3",
            "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
        }
        self.requests = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        self.requests.append({"method": method, "url": url, "headers": dict(headers or {}), "params": dict(parse_qsl(post_data or ""))})
        return json.dumps(self.body), self.status, {"Request-Id": "req_test"}

    def close(self):
        pass


def checkout_completed_event(
    *, invoice=None, tenant_id=None, invoice_id=None, amount_total: int, currency: str = "usd",
    event_id: str = "evt_1", payment_intent: str = "pi_3Abc", payment_status: str = "paid",
    event_type: str = "checkout.session.completed", created: int | None = None,
) -> dict:
    """A ``checkout.session.completed`` event as Stripe sends it (the fields we read, and a few more)."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "created": created if created is not None else int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {
            "object": {
                "id": "cs_test_a1b2c3",
                "object": "checkout.session",
                "mode": "payment",
                "amount_total": amount_total,
                "currency": currency,
                "payment_intent": payment_intent,
                "payment_status": payment_status,
                "status": "complete",
                "metadata": {
                    "tenant_id": str(tenant_id if tenant_id is not None else invoice.tenant_id),
                    "invoice_id": str(invoice_id if invoice_id is not None else invoice.pk),
                },
            }
        },
    }


def signed_delivery(client, *, slug: str, event: dict | str, secret: str, timestamp: int | None = None):
    """POST ``event`` to the tenant's webhook URL, signed with ``secret`` at ``timestamp`` (default now)."""
    payload = event if isinstance(event, str) else json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    return client.post(
        f"/webhooks/stripe/{slug}/", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
