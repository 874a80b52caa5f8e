""""Pay now": a customer pays an open invoice by card on the tenant's provider's checkout page.

Two ways in, one way out:

- In the portal, the invoice list and page have a *Pay now* button for each invoice that is finalized
  and still owes something: a POST here (``invoice_pay``) opens the checkout and redirects to it.
- An invoice email carries a signed link (``billing.pay_links``) to ``card_pay``, which needs no
  login: a GET shows the invoice's number, amount due and a *Pay now* button; its POST opens the
  checkout. An expired link is a 410 with what to do instead; a forged one a 404.

The checkout is always for what the invoice owes at that moment, and the provider returns the
customer to ``card_pay_done`` with ``?result=success`` or ``cancel``, which says so (the invoice shows paid
once the provider's webhook confirms the payment, not on this redirect's word). When the tenant has no
card payment, the button is shown disabled with the reason, and a POST is a 409 saying the same.
"""

from django.conf import settings
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from billing.models import Invoice
from billing.pay_links import PayLinkExpired, PayLinkInvalid, pay_link_read
from billing.payment_providers import ProviderUnavailable
from billing.selectors import invoice_with_balance_due
from billing.services.card_payments import CardPaymentOff, NothingToPay, card_checkout_start
from customers.models import Tenant
from customers.tenancy import tenant_scope
from portal.views.customer_portal import _get_or_404, customer_invoices, customer_view


def _checkout_redirect(request, invoice: Invoice):
    """Open the checkout for ``invoice`` and redirect there, or render why not (409 / 502).

    The provider sends the customer back to ``card_pay_done``: the same address for every invoice and
    click, so a second click the same day is the same checkout request (and the same session)."""
    done = f"{settings.PORTAL_BASE_URL.rstrip('/')}{reverse('card_pay_done')}"
    try:
        checkout = card_checkout_start(
            tenant=invoice.tenant, invoice=invoice,
            success_url=f"{done}?result=success", cancel_url=f"{done}?result=cancel",
        )
    except (CardPaymentOff, NothingToPay) as exc:
        return _page(request, invoice, message=str(exc), status=409)
    except ProviderUnavailable as exc:
        return _page(request, invoice, message=str(exc), status=502)
    return HttpResponseRedirect(checkout.url, status=303)


def _page(request, invoice: Invoice, *, message: str = "", status: int = 200, token: str = ""):
    invoice = invoice_with_balance_due(invoice=invoice)
    context = {"invoice": invoice, "tenant": invoice.tenant, "message": message, "token": token}
    return render(request, "portal/card_pay.html", context, status=status)


def card_pay_done(request):
    """Where the provider sends the customer back: says whether they paid or cancelled, nothing more
    (no invoice, no amount: the address is the same for everyone). The invoice turns paid when the
    provider's webhook confirms the payment, not on this page's word."""
    result = request.GET.get("result", "")
    return render(request, "portal/card_pay_done.html", {"result": result if result in ("success", "cancel") else ""})


@require_POST
@customer_view
def invoice_pay(request, invoice_id: int):
    """The portal's *Pay now*: open the checkout for one of the customer's invoices."""
    invoice = _get_or_404(customer_invoices(request).select_related("tenant", "customer"), invoice_id)
    return _checkout_redirect(request, invoice)


def card_pay(request, token: str):
    """The pay page an emailed link opens (no login): GET shows it, POST opens the checkout."""
    if request.method not in ("GET", "HEAD", "POST"):
        raise Http404
    try:
        tenant_id, invoice_id = pay_link_read(token)
    except PayLinkInvalid:
        raise Http404(_("No such payment link.")) from None
    except PayLinkExpired:
        return render(request, "portal/card_pay_expired.html", status=410)
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        raise Http404(_("No such payment link."))
    with tenant_scope(tenant):
        invoice = (
            Invoice.objects.for_tenant(tenant).select_related("tenant", "customer")
            .exclude(status=Invoice.Status.DRAFT).filter(pk=invoice_id).first()
        )
        if invoice is None:
            raise Http404(_("No such payment link."))
        with translation.override(invoice.customer.language or tenant.locale or "en"):
            if request.method == "POST":
                return _checkout_redirect(request, invoice)
            return _page(request, invoice, token=token)

