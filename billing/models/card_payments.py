"""Card payment through a payment provider (Stripe): a tenant's provider account and the events it sent.

``PaymentProviderAccount`` holds a tenant's keys for one provider. The secret key and the webhook
signing secret are write-only: the admin takes them and says whether they are set, and nothing
(admin, API, logs, error messages) shows them back. Without an account whose keys are set, card
payment is off for the tenant: the portal shows "Pay now" disabled with the reason and invoice emails
carry no payment link.

``ProviderEvent`` is one verified webhook event the tenant's provider sent and we acted on, unique
per tenant, provider and the provider's event id: the same event delivered twice records one payment.
It says what came of it (``outcome``) and why, so finance sees a card payment whose amount or
currency did not match the invoice.
"""

from django.db import models
from django.utils.translation import gettext_lazy

from billing.models.invoicing import Invoice
from billing.models.payments import Payment
from customers.tenancy import TenantOwned


class Provider(models.TextChoices):
    STRIPE = "stripe", "Stripe"


class PaymentProviderAccount(TenantOwned):
    """A tenant's account at a card payment provider: its keys. One per tenant and provider."""

    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.STRIPE)
    publishable_key = models.CharField(gettext_lazy("publishable key"), max_length=255, blank=True)
    # Write-only: never rendered, logged or put in a message (see the module docstring).
    secret_key = models.CharField(gettext_lazy("secret key"), max_length=255, blank=True)
    webhook_secret = models.CharField(gettext_lazy("webhook signing secret"), max_length=255, blank=True)
    enabled = models.BooleanField(
        gettext_lazy("card payment on"),
        default=True,
        help_text=gettext_lazy("Untick to stop offering card payment without removing the keys."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = gettext_lazy("card payment provider")
        verbose_name_plural = gettext_lazy("card payment providers")
        ordering = ["provider"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "provider"], name="payment_provider_account_one_per_provider"),
        ]

    def __str__(self):
        return f"{self.get_provider_display()} account"

    def __repr__(self):
        # Never the secrets, even in a debugger or a traceback's locals.
        return f"<PaymentProviderAccount {self.pk} {self.provider} tenant={self.tenant_id}>"

    @property
    def is_ready(self) -> bool:
        """Card payment is on: enabled, with both secrets set."""
        return bool(self.enabled and self.secret_key and self.webhook_secret)


class ProviderEvent(TenantOwned):
    """A verified provider event that was acted on (or deliberately not), once per event id."""

    class Outcome(models.TextChoices):
        RECORDED = "recorded", gettext_lazy("Payment recorded")
        MISMATCH = "mismatch", gettext_lazy("Payment recorded, flagged: it does not match the invoice")
        NOT_PAID = "not_paid", gettext_lazy("Not paid yet (nothing recorded)")

    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.STRIPE)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="provider_events")
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="provider_events")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    detail = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = gettext_lazy("card payment event")
        verbose_name_plural = gettext_lazy("card payment events")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "provider", "event_id"], name="provider_event_unique_event"),
        ]
        indexes = [models.Index(fields=["tenant", "outcome"])]

    def __str__(self):
        return f"{self.event_type} {self.event_id}"
