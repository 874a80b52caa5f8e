"""The sales pipeline.

Bands follow DOMAIN.md (10–30% early, 40–60% active, 70–90% negotiating); probabilities between
the named steps fall in the band below the next step (35% is early, 65% active, 95% negotiating).
An open opportunity above 60% not touched for 7 days is stale.
"""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from djmoney.models.fields import MoneyField
from djmoney.settings import CURRENCY_CHOICES
from simple_history.models import HistoricalRecords

from customers.models import Contract, Customer
from customers.tenancy import TenantManager, TenantOwned, TenantQuerySet

STALE_AFTER = timedelta(days=7)
STALE_ABOVE_PROBABILITY = 60


class Band(models.TextChoices):
    EARLY = "early", "Early (10–30%)"
    ACTIVE = "active", "Active (40–60%)"
    NEGOTIATING = "negotiating", "Negotiating (70–90%)"


BAND_RANGES = {Band.EARLY: (0, 39), Band.ACTIVE: (40, 69), Band.NEGOTIATING: (70, 100)}


def band_for(probability: int) -> str:
    for band, (low, high) in BAND_RANGES.items():
        if low <= probability <= high:
            return band
    raise ValueError(f"Probability {probability} is outside 0–100.")


class OpportunityQuerySet(TenantQuerySet):
    def open(self):
        return self.filter(stage__in=Opportunity.OPEN_STAGES)

    def in_band(self, band):
        low, high = BAND_RANGES[band]
        return self.filter(probability__gte=low, probability__lte=high)

    def stale(self, now=None):
        now = now or timezone.now()
        return self.open().filter(probability__gt=STALE_ABOVE_PROBABILITY, last_touched_at__lt=now - STALE_AFTER)


class Opportunity(TenantOwned):
    class Stage(models.TextChoices):
        LEAD = "lead", "Lead"
        QUALIFIED = "qualified", "Qualified"
        PROPOSAL = "proposal", "Proposal"
        NEGOTIATION = "negotiation", "Negotiation"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    class Kind(models.TextChoices):
        RECURRING = "recurring", "Recurring (amount per year)"
        ONE_OFF = "one_off", "One-off project"

    OPEN_STAGES = [Stage.LEAD, Stage.QUALIFIED, Stage.PROPOSAL, Stage.NEGOTIATION]

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="opportunities"
    )
    prospect_name = models.CharField(max_length=200, blank=True, help_text="For a prospect not yet a customer.")
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.RECURRING)
    amount = MoneyField(max_digits=14, decimal_places=2, default_currency=None)
    probability = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(100)], help_text="percent, 0–100"
    )
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.LEAD)
    expected_close_on = models.DateField(null=True, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    next_step = models.CharField(max_length=200, blank=True)
    last_touched_at = models.DateTimeField(default=timezone.now)
    lost_reason = models.CharField(max_length=200, blank=True)
    won_contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    closed_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager(OpportunityQuerySet)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "opportunities"
        ordering = ["expected_close_on", "-probability"]
        constraints = [
            models.CheckConstraint(
                condition=Q(probability__gte=0) & Q(probability__lte=100),
                name="opportunity_probability_0_100",
                violation_error_message="Probability must be between 0 and 100.",
            ),
            models.CheckConstraint(
                condition=Q(customer__isnull=False) | ~Q(prospect_name=""),
                name="opportunity_customer_or_prospect",
                violation_error_message="Name a customer or a prospect.",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "stage", "expected_close_on"]),
            models.Index(fields=["tenant", "owner"]),
        ]

    def __str__(self):
        return self.title

    @property
    def band(self) -> str:
        return band_for(self.probability)

    @property
    def weighted_amount(self):
        return self.amount * (Decimal(self.probability) / 100)

    @property
    def is_open(self) -> bool:
        return self.stage in self.OPEN_STAGES

    @property
    def is_stale(self) -> bool:
        return (
            self.is_open
            and self.probability > STALE_ABOVE_PROBABILITY
            and self.last_touched_at < timezone.now() - STALE_AFTER
        )

    @property
    def account_name(self) -> str:
        return self.customer.name if self.customer_id else self.prospect_name


class ExchangeRate(TenantOwned):
    """How many units of the tenant's reporting currency one unit of ``currency`` buys, from a day on.

    Metrics take the latest rate on or before the day they convert at; there is no network lookup.
    """

    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    rate = models.DecimalField(max_digits=20, decimal_places=10, validators=[MinValueValidator(Decimal("0.0000000001"))])
    effective_on = models.DateField()

    class Meta:
        ordering = ["currency", "-effective_on"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "currency", "effective_on"], name="exchange_rate_unique_day"),
        ]

    def __str__(self):
        return f"{self.currency} {self.rate} from {self.effective_on}"


class QuarterTarget(TenantOwned):
    """The revenue the tenant aims to close in a quarter; pipeline coverage is measured against it."""

    year = models.PositiveSmallIntegerField(validators=[MinValueValidator(2000), MaxValueValidator(2100)])
    quarter = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(4)])
    target = MoneyField(max_digits=14, decimal_places=2, default_currency=None)

    class Meta:
        ordering = ["year", "quarter"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "year", "quarter"], name="quarter_target_unique"),
        ]

    def __str__(self):
        return f"{self.year}-Q{self.quarter}: {self.target}"


class MetricSnapshot(TenantOwned):
    """The figures of one closed month, frozen by ``revenue.services.snapshot_month``.

    ``segment`` is ``""`` for the whole tenant, else ``dimension:value`` (e.g. ``tier:Starter``).
    ``figures`` holds decimals as strings, so nothing passes through a float.
    """

    month = models.DateField(help_text="First day of the month.")
    segment = models.CharField(max_length=120, blank=True, default="")
    figures = models.JSONField(default=dict)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["month", "segment"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "month", "segment"], name="metric_snapshot_unique_month"),
        ]

    def __str__(self):
        return f"{self.month:%Y-%m} {self.segment or 'all'}"

from revenue.economics.models import *  # noqa: E402,F401,F403


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
