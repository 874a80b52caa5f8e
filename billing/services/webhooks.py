"""Outgoing webhooks: a tenant's endpoints, and the events the domain services emit.

``webhook_event_emit`` is called by the service whose change it announces, inside that service's
transaction: the ``WebhookEvent`` (one ``msg_…`` id) and one ``WebhookDelivery`` per enabled endpoint
subscribed to the type are written with the change, and the delivery tasks are queued only once it
commits (a rolled-back finalization announces nothing). Who emits what:

- ``invoice.finalized``: ``invoice_finalize``; ``invoice.paid``: an allocation that pays an invoice
  in full (``payments._allocate``) or ``invoice_mark_paid`` of an invoice that owes nothing;
- ``invoice.overdue``: the daily sweep ``webhook_overdue_announce``, once per invoice;
- ``credit_note.created``: ``credit_note_issue``; ``payment.received``: ``payment_record``;
- ``usage.alert``: ``revenue.economics.anomalies.detect_anomalies``, once per alert;
- ``customer.churned``: ``customers.services.contract_cancel`` sends ``customers.signals.customer_churned``
  when it cancels the customer's last live contract; billing connects ``webhook_customer_churned``
  (customers may not import billing, and the signal runs inside the cancellation's transaction).

Bodies are ``{"type", "timestamp", "data"}``; amounts are decimal strings with their currency, and
every customer is named by id and ``external_ref``. Delivery is ``billing.webhook_delivery``'s.
"""

import base64
import json
import secrets
import uuid
from datetime import timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import (
    CreditNote,
    Invoice,
    Payment,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)
from billing.webhook_delivery import webhook_delivery_queue_on_commit
from billing.webhook_http import webhook_url_check
from customers.models import Customer, Tenant
from customers.money import money_round
from customers.periods import tenant_today
from customers.tenancy import platform_scope

SECRET_BYTES = 32
ROTATION_GRACE = timedelta(hours=24)
# The sweep announces invoices that fell overdue in this window: an endpoint added today is not sent
# every invoice that was ever late, and a sweep missed for a few days still catches up.
OVERDUE_WINDOW_DAYS = 7


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


# --- endpoints ----------------------------------------------------------------------------------


def _check_event_types(event_types) -> list[str]:
    if not isinstance(event_types, (list, tuple)) or not event_types:
        raise ValidationError({"event_types": _("Choose at least one event type.")})
    unknown = [str(t) for t in event_types if t not in WebhookEventType.values]
    if unknown:
        raise ValidationError({"event_types": _("Unknown event type(s): %(types)s. Choose from %(known)s.") % {
            "types": ", ".join(unknown), "known": ", ".join(WebhookEventType.values)}})
    return list(dict.fromkeys(event_types))


def _check_url(url: str) -> str:
    url = (url or "").strip()
    if len(url) > 2000:
        raise ValidationError({"url": _("The URL is longer than 2000 characters.")})
    try:
        webhook_url_check(url)
    except ValidationError as exc:
        raise ValidationError({"url": exc.messages}) from None
    return url


@transaction.atomic
def webhook_endpoint_create(
    *, tenant: Tenant, url: str, event_types: list[str], description: str = "", enabled: bool = True
) -> WebhookEndpoint:
    """Register an endpoint of ``tenant`` for ``event_types`` with a new secret (``endpoint.secret``:
    show it to the owner now; pages and the API never show it again).

    Raises ValidationError (by field) for a URL ``webhook_url_check`` refuses (not https, credentials,
    an address that is not public) or no / unknown event types.
    """
    endpoint = WebhookEndpoint(
        tenant=tenant, url=_check_url(url), event_types=_check_event_types(event_types),
        description=(description or "").strip(), enabled=enabled, secret=new_secret(),
    )
    endpoint.full_clean()
    endpoint.save()
    return endpoint


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    """Change an endpoint's ``url``, ``description``, ``event_types`` or ``enabled``. Enabling a
    disabled endpoint starts its failure count afresh. Raises ValidationError as create does."""
    allowed = {"url", "description", "event_types", "enabled"}
    if set(changes) - allowed:
        raise ValidationError(_("Only %(fields)s can be changed.") % {"fields": ", ".join(sorted(allowed))})
    if "url" in changes:
        endpoint.url = _check_url(changes["url"])
    if "event_types" in changes:
        endpoint.event_types = _check_event_types(changes["event_types"])
    if "description" in changes:
        endpoint.description = (changes["description"] or "").strip()
    if "enabled" in changes and bool(changes["enabled"]) != endpoint.enabled:
        endpoint.enabled = bool(changes["enabled"])
        if endpoint.enabled:
            endpoint.consecutive_failures, endpoint.failing_since = 0, None
            endpoint.disabled_at, endpoint.disabled_reason = None, ""
    endpoint.full_clean()
    endpoint.save()
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Give the endpoint a new secret (returned on ``endpoint.secret``, to show once). The old one
    keeps signing too, as a second ``v1`` signature, for ``ROTATION_GRACE`` (24 hours), so receivers
    can switch without losing an event. Rotating again within the grace drops the oldest secret."""
    endpoint = WebhookEndpoint.objects.for_tenant(endpoint.tenant).select_for_update().get(pk=endpoint.pk)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + ROTATION_GRACE
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return endpoint


@transaction.atomic
def webhook_delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again, now, with the same message id (a new round of attempts; the earlier
    attempts stay in the log). Raises ValidationError when its endpoint is disabled."""
    tenant = delivery.tenant
    delivery = WebhookDelivery.objects.for_tenant(tenant).select_for_update(of=("self",)).select_related(
        "endpoint").get(pk=delivery.pk)
    if not delivery.endpoint.enabled:
        raise ValidationError(_("The endpoint %(url)s is disabled; enable it first.") % {"url": delivery.endpoint.url})
    delivery.status, delivery.attempts, delivery.next_attempt_at = WebhookDelivery.Status.PENDING, 0, timezone.now()
    delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
    webhook_delivery_queue_on_commit(tenant=tenant, delivery_ids=[delivery.pk])
    return delivery


