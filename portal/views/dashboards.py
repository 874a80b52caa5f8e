"""Staff dashboard views: one page per dashboard of ``portal.dashboards.pages.PAGES`` and each
panel's table as CSV at ``<page>/<panel>.csv`` with the page's query.

Every page is server-rendered for ``request.tenant`` (a staff member's active membership) in the
member's language, money and dates the tenant's way (``portal.staff_language``). Bad query parameters give a 400 page naming the problem; a missing exchange rate
a 409 page.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse

from portal.dashboards.pages import PAGES, URL_NAMES
from portal.dashboards.panels import BadRequest, Display, csv_value
from portal.dashboards.unit_economics import DIMENSIONS
from revenue.selectors.common import MissingExchangeRate

CHART_JS = "vendor/chart.js/chart.umd.min.js"
# Panels whose chart reads better across the whole page (long time axes, many columns).
WIDE_PANELS = {"mrr", "forecast", "by_period", "arpa", "stale"}


def staff_view(view):
    """Login required (else the login page); a staff membership of a tenant required (else 403).
    The view speaks the member's language with the tenant's money and dates (``portal.staff_language``)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff or request.membership is None:
            return render(request, "portal/no_access.html", status=403)
        return view(request, request.tenant, *args, **kwargs)

    return wrapper


def staff_context(request) -> dict:
    """What staff_base.html needs: the dashboard nav and, when that page exists, the profitability link."""
    try:
        economics_url = reverse("economics:profitability")
    except NoReverseMatch:
        economics_url = None
    return {
        "dashboard_nav": [(reverse(f"dashboards:{URL_NAMES[key]}"), page.title(), key) for key, page in PAGES.items()],
        "economics_url": economics_url,
    }


def panel_context(p, show: Display, csv_url: str | None = None) -> dict:
    """What ``portal/dashboards/_panel.html`` draws of one Panel: its cells formatted by ``show``,
    its charts with the locale hints; the CSV link only when ``csv_url`` is given."""
    return {
        "key": p.key,
        "title": p.title,
        "note": p.note,
        "wide": len(p.charts) > 1 or p.key in WIDE_PANELS,
        "columns": p.columns,
        "rows": [[show.cell(show.month(v) if isinstance(v, date) else v, c.kind)
                  for v, c in zip(row, p.columns, strict=True)] for row in p.rows],
        "charts": [{**chart, **show.chart_hints(), "id": f"chart-{p.key}-{i}"} for i, chart in enumerate(p.charts)],
        "csv_url": csv_url,
    }


def _build(request, tenant, key):
    page = PAGES.get(key)
    if page is None:
        raise Http404
    show = Display(tenant)
    return page, show, page.build(request, tenant, show)


def _problem(request, message: str, status: int):
    return render(request, "portal/dashboards/problem.html", {**staff_context(request), "message": message}, status=status)


@staff_view
def dashboard(request, tenant, page_key: str):
    try:
        page, show, built = _build(request, tenant, page_key)
    except BadRequest as exc:
        return _problem(request, str(exc), 400)
    except MissingExchangeRate as exc:
        return _problem(request, str(exc), 409)
    panels = [
        panel_context(p, show, reverse("dashboards:export", args=[page_key, p.key]) + (
            f"?{request.GET.urlencode()}" if request.GET else ""))
        for p in built["panels"]
    ]
    context = {
        **staff_context(request),
        "page_key": page_key,
        "page_title": page.title(),
        "controls": page.controls,
        "kpis": built["kpis"],
        "definitions": built.get("definitions", []),
        "panels": panels,
        "chart_js": CHART_JS,
        "currency": tenant.reporting_currency,
    }
    if "window" in built:
        context["window_from"], context["window_to"] = (m.isoformat()[:7] for m in built["window"])
    if "month" in built:
        context["month_value"] = built["month"].isoformat()[:7]
    if "dimension" in built:
        context["dimension"] = built["dimension"]
        context["dimensions"] = [(k, label()) for k, label in DIMENSIONS.items()]
    return render(request, "portal/dashboards/page.html", context)


@staff_view
def export(request, tenant, page_key: str, panel_key: str):
    """One panel's table as CSV (money to its minor unit, ratios to 4 places, months as YYYY-MM)."""
    try:
        _page, _show, built = _build(request, tenant, page_key)
    except BadRequest as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    except MissingExchangeRate as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    panel = next((p for p in built["panels"] if p.key == panel_key), None)
    if panel is None:
        raise Http404
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{tenant.slug}-{page_key}-{panel_key}.csv"'
    writer = csv.writer(response)
    writer.writerow([c.key for c in panel.columns])
    for row in panel.rows:
        writer.writerow([_csv_safe(csv_value(v, c.kind, tenant.reporting_currency)) for v, c in zip(row, panel.columns, strict=True)])
    return response


def _csv_safe(text: str) -> str:
    # Customer and deal names are typed by people: keep a spreadsheet from reading them as formulas.
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def url_patterns():
    return [
        path("", dashboard, {"page_key": "revenue"}, name="revenue"),
        path("retention/", dashboard, {"page_key": "retention"}, name="retention"),
        path("unit-economics/", dashboard, {"page_key": "unit-economics"}, name="unit_economics"),
        path("concentration/", dashboard, {"page_key": "concentration"}, name="concentration"),
        path("pipeline/", dashboard, {"page_key": "pipeline"}, name="pipeline"),
        path("forecast/", dashboard, {"page_key": "forecast"}, name="forecast"),
        path("<slug:page_key>/<slug:panel_key>.csv", export, name="export"),
    ]
