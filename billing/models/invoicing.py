"""Invoices, credit notes, their numbering, price terms and credit requests.

Money is stored as ``Decimal`` beside the document's ``currency`` (one currency per invoice or
credit note): lines are priced by ``billing.pricing`` and bulk-created, which plain decimals keep
simple and fast. Amounts have two decimal places, so currencies with a three-digit minor unit
(KWD, BHD, ...) are refused when an invoice is validated.

A finalized invoice is frozen. ``Invoice.save``/``delete`` and ``InvoiceLine.save``/``delete``
refuse any change but the status moves finalized → paid, finalized → void and paid → finalized
(a voided payment); the database enforces the same with triggers (queryset updates and raw SQL
bypass ``save()``), defined in billing migration 0009 (``FORWARD``, from 0004's, which also allows a
tenant purge to delete them). Credit notes are final from the moment they are issued.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Case, DecimalField, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils.translation import gettext_lazy
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError as StdnumError

from billing import pricing
from billing.models.metering import BillableMetric
from billing.models.payments import PaymentAllocation, two_place_currency_problem
from billing.references import bankgiro_format, bankgiro_problem
from customers.models import PERCENT_VALIDATORS, Contract, ContractLine, Customer
from customers.money import MONEY_COLUMN
from customers.tenancy import TenantManager, TenantOwned, TenantQuerySet, base_rows_for

MONEY = MONEY_COLUMN
EXACT = {"max_digits": 24, "decimal_places": 6}
ZERO = Decimal(0)
USAGE_MAX_AGE_DAYS_LIMIT = 3660  # ten years
USAGE_MAX_FUTURE_HOURS_LIMIT = 24 * 31


class ImmutableRecordError(Exception):
    """A write on a finalized invoice, its lines, or a credit note. Corrections are credit notes."""


class BillingSettings(TenantOwned):
    """Per-tenant billing knobs that do not belong on the tenant itself."""

    minimum_invoice_amount = models.DecimalField(
        **MONEY,
        default=ZERO,
        validators=[MinValueValidator(ZERO)],
        help_text="A non-zero invoice below this is topped up to it (e.g. 1.00). 0 means no minimum.",
    )
    # The plausibility window of usage ingestion (billing.metering): an event dated outside it is
    # rejected with a reason, never stored in a period no run will bill.
    usage_max_age_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(USAGE_MAX_AGE_DAYS_LIMIT)],
        help_text=(
            "Refuse usage events dated more than this many days before they arrive. Empty: no limit but "
            "the customer's first contract month (events before its first day are always refused)."
        ),
    )
    usage_max_future_hours = models.PositiveIntegerField(
        default=24,
        db_default=24,
        validators=[MaxValueValidator(USAGE_MAX_FUTURE_HOURS_LIMIT)],
        help_text="Refuse usage events dated more than this many hours after they arrive (clock drift). Default 24.",
    )
    # Raw usage events of invoiced months older than this are moved to files (billing.usage_archive).
    usage_archive_after_months = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text=(
            "Keep this many months of raw usage events (the current month included); older invoiced months "
            "move to archive files (manage.py usage_archive). Empty: keep every event in the database."
        ),
    )

    class PaymentMethod(models.TextChoices):
        NONE = "", gettext_lazy("Not shown on invoices")
        BANKGIRO = "bankgiro", gettext_lazy("Swedish bankgiro with OCR reference")
        IBAN = "iban", gettext_lazy("Bank transfer to an IBAN")

    # How customers pay (issue 14): printed on the invoice PDF and in its email. With a bankgiro
    # each invoice gets an OCR number at finalization (billing.references), which statement
    # matching (billing.services.bank_statements) reads like the invoice number.
    payment_method = models.CharField(
        gettext_lazy("payment method"), max_length=10, choices=PaymentMethod.choices, blank=True, default="",
        db_default="",
    )
    bankgiro = models.CharField(
        gettext_lazy("bankgiro"), max_length=9, blank=True, default="", db_default="",
        help_text=gettext_lazy("7 or 8 digits, e.g. 123-4566. Invoices then carry an OCR number."),
    )
    iban = models.CharField(
        "IBAN", max_length=42, blank=True, default="", db_default="",
        help_text=gettext_lazy("E.g. SE45 5000 0000 0583 9825 7466."),
    )
    bic = models.CharField("BIC", max_length=11, blank=True, default="", db_default="")
    bank_name = models.CharField(gettext_lazy("bank name"), max_length=100, blank=True, default="", db_default="")
    payment_reference_text = models.CharField(
        gettext_lazy("payment reference text"), max_length=200, blank=True, default="", db_default="",
        help_text=gettext_lazy("Printed under the bank details, e.g. who to ask about payments."),
    )

    class Meta:
        verbose_name = gettext_lazy("billing settings")
        verbose_name_plural = gettext_lazy("billing settings")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="billing_settings_one_per_tenant")]

    def __str__(self):
        return f"Billing settings of {self.tenant}" if self.tenant_id else "Billing settings"

    def clean(self):
        """Normalize and check the payment details of the chosen method (the others are cleared)."""
        errors = {}
        if self.payment_method == self.PaymentMethod.BANKGIRO:
            problem = bankgiro_problem(self.bankgiro)
            if problem:
                errors["bankgiro"] = problem
            else:
                self.bankgiro = bankgiro_format(self.bankgiro)
            self.iban = self.bic = self.bank_name = ""
        elif self.payment_method == self.PaymentMethod.IBAN:
            self.bankgiro = ""
            try:
                self.iban = stdnum_iban.validate(self.iban)
            except StdnumError:
                errors["iban"] = gettext_lazy("Enter a valid IBAN, e.g. SE45 5000 0000 0583 9825 7466.")
            self.bic = (self.bic or "").replace(" ", "").upper()
            if self.bic:
                try:
                    self.bic = stdnum_bic.validate(self.bic)
                except StdnumError:
                    errors["bic"] = gettext_lazy("Enter a valid BIC (8 or 11 characters), e.g. ESSESESS.")
        if errors:
            raise ValidationError(errors)


class ChargeModel(models.TextChoices):
    FLAT = "flat", "Flat fee"
    PER_SEAT = "per_seat", "Per seat"
    PER_UNIT = "per_unit", "Per unit"
    GRADUATED = "graduated", "Graduated tiers"
    VOLUME = "volume", "Volume tiers"
    PACKAGE = "package", "Package"
    PERCENTAGE = "percentage", "Percentage of a measured amount"
    INCLUDED_QUOTA = "included_quota", "Included quota with overage"
    GRADUATED_PERCENTAGE = "graduated_percentage", "Graduated percentage of a measured amount"


METERED_MODELS = {
    ChargeModel.PER_UNIT,
    ChargeModel.GRADUATED,
    ChargeModel.VOLUME,
    ChargeModel.PACKAGE,
    ChargeModel.PERCENTAGE,
    ChargeModel.INCLUDED_QUOTA,
    ChargeModel.GRADUATED_PERCENTAGE,
}
# Charge models that take a percentage of a measured amount: their metric must sum that amount.
PERCENTAGE_MODELS = {ChargeModel.PERCENTAGE, ChargeModel.GRADUATED_PERCENTAGE}

# Keys each charge model accepts in ``PriceTerms.terms``: (name, kind, required). Every model also
# accepts ``minimum_commitment`` (a true-up of this line's charges) and ``failed_metric`` (a metric
# code whose quantity is credited 100 % at this line's price, e.g. jobs that failed).
_COMMON_KEYS = [("minimum_commitment", "money", False), ("failed_metric", "code", False)]
TERMS_KEYS = {
    ChargeModel.FLAT: [],
    ChargeModel.PER_SEAT: [],
    ChargeModel.PER_UNIT: [("unit_price", "money", False)],
    ChargeModel.GRADUATED: [("tiers", "tiers", True)],
    ChargeModel.VOLUME: [("tiers", "tiers", True)],
    ChargeModel.PACKAGE: [
        ("package_size", "number", True),
        ("package_price", "money", False),
        ("free_units", "number", False),
    ],
    ChargeModel.PERCENTAGE: [
        ("rate_percent", "percent", True),
        ("fixed_fee_per_event", "money", False),
        ("free_events", "int", False),
        ("free_amount", "money", False),
        ("min_per_event", "money", False),
        ("max_per_event", "money", False),
    ],
    ChargeModel.INCLUDED_QUOTA: [
        ("included", "number", True),
        ("overage_unit_price", "money", True),
        ("grace_percent", "percent", False),
        ("utilisation_discount_percent", "percent", False),
        ("utilisation_from_percent", "percent", False),
        ("utilisation_to_percent", "percent", False),
    ],
    ChargeModel.GRADUATED_PERCENTAGE: [("tiers", "percent_tiers", True)],
}
PER_EVENT_KEYS = {"fixed_fee_per_event", "free_events", "min_per_event", "max_per_event"}


def _as_decimal(value, key):
    # JSON floats are refused: 0.1 would already be inexact before it reaches us.
    if isinstance(value, bool) or isinstance(value, float):
        raise ValidationError(f"{key}: write the number as a string, e.g. \"0.50\" (got {value!r}).")
    try:
        result = Decimal(str(value)) if isinstance(value, int | str) else None
    except ArithmeticError:
        result = None
    if result is None or not result.is_finite():
        raise ValidationError(f"{key}: {value!r} is not a number.")
    return result


def parse_terms(charge_model: str, terms: dict) -> dict:
    """Validate ``terms`` for ``charge_model`` and return them with Decimals and pricing tiers.

    The one validator of price-terms parameters: ``PriceTerms.clean``, the price-plan catalog and
    API serializers all call it, so a charge model's rules live here only. Raises ValidationError
    whose ``message_dict`` maps each offending key (``"terms"`` for the object itself) to messages
    that name the key: unknown keys, missing required keys, floats, negative amounts,
    percentages outside 0..100, or tiers the pricing engine refuses (``tiers`` messages name the
    tier, e.g. ``"tier 2 up_to: ..."``).
    """
    if charge_model not in TERMS_KEYS:
        raise ValidationError({"charge_model": f"Unknown charge model {charge_model!r}; choose one of {', '.join(TERMS_KEYS)}."})
    if not isinstance(terms, dict):
        raise ValidationError({"terms": "Terms must be a JSON object."})
    allowed = {name: (kind, required) for name, kind, required in TERMS_KEYS[charge_model] + _COMMON_KEYS}
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(terms) - set(allowed))
    if unknown:
        errors["terms"] = [
            f"Unknown terms for {charge_model}: {', '.join(unknown)} (it takes {', '.join(allowed)})."
        ]
    parsed = {}
    for name, (kind, required) in allowed.items():
        if name not in terms or terms[name] in (None, ""):
            if required:
                errors[name] = [f"{name} is required for {charge_model}."]
            continue
        try:
            parsed[name] = _parse_value(name, kind, terms[name])
        except ValidationError as exc:
            errors[name] = exc.messages
    if not errors:
        try:
            _check_together(charge_model, parsed)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return parsed


def _parse_value(name: str, kind: str, value):
    if kind == "tiers":
        return _parse_tiers(value)
    if kind == "percent_tiers":
        return _parse_percentage_tiers(value)
    if kind == "code":
        if not isinstance(value, str):
            raise ValidationError(f"{name} must be a metric code.")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(f"{name} must be a whole number ≥ 0.")
        return value
    number = _as_decimal(value, name)
    if number < 0:
        raise ValidationError(f"{name} must not be negative.")
    if kind == "percent" and number > 100:
        raise ValidationError(f"{name} must be between 0 and 100.")
    return number


def _check_together(charge_model: str, parsed: dict) -> None:
    """Rules between keys, once each key is valid on its own."""
    if charge_model == ChargeModel.PACKAGE and parsed["package_size"] <= 0:
        raise ValidationError({"package_size": "package_size must be greater than zero."})
    low, high = parsed.get("min_per_event"), parsed.get("max_per_event")
    if low is not None and high is not None and low > high:
        raise ValidationError({"min_per_event": "min_per_event cannot be above max_per_event."})
    if charge_model == ChargeModel.INCLUDED_QUOTA and parsed.get("utilisation_discount_percent"):
        if parsed["included"] <= 0:
            raise ValidationError({"included": "A utilisation discount needs an included quota above zero."})
        if parsed.get("utilisation_from_percent", 80) > parsed.get("utilisation_to_percent", 100):
            raise ValidationError(
                {"utilisation_from_percent": "utilisation_from_percent cannot be above utilisation_to_percent."}
            )


def _parse_tier_list(value, fields: tuple[str, ...], build):
    shape = "{" + ", ".join(fields) + "}"
    if not isinstance(value, list) or not value:
        raise ValidationError(f"tiers must be a non-empty list of {shape}.")
    tiers = []
    for index, raw in enumerate(value, start=1):
        if not isinstance(raw, dict) or set(raw) - set(fields):
            raise ValidationError(f"tier {index}: use only {', '.join(fields[:-1])} and {fields[-1]}.")
        up_to = raw.get("up_to")
        try:
            tiers.append(build(index, raw, None if up_to is None else _as_decimal(up_to, f"tier {index} up_to")))
        except pricing.PricingError as exc:
            raise ValidationError(f"tier {index}: {exc}") from None
    try:
        return pricing.validate_tiers(tiers)
    except pricing.PricingError as exc:
        raise ValidationError(f"tiers: {exc}") from None


def _parse_tiers(value) -> tuple[pricing.Tier, ...]:
    return _parse_tier_list(
        value,
        ("up_to", "unit_price", "flat_fee"),
        lambda index, raw, up_to: pricing.Tier(
            up_to=up_to,
            unit_price=_as_decimal(raw.get("unit_price", 0), f"tier {index} unit_price"),
            flat_fee=_as_decimal(raw.get("flat_fee", 0), f"tier {index} flat_fee"),
        ),
    )


def _parse_percentage_tiers(value) -> tuple[pricing.PercentageTier, ...]:
    def build(index, raw, up_to):
        if raw.get("rate_percent") in (None, ""):
            raise ValidationError(f"tier {index}: rate_percent is required (e.g. \"1.5\" for 1.5 %).")
        return pricing.PercentageTier(
            up_to=up_to,
            rate_percent=_as_decimal(raw["rate_percent"], f"tier {index} rate_percent"),
            flat_fee=_as_decimal(raw.get("flat_fee", 0), f"tier {index} flat_fee"),
        )

    return _parse_tier_list(value, ("up_to", "rate_percent", "flat_fee"), build)


def percentage_metric_error(*, tenant, code: str) -> str | None:
    """Why a percentage charge cannot take its percentage of metric ``code``, or None.

    A percentage (or graduated percentage) charge prices a measured amount event by event, so
    its metric must sum that amount (aggregation "sum"); a count, maximum, latest or weighted
    value is not an amount of money. A metric not defined yet is not refused here (it may be
    created after the terms); the draft run reports it then.
    """
    aggregation = BillableMetric.objects.for_tenant(tenant).filter(code=code).values_list("aggregation", flat=True).first()
    if aggregation is None or aggregation == BillableMetric.Aggregation.SUM:
        return None
    return (
        f'A percentage is taken of a summed amount: metric "{code}" has the aggregation "{aggregation}"; '
        'choose a metric with the aggregation "sum".'
    )


# Each charge model's terms as an example (the admin shows them as code, the API as text).
TERMS_EXAMPLES = (
    ("per_unit", '{"unit_price": "0.50"}'),
    ("graduated and volume",
     '{"tiers": [{"up_to": "100", "unit_price": "1.00", "flat_fee": "10"}, {"up_to": null, "unit_price": "0.50"}]}'),
    ("package", '{"package_size": "100", "package_price": "5", "free_units": "0"}'),
    ("percentage", '{"rate_percent": "2.5", "fixed_fee_per_event": "0.30", "free_events": 3, "free_amount": "500", '
                   '"min_per_event": "1", "max_per_event": "50"}'),
    ("graduated_percentage", '{"tiers": [{"up_to": "1000", "rate_percent": "1", "flat_fee": "200"}, '
                             '{"up_to": null, "rate_percent": "2", "flat_fee": "300"}]}'),
    ("included_quota", '{"included": "100", "overage_unit_price": "0.40", "grace_percent": "1"}'),
)
TERMS_COMMON_KEYS = ("minimum_commitment", "failed_metric")
TERMS_HELP = (
    "The charge model's parameters, amounts as strings, e.g. "
    + "; ".join(f"{model} {example}" for model, example in TERMS_EXAMPLES)
    + '. Any model also takes "minimum_commitment" and "failed_metric".'
)


class PriceTerms(TenantOwned):
    """How one contract line is priced when quantity × unit price is not enough.

    The line's own ``quantity × unit_price`` is a base fee for recurring and per-seat lines
    (included_quota: the plan fee) and the default unit/package price for usage lines. ``metric``
    names the BillableMetric whose period total is priced; ``terms`` holds the model's parameters
    (see ``TERMS_KEYS``), amounts written as strings in the contract's currency.
    """

    contract_line = models.OneToOneField(ContractLine, on_delete=models.CASCADE, related_name="price_terms")
    charge_model = models.CharField(max_length=32, choices=ChargeModel.choices)
    metric = models.SlugField(max_length=64, blank=True, help_text="The code of the billable metric that meters this price.")
    terms = models.JSONField(default=dict, blank=True, help_text=TERMS_HELP)

    class Meta:
        verbose_name = gettext_lazy("price terms")
        verbose_name_plural = gettext_lazy("price terms")
        indexes = [models.Index(fields=["tenant", "metric"])]

    def __str__(self):
        line = self.contract_line if self.contract_line_id else ""
        return f"{self.get_charge_model_display()} for {line}" if line else str(self.get_charge_model_display())

    def parsed_terms(self) -> dict:
        return parse_terms(self.charge_model, self.terms)

    def clean(self):
        errors = {}
        if self.charge_model in METERED_MODELS and not self.metric:
            errors["metric"] = "A metered charge model needs a metric."
        if self.charge_model in ChargeModel.values:
            try:
                self.parsed_terms()
            except ValidationError as exc:
                errors["terms"] = exc.messages
        if self.charge_model in PERCENTAGE_MODELS and self.metric and self.tenant_id and "metric" not in errors:
            error = percentage_metric_error(tenant=self.tenant, code=self.metric)
            if error:
                errors["metric"] = error
        line = self.contract_line if self.contract_line_id else None
        if line is not None and self.tenant_id and line.tenant_id != self.tenant_id:
            errors["contract_line"] = "The contract line belongs to another tenant."
        if line is not None and line.kind in (ContractLine.Kind.ONE_TIME, ContractLine.Kind.DISCOUNT):
            errors["contract_line"] = "One-time and discount lines are priced by their amount, without terms."
        # A usage line's unit price is the per-unit (or per-package) price; on a fee line it is the fee.
        price_key = {ChargeModel.PER_UNIT: "unit_price", ChargeModel.PACKAGE: "package_price"}.get(self.charge_model)
        if line is not None and price_key and line.kind != ContractLine.Kind.USAGE and not self.terms.get(price_key):
            errors.setdefault("terms", []).append(f"{price_key} is required when the line is not a usage line.")
        if errors:
            raise ValidationError(errors)


class NumberSequence(TenantOwned):
    """The last number issued per tenant and document kind. Locked FOR UPDATE while numbering."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "kind"], name="number_sequence_unique_kind")]

    def __str__(self):
        return f"{self.kind} #{self.last_value}"


