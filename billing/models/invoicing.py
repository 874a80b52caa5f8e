"""Invoices, credit notes, their numbering, price terms and credit requests.

Money is stored as ``Decimal`` beside the document's ``currency`` (one currency per invoice or
credit note): lines are priced by ``billing.pricing`` and bulk-created, which plain decimals keep
simple and fast. Amounts have two decimal places, so currencies with a three-digit minor unit
(KWD, BHD, ...) are refused when an invoice is validated.

A finalized invoice is frozen. ``Invoice.save``/``delete`` and ``InvoiceLine.save``/``delete``
refuse any change but the status moves finalized → paid and finalized → void; the database
enforces the same with triggers (queryset updates and raw SQL bypass ``save()``), defined in
billing migration 0004 (``FORWARD``), which also allows a tenant purge to delete them. Credit notes are final from the moment they are issued.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Case, DecimalField, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils.translation import gettext_lazy

from billing import pricing
from customers.models import PERCENT_VALIDATORS, Contract, ContractLine, Customer
from customers.money import MONEY_COLUMN, MoneyError, minor_unit_places
from customers.tenancy import TenantManager, TenantOwned, TenantQuerySet, base_rows_for

MONEY = MONEY_COLUMN
EXACT = {"max_digits": 24, "decimal_places": 6}
ZERO = Decimal(0)


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

    class Meta:
        verbose_name = gettext_lazy("billing settings")
        verbose_name_plural = gettext_lazy("billing settings")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="billing_settings_one_per_tenant")]

    def __str__(self):
        return f"Billing settings of {self.tenant}" if self.tenant_id else "Billing settings"


class ChargeModel(models.TextChoices):
    FLAT = "flat", "Flat fee"
    PER_SEAT = "per_seat", "Per seat"
    PER_UNIT = "per_unit", "Per unit"
    GRADUATED = "graduated", "Graduated tiers"
    VOLUME = "volume", "Volume tiers"
    PACKAGE = "package", "Package"
    PERCENTAGE = "percentage", "Percentage of a measured amount"
    INCLUDED_QUOTA = "included_quota", "Included quota with overage"


METERED_MODELS = {
    ChargeModel.PER_UNIT,
    ChargeModel.GRADUATED,
    ChargeModel.VOLUME,
    ChargeModel.PACKAGE,
    ChargeModel.PERCENTAGE,
    ChargeModel.INCLUDED_QUOTA,
}

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
    """Validate ``terms`` for ``charge_model`` and return them with Decimals and ``pricing.Tier``s.

    Raises ValidationError naming the offending key: unknown keys, missing required keys, floats,
    negative amounts, percentages outside 0..100, or tiers the pricing engine refuses.
    """
    if not isinstance(terms, dict):
        raise ValidationError("Terms must be a JSON object.")
    allowed = {name: (kind, required) for name, kind, required in TERMS_KEYS[charge_model] + _COMMON_KEYS}
    unknown = sorted(set(terms) - set(allowed))
    if unknown:
        raise ValidationError(f"Unknown terms for {charge_model}: {', '.join(unknown)}.")
    parsed = {}
    for name, (kind, required) in allowed.items():
        if name not in terms or terms[name] in (None, ""):
            if required:
                raise ValidationError(f"{name} is required for {charge_model}.")
            continue
        value = terms[name]
        if kind == "tiers":
            parsed[name] = _parse_tiers(value)
        elif kind == "code":
            if not isinstance(value, str):
                raise ValidationError(f"{name} must be a metric code.")
            parsed[name] = value
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(f"{name} must be a whole number ≥ 0.")
            parsed[name] = value
        else:
            number = _as_decimal(value, name)
            if number < 0:
                raise ValidationError(f"{name} must not be negative.")
            if kind == "percent" and number > 100:
                raise ValidationError(f"{name} must be between 0 and 100.")
            parsed[name] = number
    if charge_model == ChargeModel.PACKAGE and parsed["package_size"] <= 0:
        raise ValidationError("package_size must be greater than zero.")
    low, high = parsed.get("min_per_event"), parsed.get("max_per_event")
    if low is not None and high is not None and low > high:
        raise ValidationError("min_per_event cannot be above max_per_event.")
    if charge_model == ChargeModel.INCLUDED_QUOTA and parsed.get("utilisation_discount_percent"):
        if parsed["included"] <= 0:
            raise ValidationError("A utilisation discount needs an included quota above zero.")
        if parsed.get("utilisation_from_percent", 80) > parsed.get("utilisation_to_percent", 100):
            raise ValidationError("utilisation_from_percent cannot be above utilisation_to_percent.")
    return parsed


def _parse_tiers(value) -> tuple[pricing.Tier, ...]:
    if not isinstance(value, list) or not value:
        raise ValidationError("tiers must be a non-empty list of {up_to, unit_price, flat_fee}.")
    tiers = []
    for index, raw in enumerate(value, start=1):
        if not isinstance(raw, dict) or set(raw) - {"up_to", "unit_price", "flat_fee"}:
            raise ValidationError(f"tier {index}: use only up_to, unit_price and flat_fee.")
        up_to = raw.get("up_to")
        try:
            tiers.append(
                pricing.Tier(
                    up_to=None if up_to is None else _as_decimal(up_to, f"tier {index} up_to"),
                    unit_price=_as_decimal(raw.get("unit_price", 0), f"tier {index} unit_price"),
                    flat_fee=_as_decimal(raw.get("flat_fee", 0), f"tier {index} flat_fee"),
                )
            )
        except pricing.PricingError as exc:
            raise ValidationError(f"tier {index}: {exc}") from None
    try:
        return pricing.validate_tiers(tiers)
    except pricing.PricingError as exc:
        raise ValidationError(f"tiers: {exc}") from None


class PriceTerms(TenantOwned):
    """How one contract line is priced when quantity × unit price is not enough.

    The line's own ``quantity × unit_price`` is a base fee for recurring and per-seat lines
    (included_quota: the plan fee) and the default unit/package price for usage lines. ``metric``
    names the BillableMetric whose period total is priced; ``terms`` holds the model's parameters
    (see ``TERMS_KEYS``), amounts written as strings in the contract's currency.
    """

    contract_line = models.OneToOneField(ContractLine, on_delete=models.CASCADE, related_name="price_terms")
    charge_model = models.CharField(max_length=16, choices=ChargeModel.choices)
    metric = models.SlugField(max_length=64, blank=True, help_text="The code of the billable metric that meters this price.")
    terms = models.JSONField(default=dict, blank=True)

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
        notes issued later are their own rows, so the figure is derived here, never written back.
        ``credited_total`` is the VAT-inclusive sum of the invoice's credit notes. There is no
        partial payment: a paid invoice was paid what it still asked for (``paid_total``), so it
        owes 0; a void invoice owes 0 and records no payment. Decimals in the invoice's currency,
        two places, exact (no rounding: every operand is already in minor units).

        The credit-note subquery is correlated on the outer invoice's own id and tenant, so it
        reads only rows of the tenant the outer queryset is scoped to.
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
        owed_after_credits = Greatest(zero, F("amount_due") - F("credited_total"), output_field=money)
        return self.annotate(
            credited_total=Coalesce(Subquery(credited, output_field=money), zero, output_field=money)
        ).annotate(
            paid_total=Case(When(status=Invoice.Status.PAID, then=owed_after_credits), default=zero, output_field=money),
            balance_due=Case(
                When(status__in=[Invoice.Status.PAID, Invoice.Status.VOID], then=zero),
                default=owed_after_credits,
                output_field=money,
            ),
        )


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

    # Field changes allowed on a finalized invoice, and the status moves they belong to.
    ALLOWED_TRANSITIONS = {("finalized", "paid"), ("finalized", "void")}
    MUTABLE_AFTER_FINALIZE = {"status", "paid_at", "voided_at"}

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices")
    period_start = models.DateField()
    period_end = models.DateField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    number = models.CharField(max_length=40, null=True, blank=True)
    sequence_number = models.PositiveIntegerField(null=True, blank=True)
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
        if self.currency:
            try:
                places = minor_unit_places(self.currency)
            except MoneyError as exc:
                places = None
                errors["currency"] = str(exc)
            if places is not None and places > MONEY["decimal_places"]:
                errors["currency"] = f"{self.currency} has {places} decimals; invoices keep 2."
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
