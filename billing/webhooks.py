"""The card payment provider's webhook: ``POST /webhooks/stripe/<tenant slug>/``, one URL per tenant.

Each tenant registers its own URL at Stripe, and the delivery is verified with that tenant's signing
secret: a bad signature, a missing one or a timestamp older than 5 minutes (a replay) is a 400; an
event naming an invoice that is not this tenant's (unknown, or another tenant's) is a 404; an unknown
tenant slug, or a tenant without card payment, is a 404 with the same body, so the URL tells a
stranger nothing. Every answer is JSON and carries no data of the tenant (no number, no amount, no
key); the reason is logged. A verified event is acted on once (``card_event_record``): the second
delivery of an event is a 200 saying so. Event types that pay nothing are acknowledged (200) and
ignored. Never a 500: an unexpected failure is logged and answered 503, which Stripe retries.

CSRF-exempt (the provider cannot hold our token; the signature is the proof) and outside the
per-request transaction: the service's transaction is the unit.
"""

import logging

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from billing.models import Provider
from billing.payment_providers import WebhookRefused, provider_for
from billing.services.card_payments import EventRefused, card_event_record, card_payment_account
from customers.models import Tenant
from customers.tenancy import tenant_scope

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024  # a Stripe event is a few kB
NOT_FOUND = {"detail": "No webhook here."}


def _answer(status: int, detail: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


@csrf_exempt
@transaction.non_atomic_requests
def stripe_webhook(request, tenant_slug: str):
    try:
        return _stripe_webhook(request, tenant_slug)
    except Exception:  # never a 500 to the provider: log it, and let it retry
        logger.exception("Stripe webhook for tenant %r failed.", tenant_slug[:64])
        return _answer(503, "The event could not be processed now; it will be retried.")


def _stripe_webhook(request, tenant_slug: str) -> JsonResponse:
    if request.method != "POST":
        response = _answer(405, "Only POST.")
        response.headers["Allow"] = "POST"
        return response
    tenant = Tenant.objects.filter(slug=tenant_slug).first()
    if tenant is None:
        logger.warning("Stripe webhook for unknown tenant %r.", tenant_slug[:64])
        return JsonResponse(NOT_FOUND, status=404)
    with tenant_scope(tenant):
        account = card_payment_account(tenant=tenant)
        if account is None or account.provider != Provider.STRIPE:
            logger.warning("Stripe webhook for tenant %s, which has no card payment set up.", tenant.pk)
            return JsonResponse(NOT_FOUND, status=404)
        length = request.headers.get("Content-Length") or "0"
        if not length.isdigit():
            return _answer(400, "Content-Length is not a number.")
        if int(length) > MAX_BODY_BYTES:
            return _answer(413, "The body is too large for an event.")
        try:
            payload = request.body
        except RequestDataTooBig:
            return _answer(413, "The body is too large for an event.")
        try:
            event = provider_for(account).parse_webhook(payload, request.headers)
        except WebhookRefused as exc:
            logger.warning("Stripe webhook for tenant %s refused: %s", tenant.pk, exc)
            return _answer(400, str(exc))
        try:
            row, created = card_event_record(tenant=tenant, provider=Provider.STRIPE, event=event)
        except EventRefused as exc:
            return _answer(404, str(exc))
    if row is None:
        return _answer(200, "Event type not handled; ignored.", outcome="ignored")
    if not created:
        return _answer(200, "Event already processed.", outcome="duplicate")
    return _answer(200, "Event processed.", outcome=row.outcome)


def url_patterns():
    return [path("webhooks/stripe/<slug:tenant_slug>/", stripe_webhook, name="stripe_webhook")]
