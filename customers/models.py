"""Tenants, who may act for them, their customers and what those customers signed.

Contract history is replayable: a ContractLine is one dated price version (``starts_on`` ..
``ends_on`` inclusive). An upgrade ends a line and starts a new one the next day; a cancellation
ends the contract and its lines; a reactivation adds lines after a gap. ``ContractChange`` keeps
the dated narrative of those changes. Services in ``customers.services`` make them.
"""

import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy
from django.db.models import F, Q
from django_countries.fields import CountryField
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager
from simple_history.models import HistoricalRecords

from customers.money import CURRENCY_CHOICES, MoneyField
from customers.peppol import validate_peppol_id
from customers.tenancy import TenantManager, TenantOwned

LANGUAGE_CHOICES = [("en", "English"), ("sv", "Svenska")]
TIME_ZONE_CHOICES = sorted((tz, tz) for tz in zoneinfo.available_timezones())
PERCENT_VALIDATORS = [MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))]


class Tenant(models.Model):
    """A company running its customer economics here. Not tenant-owned: it is the tenant."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    reporting_currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    time_zone = models.CharField(max_length=64, choices=TIME_ZONE_CHOICES, default="UTC")
    locale = models.CharField(max_length=5, choices=LANGUAGE_CHOICES, default="en")
    invoice_number_prefix = models.CharField(max_length=12, help_text="e.g. INV-")
    vat_rate = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal(0), validators=PERCENT_VALIDATORS, help_text="percent"
    )
    legal_name = models.CharField(max_length=200, blank=True)
    vat_number = models.CharField(max_length=32, blank=True)
    address = models.TextField(blank=True)
    country = CountryField(blank=True)
    peppol_id = models.CharField(
        gettext_lazy("Peppol id"),
        max_length=64,
        blank=True,
        validators=[validate_peppol_id],
        help_text=gettext_lazy(
            'Your electronic address in e-invoices, "scheme:value": e.g. 0007:5567321707 (Swedish organisation '
            "number), 0088:… (GLN), 0060:… (DUNS), 9930:DE… (German VAT number)."
        ),
    )
    logo = models.FileField(upload_to="tenant-logos/", blank=True)
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    draft_grace_days = models.PositiveSmallIntegerField(
        default=3, help_text="Days finance has to review drafts before they are finalized automatically."
    )
    staff_two_factor_required = models.BooleanField(
        gettext_lazy("two-factor required for staff"),
        default=False,
        help_text=gettext_lazy(
            "Every staff member of this tenant must set up an authenticator app and enter its code after "
            "the password. Members without one are sent to set it up before anything else."
        ),
    )
    # Set by customers.purge.tenant_purge in its transaction; billing's issued-document triggers
    # allow deleting a finalized invoice or credit note only of a tenant marked so.
    purge_started_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = gettext_lazy("tenant")
        verbose_name_plural = gettext_lazy("tenants")
        ordering = ["name"]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", gettext_lazy("Owner")
    ACCOUNT_MANAGER = "account_manager", gettext_lazy("Account manager")
    FINANCE = "finance", gettext_lazy("Finance")
    VIEWER = "viewer", gettext_lazy("Viewer")


class Membership(TenantOwned):
    """A staff user acting for a tenant in one role."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    # The person's language on staff pages; empty follows the tenant's (``Membership.staff_language``).
    language = models.CharField(
        max_length=5, choices=LANGUAGE_CHOICES, blank=True, default="",
        help_text="The language of this person's staff pages. Empty: the tenant's language.",
    )

    class Meta:
        verbose_name = gettext_lazy("membership")
        verbose_name_plural = gettext_lazy("memberships")
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")]

    def __str__(self):
        return f"{self.user if self.user_id else ''} · {self.get_role_display()}".strip(" ·")

    @property
    def staff_language(self) -> str:
        """The language this person's staff pages speak: their own choice, else the tenant's locale."""
        return self.language or self.tenant.locale


class TenantAPIKey(TenantOwned, AbstractAPIKey):
    """A machine credential of one tenant. Only a hash is stored; the key is shown once, on creation."""

    objects = TenantManager(base=BaseAPIKeyManager)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = gettext_lazy("API key")
        verbose_name_plural = gettext_lazy("API keys")


