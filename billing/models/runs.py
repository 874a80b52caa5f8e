"""Month-end runs: one BillingRun per tenant and period, one BillingRunItem per customer invoiced in it.

The unique constraints make starting a run twice a no-op and keep one item per customer; the
status columns record how far each got, so a run interrupted anywhere (a lost worker) is resumed
by starting it again. The workflow lives in ``billing.month_end``.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy
from django.db.models import F, Q

from billing.models.invoicing import Invoice
from customers.models import Customer
from customers.tenancy import TenantOwned


class TransientItemFailures(Exception):
    """Items of a month-end chunk failed for reasons worth retrying (database, I/O, a refused email).

    They stay open; the chunk task retries with backoff. Raised by ``billing.month_end`` and named
    in the task's ``autoretry_for``, so it lives here, below both.
    """

    def __init__(self, item_ids: list[int]):
        super().__init__(f"{len(item_ids)} item(s) to retry: {item_ids[:20]}")
        self.item_ids = item_ids


class BillingRun(TenantOwned):
    """A tenant's month-end for one calendar month: drafts, then (after the grace period) finalizing and delivery."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DRAFTED = "drafted", "Drafts ready for review"
        RUNNING = "running", "Finalizing and delivering"
        DONE = "done", "Done"
        FAILED = "failed", "Done with failures"

    period_start = models.DateField()
    period_end = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    finalize_on = models.DateField(
        help_text="The day (tenant time) from which drafts are finalized: after the tenant's grace period, or at once."
    )
    chunk_size = models.PositiveIntegerField(default=200, help_text="Customers per worker task.")
    customers = models.PositiveIntegerField(default=0, help_text="Customers with an invoice in the period.")
    drafted = models.PositiveIntegerField(default=0, help_text="Invoices that were drafts when this run drafted them.")
    finalized = models.PositiveIntegerField(default=0)
    emailed = models.PositiveIntegerField(default=0, help_text="Invoices emailed to at least one address.")
    failed = models.PositiveIntegerField(default=0)
    problems = models.JSONField(default=list, blank=True, help_text="Customers the draft run skipped, and why.")
    error = models.TextField(blank=True, help_text="The last error of the run as a whole.")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When drafting began.")
    drafted_at = models.DateTimeField(null=True, blank=True)
    finalizing_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = gettext_lazy("billing run")
        verbose_name_plural = gettext_lazy("billing runs")
        ordering = ["-period_start", "tenant_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "period_start"],
                name="billing_run_one_per_period",
                violation_error_message="This tenant already has a run for this period.",
            ),
            models.CheckConstraint(condition=Q(period_end__gte=F("period_start")), name="billing_run_period_ordered"),
        ]
        indexes = [models.Index(fields=["tenant", "status"])]

    def __str__(self):
        return f"Month-end {self.period_start:%Y-%m}" if self.period_start else "Month-end"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class BillingRunItem(TenantOwned):
    """One customer's invoice in a run: drafted → finalized → delivered, or failed with its error."""

    class Status(models.TextChoices):
        DRAFTED = "drafted", "Drafted"
        FINALIZED = "finalized", "Finalized"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    OPEN_STATUSES = (Status.DRAFTED, Status.FINALIZED)

    run = models.ForeignKey(BillingRun, on_delete=models.CASCADE, related_name="items")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    # A draft the customer no longer needs is deleted by the draft run; the item then says "skipped".
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFTED)
    was_draft = models.BooleanField(default=True, help_text="False when the invoice was already final when drafted.")
    emails_sent = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times finalizing or delivering was tried.")
    finalized_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = gettext_lazy("billing run item")
        verbose_name_plural = gettext_lazy("billing run items")
        ordering = ["run_id", "customer_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "run", "customer"], name="billing_run_item_one_per_customer")
        ]
        indexes = [models.Index(fields=["tenant", "run", "status"])]

    def __str__(self):
        run = self.run if self.run_id else ""
        customer = self.customer if self.customer_id else ""
        return f"{run} · {customer} ({self.get_status_display()})"
