"""Scheduled report deliveries (``revenue.reports``)."""

from django.db import models
from django.utils import timezone

from customers.tenancy import TenantOwned


class ReportDelivery(TenantOwned):
    """One scheduled report emailed to one recipient for one period (``2026-10``, ``2026-W45``).

    Unique per (tenant, kind, period, recipient): a second run of the job finds the row ``sent``
    and sends nothing. ``revenue.reports`` creates the rows, then sends each under a row lock.
    """

    class Kind(models.TextChoices):
        MONTHLY = "monthly", "Monthly revenue report"
        WEEKLY = "weekly", "Weekly pipeline digest"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    period = models.CharField(max_length=10, help_text="YYYY-MM for monthly reports, YYYY-Www for weekly digests.")
    recipient = models.EmailField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "period", "recipient"], name="report_delivery_once_per_period"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.period} to {self.recipient}"
