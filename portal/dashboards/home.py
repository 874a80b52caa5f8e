"""The admin home's key figures for a staff member's tenant, each linking to the page it summarizes.

Each figure is the one that page shows, from the same source: MRR of the last closed month as the
revenue dashboard reads it (``monthly_figures``), invoices awaiting review (drafts), invoice emails
that failed, stale deals (``OpportunityQuerySet.stale``, the pipeline's flag) and customers at risk
of churning today (``at_risk_customers``, the churn-risk page's list). A bounded number of queries,
whatever the tenant's size.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from billing.models import Invoice, InvoiceDelivery
from customers.periods import last_closed_month, tenant_today
from portal.dashboards.common import monthly_figures
from portal.dashboards.panels import Display
from revenue.economics.churn_risk import RISK_THRESHOLD, at_risk_customers
from revenue.models import Opportunity
from revenue.selectors.common import MissingExchangeRate


def _admin_list(model, query: str) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") + query


def key_figures(tenant) -> list[dict]:
    """``[{"key", "label", "value", "note", "url"}]`` for ``tenant``, values formatted in its locale.
    MRR is shown as a problem note instead of a value when an exchange rate is missing."""
    show = Display(tenant)
    closed = last_closed_month(tenant)
    try:
        rows, _source = monthly_figures(tenant, closed, closed)
        mrr = show.money(rows[-1]["mrr_end"])
    except MissingExchangeRate as exc:
        mrr = str(exc)
    drafts = Invoice.objects.for_tenant(tenant).filter(status=Invoice.Status.DRAFT).count()
    failed = InvoiceDelivery.objects.for_tenant(tenant).filter(status=InvoiceDelivery.Status.FAILED).count()
    stale = Opportunity.objects.for_tenant(tenant).stale().count()
    at_risk = len(at_risk_customers(tenant=tenant, as_of=tenant_today(tenant), limit=None))
    return [
        {"key": "mrr", "label": _("MRR"), "value": mrr, "note": show.month(closed),
         "url": reverse("dashboards:revenue")},
        {"key": "drafts", "label": _("Invoices awaiting review"), "value": show.number(drafts),
         "note": _("draft invoices"), "url": _admin_list(Invoice, "?status__exact=draft")},
        {"key": "failed_deliveries", "label": _("Failed deliveries"), "value": show.number(failed),
         "note": _("invoice emails that failed"), "url": _admin_list(InvoiceDelivery, "?status__exact=failed")},
        {"key": "stale", "label": _("Stale deals"), "value": show.number(stale),
         "note": _("open, above 60 %, untouched for 7 days"), "url": _admin_list(Opportunity, "?stale=yes")},
        {"key": "at_risk", "label": _("At-risk customers"), "value": show.number(at_risk),
         "note": _("churn-risk score %(threshold)s or more") % {"threshold": show.number(RISK_THRESHOLD)},
         "url": reverse("economics:churn_risk")},
    ]
