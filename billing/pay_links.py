"""Signed "Pay now" links for invoice emails: they name one invoice of one tenant and expire.

A token is ``django.core.signing``'s timestamped signature (with ``SECRET_KEY`` and its own salt) of
the tenant id and invoice id, so it cannot be forged or pointed at another invoice, and it is refused
after ``settings.CARD_PAY_LINK_MAX_AGE_DAYS``. The page it opens (``portal.views.card_payments``)
shows the invoice's number and amount due and a button that opens the provider's checkout; nothing
happens on a GET, so mail scanners that follow links start no payment.
"""

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "billing.card-pay-link"


class PayLinkExpired(Exception):
    pass


class PayLinkInvalid(Exception):
    pass


def pay_link_token(*, invoice) -> str:
    """A token for ``invoice``'s pay page, valid ``CARD_PAY_LINK_MAX_AGE_DAYS`` from now."""
    return signing.dumps([invoice.tenant_id, invoice.pk], salt=SALT, compress=False)


def pay_link_read(token: str) -> tuple[int, int]:
    """``(tenant_id, invoice_id)`` of a token. Raises ``PayLinkExpired`` or ``PayLinkInvalid``."""
    max_age = settings.CARD_PAY_LINK_MAX_AGE_DAYS * 24 * 3600
    try:
        tenant_id, invoice_id = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise PayLinkExpired from None
    except (signing.BadSignature, ValueError, TypeError):
        raise PayLinkInvalid from None
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in (tenant_id, invoice_id)):
        raise PayLinkInvalid
    return tenant_id, invoice_id


def pay_link_path(*, invoice) -> str:
    return reverse("card_pay", args=[pay_link_token(invoice=invoice)])


def pay_link_url(*, invoice) -> str:
    """The absolute URL of ``invoice``'s pay page, for emails (``settings.PORTAL_BASE_URL``)."""
    return settings.PORTAL_BASE_URL.rstrip("/") + pay_link_path(invoice=invoice)
