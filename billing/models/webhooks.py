"""Outgoing webhooks: a tenant's endpoints, the events emitted for it, and each delivery's attempts.

An event (``WebhookEvent``, one ``msg_…`` id) is written in the transaction of the change it
announces, with one ``WebhookDelivery`` per endpoint that subscribed to its type. A delivery keeps
the event's id on every attempt (``WebhookAttempt``), so a receiver can deduplicate: delivered at
least once, never under two ids. ``billing.webhook_delivery`` sends them; ``billing.services.webhooks``
writes them.
"""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

from billing.outbox import OutboxMessage
from customers.tenancy import TenantOwned


class WebhookEventType(models.TextChoices):
    INVOICE_FINALIZED = "invoice.finalized", "invoice.finalized"
    INVOICE_PAID = "invoice.paid", "invoice.paid"
    INVOICE_OVERDUE = "invoice.overdue", "invoice.overdue"
    CREDIT_NOTE_CREATED = "credit_note.created", "credit_note.created"
    PAYMENT_RECEIVED = "payment.received", "payment.received"
    USAGE_ALERT = "usage.alert", "usage.alert"
    CUSTOMER_CHURNED = "customer.churned", "customer.churned"


class WebhookEndpoint(TenantOwned):
    """A URL of the tenant's that receives the events it subscribed to, signed with its secret.

    ``secret`` signs every delivery (Standard Webhooks, ``whsec_`` + base64). After a rotation the
    previous secret also signs until ``previous_secret_expires_at``, so a receiver can switch over.
    ``consecutive_failures`` and ``failing_since`` count attempts failed in a row; an endpoint that
    keeps failing is disabled (``disabled_at``, ``disabled_reason``) and its owners are emailed.
    """

    url = models.URLField(gettext_lazy("URL"), max_length=2000)
    description = models.CharField(gettext_lazy("description"), max_length=200, blank=True)
    event_types = ArrayField(
        models.CharField(max_length=40, choices=WebhookEventType.choices),
        verbose_name=gettext_lazy("event types"),
        help_text=gettext_lazy("The events this endpoint receives."),
    )
    enabled = models.BooleanField(gettext_lazy("enabled"), default=True)
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = gettext_lazy("webhook endpoint")
        verbose_name_plural = gettext_lazy("webhook endpoints")
        indexes = [models.Index(fields=["tenant", "enabled"], name="webhook_endpoint_enabled")]

    def __str__(self):
        return self.description or self.url


class WebhookEvent(TenantOwned):
    """Something that happened, as sent: ``body`` is the exact JSON text every delivery posts (kept as
    text, not jsonb, so every retry sends the same bytes in the same key order).

    ``dedupe_key`` (when set) names the occurrence, so it is emitted once however often a sweep
    runs (``invoice.overdue:<invoice id>``): it is the record that it was announced.
    """

    message_id = models.CharField(max_length=40, editable=False)
    type = models.CharField(max_length=40, choices=WebhookEventType.choices)
    body = models.TextField()
    dedupe_key = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = gettext_lazy("webhook event")
        verbose_name_plural = gettext_lazy("webhook events")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "message_id"], name="webhook_event_unique_message"),
            models.UniqueConstraint(
                fields=["tenant", "dedupe_key"], condition=~Q(dedupe_key=""), name="webhook_event_unique_dedupe"
            ),
        ]

    def __str__(self):
        return f"{self.type} {self.message_id}"


class WebhookDelivery(TenantOwned):
    """One event to one endpoint: pending until a 2xx answer (succeeded) or the last retry (failed)."""

    class Status(models.TextChoices):
        PENDING = "pending", gettext_lazy("Pending")
        SUCCEEDED = "succeeded", gettext_lazy("Succeeded")
        FAILED = "failed", gettext_lazy("Failed")

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text=gettext_lazy("Attempts of the current round."))
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = gettext_lazy("webhook delivery")
        verbose_name_plural = gettext_lazy("webhook deliveries")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "event", "endpoint"], name="webhook_delivery_unique"),
        ]
        indexes = [models.Index(fields=["tenant", "status", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self):
        return f"{self.event.message_id} → {self.endpoint.url}"


class WebhookAttempt(TenantOwned):
    """One POST of a delivery and how the receiver answered (or why there was no answer)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=1000, blank=True)

    class Meta:
        verbose_name = gettext_lazy("webhook attempt")
        verbose_name_plural = gettext_lazy("webhook attempts")
        indexes = [models.Index(fields=["tenant", "delivery", "started_at"], name="webhook_attempt_delivery")]

    def __str__(self):
        return f"{self.started_at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"


class WebhookEndpointNotice(OutboxMessage):
    """The email telling an owner that an endpoint was disabled: once per owner and disabling."""

    outbox_key = ("endpoint", "disabled_at")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="notices")
    disabled_at = models.DateTimeField()

    class Meta:
        verbose_name = gettext_lazy("webhook endpoint notice")
        verbose_name_plural = gettext_lazy("webhook endpoint notices")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "endpoint", "disabled_at", "recipient"], name="webhook_notice_unique"
            ),
        ]
