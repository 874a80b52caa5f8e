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
from django.utils.translation import gettext_lazy
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from customers.models import Contract, Customer
from customers.money import MoneyField
from customers.tenancy import TenantManager, TenantOwned, TenantQuerySet

STALE_AFTER = timedelta(days=7)
STALE_ABOVE_PROBABILITY = 60


class Band(models.TextChoices):
    EARLY = "early", gettext_lazy("Early (10–30%)")
    ACTIVE = "active", gettext_lazy("Active (40–60%)")
    NEGOTIATING = "negotiating", gettext_lazy("Negotiating (70–90%)")


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
        verbose_name = gettext_lazy("opportunity")
        verbose_name_plural = gettext_lazy("opportunities")
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
