"""The tenant's money yardsticks: exchange rates to the reporting currency, quarter targets, and the
frozen figures of closed months."""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy
from django.utils import timezone

from customers.money import CURRENCY_CHOICES, MoneyField
from customers.tenancy import TenantOwned


class ExchangeRate(TenantOwned):
    """How many units of the tenant's reporting currency one unit of ``currency`` buys, from a day on.

    Metrics take the latest rate on or before the day they convert at; there is no network lookup.
    """

    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    rate = models.DecimalField(max_digits=20, decimal_places=10, validators=[MinValueValidator(Decimal("0.0000000001"))])
    effective_on = models.DateField()

    class Meta:
        verbose_name = gettext_lazy("exchange rate")
        verbose_name_plural = gettext_lazy("exchange rates")
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
        verbose_name = gettext_lazy("quarter target")
        verbose_name_plural = gettext_lazy("quarter targets")
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