class InvoiceQuerySet(TenantQuerySet):
    def with_balance_due(self):
        """Annotate ``credited_total``, ``paid_total`` and ``balance_due``: what each invoice still asks for.

        The one definition of "amount due" every page, document, export and the API show::

            balance_due = total − credit_applied − credit notes − payments, never below 0

        ``credit_applied`` (balance credits taken off the bill) is already inside the stored
        ``amount_due``, the figure as issued, which a finalized invoice keeps unchanged: credit
        notes and payments recorded later are their own rows, so the figure is derived here, never
        written back. ``credited_total`` is the VAT-inclusive sum of the invoice's credit notes;
        ``paid_total`` the sum of its allocations from payments that are not void. A paid invoice
        owes 0 (one marked paid before payments were recorded counts as paid what it asked for);
        a void invoice owes 0. Decimals in the invoice's currency, two places, exact (no rounding:
        every operand is already in minor units).

        The subqueries are correlated on the outer invoice's own id and tenant, so they read only
        rows of the tenant the outer queryset is scoped to.
        """
        money = DecimalField(**MONEY)
        zero = Value(Decimal("0.00"), output_field=money)  # two places, as every stored amount
        credited = (
            CreditNote._base_manager.filter(tenant=OuterRef("tenant"), invoice=OuterRef("pk"))
            .order_by()
            .values("invoice")
            .annotate(total=Sum("total"))
            .values("total")
        )
        allocated = (
            PaymentAllocation._base_manager.filter(
                tenant=OuterRef("tenant"), invoice=OuterRef("pk"), payment__voided_at__isnull=True
            )
            .order_by()
            .values("invoice")
            .annotate(total=Sum("amount"))
            .values("total")
        )
        owed_after_credits = Greatest(zero, F("amount_due") - F("credited_total"), output_field=money)
        return self.annotate(
            credited_total=Coalesce(Subquery(credited, output_field=money), zero, output_field=money),
            allocated_total=Coalesce(Subquery(allocated, output_field=money), zero, output_field=money),
        ).annotate(
            paid_total=Case(
                When(status=Invoice.Status.PAID, then=Greatest(F("allocated_total"), owed_after_credits)),
                default=F("allocated_total"),
                output_field=money,
            ),
            balance_due=Case(
                When(status__in=[Invoice.Status.PAID, Invoice.Status.VOID], then=zero),
                default=Greatest(zero, owed_after_credits - F("allocated_total"), output_field=money),
                output_field=money,
            ),
        )

    def with_payment_status(self, *, today):
        """``with_balance_due`` plus ``payment_status``, one of ``PaymentStatus``, as of ``today``.

        Derived, never stored (one truth: the allocations and credit notes): a draft or void invoice
        has its own status; a paid one (stored once its amount due reached 0 by a payment) is
        ``paid``; a finalized one with something due is ``overdue`` once ``today`` is after its due
        date, else ``partially_paid`` if payments cover part of it, else ``open``; a finalized one
        that owes nothing (credit notes covered it) is ``paid`` as well. ``today`` is the tenant's
        (``customers.periods.tenant_today``).
        """
        return self.with_balance_due().annotate(
            payment_status=Case(
                When(status=Invoice.Status.DRAFT, then=Value(PaymentStatus.DRAFT)),
                When(status=Invoice.Status.VOID, then=Value(PaymentStatus.VOID)),
                When(Q(status=Invoice.Status.PAID) | Q(balance_due__lte=0), then=Value(PaymentStatus.PAID)),
                When(due_date__lt=today, then=Value(PaymentStatus.OVERDUE)),
                When(allocated_total__gt=0, then=Value(PaymentStatus.PARTIALLY_PAID)),
                default=Value(PaymentStatus.OPEN),
                output_field=models.CharField(),
            )
        )


