"""Scheduled report deliveries (``revenue.reports``)."""

from django.db import models

from billing.outbox import OutboxMessage


class ReportDelivery(OutboxMessage):
    """One scheduled report emailed to one recipient for one period (``2026-10``, ``2026-W45``).

    An outbox message, unique per (tenant, kind, period, recipient): a second run of the job finds
    the row ``sent`` and sends nothing (``billing.outbox.outbox_send``).
    """

    outbox_key = ("kind", "period")

    class Kind(models.TextChoices):
        MONTHLY = "monthly", "Monthly revenue report"
        WEEKLY = "weekly", "Weekly pipeline digest"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    period = models.CharField(max_length=10, help_text="YYYY-MM for monthly reports, YYYY-Www for weekly digests.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "period", "recipient"], name="report_delivery_once_per_period"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.period} to {self.recipient}"
