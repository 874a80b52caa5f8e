"""What the revenue selectors answer from the reference SQL, for comparing with the facts."""

from datetime import date

from revenue.models import RevenueFactsState


def reference(selector, **kwargs):
    """``selector(**kwargs)`` read from the reference SQL: the facts' horizon is moved before every month
    for the call (so ``revenue.selectors.facts`` falls back), then put back."""
    tenant = kwargs["tenant"]
    states = RevenueFactsState.objects.for_tenant(tenant)
    last_month = states.get().last_month
    states.update(last_month=date(2000, 1, 1))
    try:
        return selector(**kwargs)
    finally:
        states.update(last_month=last_month)
