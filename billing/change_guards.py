"""Billing's guard of contract changes: history is never rewritten (see ``customers.change_guards``,
where ``BillingConfig.ready`` registers it; customers never imports billing)."""

from datetime import date, timedelta

from django.utils.translation import gettext

from billing.models import Invoice
from customers.change_guards import ChangeRefusal


def finalized_period_refusal(*, contract, effective_on: date):
    """The contract-change guard billing registers in ``customers.change_guards`` (see ``BillingConfig``).

    A change of ``contract`` from ``effective_on`` alters every day from then on, so it is refused
    while any finalized or paid invoice of the contract's customer covers a day on or after
    ``effective_on``: history is never rewritten, corrections are credit notes. The refusal names the
    invoice covering ``effective_on`` (else the first one after it) and offers the first open date,
    the day after the customer's last finalized period. Void invoices do not count. Returns None to
    allow the change. Two queries at most, both in the contract's tenant.
    """
    issued = Invoice.objects.for_tenant(contract.tenant).filter(
        customer_id=contract.customer_id, status__in=[Invoice.Status.FINALIZED, Invoice.Status.PAID]
    )
    blocking = issued.filter(period_end__gte=effective_on).order_by("period_start", "pk").first()
    if blocking is None:
        return None
    last_end = issued.order_by("-period_end").values_list("period_end", flat=True).first()
    first_open = last_end + timedelta(days=1)
    message = gettext(
        "%(day)s falls in a period already invoiced: invoice %(number)s (%(start)s – %(end)s) is %(status)s. "
        "History is never rewritten: date the change from %(first_open)s, the first open date, and correct "
        "the past with a credit note."
    ) % {
        "day": effective_on.isoformat(),
        "number": blocking.number,
        "start": blocking.period_start.isoformat(),
        "end": blocking.period_end.isoformat(),
        "status": blocking.get_status_display().lower(),
        "first_open": first_open.isoformat(),
    }
    return ChangeRefusal(message=message, document=blocking.number, first_open_date=first_open)