class EInvoiceFormat(models.TextChoices):
    """What a customer's invoice email carries (``billing.delivery``)."""

    PDF = "pdf", gettext_lazy("PDF only")
    PDF_UBL = "pdf_ubl", gettext_lazy("PDF and Peppol UBL XML")
    FACTURX = "facturx", gettext_lazy("Factur-X PDF (PDF with the invoice's XML inside)")


class Customer(TenantOwned):
    name = models.CharField("legal name", max_length=200)
    external_ref = models.SlugField(
        "reference", max_length=64, help_text="The tenant's own id for this customer, used by the API."
    )
    org_number = models.CharField("organisation number", max_length=32, blank=True)
    vat_number = models.CharField("VAT number", max_length=32, blank=True)
    is_business = models.BooleanField(default=True)
    billing_emails = ArrayField(models.EmailField(), default=list, blank=True)
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = CountryField(blank=True)
    peppol_id = models.CharField(
        gettext_lazy("Peppol id"),
        max_length=64,
        blank=True,
        validators=[validate_peppol_id],
        help_text=gettext_lazy(
            "The customer's electronic address for e-invoices, \"scheme:value\": e.g. 0007:5567321707 (Swedish "
            "organisation number), 0088:… (GLN), 9930:DE… (German VAT number)."
        ),
    )
    einvoice_format = models.CharField(
        gettext_lazy("invoice format"),
        max_length=10,
        choices=EInvoiceFormat.choices,
        default=EInvoiceFormat.PDF,
        help_text=gettext_lazy("What the invoice email carries; every form can be downloaded in the portal and the API."),
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    language = models.CharField(max_length=5, choices=LANGUAGE_CHOICES, default="en")
    segment = models.CharField(max_length=50, blank=True, help_text="e.g. SMB, mid-market, enterprise")
    tier = models.CharField(max_length=50, blank=True, help_text="plan or tier name, e.g. Starter")
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_contact_on = models.DateField(null=True, blank=True)
    acquisition_cost = MoneyField(max_digits=14, decimal_places=2, null=True, blank=True, default_currency=None)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = gettext_lazy("customer")
        verbose_name_plural = gettext_lazy("customers")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_ref"], name="customer_unique_ref"),
        ]
        indexes = [models.Index(fields=["tenant", "name"])]

    def __str__(self):
        return self.name

    def clean(self):
        if self.acquisition_cost is not None and str(self.acquisition_cost.currency) != self.currency:
            raise ValidationError({"acquisition_cost": "Acquisition cost must be in the customer's currency."})


