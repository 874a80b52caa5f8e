"""Dunning: a tenant's reminder schedule for overdue invoices, the reminders sent, and late fees.

``DunningSchedule`` (one per tenant) holds ``DunningStep`` rows: "N days overdue", an email subject
and body in English and Swedish with placeholders (``REMINDER_PLACEHOLDERS``), and optionally a late
fee. ``DunningReminder`` records that a step was decided for an invoice (unique per tenant, invoice
and step: a second run is a no-op) and how it went; each recipient's email is a
``DunningReminderDelivery`` outbox message. A late fee becomes a ``PendingCharge`` that the
customer's next draft invoice bills once (``billing.services.drafts``).
"""

from decimal import Decimal
from string import Formatter

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

from billing.models.invoicing import MONEY, Invoice
from billing.outbox import OutboxMessage
from customers.models import Customer
from customers.tenancy import TenantOwned

# What a step's subject and body may name, written {like_this}.
REMINDER_PLACEHOLDERS = {
    "invoice_number": gettext_lazy("the invoice number"),
    "amount_due": gettext_lazy("what is still owed, with its currency"),
    "due_date": gettext_lazy("the invoice's due date"),
    "days_overdue": gettext_lazy("how many days overdue it is"),
    "customer_name": gettext_lazy("the customer's name"),
    "tenant_name": gettext_lazy("your company's name"),
    "late_fee": gettext_lazy("this step's late fee (empty without one)"),
    "pay_url": gettext_lazy("a link to pay (a line naming it is left out when there is none)"),
}
MAX_STEPS = 10


def placeholder_errors(text: str) -> list[str]:
    """Why ``text`` is not a valid reminder template: unknown or malformed placeholders, or [] when
    it is. Only ``{name}`` of ``REMINDER_PLACEHOLDERS`` is allowed (no formats, conversions,
    attributes or indexes); a literal brace is written ``{{`` or ``}}``."""
    try:
        fields = list(Formatter().parse(text))
    except ValueError as exc:
        return [f"Braces do not match ({exc}); write a literal brace as {{{{ or }}}}."]
    errors = []
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in REMINDER_PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            errors.append(
                f"Unknown placeholder {shown}; use one of "
                + ", ".join("{" + key + "}" for key in REMINDER_PLACEHOLDERS)
                + "."
            )
    return errors


class DunningSchedule(TenantOwned):
    """The tenant's reminder schedule: its steps, and whether reminders go out at all."""

    enabled = models.BooleanField(
        gettext_lazy("send reminders"), default=True,
        help_text=gettext_lazy("Untick to stop all payment reminders (nothing already sent changes)."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = gettext_lazy("dunning schedule")
        verbose_name_plural = gettext_lazy("dunning schedules")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="dunning_schedule_one_per_tenant")]

    def __str__(self):
        return str(gettext_lazy("Payment reminders"))


class DunningStep(TenantOwned):
    """One reminder: sent once an invoice is ``days_overdue`` days past its due date (tenant's calendar)."""

    class Fee(models.TextChoices):
        NONE = "none", gettext_lazy("No late fee")
        FIXED = "fixed", gettext_lazy("Fixed amount")
        PERCENT = "percent", gettext_lazy("Percentage of the amount due")

    schedule = models.ForeignKey(DunningSchedule, on_delete=models.CASCADE, related_name="steps")
    days_overdue = models.PositiveSmallIntegerField(
        gettext_lazy("days overdue"), validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=gettext_lazy("Sent once the invoice is this many days past its due date."),
    )
    subject_en = models.CharField(gettext_lazy("subject (English)"), max_length=200)
    body_en = models.TextField(gettext_lazy("body (English)"))
    subject_sv = models.CharField(gettext_lazy("subject (Swedish)"), max_length=200)
    body_sv = models.TextField(gettext_lazy("body (Swedish)"))
    fee = models.CharField(gettext_lazy("late fee"), max_length=8, choices=Fee.choices, default=Fee.NONE)
    fee_amount = models.DecimalField(
        gettext_lazy("fixed fee"), **MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal("0.01"))],
        help_text=gettext_lazy("In the invoice's currency."),
    )
    fee_percent = models.DecimalField(
        gettext_lazy("fee (%)"), max_digits=5, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100"))],
        help_text=gettext_lazy("Of the amount due, rounded half up to the currency's minor unit."),
    )

    class Meta:
        verbose_name = gettext_lazy("reminder step")
        verbose_name_plural = gettext_lazy("reminder steps")
        ordering = ["schedule_id", "days_overdue"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "schedule", "days_overdue"], name="dunning_step_unique_days",
                violation_error_message=gettext_lazy("Two steps cannot share a day: each step comes later than the one before."),
            ),
            models.CheckConstraint(condition=Q(days_overdue__gte=1), name="dunning_step_days_positive"),
            models.CheckConstraint(
                condition=Q(fee="none", fee_amount__isnull=True, fee_percent__isnull=True)
                | Q(fee="fixed", fee_amount__gt=0, fee_percent__isnull=True)
                | Q(fee="percent", fee_percent__gt=0, fee_amount__isnull=True),
                name="dunning_step_fee_consistent",
            ),
        ]

    def __str__(self):
        return f"{self.days_overdue} days overdue" if self.days_overdue is not None else "Reminder step"

    def clean(self):
        errors: dict[str, list[str]] = {}
        for name in ("subject_en", "body_en", "subject_sv", "body_sv"):
            value = getattr(self, name) or ""
            if not value.strip():
                errors.setdefault(name, []).append("Write this text: every step needs English and Swedish.")
            errors_of_text = placeholder_errors(value)
            if errors_of_text:
                errors.setdefault(name, []).extend(errors_of_text)
        if self.fee == self.Fee.FIXED:
            if self.fee_amount is None:
                errors.setdefault("fee_amount", []).append("Give the fixed fee.")
            if self.fee_percent is not None:
                errors.setdefault("fee_percent", []).append("A fixed fee has no percentage; clear it.")
        elif self.fee == self.Fee.PERCENT:
            if self.fee_percent is None:
                errors.setdefault("fee_percent", []).append("Give the percentage.")
            if self.fee_amount is not None:
                errors.setdefault("fee_amount", []).append("A percentage fee has no fixed amount; clear it.")
        else:
            if self.fee_amount is not None:
                errors.setdefault("fee_amount", []).append("Choose a fixed fee, or clear the amount.")
            if self.fee_percent is not None:
                errors.setdefault("fee_percent", []).append("Choose a percentage fee, or clear the percentage.")
        if errors:
            raise ValidationError(errors)

    def texts(self, language: str) -> tuple[str, str]:
        """(subject, body) in ``language`` ("sv" → Swedish, anything else English)."""
        if language == "sv":
            return self.subject_sv, self.body_sv
        return self.subject_en, self.body_en


