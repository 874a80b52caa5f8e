"""The customer portal's ROI page: what a savings-billed customer got for what they paid.

For ``request.customer`` only, in the customer's language (``portal.views.customer_portal.customer_view``); the
figures are ``revenue.economics.roi.customer_roi`` over the twelve months ending with the last
closed month. A customer not billed on savings sees a short explanation instead of a table.
"""

from django.shortcuts import render

from customers.periods import add_months, last_closed_month
from portal.views.customer_portal import customer_view
from revenue.economics.roi import customer_roi, savings_metrics


@customer_view
def roi(request):
    tenant, customer = request.tenant, request.customer
    context = {"customer": customer, "roi": None}
    if savings_metrics(tenant=tenant, customer=customer):
        last = last_closed_month(tenant)
        context["roi"] = customer_roi(tenant=tenant, customer=customer, first=add_months(last, -11), last=last)
    return render(request, "portal/roi.html", context)