class PaymentStatus(models.TextChoices):
    """Where an invoice stands with its customer: derived by ``InvoiceQuerySet.with_payment_status``."""

    DRAFT = "draft", gettext_lazy("Draft")
    OPEN = "open", gettext_lazy("Open")
    PARTIALLY_PAID = "partially_paid", gettext_lazy("Partially paid")
    OVERDUE = "overdue", gettext_lazy("Overdue")
    PAID = "paid", gettext_lazy("Paid")
    VOID = "void", gettext_lazy("Void")


class Invoice(TenantOwned):
    """A customer's bill for one period. Amounts are in ``currency``; see the module docstring.

    ``amount_due`` is the figure as issued (total − credit_applied); what is owed now, after
    credit notes and payment, is ``Invoice.objects.…with_balance_due()`` (``balance_due``).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", gettext_lazy("Draft")
        FINALIZED = "finalized", gettext_lazy("Finalized")
        PAID = "paid", gettext_lazy("Paid")
        VOID = "void", gettext_lazy("Void")

    # Field changes allowed on a finalized invoice, and the status moves they belong to: paid goes
    # back to finalized only when a payment that settled it is voided (billing migration 0009).
    ALLOWED_TRANSITIONS = {("finalized", "paid"), ("finalized", "void"), ("paid", "finalized")}
    MUTABLE_AFTER_FINALIZE = {"status", "paid_at", "voided_at"}

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices")
    period_start = models.DateField()
    period_end = models.DateField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    number = models.CharField(max_length=40, null=True, blank=True)
    sequence_number = models.PositiveIntegerField(null=True, blank=True)
    ocr_reference = models.CharField(
        gettext_lazy("OCR reference"), max_length=25, blank=True, default="", db_default="",
        help_text=gettext_lazy("The number customers quote when paying by bankgiro; set once, when the invoice is finalized."),
    )
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    subtotal = models.DecimalField(**MONEY, default=ZERO, help_text="Sum of charge lines.")
    discount_total = models.DecimalField(
        "discounts",
        **MONEY, default=ZERO, help_text="Sum of discount and credit lines, as a positive amount."
    )
    vat_rate = models.DecimalField(
        "VAT rate (%)", max_digits=5, decimal_places=2, default=ZERO, validators=PERCENT_VALIDATORS
    )
    vat_amount = models.DecimalField("VAT", **MONEY, default=ZERO)
    total = models.DecimalField(**MONEY, default=ZERO, help_text="Subtotal less discounts, plus VAT.")
    credit_applied = models.DecimalField(**MONEY, default=ZERO, help_text="Approved credits taken off this bill.")
    amount_due = models.DecimalField(**MONEY, default=ZERO)  # as issued; see with_balance_due
    reverse_charge = models.BooleanField(default=False)
    vat_note = models.CharField("VAT note", max_length=300, blank=True)
    pdf = models.FileField(upload_to="invoices/", blank=True)
    inputs_hash = models.CharField(max_length=64, blank=True, help_text="Fingerprint of what the draft was built from.")
    created_at = models.DateTimeField(auto_now_add=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager(InvoiceQuerySet)

    class Meta:
        verbose_name = gettext_lazy("invoice")
        verbose_name_plural = gettext_lazy("invoices")
        ordering = ["-period_start", "customer_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "customer", "period_start"],
                condition=~Q(status="void"),
                name="invoice_one_per_customer_period",
                violation_error_message="This customer already has an invoice for this period.",
            ),
            models.UniqueConstraint(fields=["tenant", "number"], name="invoice_unique_number"),
            models.UniqueConstraint(
                fields=["tenant", "ocr_reference"], condition=~Q(ocr_reference=""), name="invoice_unique_ocr_reference"
            ),
            models.CheckConstraint(
                condition=Q(status="draft", number__isnull=True)
                | Q(status__in=["finalized", "paid"], number__isnull=False)
                | Q(status="void"),
                name="invoice_number_iff_final",
                violation_error_message="Only finalized invoices carry a number.",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")), name="invoice_period_ordered"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "period_start", "status"]),
            models.Index(fields=["tenant", "customer", "period_start"]),
        ]

    def __str__(self):
        if self.number:
            return self.number
        # A draft has no number yet: name it by whom (when loaded: no hidden query) and which month
        # it bills, never by ids.
        customer = self.customer.name if Invoice.customer.is_cached(self) else ""
        month = f"{self.period_start:%Y-%m}" if self.period_start else ""
        return " ".join(["Draft", customer, month]).strip()

    @property
    def is_final(self) -> bool:
        return self.status != self.Status.DRAFT

    def clean(self):
        errors = {}
        if self.period_start and self.period_end and self.period_end < self.period_start:
            errors["period_end"] = "The period cannot end before it starts."
        problem = two_place_currency_problem(self.currency, "invoices")
        if problem:
            errors["currency"] = problem
        if self.customer_id and self.tenant_id and self.customer.tenant_id != self.tenant_id:
            errors["customer"] = "The customer belongs to another tenant."
        if errors:
            raise ValidationError(errors)

    def _stored(self):
        return base_rows_for(self).filter(pk=self.pk).values().first()

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            stored = self._stored()
            if stored is not None and stored["status"] != self.Status.DRAFT:
                self._check_final_change(stored)
        super().save(*args, **kwargs)

    def _check_final_change(self, stored):
        changed = {
            field.attname
            for field in self._meta.concrete_fields
            if getattr(self, field.attname) != stored[field.attname]
        }
        status_moves = stored["status"] == self.status or (stored["status"], self.status) in self.ALLOWED_TRANSITIONS
        # The PDF is rendered after the number is committed, and named once: empty → its path.
        if not stored["pdf"]:
            changed.discard("pdf")
        if not status_moves or changed - self.MUTABLE_AFTER_FINALIZE:
            raise ImmutableRecordError(
                f"Invoice {stored['number'] or self.pk} is {stored['status']} and cannot be changed; "
                "issue a credit note instead."
            )

    def delete(self, *args, **kwargs):
        stored = self._stored()
        if stored is not None and stored["status"] != self.Status.DRAFT:
            raise ImmutableRecordError(f"Invoice {stored['number'] or self.pk} is {stored['status']}: void it instead.")
        return super().delete(*args, **kwargs)


class LineKind(models.TextChoices):
    CHARGE = "charge", "Charge"
    DISCOUNT = "discount", "Discount"
    CREDIT = "credit", "Credit"
    TRUE_UP = "true_up", "True-up"
    ONE_TIME = "one_time", "One-time"


class InvoiceLine(TenantOwned):
    """One rounded line: ``amount == round(quantity × unit_price × proration)`` (see billing.pricing)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    description = models.CharField(max_length=300)
    kind = models.CharField(max_length=10, choices=LineKind.choices)
    quantity = models.DecimalField(**EXACT)
    unit_price = models.DecimalField(**EXACT)
    proration = models.CharField(max_length=32, default="1", help_text="Exact fraction of the period, e.g. 15/30.")
    amount = models.DecimalField(**MONEY)
    contract_line = models.ForeignKey(
        ContractLine, null=True, blank=True, on_delete=models.PROTECT, related_name="invoice_lines"
    )

    class Meta:
        verbose_name = gettext_lazy("invoice line")
        verbose_name_plural = gettext_lazy("invoice lines")
        ordering = ["invoice_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "invoice", "position"], name="invoice_line_unique_position")
        ]

    def __str__(self):
        return self.description

    def _guard(self):
        status = base_rows_for(self, Invoice).filter(pk=self.invoice_id).values_list("status", flat=True).first()
        if status is not None and status != Invoice.Status.DRAFT:
            raise ImmutableRecordError(f"The lines of a {status} invoice cannot be changed.")

    def save(self, *args, **kwargs):
        self._guard()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._guard()
        return super().delete(*args, **kwargs)


