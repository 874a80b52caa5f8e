"""The pipeline dashboard: open pipeline by expected close, coverage of the quarters ahead,
probability bands, owners and stale opportunities."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.urls import reverse
from django.utils.translation import gettext as _

from customers.periods import tenant_today
from portal.dashboards.panels import COUNT, LINK, MONEY, MULTIPLE, PERCENT, Column, Display, Panel, series
from revenue.models import Opportunity
from revenue.reports import coverage_reason
from revenue.selectors.pipeline import (
    pipeline_coverage,
    pipeline_summary,
    probability_ratio,
    quarters_ahead,
    target_left,
)


def pipeline_page(request, tenant, show: Display) -> dict:
    summary = pipeline_summary(tenant=tenant)
    coverage = {c["quarter"]: c for c in (pipeline_coverage(tenant=tenant, year=y, quarter=q) for y, q in
                                            quarters_ahead(tenant_today(tenant)))}
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
                    target_left(coverage[k]) if k in coverage else None for k, _b in periods), "color": "orange", "type": "line", "points_only": True},
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
        [Column("title", _("Opportunity")), Column("account", _("Account"), LINK), Column("owner", _("Owner")),
         Column("probability", _("Probability"), PERCENT), Column("last_touched", _("Last touched"))],
        [[s["title"], _account(details[s["id"]]), details[s["id"]].owner.get_username() if details[s["id"]].owner_id else "",
          probability_ratio(s["probability"]), show.day(s["last_touched_at"].date())] for s in summary["stale"]],
    )
    return {"kpis": kpis, "panels": [by_period, bands, owners, stale]}


def _account(opportunity) -> tuple[str, str | None]:
    """The deal's account, linked to its customer 360 page (a prospect has none)."""
    url = reverse("customer_360", args=[opportunity.customer_id]) if opportunity.customer_id else None
    return opportunity.account_name, url