# --- emitting -----------------------------------------------------------------------------------


def _timestamp(moment) -> str:
    return moment.astimezone(dt_timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def webhook_subscribed(*, tenant: Tenant, type: str) -> bool:
    """True when an enabled endpoint of ``tenant`` subscribed to ``type`` (for emitters of many events
    that would rather not build payloads nobody receives)."""
    return WebhookEndpoint.objects.for_tenant(tenant).filter(enabled=True, event_types__contains=[type]).exists()


def webhook_event_emit(*, tenant: Tenant, type: str, payload: dict, dedupe_key: str = "") -> WebhookEvent | None:
    """Emit an event of ``type`` with ``payload`` (its ``data``: JSON-ready values, amounts as decimal
    strings) to every enabled endpoint of ``tenant`` subscribed to it, in the caller's transaction.

    Writes the event (a new ``msg_…`` id; the body ``{"type", "timestamp", "data"}`` is frozen as
    text) and one pending delivery per endpoint, and queues each delivery when the transaction
    commits. Returns the event, or None when no endpoint wants it (nothing is written) or
    ``dedupe_key`` was emitted before (a second sweep: nothing is written).
    Raises ValueError for an unknown type (a programming error).
    """
    if type not in WebhookEventType.values:
        raise ValueError(f"Unknown webhook event type {type!r}")
    endpoint_ids = list(
        WebhookEndpoint.objects.for_tenant(tenant)
        .filter(enabled=True, event_types__contains=[type])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not endpoint_ids:
        return None
    now = timezone.now()
    event = WebhookEvent(
        tenant=tenant, message_id=new_message_id(), type=type, dedupe_key=dedupe_key, created_at=now,
        body=json.dumps({"type": type, "timestamp": _timestamp(now), "data": payload}, separators=(",", ":")),
    )
    # No savepoint: the caller's transaction is the unit (ON CONFLICT DO NOTHING raises nothing to undo).
    with transaction.atomic(savepoint=False):
        events = WebhookEvent.objects.for_tenant(tenant)
        if dedupe_key:
            # A concurrent sweep may emit the same occurrence: the unique key keeps the first.
            events.bulk_create([event], ignore_conflicts=True)
            event = events.filter(message_id=event.message_id).first()
            if event is None:
                return None
        else:
            event.save()
        deliveries = WebhookDelivery.objects.for_tenant(tenant).bulk_create(
            [WebhookDelivery(tenant=tenant, event=event, endpoint_id=pk, next_attempt_at=now) for pk in endpoint_ids]
        )
    webhook_delivery_queue_on_commit(tenant=tenant, delivery_ids=[d.pk for d in deliveries])
    return event


def _amount(amount: Decimal, currency: str) -> str:
    return str(money_round(Decimal(amount), currency))


def _day(value) -> str | None:
    return value.isoformat() if value is not None else None


def customer_data(customer: Customer) -> dict:
    return {"id": customer.pk, "external_ref": customer.external_ref, "name": customer.name}


def invoice_data(invoice: Invoice) -> dict:
    """An invoice as webhooks describe it (``balance_due`` only when the queryset annotated it)."""
    currency = invoice.currency
    data = {
        "id": invoice.pk,
        "number": invoice.number,
        "status": invoice.status,
        "customer": customer_data(invoice.customer),
        "currency": currency,
        "subtotal": _amount(invoice.subtotal, currency),
        "vat_amount": _amount(invoice.vat_amount, currency),
        "total": _amount(invoice.total, currency),
        "amount_due": _amount(invoice.amount_due, currency),
        "period_start": _day(invoice.period_start),
        "period_end": _day(invoice.period_end),
        "issue_date": _day(invoice.issue_date),
        "due_date": _day(invoice.due_date),
    }
    if getattr(invoice, "balance_due", None) is not None:
        data["balance_due"] = _amount(invoice.balance_due, currency)
    return data


def webhook_invoice_emit(*, invoice: Invoice, type: str, dedupe_key: str = "") -> WebhookEvent | None:
    """Emit an ``invoice.*`` event for ``invoice`` (see ``webhook_event_emit``)."""
    data = invoice_data(invoice)
    if type == WebhookEventType.INVOICE_PAID:
        data["paid_at"] = _timestamp(invoice.paid_at) if invoice.paid_at else None
    return webhook_event_emit(tenant=invoice.tenant, type=type, payload=data, dedupe_key=dedupe_key)


def webhook_credit_note_emit(*, note: CreditNote) -> WebhookEvent | None:
    """Emit ``credit_note.created`` for a just issued credit note."""
    currency = note.currency
    return webhook_event_emit(tenant=note.tenant, type=WebhookEventType.CREDIT_NOTE_CREATED, payload={
        "id": note.pk,
        "number": note.number,
        "invoice": {"id": note.invoice_id, "number": note.invoice.number},
        "customer": customer_data(note.customer),
        "currency": currency,
        "subtotal": _amount(note.subtotal, currency),
        "vat_amount": _amount(note.vat_amount, currency),
        "total": _amount(note.total, currency),
        "reason": note.reason,
        "issue_date": _day(note.issue_date),
    })


def webhook_payment_emit(*, payment: Payment, allocations: list[tuple[Invoice, Decimal]]) -> WebhookEvent | None:
    """Emit ``payment.received`` for a just recorded payment and what it paid (``allocations``)."""
    currency = payment.currency
    allocated = sum((amount for _, amount in allocations), Decimal(0))
    return webhook_event_emit(tenant=payment.tenant, type=WebhookEventType.PAYMENT_RECEIVED, payload={
        "id": payment.pk,
        "customer": customer_data(payment.customer),
        "currency": currency,
        "amount": _amount(payment.amount, currency),
        "unallocated": _amount(payment.amount - allocated, currency),
        "received_on": _day(payment.received_on),
        "method": payment.method,
        "reference": payment.reference,
        "allocations": [
            {"invoice": {"id": invoice.pk, "number": invoice.number}, "amount": _amount(amount, currency)}
            for invoice, amount in allocations
        ],
    })


def webhook_customer_churned(sender, *, customer: Customer, contract, churned_on, **kwargs) -> None:
    """Receiver of ``customers.signals.customer_churned``: emit ``customer.churned`` in the
    cancellation's transaction. ``churned_on`` is the first day without a live contract."""
    webhook_event_emit(tenant=customer.tenant, type=WebhookEventType.CUSTOMER_CHURNED, payload={
        "customer": customer_data(customer),
        "churned_on": _day(churned_on),
        "last_contract": {"id": contract.pk, "reference": contract.reference, "end_date": _day(contract.end_date)},
    })


@transaction.atomic
def webhook_overdue_announce(*, tenant: Tenant, today=None) -> int:
    """Emit ``invoice.overdue`` once for each finalized invoice of ``tenant`` that still owes money and
    whose due date passed (before ``today``, the tenant's, by default) in the last
    ``OVERDUE_WINDOW_DAYS`` days. The event's dedupe key ``invoice.overdue:<id>`` records that it was
    announced, so the daily sweep can run any number of times. Returns how many were emitted now."""
    if not WebhookEndpoint.objects.for_tenant(tenant).filter(
        enabled=True, event_types__contains=[WebhookEventType.INVOICE_OVERDUE]
    ).exists():
        return 0
    today = today or tenant_today(tenant)
    invoices = (
        Invoice.objects.for_tenant(tenant)
        .with_balance_due()
        .select_related("customer", "tenant")
        .filter(
            status=Invoice.Status.FINALIZED, balance_due__gt=0, due_date__lt=today,
            due_date__gte=today - timedelta(days=OVERDUE_WINDOW_DAYS),
        )
        .order_by("due_date", "pk")
    )
    announced = set(
        WebhookEvent.objects.for_tenant(tenant).filter(type=WebhookEventType.INVOICE_OVERDUE)
        .filter(dedupe_key__in=[f"invoice.overdue:{i.pk}" for i in invoices]).values_list("dedupe_key", flat=True)
    )
    emitted = 0
    for invoice in invoices:
        key = f"invoice.overdue:{invoice.pk}"
        if key not in announced and webhook_invoice_emit(invoice=invoice, type=WebhookEventType.INVOICE_OVERDUE,
                                                         dedupe_key=key):
            emitted += 1
    return emitted


def webhook_overdue_tenants() -> list[int]:
    """Ids of the tenants with an enabled endpoint for ``invoice.overdue`` (the daily sweep's fan-out)."""
    with platform_scope(reason="tenants with invoice.overdue webhooks"):
        return sorted(set(
            WebhookEndpoint.objects.filter(enabled=True, event_types__contains=[WebhookEventType.INVOICE_OVERDUE])
            .values_list("tenant_id", flat=True)
        ))
