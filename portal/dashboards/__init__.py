"""Staff dashboards: revenue, retention, unit economics, concentration, pipeline and forecast.

Every page is server-rendered for ``request.tenant`` (a staff member's active membership) in the
tenant's language. Each page is a list of *panels*; a panel has a table (the figures, always shown)
and usually a chart drawn by ``static/portal/dashboards.js`` from JSON embedded with
``json_script``; every table downloads as CSV at ``<page>/<panel>.csv`` with the page's query.

Figures come from ``revenue.selectors`` only; this module picks, labels and rounds them for
display (money to cents, ratios to 4 places in CSV, ROUND_HALF_UP). The monthly figures of closed
months are read from MetricSnapshot when every month asked for is frozen (one query, whatever the
number of contracts), else computed live. Queries per page do not grow with customers or contracts.

Bad query parameters give a 400 page naming the problem; a missing exchange rate a 409 page.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import wraps

from babel.dates import format_date
from babel.numbers import format_decimal
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse
from django.utils import translation
from django.utils.translation import gettext as _

from billing import formatting
from customers.models import Customer
from revenue.api_metrics import snapshots_for
from revenue.models import Opportunity
from revenue.reports import coverage_reason
from revenue.selectors.clv import clv_by_segment, unit_economics
from revenue.selectors.common import (
    SEGMENT_COLUMNS,
    MetricError,
    MissingExchangeRate,
    add_months,
    last_closed_month,
    months_between,
    parse_month,
    tenant_today,
)
from revenue.selectors.concentration import concentration_indices, trailing_revenue
from revenue.selectors.forecast import revenue_forecast
from revenue.selectors.pipeline import pipeline_coverage, pipeline_summary, quarter_of
from revenue.selectors.retention import retention_series

CENT = Decimal("0.01")
RATIO = Decimal("0.0001")
MAX_MONTHS = 36
DEFAULT_MONTHS = 12
TOP_CUSTOMERS = 10
FORECAST_RUNS = 10_000
CHART_JS = "vendor/chart.js/chart.umd.min.js"
# Panels whose chart reads better across the whole page (long time axes, many columns).
WIDE_PANELS = {"mrr", "forecast", "by_period", "arpa", "stale"}

# Column kinds: how a cell is shown and how it is written to CSV.
TEXT, MONEY, PERCENT, COUNT, MULTIPLE, MONTHS = "text", "money", "percent", "count", "multiple", "months"


@dataclass
class Column:
    key: str
    title: str
    kind: str = TEXT


@dataclass
class Panel:
    key: str
    title: str
    columns: list[Column]
    rows: list[list]
    charts: list[dict] = field(default_factory=list)
    note: str = ""


@dataclass
class Page:
    key: str
    title: Callable[[], str]
    build: Callable
    controls: str  # "window", "month", "none"


class Display:
    """Formats figures in one language and currency; shared by tables, KPIs and chart hints."""

    def __init__(self, tenant):
        self.language = tenant.locale if tenant.locale in formatting.LOCALES else formatting.DEFAULT_LANGUAGE
        self.locale = formatting.locale_for(self.language)
        self.currency = tenant.reporting_currency

    def money(self, amount) -> str:
        return "—" if amount is None else formatting.format_money(amount, self.currency, self.language)

    def percent(self, ratio) -> str:
        if ratio is None:
            return "—"
        number = format_decimal((ratio * 100).quantize(Decimal("0.1"), ROUND_HALF_UP), format="#,##0.0", locale=self.locale)
        return f"{number}\u00a0%" if self.language == "sv" else f"{number}%"

    def number(self, value, pattern="#,##0") -> str:
        return "—" if value is None else format_decimal(value, format=pattern, locale=self.locale)

    def month(self, month: date) -> str:
        return format_date(month, "MMM yyyy", locale=self.locale)

    def day(self, day) -> str:
        return formatting.format_day(day, self.language)

    def cell(self, value, kind: str) -> dict:
        if kind == MONEY:
            text = self.money(value)
        elif kind == PERCENT:
            text = self.percent(value)
        elif kind == COUNT:
            text = self.number(value)
        elif kind == MULTIPLE:
            text = "—" if value is None else self.number(value.quantize(CENT, ROUND_HALF_UP), "#,##0.00") + "×"
        elif kind == MONTHS:
            text = "—" if value is None else self.number(value.quantize(Decimal("0.1"), ROUND_HALF_UP), "#,##0.0")
        else:
            text = "" if value is None else str(value)
        return {"text": text, "numeric": kind != TEXT, "negative": kind == MONEY and value is not None and value < 0}

    def chart_hints(self) -> dict:
        return {"currency": self.currency, "locale": self.locale.replace("_", "-")}


def csv_value(value, kind: str) -> str:
    """Money to cents, ratios to 4 places (ROUND_HALF_UP), like the metrics API."""
    if value is None:
        return ""
    if kind == MONEY:
        return str(value.quantize(CENT, ROUND_HALF_UP))
    if kind in (PERCENT, MULTIPLE, MONTHS):
        return str(value.quantize(RATIO, ROUND_HALF_UP))
    if isinstance(value, date):
        return value.isoformat()[:7] if value.day == 1 else value.isoformat()
    return str(value)


def series(values, places=CENT) -> list[str | None]:
    """Chart values as decimal strings (the browser only draws them)."""
    return [None if v is None else str(v.quantize(places, ROUND_HALF_UP)) for v in values]


class BadRequest(Exception):
    """A query parameter the page cannot use; the message is shown."""


# --- parameters -----------------------------------------------------------------------------


def _month_param(request, name: str, default: date) -> date:
    raw = request.GET.get(name)
    if not raw:
        return default
    try:
        return parse_month(raw)
    except MetricError as exc:
        raise BadRequest(str(exc)) from None


def window(request, tenant) -> tuple[date, date]:
    """``from``/``to`` as YYYY-MM; default the twelve months ending with the last closed month."""
    closed = last_closed_month(tenant)
    last = _month_param(request, "to", closed)
    first = _month_param(request, "from", add_months(last, -(DEFAULT_MONTHS - 1)))
    if first > last:
        raise BadRequest(_("The first month must not be after the last."))
    if len(months_between(first, last)) > MAX_MONTHS:
        raise BadRequest(_("Ask for at most %(count)s months at once.") % {"count": MAX_MONTHS})
    return first, last


def monthly_figures(tenant, first: date, last: date) -> tuple[list[dict], str]:
    """retention_series figures per month, frozen when every month is in MetricSnapshot."""
    frozen = snapshots_for(tenant, months_between(first, last), None, last_closed_month(tenant))
    if frozen:
        return frozen, "snapshot"
    return retention_series(tenant=tenant, first=first, last=last), "live"


def source_note(source: str) -> str:
    if source == "snapshot":
        return _("Closed months, as frozen at month-end.")
    return _("Computed live from contracts.")


# --- pages ----------------------------------------------------------------------------------


def revenue_page(request, tenant, show: Display) -> dict:
    first, last = window(request, tenant)
    rows, source = monthly_figures(tenant, first, last)
    labels = [show.month(r["month"]) for r in rows]
    latest = rows[-1]
    kpis = [
        (_("MRR"), show.money(latest["mrr_end"]), show.month(latest["month"])),
        (_("ARR"), show.money(12 * latest["mrr_end"]), _("12 × MRR")),
        (_("Customers"), show.number(latest["customers_end"]), _("with MRR")),
        (_("ARPA"), show.money(latest["arpa"]), _("MRR per customer")),
        (_("Quick ratio"), show.cell(latest["quick_ratio"], MULTIPLE)["text"], _("gained / lost MRR")),
    ]
    trend = Panel(
        "mrr",
        _("MRR and ARR"),
        [Column("month", _("Month")), Column("mrr", _("MRR"), MONEY), Column("arr", _("ARR"), MONEY),
         Column("customers", _("Customers"), COUNT), Column("arpa", _("ARPA"), MONEY)],
        [[r["month"], r["mrr_end"], 12 * r["mrr_end"], r["customers_end"], r["arpa"]] for r in rows],
        charts=[{
            "kind": "trend", "labels": labels, "format": "money",
            "series": [
                {"label": _("MRR"), "values": series(r["mrr_end"] for r in rows), "color": "blue", "fill": True},
                {"label": _("Customers"), "values": [str(r["customers_end"]) for r in rows], "color": "grey",
                 "type": "bar", "axis": "y2", "format": "count"},
            ],
        }],
        note=source_note(source),
    )
    steps = ["mrr_start", "new", "reactivation", "expansion", "contraction", "churn", "mrr_end"]
    step_titles = [_("MRR at start"), _("New"), _("Reactivation"), _("Expansion"), _("Contraction"), _("Churn"),
                   _("MRR at end")]
    movements = Panel(
        "movements",
        _("MRR movements"),
        [Column("month", _("Month"))] + [Column(k, t, MONEY) for k, t in zip(steps, step_titles, strict=True)]
        + [Column("quick_ratio", _("Quick ratio"), MULTIPLE)],
        [[r["month"], *(r[k] for k in steps), r["quick_ratio"]] for r in rows],
        charts=[
            {
                "kind": "waterfall", "title": _("Bridge of one month"), "steps": step_titles,
                "months": [{"label": label, "values": series(r[k] for k in steps)} for label, r in zip(labels, rows, strict=True)],
            },
            {
                "kind": "stacked", "title": _("Movements per month"), "labels": labels, "format": "money",
                "series": [
                    {"label": _("New"), "values": series(r["new"] for r in rows), "color": "teal"},
                    {"label": _("Reactivation"), "values": series(r["reactivation"] for r in rows), "color": "purple"},
                    {"label": _("Expansion"), "values": series(r["expansion"] for r in rows), "color": "green"},
                    {"label": _("Contraction"), "values": series(-r["contraction"] for r in rows), "color": "orange"},
                    {"label": _("Churn"), "values": series(-r["churn"] for r in rows), "color": "red"},
                    {"label": _("Net new MRR"), "values": series(r["mrr_end"] - r["mrr_start"] for r in rows),
                     "color": "navy", "type": "line"},
                ],
            },
        ],
        note=_("MRR at end = MRR at start + new + reactivation + expansion − contraction − churn."),
    )
    return {"kpis": kpis, "panels": [trend, movements], "window": (first, last)}


def retention_page(request, tenant, show: Display) -> dict:
    first, last = window(request, tenant)
    rows, source = monthly_figures(tenant, first, last)
    labels = [show.month(r["month"]) for r in rows]
    latest = rows[-1]
    kpis = [
        (_("NRR"), show.percent(latest["nrr"]), _("12 months")),
        (_("GRR"), show.percent(latest["grr"]), _("12 months")),
        (_("Customer churn"), show.percent(latest["customer_churn_rate"]), show.month(latest["month"])),
        (_("Gross MRR churn"), show.percent(latest["gross_mrr_churn"]), show.month(latest["month"])),
        (_("ARPA"), show.money(latest["arpa"]), show.month(latest["month"])),
    ]
    ratio = Decimal("0.0001")
    retention = Panel(
        "retention",
        _("Net and gross revenue retention (12 months)"),
        [Column("month", _("Month")), Column("nrr", _("NRR"), PERCENT), Column("grr", _("GRR"), PERCENT)],
        [[r["month"], r["nrr"], r["grr"]] for r in rows],
        charts=[{
            "kind": "trend", "labels": labels, "format": "percent",
            "series": [
                {"label": _("NRR"), "values": series((r["nrr"] for r in rows), ratio), "color": "blue"},
                {"label": _("GRR"), "values": series((r["grr"] for r in rows), ratio), "color": "teal"},
            ],
        }],
        note=source_note(source),
    )
    churn = Panel(
        "churn",
        _("Churn"),
        [Column("month", _("Month")), Column("customers_start", _("Customers at start"), COUNT),
         Column("churned_customers", _("Churned customers"), COUNT),
         Column("customer_churn_rate", _("Customer churn"), PERCENT),
         Column("gross_mrr_churn", _("Gross MRR churn"), PERCENT), Column("net_mrr_churn", _("Net MRR churn"), PERCENT)],
        [[r["month"], r["customers_start"], r["churned_customers"], r["customer_churn_rate"], r["gross_mrr_churn"],
          r["net_mrr_churn"]] for r in rows],
        charts=[{
            "kind": "trend", "labels": labels, "format": "percent",
            "series": [
                {"label": _("Customer churn"), "values": series((r["customer_churn_rate"] for r in rows), ratio), "color": "red"},
                {"label": _("Gross MRR churn"), "values": series((r["gross_mrr_churn"] for r in rows), ratio), "color": "orange"},
                {"label": _("Net MRR churn"), "values": series((r["net_mrr_churn"] for r in rows), ratio), "color": "purple",
                 "dash": True},
            ],
        }],
        note=_("Net MRR churn below zero means expansion outgrew what was lost."),
    )
    arpa = Panel(
        "arpa",
        _("Average revenue per account"),
        [Column("month", _("Month")), Column("arpa", _("ARPA"), MONEY), Column("customers", _("Customers"), COUNT)],
        [[r["month"], r["arpa"], r["customers_end"]] for r in rows],
        charts=[{
            "kind": "trend", "labels": labels, "format": "money",
            "series": [{"label": _("ARPA"), "values": series(r["arpa"] for r in rows), "color": "navy", "fill": True}],
        }],
    )
    return {"kpis": kpis, "panels": [retention, churn, arpa], "window": (first, last)}


DIMENSIONS = {
    "segment": lambda: _("Segment"),
    "tier": lambda: _("Tier"),
    "country": lambda: _("Country"),
    "account_manager": lambda: _("Account manager"),
}


def _group_names(tenant, dimension: str, values) -> dict[str, str]:
    if dimension == "account_manager":
        ids = [int(v) for v in values if v]
        users = get_user_model().objects.filter(pk__in=ids)
        names = {str(u.pk): u.get_full_name() or u.get_username() for u in users}
        return {v: names.get(v, _("(none)")) if v else _("(none)") for v in values}
    return {v: v or _("(none)") for v in values}


def unit_economics_page(request, tenant, show: Display) -> dict:
    month = _month_param(request, "month", last_closed_month(tenant))
    dimension = request.GET.get("by") or "segment"
    if dimension not in SEGMENT_COLUMNS:
        raise BadRequest(_("Group by one of: %(choices)s.") % {"choices": ", ".join(SEGMENT_COLUMNS)})
    figures = unit_economics(tenant=tenant, month=month)
    groups = clv_by_segment(tenant=tenant, month=month, group_by=dimension)
    names = _group_names(tenant, dimension, [g["segment"] for g in groups])
    clv_hint = _("lifetime capped at 60 months") if figures["lifetime_capped"] else _("ARPA × margin ÷ churn")
    kpis = [
        (_("ARPA"), show.money(figures["arpa"]), show.month(month)),
        (_("Predictive CLV"), show.money(figures["predictive_clv"]), clv_hint),
        (_("Historical CLV"), show.money(figures["historical_clv"]), _("revenue to date per customer")),
        (_("TCV"), show.money(figures["tcv"]), _("all contracts signed")),
        (_("CAC payback"), show.cell(figures["cac_payback_months"], MONTHS)["text"], _("months")),
        (_("Recurring ratio"), show.percent(figures["recurring_ratio"]), _("trailing 12 months")),
    ]
    clv = Panel(
        "clv",
        _("CLV by %(dimension)s") % {"dimension": DIMENSIONS[dimension]().lower()},
        [Column("group", DIMENSIONS[dimension]()), Column("customers", _("Customers"), COUNT),
         Column("mrr", _("MRR"), MONEY), Column("arpa", _("ARPA"), MONEY),
         Column("churn_rate", _("Monthly churn"), PERCENT), Column("lifetime_months", _("Lifetime (months)"), MONTHS),
         Column("predictive_clv", _("Predictive CLV"), MONEY)],
        [[names[g["segment"]], g["customers"], g["mrr"], g["arpa"], g["churn_rate"], g["lifetime_months"],
          g["predictive_clv"]] for g in groups],
        charts=[{
            "kind": "hbar", "labels": [names[g["segment"]] for g in groups], "format": "money",
            "series": [{"label": _("Predictive CLV"), "values": series(g["predictive_clv"] for g in groups), "color": "blue"}],
        }],
        note=_("Gross margin taken as 100 % where no cost to serve is known; churn is the average of six months.")
        if figures["gross_margin_assumed"] else "",
    )
    mix = figures["revenue_by_category"]
    earned = mix["recurring"] + mix["one_off"] + mix["usage"]
    categories = [("recurring", _("Recurring")), ("one_off", _("One-off")), ("usage", _("Usage"))]
    split = Panel(
        "revenue_mix",
        _("Revenue by category (trailing 12 months)"),
        [Column("category", _("Category")), Column("amount", _("Revenue"), MONEY), Column("share", _("Share"), PERCENT)],
        [[title, mix[key], mix[key] / earned if earned else None] for key, title in categories]
        + [[_("Weighted open pipeline"), mix["weighted_pipeline"], None]],
        charts=[{
            "kind": "doughnut", "labels": [title for _key, title in categories], "format": "money",
            "series": [{"label": _("Revenue"), "values": series(mix[key] for key, _title in categories),
                        "colors": ["blue", "orange", "teal"]}],
        }],
        note=_("Weighted pipeline is what may come, not revenue earned; it is shown beside the split."),
    )
    return {"kpis": kpis, "panels": [clv, split], "month": month, "dimension": dimension}


def concentration_page(request, tenant, show: Display) -> dict:
    month = _month_param(request, "month", last_closed_month(tenant))
    revenue = trailing_revenue(tenant=tenant, month=month)
    figures = concentration_indices(revenue)
    ranked = sorted(revenue.items(), key=lambda item: (-item[1], item[0]))[:TOP_CUSTOMERS]
    names = dict(Customer.objects.for_tenant(tenant).filter(pk__in=[pk for pk, _amount in ranked]).values_list("pk", "name"))
    total = figures["total_revenue"]
    band_names = {"unconcentrated": _("unconcentrated"), "moderate": _("moderately concentrated"), "high": _("highly concentrated")}
    kpis = [
        (_("Revenue, 12 months"), show.money(total), _("to %(month)s") % {"month": show.month(month)}),
        (_("Top 5 share"), show.percent(figures["top5_share"]), _("of revenue")),
        (_("HHI"), show.number(figures["hhi"].quantize(Decimal(1), ROUND_HALF_UP)) if figures["hhi"] is not None else "—",
         band_names.get(figures["hhi_band"], "")),
        (_("Gini"), show.number(figures["gini"].quantize(CENT, ROUND_HALF_UP), "0.00") if figures["gini"] is not None else "—", _("0 = all equal")),
        (_("Above 10 %"), show.number(len(figures["flagged"])), _("customers")),
    ]
    top = Panel(
        "top_customers",
        _("Largest customers"),
        [Column("rank", "#", COUNT), Column("customer", _("Customer")), Column("revenue", _("Revenue, 12 months"), MONEY),
         Column("share", _("Share"), PERCENT), Column("flagged", _("Above 10 %"))],
        [[i, names.get(pk, ""), amount, amount / total, _("yes") if amount / total > Decimal("0.10") else ""]
         for i, (pk, amount) in enumerate(ranked, start=1)],
        charts=[{
            "kind": "hbar", "labels": [names.get(pk, "") for pk, _amount in ranked], "format": "percent",
            "series": [{"label": _("Share"), "values": series((amount / total for _pk, amount in ranked), RATIO),
                        "color": "blue", "highlight_above": "0.10"}],
        }],
    )
    lorenz = Panel(
        "lorenz",
        _("Lorenz curve"),
        [Column("customers_share", _("Share of customers"), PERCENT), Column("revenue_share", _("Share of revenue"), PERCENT)],
        [[x, y] for x, y in figures["lorenz"]],
        charts=[{
            "kind": "lorenz", "format": "percent",
            "points": [[str(x.quantize(RATIO, ROUND_HALF_UP)), str(y.quantize(RATIO, ROUND_HALF_UP))] for x, y in figures["lorenz"]],
            "labels": [_("Revenue"), _("Equal shares")],
        }],
        note=_("Customers from smallest to largest; the further the curve sags, the more revenue rests on few accounts."),
    )
    return {"kpis": kpis, "panels": [top, lorenz], "month": month}


def _quarters_ahead(today: date, count: int = 4) -> list[tuple[int, int]]:
    year, quarter = quarter_of(today)
    result = []
    for _i in range(count):
        result.append((year, quarter))
        year, quarter = (year + 1, 1) if quarter == 4 else (year, quarter + 1)
    return result


def pipeline_page(request, tenant, show: Display) -> dict:
    summary = pipeline_summary(tenant=tenant)
    coverage = {c["quarter"]: c for c in (pipeline_coverage(tenant=tenant, year=y, quarter=q) for y, q in
                                            _quarters_ahead(tenant_today(tenant)))}
    current = summary["coverage"]
    periods = list(summary["by_period"].items())
    if summary["undated"]["count"]:
        periods.append((_("undated"), summary["undated"]))
    period_label = {"overdue": _("overdue")}
    labels = [period_label.get(k, k) for k, _v in periods]
    kpis = [
        (_("Open pipeline"), show.money(summary["open"]["amount"]),
         _("%(count)s opportunities") % {"count": summary["open"]["count"]}),
        (_("Weighted"), show.money(summary["open"]["weighted"]), _("amount × probability")),
        (_("Coverage %(quarter)s") % {"quarter": current["quarter"]}, show.cell(current["coverage"], MULTIPLE)["text"],
         coverage_reason(current) or _("open pipeline ÷ target left")),
        (_("Win rate"), show.percent(summary["win_rate"]), _("by count")),
        (_("Days to close"), show.number(summary["average_days_to_close"].quantize(Decimal(1), ROUND_HALF_UP)) if summary["average_days_to_close"]
         is not None else "—", _("average of won deals")),
    ]
    by_period = Panel(
        "by_period",
        _("Pipeline by expected close"),
        [Column("period", _("Period")), Column("count", _("Opportunities"), COUNT), Column("amount", _("Amount"), MONEY),
         Column("weighted", _("Weighted"), MONEY), Column("target", _("Target"), MONEY), Column("won", _("Won"), MONEY),
         Column("coverage", _("Coverage"), MULTIPLE)],
        [[label, b["count"], b["amount"], b["weighted"], coverage.get(k, {}).get("target"), coverage.get(k, {}).get("won"),
          coverage.get(k, {}).get("coverage")] for label, (k, b) in zip(labels, periods, strict=True)],
        charts=[{
            "kind": "grouped", "labels": labels, "format": "money",
            "series": [
                {"label": _("Amount"), "values": series(b["amount"] for _k, b in periods), "color": "sky"},
                {"label": _("Weighted"), "values": series(b["weighted"] for _k, b in periods), "color": "blue"},
                {"label": _("Target left"), "values": series(
                    (coverage[k]["target"] - coverage[k]["won"]) if k in coverage and coverage[k]["target"] is not None else None
                    for k, _b in periods), "color": "orange", "type": "line", "points_only": True},
            ],
        }],
        note=_("Coverage = open pipeline closing in the quarter ÷ (target − won in it). Undated opportunities are shown apart."),
    )
    band_titles = {"early": _("Early (10–30 %)"), "active": _("Active (40–60 %)"), "negotiating": _("Negotiating (70–90 %)")}
    bands = Panel(
        "bands",
        _("By probability band"),
        [Column("band", _("Band")), Column("count", _("Opportunities"), COUNT), Column("amount", _("Amount"), MONEY),
         Column("weighted", _("Weighted"), MONEY)],
        [[band_titles[k], b["count"], b["amount"], b["weighted"]] for k, b in summary["by_band"].items()],
        charts=[{
            "kind": "doughnut", "labels": [band_titles[k] for k in summary["by_band"]], "format": "money",
            "series": [{"label": _("Weighted"), "values": series(b["weighted"] for b in summary["by_band"].values()),
                        "colors": ["sky", "blue", "navy"]}],
        }],
    )
    owners = Panel(
        "owners",
        _("By owner"),
        [Column("owner", _("Owner")), Column("count", _("Opportunities"), COUNT), Column("amount", _("Amount"), MONEY),
         Column("weighted", _("Weighted"), MONEY)],
        [[k or _("(none)"), b["count"], b["amount"], b["weighted"]] for k, b in summary["by_owner"].items()],
    )
    stale_ids = [s["id"] for s in summary["stale"]]
    details = {o.pk: o for o in Opportunity.objects.for_tenant(tenant).filter(pk__in=stale_ids).select_related("customer", "owner")}
    stale = Panel(
        "stale",
        _("Stale: above 60 % and untouched for 7 days"),
        [Column("title", _("Opportunity")), Column("account", _("Account")), Column("owner", _("Owner")),
         Column("probability", _("Probability"), PERCENT), Column("last_touched", _("Last touched"))],
        [[s["title"], details[s["id"]].account_name, details[s["id"]].owner.get_username() if details[s["id"]].owner_id else "",
          Decimal(s["probability"]) / 100, show.day(s["last_touched_at"].date())] for s in summary["stale"]],
    )
    return {"kpis": kpis, "panels": [by_period, bands, owners, stale]}


def forecast_page(request, tenant, show: Display) -> dict:
    today = tenant_today(tenant)
    # The same month draws the same runs, so reloading the page does not move the fan.
    result = revenue_forecast(tenant=tenant, runs=FORECAST_RUNS, seed=today.year * 100 + today.month)
    rows = result["months"]
    labels = [show.month(r["month"]) for r in rows]
    last = rows[-1]
    kpis = [
        (_("Committed MRR"), show.money(rows[0]["committed_mrr"]), labels[0]),
        (_("Expected in %(month)s") % {"month": labels[-1]}, show.money(last["committed_mrr"] + last["pipeline_expected"]),
         _("committed + weighted pipeline")),
        (_("P10"), show.money(last["total_p10"]), _("%(month)s: 9 in 10 outcomes above") % {"month": labels[-1]}),
        (_("P90"), show.money(last["total_p90"]), _("%(month)s: 1 in 10 outcomes above") % {"month": labels[-1]}),
        (_("Undated"), show.money(result["undated"]["amount"]),
         _("%(count)s opportunities left out") % {"count": result["undated"]["count"]}),
    ]
    fan = Panel(
        "forecast",
        _("Revenue forecast, 12 months"),
        [Column("month", _("Month")), Column("committed_mrr", _("Committed MRR"), MONEY),
         Column("pipeline_expected", _("Pipeline, expected"), MONEY), Column("total_p10", _("P10"), MONEY),
         Column("total_p50", _("P50"), MONEY), Column("total_p90", _("P90"), MONEY)],
        [[r["month"], r["committed_mrr"], r["pipeline_expected"], r["total_p10"], r["total_p50"], r["total_p90"]] for r in rows],
        charts=[{
            "kind": "fan", "labels": labels, "format": "money",
            "series": [
                {"label": _("P90"), "values": series(r["total_p90"] for r in rows), "color": "sky"},
                {"label": _("P10"), "values": series(r["total_p10"] for r in rows), "color": "sky"},
                {"label": _("P50"), "values": series(r["total_p50"] for r in rows), "color": "blue"},
                {"label": _("Committed MRR"), "values": series(r["committed_mrr"] for r in rows), "color": "navy", "dash": True},
            ],
        }],
        note=_("%(runs)s simulated outcomes of the open pipeline on top of contracted revenue; "
               "the band holds 80 %% of them.") % {"runs": show.number(result["runs"])},
    )
    return {"kpis": kpis, "panels": [fan]}


PAGES = {
    "revenue": Page("revenue", lambda: _("Revenue"), revenue_page, "window"),
    "retention": Page("retention", lambda: _("Retention"), retention_page, "window"),
    "unit-economics": Page("unit-economics", lambda: _("Unit economics"), unit_economics_page, "month"),
    "concentration": Page("concentration", lambda: _("Concentration"), concentration_page, "month"),
    "pipeline": Page("pipeline", lambda: _("Pipeline"), pipeline_page, "none"),
    "forecast": Page("forecast", lambda: _("Forecast"), forecast_page, "none"),
}
URL_NAMES = {"revenue": "revenue", "retention": "retention", "unit-economics": "unit_economics",
             "concentration": "concentration", "pipeline": "pipeline", "forecast": "forecast"}


# --- views ----------------------------------------------------------------------------------


def staff_view(view):
    """Login required (else the login page); a staff membership of a tenant required (else 403).
    The view runs in the tenant's language."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff or request.membership is None:
            return render(request, "portal/no_access.html", status=403)
        tenant = request.tenant
        language = tenant.locale if tenant.locale in formatting.LOCALES else formatting.DEFAULT_LANGUAGE
        with translation.override(language):
            response = view(request, tenant, *args, **kwargs)
        response.headers.setdefault("Content-Language", language)
        return response

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
        {
            "key": p.key,
            "title": p.title,
            "note": p.note,
            "wide": len(p.charts) > 1 or p.key in WIDE_PANELS,
            "columns": p.columns,
            "rows": [[show.cell(show.month(v) if isinstance(v, date) else v, c.kind)
                      for v, c in zip(row, p.columns, strict=True)] for row in p.rows],
            "charts": [{**chart, **show.chart_hints(), "id": f"chart-{p.key}-{i}"} for i, chart in enumerate(p.charts)],
            "csv_url": reverse("dashboards:export", args=[page_key, p.key]) + (
                f"?{request.GET.urlencode()}" if request.GET else ""),
        }
        for p in built["panels"]
    ]
    context = {
        **staff_context(request),
        "page_key": page_key,
        "page_title": page.title(),
        "controls": page.controls,
        "kpis": built["kpis"],
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
    """One panel's table as CSV (money in cents, ratios to 4 places, months as YYYY-MM)."""
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
        writer.writerow([_csv_safe(csv_value(v, c.kind)) for v, c in zip(row, panel.columns, strict=True)])
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