class DunningReminder(TenantOwned):
    """One step decided for one invoice, and how it went. Unique per tenant, invoice and step.

    ``skipped``: the invoice was already past a later step when this one would have gone out (only
    the latest due step is sent). ``cancelled``: the invoice was paid before the email went out.
    ``failed``: no recipient got it yet (mail server error, or no billing address); the next run
    retries. ``amount_due`` and ``late_fee`` are as of the send, in ``currency``.
    """

    class Status(models.TextChoices):
        PENDING = "pending", gettext_lazy("Pending")
        SENT = "sent", gettext_lazy("Sent")
        FAILED = "failed", gettext_lazy("Failed, retried next run")
        SKIPPED = "skipped", gettext_lazy("Skipped (a later step was due)")
        CANCELLED = "cancelled", gettext_lazy("Cancelled (paid)")

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="reminders")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="reminders")
    step = models.ForeignKey(DunningStep, null=True, blank=True, on_delete=models.SET_NULL, related_name="reminders")
    days_overdue = models.PositiveSmallIntegerField(
        gettext_lazy("step"), help_text=gettext_lazy("The step's days overdue when it was decided.")
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    amount_due = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    late_fee = models.DecimalField(**MONEY, null=True, blank=True)
    language = models.CharField(max_length=5, blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = gettext_lazy("payment reminder")
        verbose_name_plural = gettext_lazy("payment reminders")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "invoice", "step"], name="dunning_reminder_once_per_step"),
        ]
        indexes = [models.Index(fields=["tenant", "customer", "created_at"])]

    def __str__(self):
        invoice = str(self.invoice) if self.invoice_id else ""
        return f"Reminder {invoice} ({self.days_overdue} days)".replace("  ", " ")


class DunningReminderDelivery(OutboxMessage):
    """One recipient of one reminder's email (an outbox message): sent once, retried when it failed."""

    outbox_key = ("reminder",)

    reminder = models.ForeignKey(DunningReminder, on_delete=models.CASCADE, related_name="deliveries")

    class Meta:
        verbose_name = gettext_lazy("reminder delivery")
        verbose_name_plural = gettext_lazy("reminder deliveries")
        ordering = ["reminder_id", "recipient"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "reminder", "recipient"], name="dunning_delivery_unique_recipient")
        ]

    def __str__(self):
        return f"{self.recipient} ({self.get_status_display()})"


class PendingCharge(TenantOwned):
    """A one-off charge (a late fee) waiting for the customer's next draft invoice, which bills it once.

    ``invoice`` is the invoice that bills it: empty while pending. A draft rebuilt for its period
    bills it again on the rebuilt draft; a draft deleted, or an invoice voided, leaves it pending
    for the next one.
    """

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="pending_charges")
    reminder = models.ForeignKey(
        DunningReminder, null=True, blank=True, on_delete=models.PROTECT, related_name="charges"
    )
    description = models.CharField(max_length=300)
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    currency = models.CharField(max_length=3)
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="pending_charges"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = gettext_lazy("pending charge")
        verbose_name_plural = gettext_lazy("pending charges")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "reminder"], name="pending_charge_once_per_reminder"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="pending_charge_amount_positive"),
        ]
        indexes = [models.Index(fields=["tenant", "customer", "invoice"])]

    def __str__(self):
        return self.description
