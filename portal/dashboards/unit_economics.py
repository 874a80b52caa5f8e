"""The unit economics dashboard: ARPA, CLV, TCV, CAC payback, CLV by a customer dimension and the
revenue mix of the trailing twelve months."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from customers.periods import last_closed_month
from portal.dashboards.common import month_param
from portal.dashboards.panels import COUNT, MONEY, MONTHS, PERCENT, BadRequest, Column, Display, Panel, series
from revenue.figures import FIGURES, figure_definitions, trailing_window
from revenue.selectors.clv import clv_by_segment, revenue_category_shares, unit_economics
from revenue.selectors.common import SEGMENT_COLUMNS

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
    month = month_param(request, "month", last_closed_month(tenant))
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
        [Column("group", DIMENSIONS[dimension]()), Column("customers", FIGURES["customers_with_mrr"].name, COUNT),
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
    shares = revenue_category_shares(mix)
    categories = [("recurring", _("Recurring")), ("one_off", _("One-off")), ("usage", _("Usage"))]
    split = Panel(
        "revenue_mix",
        _("Revenue by category (trailing 12 months)"),
        [Column("category", _("Category")), Column("amount", _("Revenue"), MONEY), Column("share", _("Share"), PERCENT)],
        [[title, mix[key], shares[key]] for key, title in categories]
        + [[_("Weighted open pipeline"), mix["weighted_pipeline"], None]],
        charts=[{
            "kind": "doughnut", "labels": [title for _key, title in categories], "format": "money",
            "series": [{"label": _("Revenue"), "values": series(mix[key] for key, _title in categories),
                        "colors": ["blue", "orange", "teal"]}],
        }],
        note=_("Recurring and one-off make up contracted revenue; usage is invoiced usage. Weighted pipeline is what "
               "may come, not revenue earned; it is shown beside the split."),
    )
    definitions = figure_definitions(["arpa", "historical_clv", "tcv", "customers_with_mrr", "contracted_revenue",
                                      "usage_revenue"],
                                     tenant=tenant, month=month, window=trailing_window(month))
    return {"kpis": kpis, "panels": [clv, split], "month": month, "dimension": dimension, "definitions": definitions}
