"""How to pay an invoice, as printed on its PDF and in its email, in the active language.

The tenant's ``BillingSettings.payment_method`` decides: a bankgiro tenant asks for the invoice's
OCR number ("Bankgiro 123-4566, OCR 20260000114"), an IBAN tenant for the invoice number as the
reference ("IBAN SE45 5000 …, BIC ESSESESS"). No payment method: no lines (the documents keep their
plain "please mark your payment with the invoice number").
"""

from dataclasses import dataclass

from django.utils.translation import gettext as _
from stdnum import iban as stdnum_iban

from billing.models import BillingSettings, Invoice


@dataclass(frozen=True)
class PaymentDetails:
    """``account``: where to pay (one line); ``reference``: what to quote; ``note``: the tenant's text."""

    account: str
    reference: str
    note: str = ""

    @property
    def lines(self) -> list[str]:
        return [line for line in (self.account, self.reference, self.note) if line]


def invoice_payment_details(*, invoice: Invoice) -> PaymentDetails | None:
    """The payment details of ``invoice`` in the active language, or None when its tenant has none.

    Reads the tenant's billing settings (no row is created). A draft has no number yet, so it gets
    the account without a reference.
    """
    settings = BillingSettings.objects.for_tenant(invoice.tenant).first()
    if settings is None or not settings.payment_method:
        return None
    if settings.payment_method == BillingSettings.PaymentMethod.BANKGIRO:
        if invoice.ocr_reference:
            account = f"Bankgiro {settings.bankgiro}, OCR {invoice.ocr_reference}"
            reference = _("Always give the OCR number as the payment reference.")
        else:
            account = f"Bankgiro {settings.bankgiro}"
            reference = _("Reference: %(number)s") % {"number": invoice.number} if invoice.number else ""
        return PaymentDetails(account=account, reference=reference)
    parts = [f"IBAN {stdnum_iban.format(settings.iban)}"]
    if settings.bic:
        parts.append(f"BIC {settings.bic}")
    account = ", ".join(parts) + (f" ({settings.bank_name})" if settings.bank_name else "")
    reference = _("Reference: %(number)s") % {"number": invoice.number} if invoice.number else ""
    return PaymentDetails(account=account, reference=reference, note=settings.payment_reference_text)
