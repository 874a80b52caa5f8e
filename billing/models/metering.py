"""What is metered: billable metrics of a tenant and the usage events customers generate."""

from decimal import Decimal

from django.db import models
from django.utils import timezone

from customers.models import Customer
from customers.tenancy import TenantOwned


class BillableMetric(TenantOwned):
    """How a tenant turns usage events into a billable quantity per customer and period.

    ``aggregation`` over the events of the metric's ``code``: count of events, sum / max / latest
    of ``field`` (``quantity`` or a property name), or count of unique values of ``field``.
    ``filters`` keeps only events whose properties match, e.g. ``{"status": ["failed"]}``.
    """

    class Aggregation(models.TextChoices):
        COUNT = "count", "Count"
        SUM = "sum", "Sum"
        MAX = "max", "Maximum"
        UNIQUE_COUNT = "unique_count", "Unique count"
        LATEST = "latest", "Latest value"

    code = models.SlugField(max_length=64, help_text="What usage events name in `metric`.")
    name = models.CharField(max_length=200)
    aggregation = models.CharField(max_length=14, choices=Aggregation.choices, default=Aggregation.COUNT)
    field = models.CharField(
        max_length=64, default="quantity", help_text="`quantity` or a property name; unused for count."
    )
    filters = models.JSONField(default=dict, blank=True)
    unit = models.CharField(max_length=32, blank=True, help_text="e.g. jobs, ms, GB")

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="metric_unique_code")]

    def __str__(self):
        return f"{self.name} ({self.code})"


class UsageEvent(TenantOwned):
    """One metered fact. ``idempotency_key`` is unique per tenant: a repeat is never counted twice."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+", db_index=False)
    metric_code = models.SlugField(max_length=64)
    timestamp = models.DateTimeField()
    idempotency_key = models.CharField(max_length=128)
    quantity = models.DecimalField(max_digits=24, decimal_places=6, default=Decimal(1))
    properties = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="usage_event_unique_key"),
        ]
        indexes = [models.Index(fields=["tenant", "metric_code", "timestamp", "customer"])]

    def __str__(self):
        return f"{self.metric_code} × {self.quantity} @ {self.timestamp:%Y-%m-%d %H:%M}"
