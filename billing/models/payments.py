"""Payments received from customers and their allocation to invoices.

A ``Payment`` is money that came in: an amount in one currency, received on a date, by a method,
with the bank's reference. ``PaymentAllocation`` rows say which invoices it pays and how much of
each, so one payment can settle several invoices and an invoice can be paid by several payments.
What a payment has not allocated is the customer's credit: ``billing.services.payments`` takes it
first for the customer's next finalized invoice in that currency.

A payment's money is final once recorded: the services change only its allocations (added when an
invoice is finalized or finance allocates the rest, released when the invoice is voided or a credit
note leaves it paid for more than it now asks) and its void mark (a bounced or mistaken payment).
A ``Refund`` pays part of the customer's credit back: it comes out of one payment's unallocated
money, so ``unallocated`` is what is neither allocated nor refunded. Nothing here changes an issued invoice's money columns;
``Invoice.objects.with_balance_due`` reads the allocations.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Case, DecimalField, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy

from customers.models import Customer
from customers.money import MONEY_COLUMN, MoneyError, minor_unit_places
from customers.tenancy import TenantManager, TenantOwned, TenantQuerySet

CENT = Decimal("0.01")


def two_place_currency_problem(currency: str, documents: str) -> str:
    """Why ``currency`` cannot be kept in a two-place money column of ``documents`` (unknown, or
    with a three-digit minor unit such as KWD), or "" when it can (or is not given yet)."""
    if not currency:
        return ""
    try:
        places = minor_unit_places(currency)
    except MoneyError as exc:
        return str(exc)
    return f"{currency} has {places} decimals; {documents} keep 2." if places > MONEY_COLUMN["decimal_places"] else ""


class PaymentQuerySet(TenantQuerySet):
    def with_unallocated(self):
        """Annotate ``allocated`` (the sum of the payment's allocations), ``refunded`` (the sum of
        its refunds) and ``unallocated`` (the rest: the customer's credit from this payment; 0 for a
        void payment, which pays nothing)."""
        money = DecimalField(**MONEY_COLUMN)
        zero = Value(Decimal("0.00"), output_field=money)

        def total_of(model):
            return (
                model._base_manager.filter(tenant=OuterRef("tenant"), payment=OuterRef("pk"))
                .order_by()
                .values("payment")
                .annotate(total=Sum("amount"))
                .values("total")
            )

        return self.annotate(
            allocated=Coalesce(Subquery(total_of(PaymentAllocation), output_field=money), zero, output_field=money),
            refunded=Coalesce(Subquery(total_of(Refund), output_field=money), zero, output_field=money),
        ).annotate(
            unallocated=Case(
                When(voided_at__isnull=False, then=zero),
                default=F("amount") - F("allocated") - F("refunded"),
                output_field=money,
            )
        )


BANK_REFERENCE_TAKEN = "A payment with this bank reference is already recorded."


class Payment(TenantOwned):
    """Money received from ``customer``: ``amount`` in ``currency`` (two places), never negative."""

    BANK_REFERENCE_TAKEN = BANK_REFERENCE_TAKEN

    class Method(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", gettext_lazy("Bank transfer")
        CARD = "card", gettext_lazy("Card")
        OTHER = "other", gettext_lazy("Other")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(**MONEY_COLUMN, validators=[MinValueValidator(CENT)])
    currency = models.CharField(max_length=3)
    received_on = models.DateField()
    method = models.CharField(max_length=16, choices=Method.choices, default=Method.BANK_TRANSFER)
    reference = models.CharField(
        max_length=140, blank=True, help_text=gettext_lazy("The bank's reference, e.g. the OCR number or invoice number.")
    )
    bank_reference = models.CharField(
        gettext_lazy("bank reference"), max_length=140, blank=True, default="", db_default="",
        help_text=gettext_lazy(
            "The bank's own id of the transaction (camt.053 account servicer reference or end-to-end id): "
            "one payment per bank transaction."
        ),
    )
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)

    objects = TenantManager(PaymentQuerySet)

    class Meta:
        verbose_name = gettext_lazy("payment")
        verbose_name_plural = gettext_lazy("payments")
        ordering = ["-received_on", "-id"]
        indexes = [models.Index(fields=["tenant", "customer", "received_on"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.UniqueConstraint(
                fields=["tenant", "bank_reference"], condition=~Q(bank_reference=""), name="payment_unique_bank_reference",
                violation_error_message=BANK_REFERENCE_TAKEN,
            ),
        ]

    def __str__(self):
        amount = f"{self.amount} {self.currency}" if self.amount is not None else ""
        day = f" on {self.received_on}" if self.received_on else ""
        return f"Payment {amount}{day}".replace("  ", " ")

    @property
    def is_void(self) -> bool:
        return self.voided_at is not None

    def clean(self):
        errors = {}
        problem = two_place_currency_problem(self.currency, "payments")
        if problem:
            errors["currency"] = problem
        if self.customer_id and self.tenant_id and self.customer.tenant_id != self.tenant_id:
            errors["customer"] = "The customer belongs to another tenant."
        if errors:
            raise ValidationError(errors)


class PaymentAllocation(TenantOwned):
    """The part of ``payment`` that pays ``invoice``: positive, in both their currency."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="allocations")
    # By name: billing.models.invoicing reads allocations for the amount due, so it imports this module.
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="payment_allocations")
    amount = models.DecimalField(**MONEY_COLUMN, validators=[MinValueValidator(CENT)])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = gettext_lazy("payment allocation")
        verbose_name_plural = gettext_lazy("payment allocations")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "payment", "invoice"], name="payment_allocation_unique_invoice"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_allocation_amount_positive"),
        ]
        indexes = [models.Index(fields=["tenant", "invoice"])]

    def __str__(self):
        return f"{self.amount} to {self.invoice}" if self.invoice_id else f"{self.amount}"


class Refund(TenantOwned):
    """Money paid back to the customer out of ``payment``'s unallocated part (the customer's
    credit, e.g. after a credit note on a paid invoice): positive, in the payment's currency.
    Final once recorded, like the payment."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(**MONEY_COLUMN, validators=[MinValueValidator(CENT)])
    currency = models.CharField(max_length=3)
    refunded_on = models.DateField()
    method = models.CharField(max_length=16, choices=Payment.Method.choices, default=Payment.Method.BANK_TRANSFER)
    reference = models.CharField(max_length=140, blank=True, help_text=gettext_lazy("The bank's reference of the payout."))
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = gettext_lazy("refund")
        verbose_name_plural = gettext_lazy("refunds")
        ordering = ["-refunded_on", "-id"]
        indexes = [models.Index(fields=["tenant", "payment"]), models.Index(fields=["tenant", "refunded_on"])]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self):
        return f"Refund {self.amount} {self.currency} on {self.refunded_on}"
