"""The outbox: what is sent to someone outside is recorded first, then sent once per recipient.

Invoice emails, report emails and usage-alert emails (and, later, webhooks) all follow one rule:
an email cannot be taken back, so a job that runs twice, or two workers at once, must not send it
twice, and a failed send must be retried by the next run. Each sender keeps a model built on
``OutboxMessage`` whose unique constraint names one message to one recipient (an invoice and an
address; a report kind, a period and an address; an alert and an address), and calls
``outbox_send``:

1. every row is created in one transaction (``bulk_create(ignore_conflicts=True)``: the unique
   constraint makes a second run a no-op);
2. then each recipient is handled in its own transaction, under a lock on its rows
   (``SELECT … FOR UPDATE``: a concurrent sender waits and then sees ``sent``). Rows already sent
   are left alone unless ``resend``; the rest get one message, composed by the caller, and are
   marked ``sent`` with ``sent_at``, or ``failed`` with the mail server's error. ``attempts`` counts
   tries.

A mail server failure is recorded, never raised; the rows say what happened.
"""

import logging
import smtplib
from collections.abc import Callable, Iterable

from django.core.mail import EmailMessage, get_connection
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from customers.tenancy import TenantOwned

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 2000


class OutboxMessage(TenantOwned):
    """Abstract: one message to one recipient, and how sending it went.

    A concrete model adds what the message is about (an FK, a kind and period…) and a unique
    constraint over ``tenant``, those fields and ``recipient``, and names those fields in
    ``outbox_key`` (without tenant and recipient).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    outbox_key: tuple[str, ...] = ()

    recipient = models.EmailField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True, help_text="The last failure, as the mail server reported it.")
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def _key_of(row: OutboxMessage) -> tuple:
    return tuple(getattr(row, _attname(row, field)) for field in row.outbox_key)


def _attname(row: OutboxMessage, field: str) -> str:
    return row._meta.get_field(field).attname


def outbox_send(
    *,
    tenant,
    rows: Iterable[OutboxMessage],
    compose: Callable[[str, list[OutboxMessage]], EmailMessage],
    resend: bool = False,
    on_sent: Callable[[str, list[OutboxMessage]], None] | None = None,
) -> list[OutboxMessage]:
    """Send each recipient of ``rows`` (unsaved rows of one OutboxMessage model) one message, once.

    ``compose(recipient, rows)`` builds the message for a recipient's rows that are still to send
    (one row for an invoice or a report; several for a digest of alerts); ``on_sent(recipient,
    rows)`` runs inside the same transaction after a successful send (e.g. to stamp the alerts).
    Rows already ``sent`` are skipped unless ``resend``. Returns the stored rows, by recipient then
    key, in the order given. Raises ValidationError for a malformed address before anything is written;
    a mail server failure is not raised but recorded on the rows.
    """
    rows = list(rows)
    if not rows:
        return []
    model = type(rows[0])
    for row in rows:
        row.clean_fields(exclude=["tenant", *model.outbox_key])  # a malformed address raises ValidationError
    with transaction.atomic():
        model.objects.for_tenant(tenant).bulk_create(rows, ignore_conflicts=True)
    recipients: dict[str, list[tuple]] = {}
    for row in rows:
        recipients.setdefault(row.recipient, []).append(_key_of(row))

    connection = get_connection()
    stored: list[OutboxMessage] = []
    for recipient, keys in recipients.items():
        match = Q()
        for key in keys:
            match |= Q(**{_attname(rows[0], field): value for field, value in zip(model.outbox_key, key)})
        with transaction.atomic():
            locked = {
                _key_of(row): row
                for row in model.objects.for_tenant(tenant).select_for_update().filter(match, recipient=recipient)
            }
            mine = [locked[key] for key in keys if key in locked]
            due = [row for row in mine if resend or row.status != OutboxMessage.Status.SENT]
            if due:
                _send(tenant, recipient, due, compose, connection, on_sent)
            stored.extend(mine)
    return stored


def _send(tenant, recipient, due, compose, connection, on_sent) -> None:
    message = compose(recipient, due)
    message.connection = connection
    for row in due:
        row.attempts += 1
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("%s to %s failed: %s", type(due[0]).__name__, recipient, exc)
        status, error, sent_at = OutboxMessage.Status.FAILED, str(exc)[:MAX_ERROR_LENGTH] or type(exc).__name__, None
    else:
        status, error, sent_at = OutboxMessage.Status.SENT, "", timezone.now()
    now = timezone.now()
    for row in due:
        row.status, row.error, row.updated_at = status, error, now
        if sent_at is not None:
            row.sent_at = sent_at
    type(due[0]).objects.for_tenant(tenant).bulk_update(due, ["status", "error", "sent_at", "attempts", "updated_at"])
    if status == OutboxMessage.Status.SENT and on_sent is not None:
        on_sent(recipient, due)