class PortalAccess(TenantOwned):
    """Links a customer's own person (a user without staff rights) to exactly one Customer."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portal_access")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="portal_accesses")

    class Meta:
        verbose_name = gettext_lazy("portal access")
        verbose_name_plural = gettext_lazy("portal accesses")

    def __str__(self):
        return f"{self.user if self.user_id else ''} → {self.customer if self.customer_id else ''}".strip(" →")

    def clean(self):
        if self.customer_id is None:
            raise ValidationError({"customer": "A portal user must belong to a customer."})
        if self.tenant_id and self.customer.tenant_id != self.tenant_id:
            raise ValidationError({"customer": "The customer belongs to another tenant."})


class Contact(TenantOwned):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    title = models.CharField(max_length=100, blank=True)
    is_billing_contact = models.BooleanField(default=False)

    class Meta:
        verbose_name = gettext_lazy("contact")
        verbose_name_plural = gettext_lazy("contacts")
        ordering = ["name"]

    def __str__(self):
        return self.name


class BillingInterval(models.IntegerChoices):
    """Months per billing interval; MRR normalizes a recurring amount by dividing by it."""

    MONTHLY = 1, "Monthly"
    QUARTERLY = 3, "Quarterly"
    SEMIANNUAL = 6, "Semi-annual"
    ANNUAL = 12, "Annual"
    BIENNIAL = 24, "Two years"
    TRIENNIAL = 36, "Three years"


class Contract(TenantOwned):
    class Status(models.TextChoices):
        DRAFT = "draft", gettext_lazy("Draft")
        ACTIVE = "active", gettext_lazy("Active")
        CANCELLED = "cancelled", gettext_lazy("Cancelled")
        ENDED = "ended", gettext_lazy("Ended")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="contracts")
    reference = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    billing_interval = models.PositiveSmallIntegerField(choices=BillingInterval.choices, default=BillingInterval.MONTHLY)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True, help_text="Last day of the contract; empty when it runs until cancelled.")
    auto_renew = models.BooleanField(default=False)
    renewal_term_months = models.PositiveSmallIntegerField(null=True, blank=True)
    signed_on = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = gettext_lazy("contract")
        verbose_name_plural = gettext_lazy("contracts")
        ordering = ["-start_date", "reference"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "reference"], name="contract_unique_reference"),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="contract_end_not_before_start",
                violation_error_message="The end date cannot be before the start date.",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "customer", "start_date"])]

    def __str__(self):
        return f"{self.reference} · {self.title}"

    def clean(self):
        if self.end_date and self.start_date and self.end_date < self.start_date:
            raise ValidationError({"end_date": "The end date cannot be before the start date."})
        if self.customer_id and self.tenant_id and self.customer.tenant_id != self.tenant_id:
            raise ValidationError({"customer": "The customer belongs to another tenant."})


class ContractLine(TenantOwned):
    """One dated version of one thing a contract charges for.

    ``unit_price`` is per billing interval of the contract for recurring and per-seat lines, per unit
    for usage lines (the billing engine refines usage pricing), and the whole fee for one-time lines.
    A discount line takes ``discount_percent`` off the contract's recurring lines while it runs.
    """

    class Kind(models.TextChoices):
        RECURRING = "recurring", "Recurring fee"
        PER_SEAT = "per_seat", "Per seat"
        USAGE = "usage", "Usage-priced"
        ONE_TIME = "one_time", "One-time fee"
        DISCOUNT = "discount", "Discount"

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="lines")
    description = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    quantity = models.DecimalField(
        max_digits=18, decimal_places=4, default=Decimal(1), validators=[MinValueValidator(Decimal(0))]
    )
    unit_price = MoneyField(max_digits=20, decimal_places=6, default_currency=None)
    discount_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, validators=PERCENT_VALIDATORS
    )
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True, help_text="Last day this line applies; empty when it has no end.")

    history = HistoricalRecords()

    class Meta:
        verbose_name = gettext_lazy("contract line")
        verbose_name_plural = gettext_lazy("contract lines")
        ordering = ["starts_on", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=F("starts_on")),
                name="contract_line_end_not_before_start",
                violation_error_message="A line cannot end before it starts.",
            ),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="contract_line_quantity_not_negative"),
        ]
        indexes = [
            models.Index(fields=["tenant", "contract", "starts_on"]),
            # Revenue concentration's one-time fees of a window (revenue.selectors.concentration):
            # few lines of many, found without reading the tenant's recurring lines.
            models.Index(
                fields=["tenant", "starts_on"], condition=Q(kind="one_time"), name="contract_line_one_time"
            ),
        ]

    def __str__(self):
        return self.description

    def clean(self):
        errors = {}
        contract = self.contract if self.contract_id else None
        if contract and self.unit_price is not None and str(self.unit_price.currency) != contract.currency:
            errors["unit_price"] = (
                f"The line's currency ({self.unit_price.currency}) differs from its contract's ({contract.currency})."
            )
        if self.ends_on and self.starts_on and self.ends_on < self.starts_on:
            errors["ends_on"] = "A line cannot end before it starts."
        if contract and self.starts_on and self.starts_on < contract.start_date:
            errors["starts_on"] = "A line cannot start before its contract."
        if contract and contract.end_date and self.starts_on and self.starts_on > contract.end_date:
            errors["starts_on"] = "A line cannot start after its contract ends."
        if self.kind == self.Kind.DISCOUNT and self.discount_percent is None:
            errors["discount_percent"] = "A discount line needs a percentage."
        if errors:
            raise ValidationError(errors)


class ContractChange(TenantOwned):
    """A dated event in a contract's life, as the account manager would tell it."""

    class Kind(models.TextChoices):
        NEW = "new", "New"
        UPGRADE = "upgrade", "Upgrade"
        DOWNGRADE = "downgrade", "Downgrade"
        CANCELLATION = "cancellation", "Cancellation"
        REACTIVATION = "reactivation", "Reactivation"
        RENEWAL = "renewal", "Renewal"

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=14, choices=Kind.choices)
    effective_on = models.DateField()
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = gettext_lazy("contract change")
        verbose_name_plural = gettext_lazy("contract changes")
        ordering = ["effective_on", "id"]
        indexes = [models.Index(fields=["tenant", "contract", "effective_on"])]

    def __str__(self):
        return f"{self.get_kind_display()} on {self.effective_on}" if self.effective_on else str(self.get_kind_display())
