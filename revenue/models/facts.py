"""Revenue facts: each customer's MRR at its change months, kept current as contracts change.

A row is one row of the reference ``changes`` CTE (revenue.selectors.sql) computed over the
customer's whole history up to the tenant's horizon: the customer's MRR in the reporting currency
from ``month_start`` until ``next_month`` (exclusive; NULL = up to the horizon), its MRR at the
previous month's end (``before``), whether it had MRR (or an unpriced line) at any earlier month end
(``had``, for new versus reactivation) and whether a line could not be converted then (``unpriced``).
``revenue.services.revenue_facts_refresh`` writes them; ``revenue.selectors.facts`` reads them.
"""

from django.db import models
from django.utils.translation import gettext_lazy

from customers.money import CURRENCY_CHOICES
from customers.tenancy import TenantOwned


class ExactDecimalField(models.DecimalField):
    """PostgreSQL ``numeric`` without precision or scale: MRR after the division by the billing
    interval and the conversion keeps every digit the reference SQL computes, so a fact equals it."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", 1000)
        kwargs.setdefault("decimal_places", 500)
        super().__init__(*args, **kwargs)

    def db_type(self, connection):
        return "numeric"

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_digits", None)
        kwargs.pop("decimal_places", None)
        return name, path, args, kwargs


class CustomerMrrFact(TenantOwned):
    """One customer's MRR from one change month on (see the module)."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    month_start = models.DateField()
    mrr = ExactDecimalField()
    before = ExactDecimalField()
    had = models.BooleanField()
    next_month = models.DateField(null=True, blank=True)
    unpriced = models.BooleanField(default=False)

    class Meta:
        verbose_name = gettext_lazy("customer MRR fact")
        verbose_name_plural = gettext_lazy("customer MRR facts")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "customer", "month_start"], name="customer_mrr_fact_unique"),
        ]
        indexes = [
            models.Index(fields=["tenant", "month_start"], name="customer_mrr_fact_month"),
            # The readers' "is any line unpriced" check (revenue.selectors.facts) finds none in no time.
            models.Index(
                fields=["tenant", "month_start"], condition=models.Q(unpriced=True), name="customer_mrr_fact_unpriced"
            ),
        ]

    def __str__(self):
        return f"{self.customer_id} {self.month_start:%Y-%m}: {self.mrr}"


class CustomerTrailingRevenueFact(TenantOwned):
    """One customer's recognized contract revenue over the twelve months ending with ``month_start``,
    as concentration counts it (``revenue.selectors.concentration``): its MRR at each of the twelve
    month ends plus its one-time lines starting in them, in the reporting currency, exact. A row per
    customer and month up to the state's ``trailing_last_month``, only where that revenue is above 0
    or a one-time line could not be converted (``missing``: the reference's ``"SEK 2025-01-31"``).

    The facts of ``CustomerMrrFact`` are change months, so a month's concentration from them sums
    every fact overlapping the window per customer and sorts the sums; these rows are that sum, ready
    in rank order by the (tenant, month, revenue, customer) index.
    ``revenue.facts`` writes them with the customer's MRR facts, from the same rows.
    """

    # A row per customer and month: no index of their own beside the (tenant, customer, month) one.
    tenant = models.ForeignKey("customers.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+", db_index=False)
    month_start = models.DateField()
    revenue = ExactDecimalField()
    missing = models.CharField(max_length=20, null=True, blank=True)

    class Meta:
        verbose_name = gettext_lazy("customer trailing revenue fact")
        verbose_name_plural = gettext_lazy("customer trailing revenue facts")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "customer", "month_start"], name="customer_trailing_revenue_unique"
            ),
        ]
        indexes = [
            # A month's customers in the concentration's rank order (ascending, ties by the higher id first),
            # read from the index alone once the table is vacuumed.
            models.Index(
                fields=["tenant", "month_start", "revenue", "-customer"], condition=models.Q(missing__isnull=True),
                name="customer_trailing_rank",
            ),
            models.Index(
                fields=["tenant", "month_start"], condition=models.Q(missing__isnull=False),
                name="customer_trailing_missing",
            ),
        ]

    def __str__(self):
        return f"{self.customer_id} 12 months to {self.month_start:%Y-%m}: {self.revenue}"


class RevenueMonthFact(TenantOwned):
    """The tenant's totals of one month over every customer's facts, for the unsegmented figures.

    Each column is a sum over the customers' facts of what the month adds: the MRR and customer-count
    changes and the movements of the facts starting in it (``mrr − before`` and the movement rules of
    ``revenue.selectors.movements``), and the 12-month retention's edges (a customer's MRR span shifted
    twelve months starts or stops counting in the base; the overlap of that with its span now starts or
    stops counting as retained, and capped). A month's levels are running sums from the first month.
    ``revenue.facts`` adds a customer's contributions when it writes its facts and takes them off
    when it deletes them, so the totals stay the sums of the rows (exact decimals).
    """

    month_start = models.DateField()
    mrr_change = ExactDecimalField(default=0)
    customer_change = models.IntegerField(default=0)
    new = ExactDecimalField(default=0)
    reactivation = ExactDecimalField(default=0)
    expansion = ExactDecimalField(default=0)
    contraction = ExactDecimalField(default=0)
    churn = ExactDecimalField(default=0)
    new_customers = models.IntegerField(default=0)
    reactivated_customers = models.IntegerField(default=0)
    churned_customers = models.IntegerField(default=0)
    base_change = ExactDecimalField(default=0)
    retained_change = ExactDecimalField(default=0)
    capped_change = ExactDecimalField(default=0)
    base_customer_change = models.IntegerField(default=0)

    class Meta:
        verbose_name = gettext_lazy("revenue month fact")
        verbose_name_plural = gettext_lazy("revenue month facts")
        constraints = [models.UniqueConstraint(fields=["tenant", "month_start"], name="revenue_month_fact_unique")]

    def __str__(self):
        return f"{self.month_start:%Y-%m}: {self.mrr_change:+}"


class RevenueFactsState(TenantOwned):
    """That a tenant's facts are built, for which reporting currency and up to which month.

    Without this row (or with another reporting currency, or for months after ``last_month``) the
    revenue selectors read the reference SQL over contract lines, as before the facts existed.
    Concentration reads ``CustomerTrailingRevenueFact`` for months up to ``trailing_last_month``
    (closer than ``last_month``: a row per customer and month), the change-month facts after it.
    """

    reporting_currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    last_month = models.DateField(help_text="The last month the facts cover (its first day).")
    trailing_last_month = models.DateField(
        null=True, blank=True,
        help_text="The last month the trailing revenue facts cover (its first day); empty: none are built.",
    )
    built_at = models.DateTimeField()

    class Meta:
        verbose_name = gettext_lazy("revenue facts state")
        verbose_name_plural = gettext_lazy("revenue facts states")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="revenue_facts_state_unique_tenant")]

    def __str__(self):
        return f"facts to {self.last_month:%Y-%m} in {self.reporting_currency}"