class _IssuedOnce(TenantOwned):
    """A document that is final when written: updates and deletes are refused."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ImmutableRecordError(f"{self._meta.verbose_name} {self.pk} is issued and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecordError(f"{self._meta.verbose_name} {self.pk} is issued and cannot be deleted.")


class CreditNote(_IssuedOnce):
    """A numbered correction of a finalized invoice. Amounts are positive: what is given back."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(max_length=40)
    sequence_number = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=300)
    issue_date = models.DateField()
    subtotal = models.DecimalField(**MONEY)
    vat_rate = models.DecimalField("VAT rate (%)", max_digits=5, decimal_places=2, default=ZERO)
    vat_amount = models.DecimalField("VAT", **MONEY)
    total = models.DecimalField(**MONEY)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = gettext_lazy("credit note")
        verbose_name_plural = gettext_lazy("credit notes")
        ordering = ["-sequence_number"]
        constraints = [models.UniqueConstraint(fields=["tenant", "number"], name="credit_note_unique_number")]
        indexes = [models.Index(fields=["tenant", "invoice"])]

    def __str__(self):
        return self.number


class CreditNoteLine(_IssuedOnce):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveIntegerField()
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(**EXACT, default=Decimal(1))
    unit_price = models.DecimalField(**EXACT)
    amount = models.DecimalField(**MONEY)
    invoice_line = models.ForeignKey(
        InvoiceLine, null=True, blank=True, on_delete=models.PROTECT, related_name="credit_note_lines"
    )

    class Meta:
        verbose_name = gettext_lazy("credit note line")
        verbose_name_plural = gettext_lazy("credit note lines")
        ordering = ["credit_note_id", "position"]

    def __str__(self):
        return self.description


