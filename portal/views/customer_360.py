"""The customer 360 page at ``/staff/customers/<id>/``: one customer of the staff member's tenant
(another tenant's customer, or no such customer, is a 404 that names nothing), its figures built by
``portal.dashboards.customer_360``. ``?from=YYYY-MM&to=YYYY-MM`` sets the MRR and margin window
(default: the twelve months ending with the last closed month); bad input gives a 400 page.
"""

from django.http import Http404

from customers.models import Customer
from customers.periods import tenant_today
from portal.dashboards.customer_360 import customer_360
from portal.dashboards.panels import Display
from portal.views.dashboards import CHART_JS, panel_context, staff_view
from portal.views.economics import _page, _window


@staff_view
def customer_360_page(request, tenant, customer_id: int):
    customer = Customer.objects.for_tenant(tenant).select_related("account_manager").filter(pk=customer_id).first()
    if customer is None:
        raise Http404

    def build():
        first, last = _window(request, tenant)
        show = Display(tenant)
        context = customer_360(tenant=tenant, customer=customer, first=first, last=last,
                               today=tenant_today(tenant), show=show)
        context["panels"] = [panel_context(panel, show) for panel in context["panels"]]
        return {**context, "page_key": "customer_360", "chart_js": CHART_JS, "currency": tenant.reporting_currency,
                "window_from": first.isoformat()[:7], "window_to": last.isoformat()[:7]}

    return _page(request, "portal/customer_360.html", build)
