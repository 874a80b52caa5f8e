"""Delivering webhook events: signed POSTs, retries with backoff, and disabling an endpoint that keeps failing.

``webhook_deliver`` (the Celery task, registered as ``billing.tasks.webhook_deliver``) makes one
attempt of one delivery. It sits here, below ``billing.services.webhooks`` which queues it, as
``billing.delivery.invoice_deliver`` does for invoices.

Exactly one worker delivers a delivery at a time: the attempt runs under a row lock on the delivery
(``SELECT … FOR UPDATE SKIP LOCKED``: a second worker holding the same message skips it), held
across the POST (at most ``WEBHOOK_TIMEOUT_SECONDS`` per network step). A worker killed mid-POST
rolls its transaction back, so the lock goes and the attempt is not recorded; the task is
``acks_late``, so the broker hands it to the next worker, which posts again with the same
``webhook-id``. Receivers therefore get each event at least once and always under one id.

Every attempt is a ``WebhookAttempt`` row (status code, latency, error, the start of the answer).
A failed attempt schedules the next one after ``RETRY_SCHEDULE`` (5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
10 h: eight attempts over about 28 hours), then the delivery is failed. A retry task that the broker
loses is queued again by the ``webhook_requeue_due`` sweep; a duplicate finds the delivery not due
or done and does nothing. An endpoint whose attempts have all failed for ``DISABLE_AFTER`` with at
least ``DISABLE_MIN_FAILURES`` in a row is disabled and each owner of the tenant is emailed once
(an outbox message, ``WebhookEndpointNotice``).
"""

import logging
from datetime import timedelta
from functools import partial

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import OperationalError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from standardwebhooks import Webhook

from billing.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEndpointNotice
from billing.outbox import outbox_send
from billing.webhook_http import webhook_post
from customers.models import Membership, Role, Tenant
from customers.tenancy import platform_scope, tenant_scope

logger = logging.getLogger(__name__)

RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
DISABLE_AFTER = timedelta(hours=24)
DISABLE_MIN_FAILURES = 5
# A retry whose task the broker lost is queued again once it is this late.
REQUEUE_AFTER = timedelta(minutes=2)
# A duplicate task may arrive a moment early (broker clocks); earlier than this it is not due.
DUE_SLACK = timedelta(seconds=1)


def retry_delay(failed_attempts: int) -> timedelta | None:
    """How long after the ``failed_attempts``-th failed attempt the next one runs; None when none is left."""
    if 1 <= failed_attempts <= len(RETRY_SCHEDULE):
        return RETRY_SCHEDULE[failed_attempts - 1]
    return None


def webhook_signature(*, endpoint: WebhookEndpoint, message_id: str, timestamp, body: bytes) -> str:
    """The ``webhook-signature`` header: a ``v1,`` entry for the endpoint's secret, and during a
    rotation's grace period a second one for the previous secret, space-separated (Standard Webhooks)."""
    signatures = [Webhook(endpoint.secret).sign(message_id, timestamp, body)]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > timestamp:
        signatures.append(Webhook(endpoint.previous_secret).sign(message_id, timestamp, body))
    return " ".join(signatures)


def _queue(tenant_id: int, delivery_id: int, countdown: float | None = None) -> None:
    if countdown:
        webhook_deliver.apply_async((tenant_id, delivery_id), countdown=countdown)
    else:
        webhook_deliver.delay(tenant_id, delivery_id)


def webhook_delivery_queue_on_commit(*, tenant: Tenant, delivery_ids, countdown: float | None = None) -> None:
    """Queue an attempt of each delivery once the caller's transaction commits (nothing on rollback)."""
    for delivery_id in delivery_ids:
        transaction.on_commit(partial(_queue, tenant.pk, delivery_id, countdown))


def webhook_delivery_attempt(*, tenant: Tenant, delivery_id: int) -> WebhookAttempt | None:
    """Make one attempt of a pending, due delivery of ``tenant`` and record it. Returns the attempt,
    or None when there was nothing to do: another worker holds the delivery, it is done, or it is not
    due yet (a duplicate task). A disabled endpoint fails the delivery without a POST.

    2xx is success. Anything else (another status, a timeout, a refused address) schedules the next
    attempt (``retry_delay``) or, after the last, fails the delivery; and counts against the endpoint,
    which is disabled when it has failed long enough (see the module).
    """
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.for_tenant(tenant)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + DUE_SLACK:
            return None
        endpoint, event = delivery.endpoint, delivery.event
        if not endpoint.enabled:
            delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
            delivery.last_error = _("The endpoint is disabled.")
            delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
            return None
        body = event.body.encode()
        headers = {
            "content-type": "application/json",
            "user-agent": "customer-economics-portal-webhooks/1",
            "webhook-id": event.message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": webhook_signature(endpoint=endpoint, message_id=event.message_id, timestamp=now, body=body),
        }
        result = webhook_post(url=endpoint.url, body=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
        attempt = WebhookAttempt.objects.for_tenant(tenant).create(
            tenant=tenant, delivery=delivery, started_at=now, status_code=result.status_code,
            latency_ms=result.latency_ms, succeeded=result.succeeded,
            error=result.error or ("" if result.succeeded else _("HTTP %(code)s") % {"code": result.status_code}),
            response_excerpt=result.excerpt,
        )
        delivery.attempts += 1
        if result.succeeded:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = WebhookDelivery.Status.SUCCEEDED, now, None
            delivery.last_error = ""
            if endpoint.consecutive_failures or endpoint.failing_since:
                WebhookEndpoint.objects.for_tenant(tenant).filter(pk=endpoint.pk).update(
                    consecutive_failures=0, failing_since=None
                )
        else:
            delivery.last_error = attempt.error[:500]
            delay = retry_delay(delivery.attempts)
            if delay is None:
                delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
            else:
                delivery.next_attempt_at = now + delay
                webhook_delivery_queue_on_commit(tenant=tenant, delivery_ids=[delivery.pk], countdown=delay.total_seconds())
            _count_failure(tenant, endpoint, now)
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "delivered_at", "last_error"])
    return attempt


