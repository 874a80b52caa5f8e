"""The tenant's account plan for the accounting export (``revenue.accounting``)."""

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy

from customers.tenancy import TenantOwned

ACCOUNT_NUMBER = RegexValidator(r"^[0-9]{1,10}$", gettext_lazy("An account number is 1 to 10 digits, e.g. 1510."))

# The accounts a journal posts to: (field, BAS default, Swedish name, English name).
ACCOUNTS = (
    ("receivables_account", "1510", "Kundfordringar", "Accounts receivable"),
    ("sales_account", "3001", "Försäljning inom Sverige, 25 % moms", "Sales"),
    ("sales_reverse_charge_account", "3308", "Försäljning tjänster till land inom EU", "Sales, reverse charge"),
    ("output_vat_account", "2611", "Utgående moms på försäljning inom Sverige, 25 %", "Output VAT"),
    ("bank_account", "1930", "Företagskonto", "Bank"),
    ("credits_granted_account", "3730", "Lämnade rabatter", "Credits granted"),
)


class AccountPlan(TenantOwned):
    """Which account each kind of posting goes to, and the file the tenant's accountant imports:
    SIE 4 (every Swedish accounting program reads it) or a CSV journal. Defaults are the Swedish
    BAS plan's; one row per tenant, created on first use."""

    class Format(models.TextChoices):
        SIE4 = "sie4", gettext_lazy("SIE 4 (Swedish accounting programs)")
        CSV = "csv", gettext_lazy("CSV journal")

    journal_format = models.CharField(max_length=4, choices=Format.choices, default=Format.CSV)
    organisation_number = models.CharField(
        max_length=20, blank=True, validators=[RegexValidator(r"^[0-9]{6}-?[0-9]{4}$", gettext_lazy("Write it as 556677-8899."))],
        help_text=gettext_lazy("The company's organisation number, written into the SIE file (#ORGNR)."),
    )
    receivables_account = models.CharField(max_length=10, default="1510", validators=[ACCOUNT_NUMBER])
    sales_account = models.CharField(max_length=10, default="3001", validators=[ACCOUNT_NUMBER])
    sales_reverse_charge_account = models.CharField(
        max_length=10, default="3308", validators=[ACCOUNT_NUMBER],
        help_text=gettext_lazy("Sales on invoices under reverse charge (no VAT charged)."),
    )
    output_vat_account = models.CharField(max_length=10, default="2611", validators=[ACCOUNT_NUMBER])
    bank_account = models.CharField(
        max_length=10, default="1930", validators=[ACCOUNT_NUMBER], help_text=gettext_lazy("Payments in, refunds out.")
    )
    credits_granted_account = models.CharField(
        max_length=10, default="3730", validators=[ACCOUNT_NUMBER],
        help_text=gettext_lazy("Approved balance credits taken off a bill (VAT included)."),
    )

    class Meta:
        verbose_name = gettext_lazy("account plan")
        verbose_name_plural = gettext_lazy("account plans")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="account_plan_one_per_tenant")]

    def __str__(self):
        return str(self._meta.verbose_name).capitalize()

    def clean(self):
        numbers = [getattr(self, field) for field, *_ in ACCOUNTS]
        duplicated = {n for n in numbers if numbers.count(n) > 1}
        if duplicated:
            raise ValidationError(
                gettext_lazy("Each kind of posting needs its own account; %(accounts)s is used twice.")
                % {"accounts": ", ".join(sorted(duplicated))}
            )
