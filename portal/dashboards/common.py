"""Query parameters shared by the dashboards and the monthly figures the revenue and retention
pages read (frozen MetricSnapshot figures when every month asked for is closed, else live)."""

from __future__ import annotations

from datetime import date

from django.utils.translation import gettext as _

from customers.periods import PeriodError, add_months, last_closed_month, months_between, parse_month
from portal.dashboards.panels import BadRequest
from revenue.selectors import frozen

MAX_MONTHS = 36
DEFAULT_MONTHS = 12


def month_param(request, name: str, default: date) -> date:
    raw = request.GET.get(name)
    if not raw:
        return default
    try:
        return parse_month(raw)
    except PeriodError as exc:
        raise BadRequest(" ".join(exc.messages)) from None


def window(request, tenant) -> tuple[date, date]:
    """``from``/``to`` as YYYY-MM; default the twelve months ending with the last closed month."""
    closed = last_closed_month(tenant)
    last = month_param(request, "to", closed)
    first = month_param(request, "from", add_months(last, -(DEFAULT_MONTHS - 1)))
    if first > last:
        raise BadRequest(_("The first month must not be after the last."))
    if len(months_between(first, last)) > MAX_MONTHS:
        raise BadRequest(_("Ask for at most %(count)s months at once.") % {"count": MAX_MONTHS})
    return first, last


def monthly_figures(tenant, first: date, last: date) -> tuple[list[dict], str]:
    """retention_series figures per month, frozen when every month is in MetricSnapshot."""
    return frozen.monthly_figures(tenant=tenant, first=first, last=last)


def source_note(source: str) -> str:
    if source == "snapshot":
        return _("Closed months, as frozen at month-end.")
    return _("Computed live from contracts.")
