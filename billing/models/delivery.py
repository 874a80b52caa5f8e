"""Who an invoice was emailed to, and how that went: one row per invoice and recipient."""

from django.db import models
from django.utils.translation import gettext_lazy

from billing.models.invoicing import Invoice
from billing.outbox import OutboxMessage


class InvoiceDelivery(OutboxMessage):
    """One recipient of one invoice's email (an outbox message). The unique row makes a second send a no-op."""

    outbox_key = ("invoice",)

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="deliveries")

    class Meta:
        verbose_name = gettext_lazy("invoice delivery")
        verbose_name_plural = gettext_lazy("invoice deliveries")
        ordering = ["invoice_id", "recipient"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "invoice", "recipient"], name="invoice_delivery_unique_recipient"
            )
        ]
        indexes = [models.Index(fields=["tenant", "status"])]

    def __str__(self):
        invoice = self.invoice if self.invoice_id else ""
        return f"{invoice} → {self.recipient} ({self.get_status_display()})"