def _count_failure(tenant: Tenant, endpoint: WebhookEndpoint, now) -> None:
    endpoints = WebhookEndpoint.objects.for_tenant(tenant)
    endpoints.filter(pk=endpoint.pk).update(
        consecutive_failures=F("consecutive_failures") + 1, failing_since=Coalesce("failing_since", now)
    )
    endpoint = endpoints.select_for_update().get(pk=endpoint.pk)
    if (
        endpoint.enabled
        and endpoint.consecutive_failures >= DISABLE_MIN_FAILURES
        and endpoint.failing_since <= now - DISABLE_AFTER
    ):
        endpoint.enabled, endpoint.disabled_at = False, now
        endpoint.disabled_reason = _("Every delivery failed since %(since)s (%(count)s attempts in a row).") % {
            "since": endpoint.failing_since.strftime("%Y-%m-%d %H:%M UTC"),
            "count": endpoint.consecutive_failures,
        }
        endpoint.save(update_fields=["enabled", "disabled_at", "disabled_reason", "updated_at"])
        logger.warning("Webhook endpoint %s of tenant %s disabled after %s failures", endpoint.pk, tenant.pk,
                       endpoint.consecutive_failures)
        transaction.on_commit(partial(webhook_endpoint_disabled_notify.delay, tenant.pk, endpoint.pk))


def webhook_endpoint_disabled_email(*, tenant: Tenant, endpoint: WebhookEndpoint) -> list[WebhookEndpointNotice]:
    """Email each owner of ``tenant`` (with an address) that ``endpoint`` was disabled, once per owner
    and disabling (outbox rows keyed by the endpoint and its ``disabled_at``), in the owner's language.
    Returns the rows; nothing when the endpoint is enabled again or has no owner with an address."""
    if endpoint.enabled or endpoint.disabled_at is None:
        return []
    owners = (
        Membership.objects.for_tenant(tenant).filter(role=Role.OWNER).exclude(user__email="").select_related("user")
    )
    language_of = {m.user.email: m.staff_language for m in owners}
    rows = [
        WebhookEndpointNotice(tenant=tenant, endpoint=endpoint, disabled_at=endpoint.disabled_at, recipient=address)
        for address in language_of
    ]

    def compose(recipient, _rows):
        with translation.override(language_of.get(recipient) or settings.LANGUAGE_CODE):
            subject = _("%(tenant)s: webhook endpoint disabled") % {"tenant": tenant.name}
            body = _(
                "The webhook endpoint %(url)s (%(description)s) was disabled: %(reason)s\n\n"
                "No more events are sent to it. Once the receiver works again, enable the endpoint in the "
                "admin (Webhook endpoints, “Enable”) and redeliver the failed deliveries there."
            ) % {"url": endpoint.url, "description": endpoint.description or "-", "reason": endpoint.disabled_reason}
        return EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient])

    return outbox_send(tenant=tenant, rows=rows, compose=compose)


def webhook_deliveries_lost(*, now=None) -> list[tuple[int, int]]:
    """(tenant id, delivery id) of every pending delivery whose attempt is overdue by ``REQUEUE_AFTER``:
    its task was lost (a broker restart), so it is queued again. Platform-wide."""
    cutoff = (now or timezone.now()) - REQUEUE_AFTER
    with platform_scope(reason="webhook deliveries whose task was lost"):
        return list(
            WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=cutoff)
            .values_list("tenant_id", "pk")
            .order_by("next_attempt_at")[:1000]
        )


@shared_task(
    name="billing.tasks.webhook_deliver", acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True,
    max_retries=5,
)
def webhook_deliver(tenant_id: int, delivery_id: int) -> bool:
    """One attempt of a webhook delivery (see ``webhook_delivery_attempt``). Idempotent: a delivery
    that is done, held by another worker or not due is left alone. Returns True when an attempt ran."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        return webhook_delivery_attempt(tenant=tenant, delivery_id=delivery_id) is not None


@shared_task(name="billing.tasks.webhook_endpoint_disabled_notify", acks_late=True, autoretry_for=(OSError,),
             retry_backoff=True, max_retries=5)
def webhook_endpoint_disabled_notify(tenant_id: int, endpoint_id: int) -> int:
    """Email the tenant's owners that an endpoint was disabled (once each; see the service)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        endpoint = WebhookEndpoint.objects.for_tenant(tenant).get(pk=endpoint_id)
        return len(webhook_endpoint_disabled_email(tenant=tenant, endpoint=endpoint))
