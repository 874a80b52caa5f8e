"""What customer economics (``revenue.economics``) stores: the AI price table, entered costs to serve, anomaly rules and
alerts, and the price-plan catalog of the what-ifs, and the what-if runs. (The AI-usage roll-up these figures read
is billing's: ``billing.models.AiUsageDay``.)

Costs and rule thresholds are in the tenant's reporting currency (cost to serve is a tenant's own
cost, reported beside revenue converted to that currency); a price plan is in its own currency. Every row is tenant-owned; every unique constraint
starts with the tenant.
"""

import json
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy
from django.db.models import Q

from billing.models import BillableMetric, ChargeModel
from billing.models.invoicing import METERED_MODELS, PERCENTAGE_MODELS, parse_terms, percentage_metric_error
from billing.outbox import OutboxMessage
from customers.models import Customer
from customers.money import CURRENCY_CHOICES
from customers.tenancy import TenantOwned

__all__ = [
    "AnomalyAlert", "AnomalyRule", "CustomerCost", "FiguresDecoder", "FiguresEncoder", "ModelPrice", "PricePlan",
    "WhatIfRun",
]

ZERO = Decimal(0)
PRICE = {"max_digits": 18, "decimal_places": 6}
MONEY = {"max_digits": 18, "decimal_places": 2}


class ModelPrice(TenantOwned):
    """What one AI model costs the tenant per million tokens, from a day on (the latest applies)."""

    provider = models.CharField(max_length=40, help_text="e.g. OpenAI, Anthropic, Bedrock")
    model = models.CharField(max_length=80, help_text="The model name as the usage events report it.")
    input_price_per_million = models.DecimalField(**PRICE, validators=[MinValueValidator(ZERO)])
    output_price_per_million = models.DecimalField(**PRICE, validators=[MinValueValidator(ZERO)])
    effective_on = models.DateField()

    class Meta:
        verbose_name = gettext_lazy("model price")
        verbose_name_plural = gettext_lazy("model prices")
        ordering = ["provider", "model", "-effective_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "model", "effective_on"], name="model_price_unique_day"
            ),
            models.CheckConstraint(
                condition=Q(input_price_per_million__gte=0) & Q(output_price_per_million__gte=0),
                name="model_price_not_negative",
            ),
        ]

    def __str__(self):
        return f"{self.provider}/{self.model} from {self.effective_on}"


class CustomerCost(TenantOwned):
    """A month's cost to serve one customer that is not derived from tokens: imported or entered."""

    class Source(models.TextChoices):
        ENTERED = "entered", "Entered"
        IMPORTED = "imported", "Imported"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    month = models.DateField(help_text="First day of the month.")
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(ZERO)])
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ENTERED)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = gettext_lazy("customer cost")
        verbose_name_plural = gettext_lazy("customer costs")
        ordering = ["-month", "customer_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "customer", "month", "source"], name="customer_cost_unique_month"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="customer_cost_not_negative"),
        ]

    def __str__(self):
        customer = self.customer if self.customer_id else ""
        month = f"{self.month:%Y-%m}" if self.month else ""
        return f"{customer} {month}: {self.amount}".strip(" :")

    def clean(self):
        errors = {}
        if self.month and self.month.day != 1:
            errors["month"] = "Give the first day of the month."
        if self.customer_id and self.tenant_id and self.customer.tenant_id != self.tenant_id:
            errors["customer"] = "The customer belongs to another tenant."
        if errors:
            raise ValidationError(errors)


class AnomalyRule(TenantOwned):
    """A tenant's own alarm: a customer's ``metric`` over a day or a calendar week above ``threshold``.

    ``metric`` is a BillableMetric code (its aggregated quantity) or ``spend`` (the AI spend of the
    customer's calls at the tenant's ModelPrice table, in the reporting currency).
    """

    SPEND = "spend"

    class Window(models.TextChoices):
        DAY = "day", "Day"
        WEEK = "week", "Week (Monday to Sunday)"

    name = models.CharField(max_length=100)
    metric = models.SlugField(max_length=64, help_text='A billable metric code, or "spend" for AI spend.')
    threshold = models.DecimalField(**MONEY, validators=[MinValueValidator(ZERO)])
    window = models.CharField(max_length=4, choices=Window.choices, default=Window.DAY)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = gettext_lazy("anomaly rule")
        verbose_name_plural = gettext_lazy("anomaly rules")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="anomaly_rule_unique_name"),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="anomaly_rule_threshold_not_negative"),
        ]

    def __str__(self):
        return f"{self.name}: {self.metric} above {self.threshold} per {self.window}"

    def clean(self):
        if self.metric and self.metric != self.SPEND and self.tenant_id and not (
            BillableMetric.objects.for_tenant(self.tenant).filter(code=self.metric).exists()
        ):
            raise ValidationError({"metric": f'No billable metric "{self.metric}": name one, or "spend".'})


