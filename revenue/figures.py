"""What each shared figure means: one name and one line of definition per figure, in one place.

The staff dashboards, the economics pages, the monthly report and the metrics API
(``/api/v1/metrics/definitions/``) all read their revenue, customer-count and margin labels from
here, so a figure has the same name and the same definition wherever it is shown. Two figures that
measure different things have different names here:

- *Contracted revenue* (concentration, unit economics' revenue mix) is recognized from contracts:
  each month's MRR at month end plus one-time lines; no usage, no credit notes, no invoices needed.
- *Invoiced revenue* (profitability and margins) is what finalized and paid invoices billed, net of
  VAT and credit notes, usage included; months without invoices count nothing.

Definitions are lazy translations with ``%(currency)s``, ``%(month)s``, ``%(window)s`` and
``%(cost_window)s`` placeholders; ``figure_definition`` fills them in the tenant's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from babel.dates import format_date
from django.utils.translation import gettext_lazy as _

from billing import formatting
from customers.models import Tenant
from customers.periods import add_months, month_start, months_between


@dataclass(frozen=True)
class Figure:
    name: str
    definition: str


FIGURES: dict[str, Figure] = {
    "mrr": Figure(_("MRR"), _(
        "MRR: active recurring and per-seat contract lines at the end of %(month)s, per month, after discounts; "
        "usage and one-time lines excluded; in %(currency)s.")),
    "arr": Figure(_("ARR"), _("ARR: 12 × MRR at the end of %(month)s, in %(currency)s.")),
    "customers_with_mrr": Figure(_("Customers with MRR"), _(
        "Customers with MRR: customers whose MRR is above 0 at the end of %(month)s.")),
    "arpa": Figure(_("ARPA"), _("ARPA: MRR ÷ customers with MRR at the end of %(month)s, in %(currency)s.")),
    "contracted_revenue": Figure(_("Contracted revenue"), _(
        "Contracted revenue: each month's MRR at month end summed over %(window)s, plus one-time contract lines "
        "starting in it; usage and credit notes excluded; in %(currency)s.")),
    "customers_with_contracted_revenue": Figure(_("Customers with contracted revenue"), _(
        "Customers with contracted revenue: customers whose contracted revenue over %(window)s is above 0.")),
    "invoiced_revenue": Figure(_("Invoiced revenue"), _(
        "Invoiced revenue: finalized and paid invoices' net amounts (before VAT) for periods in %(window)s, "
        "less their credit notes, fees billed for several months spread over them, usage included; "
        "in %(currency)s.")),
    "usage_revenue": Figure(_("Usage revenue"), _(
        "Usage revenue: usage charges of finalized and paid invoices for periods in %(window)s, reported beside "
        "MRR; in %(currency)s.")),
    "historical_clv": Figure(_("Historical CLV"), _(
        "Historical CLV: revenue to date per customer with revenue, to the end of %(month)s: invoiced (finalized "
        "and paid invoices, net of discounts and credit notes, before VAT) when the tenant has invoices, else "
        "contracted; in %(currency)s.")),
    "tcv": Figure(_("TCV"), _(
        "TCV: the value of every signed contract over its whole term (evergreen contracts: 12 months), "
        "in %(currency)s.")),
    "customers_invoiced": Figure(_("Customers invoiced or served"), _(
        "Customers invoiced or served: customers with invoiced revenue or cost to serve in %(window)s.")),
    "cost_to_serve": Figure(_("Cost to serve"), _(
        "Cost to serve: priced AI usage plus entered and imported costs in %(window)s, in %(currency)s.")),
    "gross_margin": Figure(_("Gross margin"), _(
        "Gross margin: invoiced revenue − cost to serve of the customers and months with cost data "
        "(%(cost_window)s); the rate is that margin ÷ that revenue.")),
    "committed_mrr": Figure(_("Committed MRR"), _(
        "Committed MRR: MRR at each month end of %(window)s from contracts as they stand, auto-renewing "
        "contracts renewed; no pipeline; in %(currency)s.")),
    "customer_mrr": Figure(_("MRR"), _(
        "MRR: the customer's MRR at the end of the last month closed on the day asked for, in %(currency)s.")),
    "whatif_revenue": Figure(_("Re-priced revenue"), _(
        "Re-priced revenue: each customer's fees and usage of %(window)s priced under the plan by the billing "
        "engine, net of VAT; no invoice is created; in %(currency)s.")),
    "whatif_actual": Figure(_("Actual"), _(
        "Actual: the same months priced under the customers' own contracts, as the month-end run prices them.")),
    "whatif_billed": Figure(_("Billed"), _(
        "Billed: net (before VAT) of the finalized and paid invoices for periods in %(window)s, in %(currency)s.")),
    "whatif_margin": Figure(_("Margin"), _(
        "Margin: re-priced revenue − cost to serve of the same customers and months; months without cost data "
        "count no cost (cost data: %(cost_window)s).")),
    "whatif_customers": Figure(_("Customers"), _(
        "Customers: customers invoiced in %(window)s in the plan's currency.")),
    "revenue_at_risk": Figure(_("Revenue at risk / month"), _(
        "Revenue at risk: monthly invoiced revenue of the unprofitable and thin-margin customers, in %(currency)s.")),
}


def trailing_window(month: date, months: int = 12) -> tuple[date, date]:
    """The first and last month of the ``months`` months ending with ``month`` (its month start)."""
    last = month_start(month)
    return add_months(last, 1 - months), last


def month_span(tenant: Tenant, months: list[date]) -> str:
    """``Jun–Nov 2026``, ``Dec 2025–Nov 2026`` or ``Nov 2026`` in the tenant's language; ``—`` for no months."""
    if not months:
        return "—"
    locale = formatting.locale_for(_language(tenant))
    first, last = months[0], months[-1]
    if first == last:
        return format_date(last, "MMM yyyy", locale=locale)
    start = format_date(first, "MMM" if first.year == last.year else "MMM yyyy", locale=locale)
    return f"{start}–{format_date(last, 'MMM yyyy', locale=locale)}"


def _language(tenant: Tenant) -> str:
    return tenant.locale if tenant.locale in formatting.LOCALES else formatting.DEFAULT_LANGUAGE


def figure_definition(
    key: str, *, tenant: Tenant, month: date | None = None, window: tuple[date, date] | None = None,
    cost_months: list[date] | None = None,
) -> str:
    """The one-line definition of figure ``key`` for ``tenant`` (its reporting currency), the month
    ``month`` and the window ``window`` (first and last month), in the active language. ``cost_months``:
    the months with cost data, for the margin. Raises KeyError for an unknown figure."""
    first, last = window if window else (month, month)
    month = month or last
    return str(FIGURES[key].definition) % {
        "currency": tenant.reporting_currency,
        "month": month_span(tenant, [month]) if month else "—",
        "window": month_span(tenant, [first, last]) if first else "—",
        "cost_window": month_span(tenant, cost_months or []),
    }


def figure_definitions(keys, **context) -> list[str]:
    """The definitions of ``keys`` in order (see ``figure_definition``)."""
    return [figure_definition(key, **context) for key in keys]


def cost_coverage_note(*, tenant: Tenant, window: tuple[date, date], cost_months: list[date]) -> str:
    """What the margin covers when some months of ``window`` have no cost data ("" when all have)."""
    months = months_between(*window)
    if cost_months == months:
        return ""
    if not cost_months:
        return _("No cost data in %(window)s: no margin is shown.") % {"window": month_span(tenant, months)}
    return _("Cost data from %(start)s; margin over %(span)s.") % {
        "start": month_span(tenant, cost_months[:1]), "span": month_span(tenant, cost_months)}