class CreditRequest(TenantOwned):
    """A manual credit awaiting a decision. ``amount`` is what the customer gets back, VAT included.

    With an ``invoice`` it becomes a credit note on approval; without, it is a balance taken off
    the customer's next invoices (``CreditApplication``) and is ``applied`` once fully used.
    """

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        APPLIED = "applied", "Applied"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="credit_requests")
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="credit_requests"
    )
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    credit_note = models.OneToOneField(
        CreditNote, null=True, blank=True, on_delete=models.PROTECT, related_name="credit_request"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = gettext_lazy("credit request")
        verbose_name_plural = gettext_lazy("credit requests")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "status", "customer"])]

    def __str__(self):
        customer = f" for {self.customer}" if self.customer_id else ""
        return f"Credit {self.amount if self.amount is not None else ''} {self.currency}{customer}".replace("  ", " ")


class CreditApplication(TenantOwned):
    """The part of an approved balance credit taken off one invoice."""

    credit_request = models.ForeignKey(CreditRequest, on_delete=models.PROTECT, related_name="applications")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="credit_applications")
    amount = models.DecimalField(**MONEY)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "credit_request", "invoice"], name="credit_application_unique_invoice"
            )
        ]

    def __str__(self):
        return f"Credit {self.amount} taken off {self.invoice}" if self.invoice_id else "Credit taken off an invoice"


class CreditAuditEntry(TenantOwned):
    """Who did what to a credit request, when, for how much. Written by the services only."""

    class Action(models.TextChoices):
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        APPLIED = "applied", "Applied"
        REOPENED = "reopened", "Returned to balance (invoice voided)"

    credit_request = models.ForeignKey(CreditRequest, on_delete=models.PROTECT, related_name="audit_entries")
    action = models.CharField(max_length=10, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_role = models.CharField(max_length=20, blank=True)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = gettext_lazy("credit audit entry")
        verbose_name_plural = gettext_lazy("credit audit entries")
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.get_action_display()} {self.amount if self.amount is not None else ''} {self.currency}".strip()