class AnomalyAlert(TenantOwned):
    """One anomaly of one customer in one period, raised once and emailed once (``emailed_at``).

    *spike* / *drop*: the period's ``observed`` usage is at least ``Z_LIMIT`` standard deviations
    above / below the trailing ``baseline`` mean; *threshold*: a rule's limit was passed
    (``baseline`` holds the limit). ``measure`` says what was counted: ``events`` (usage events),
    ``spend`` or a metric code.
    """

    class Kind(models.TextChoices):
        SPIKE = "spike", "Spike"
        DROP = "drop", "Drop"
        THRESHOLD = "threshold", "Threshold passed"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(AnomalyRule, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=9, choices=Kind.choices)
    measure = models.CharField(max_length=64)
    period_start = models.DateField()
    period_end = models.DateField()
    observed = models.DecimalField(max_digits=24, decimal_places=6)
    baseline = models.DecimalField(max_digits=24, decimal_places=6)
    stddev = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    z_score = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    emailed_to = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = gettext_lazy("anomaly alert")
        verbose_name_plural = gettext_lazy("anomaly alerts")
        ordering = ["-period_start", "customer_id"]
        constraints = [
            # A rerun of the detection finds the same alert and adds nothing (rule NULL included).
            models.UniqueConstraint(
                fields=["tenant", "customer", "kind", "measure", "period_start", "rule"],
                name="anomaly_alert_once",
                nulls_distinct=False,
            ),
        ]
        indexes = [models.Index(fields=["tenant", "emailed_at"]), models.Index(fields=["tenant", "period_start"])]

    def __str__(self):
        customer = f" for {self.customer}" if self.customer_id else ""
        day = f" on {self.period_start}" if self.period_start else ""
        return f"{self.get_kind_display()} of {self.measure}{customer}{day}"


class AlertDelivery(OutboxMessage):
    """One usage alert emailed to one recipient (an outbox message): each alert reaches each person once.

    A recipient's unsent alerts go out together in one email; the alert's ``emailed_at`` is set when
    every one of its recipients has it.
    """

    outbox_key = ("alert",)

    alert = models.ForeignKey(AnomalyAlert, on_delete=models.CASCADE, related_name="deliveries")

    class Meta:
        verbose_name_plural = "alert deliveries"
        ordering = ["alert_id", "recipient"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "alert", "recipient"], name="alert_delivery_unique_recipient"),
        ]

    def __str__(self):
        return f"{self.alert_id} → {self.recipient} ({self.status})"


class PricePlan(TenantOwned):
    """A price plan of the tenant's catalog, for what-ifs: a base fee per month plus one charge.

    ``charge_model``, ``metric`` and ``terms`` mean what they mean on ``billing.PriceTerms`` (the
    same validation); ``unit_price`` is the default per-unit or per-package price of metered
    models. ``flat`` and ``per_seat`` plans charge only the base fee.
    """

    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=100)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    base_fee = models.DecimalField(**MONEY, default=ZERO, validators=[MinValueValidator(ZERO)])
    charge_model = models.CharField(max_length=32, choices=ChargeModel.choices)
    metric = models.SlugField(max_length=64, blank=True)
    unit_price = models.DecimalField(**PRICE, default=ZERO, validators=[MinValueValidator(ZERO)])
    terms = models.JSONField(default=dict, blank=True)
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = gettext_lazy("price plan")
        verbose_name_plural = gettext_lazy("price plans")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="price_plan_unique_code"),
            models.CheckConstraint(condition=Q(base_fee__gte=0) & Q(unit_price__gte=0), name="price_plan_not_negative"),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"

    def parsed_terms(self) -> dict:
        return parse_terms(self.charge_model, self.terms)

    def clean(self):
        errors = {}
        if self.charge_model not in ChargeModel.values:
            errors["charge_model"] = f"Choose one of {', '.join(ChargeModel.values)}."
        else:
            try:
                self.parsed_terms()
            except ValidationError as exc:
                errors["terms"] = exc.messages
            if self.charge_model in METERED_MODELS:
                if not self.metric:
                    errors["metric"] = "A metered charge model needs a metric."
                elif self.tenant_id and not BillableMetric.objects.for_tenant(self.tenant).filter(code=self.metric).exists():
                    errors["metric"] = f'No billable metric "{self.metric}".'
                elif self.tenant_id and self.charge_model in PERCENTAGE_MODELS:
                    error = percentage_metric_error(tenant=self.tenant, code=self.metric)
                    if error:
                        errors["metric"] = error
        if errors:
            raise ValidationError(errors)


class FiguresEncoder(json.JSONEncoder):
    """Decimals and dates kept as themselves through JSON: ``{"$decimal": "12.50"}``, ``{"$date": "2026-03-01"}``."""

    def default(self, o):
        if isinstance(o, Decimal):
            return {"$decimal": str(o)}
        if isinstance(o, date):
            return {"$date": o.isoformat()}
        return super().default(o)


class FiguresDecoder(json.JSONDecoder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, object_hook=self._typed, **kwargs)

    @staticmethod
    def _typed(value: dict):
        if value.keys() == {"$decimal"}:
            return Decimal(value["$decimal"])
        if value.keys() == {"$date"}:
            return date.fromisoformat(value["$date"])
        return value


class WhatIfRun(TenantOwned):
    """A pricing what-if the staff page asked for, computed by a worker: the figures the page shows
    (totals per plan and the customers who move most), when, and how long it took."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Computing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    months = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True)
    figures = models.JSONField(null=True, blank=True, encoder=FiguresEncoder, decoder=FiguresDecoder)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "months", "-created_at"], name="whatif_run_latest")]

    def __str__(self):
        return f"What-if over {self.months} month(s), {self.get_status_display().lower()}"

    @property
    def is_working(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)
