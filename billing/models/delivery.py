"""Who an invoice was emailed to, and how that went: one row per invoice and recipient."""

from django.db import models

from billing.models.invoicing import Invoice
from customers.tenancy import TenantOwned


class InvoiceDelivery(TenantOwned):
    """One recipient of one invoice's email. The unique row makes a second send a no-op."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="deliveries")
    recipient = models.EmailField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True, help_text="The last failure, as the mail server reported it.")
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "invoice deliveries"
        ordering = ["invoice_id", "recipient"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "invoice", "recipient"], name="invoice_delivery_unique_recipient"
            )
        ]
        indexes = [models.Index(fields=["tenant", "status"])]

    def __str__(self):
        return f"{self.invoice_id} → {self.recipient} ({self.status})"
