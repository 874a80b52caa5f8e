"""Staff pages for customer economics: profitability (margins, losers, advice), customer ROI, churn
risk (with its back-test), usage anomalies and pricing what-ifs.

Figures come from ``revenue.economics`` only; templates round them for display. Windows are
``?from=YYYY-MM&to=YYYY-MM`` (default: the twelve months ending with the last closed month); bad
input gives the dashboards' 400 page, a missing exchange rate its 409 page. The what-if page is
the one that writes: a POST asks a worker to compute it.
"""

from datetime import date, timedelta

from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse

from customers.models import Customer
from customers.periods import PeriodError, add_months, last_closed_month, parse_month, tenant_today
from portal.views.dashboards import _problem, staff_context, staff_view
from revenue.economics.anomalies import recent_alerts
from revenue.economics.churn_risk import RISK_THRESHOLD, churn_risk_overview
from revenue.economics.profitability import cost_data_months, margins, profitability
from revenue.economics.roi import customer_roi, customers_roi, savings_customers
from revenue.economics.whatif import MAX_MONTHS as MAX_WHATIF_MONTHS
from revenue.economics.whatif import whatif_is_stale, whatif_latest, whatif_run_request
from revenue.figures import cost_coverage_note, figure_definitions
from revenue.models import AnomalyRule, PricePlan, WhatIfRun
from revenue.selectors.common import MetricError, MissingExchangeRate


def _window(request, tenant) -> tuple[date, date]:
    last = parse_month(request.GET["to"]) if request.GET.get("to") else last_closed_month(tenant)
    first = parse_month(request.GET["from"]) if request.GET.get("from") else add_months(last, -11)
    if first > last:
        raise MetricError("'from' must not be after 'to'.")
    return first, last


def _page(request, template, build):
    try:
        context = build()
    except MissingExchangeRate as exc:
        return _problem(request, str(exc), 409)
    except MetricError as exc:
        return _problem(request, str(exc), 400)
    except PeriodError as exc:
        return _problem(request, " ".join(exc.messages), 400)
    return render(request, template, {**staff_context(request), "page_key": "economics", **context})


PROFITABILITY_FIGURES = ["invoiced_revenue", "cost_to_serve", "gross_margin", "revenue_at_risk", "customers_invoiced"]
WHATIF_FIGURES = ["whatif_customers", "whatif_revenue", "whatif_actual", "whatif_billed", "whatif_margin"]


@staff_view
def profitability_page(request, tenant):
    def build():
        first, last = _window(request, tenant)
        computed = margins(tenant=tenant, first=first, last=last)
        return {
            "window": (first, last),
            "margins": computed,
            "profitability": profitability(tenant=tenant, first=first, last=last, computed=computed),
            "definitions": figure_definitions(
                PROFITABILITY_FIGURES, tenant=tenant, window=(first, last), cost_months=computed["cost_months"]),
            "cost_note": cost_coverage_note(tenant=tenant, window=(first, last), cost_months=computed["cost_months"]),
        }

    return _page(request, "portal/economics/profitability.html", build)


@staff_view
def roi_list(request, tenant):
    def build():
        first, last = _window(request, tenant)
        customers = list(savings_customers(tenant=tenant))
        roi = customers_roi(tenant=tenant, customers=customers, first=first, last=last)
        rows = [{"customer": customer, **roi[customer.pk]["cumulative"]} for customer in customers]
        return {"window": (first, last), "rows": rows}

    return _page(request, "portal/economics/roi_list.html", build)


@staff_view
def roi_detail(request, tenant, customer_id: int):
    customer = Customer.objects.for_tenant(tenant).filter(pk=customer_id).first()
    if customer is None:
        raise Http404

    def build():
        first, last = _window(request, tenant)
        return {"window": (first, last), "customer": customer,
                "roi": customer_roi(tenant=tenant, customer=customer, first=first, last=last)}

    return _page(request, "portal/economics/roi_detail.html", build)


def _as_of(request, tenant) -> date:
    raw = request.GET.get("as_of")
    if not raw:
        return tenant_today(tenant)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise MetricError(f"Write the day as YYYY-MM-DD (got {raw[:20]!r}).") from None


def _count(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(name, "")
    return _count_of(raw, name, low, high) if raw else default


def _count_of(raw: str, name: str, low: int, high: int) -> int:
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise MetricError(f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


@staff_view
def churn_risk_page(request, tenant):
    def build():
        as_of = _as_of(request, tenant)
        months = _count(request, "months", 12, 1, 24)
        return {
            "definitions": figure_definitions(["customer_mrr"], tenant=tenant),
            "as_of": as_of, "threshold": RISK_THRESHOLD, "months": months,
            **churn_risk_overview(tenant=tenant, as_of=as_of, months=months, limit=100),
        }

    return _page(request, "portal/economics/churn_risk.html", build)


@staff_view
def anomalies_page(request, tenant):
    def build():
        since = tenant_today(tenant) - timedelta(days=_count(request, "days", 30, 1, 366))
        return {"since": since, "alerts": recent_alerts(tenant=tenant, since=since),
                "rules": AnomalyRule.objects.for_tenant(tenant).order_by("name")}

    return _page(request, "portal/economics/anomalies.html", build)


WHATIF_REFRESH_SECONDS = 3


@staff_view
def whatif_page(request, tenant):
    """The what-if of the last N closed months: computed by a worker on request (POST), shown with
    when it was computed; the page reloads itself while the computation runs."""
    if request.method == "POST":
        try:
            months = _count_of(request.POST.get("months", ""), "months", 1, MAX_WHATIF_MONTHS)
            whatif_run_request(tenant=tenant, months=months, user=request.user)
        except MetricError as exc:
            return _problem(request, str(exc), 400)
        return redirect(f"{reverse('economics:whatif')}?months={months}")

    def build():
        months = _count(request, "months", 3, 1, MAX_WHATIF_MONTHS)
        run = whatif_latest(tenant=tenant, months=months)
        stale = run is not None and whatif_is_stale(run)
        done = run is not None and run.status == WhatIfRun.Status.DONE
        if done:
            window = (run.figures["whatif"]["from"], run.figures["whatif"]["to"])
            cost_months = cost_data_months(tenant=tenant, first=window[0], last=window[1])
            definitions = figure_definitions(WHATIF_FIGURES, tenant=tenant, window=window, cost_months=cost_months)
        else:
            definitions, cost_months = [], []
        return {
            "definitions": definitions, "has_cost_data": bool(cost_months),
            "months": months, "run": run, "stale": stale,
            "outdated": done and run.figures["whatif"]["to"] != last_closed_month(tenant),
            "refresh_seconds": WHATIF_REFRESH_SECONDS if run is not None and run.is_working and not stale else None,
            "catalog_size": PricePlan.objects.for_tenant(tenant).count(),
            **(run.figures if done else {}),
        }

    return _page(request, "portal/economics/whatif.html", build)


def url_patterns():
    return [
        path("", profitability_page, name="profitability"),
        path("roi/", roi_list, name="roi_list"),
        path("roi/<int:customer_id>/", roi_detail, name="roi_detail"),
        path("churn-risk/", churn_risk_page, name="churn_risk"),
        path("anomalies/", anomalies_page, name="anomalies"),
        path("what-if/", whatif_page, name="whatif"),
    ]
