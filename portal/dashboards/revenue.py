"""The revenue dashboard: MRR, ARR, customers and ARPA, and the month's MRR movements."""

from __future__ import annotations

from django.utils.translation import gettext as _

from portal.dashboards.common import monthly_figures, source_note, window
from portal.dashboards.panels import COUNT, MONEY, MULTIPLE, Column, Display, Panel, series
from revenue.figures import FIGURES, figure_definitions
from revenue.selectors.movements import net_new_mrr
from revenue.selectors.mrr import arr_from_mrr

MOVEMENT_STEPS = ["mrr_start", "new", "reactivation", "expansion", "contraction", "churn", "mrr_end"]


def movement_titles() -> list[str]:
    """The column titles of ``MOVEMENT_STEPS``, in the active language."""
    return [_("MRR at start"), _("New"), _("Reactivation"), _("Expansion"), _("Contraction"), _("Churn"),
            _("MRR at end")]


def movement_series(rows: list[dict]) -> list[dict]:
    """The stacked chart's series of MRR movements per month: gains up, contraction and churn down."""
    return [
        {"label": _("New"), "values": series(r["new"] for r in rows), "color": "teal"},
        {"label": _("Reactivation"), "values": series(r["reactivation"] for r in rows), "color": "purple"},
        {"label": _("Expansion"), "values": series(r["expansion"] for r in rows), "color": "green"},
        {"label": _("Contraction"), "values": series(-r["contraction"] for r in rows), "color": "orange"},
        {"label": _("Churn"), "values": series(-r["churn"] for r in rows), "color": "red"},
    ]


def revenue_page(request, tenant, show: Display) -> dict:
    first, last = window(request, tenant)
    rows, source = monthly_figures(tenant, first, last)
    labels = [show.month(r["month"]) for r in rows]
    latest = rows[-1]
    kpis = [
        (_("MRR"), show.money(latest["mrr_end"]), show.month(latest["month"])),
        (_("ARR"), show.money(arr_from_mrr(latest["mrr_end"])), _("12 × MRR")),
        (FIGURES["customers_with_mrr"].name, show.number(latest["customers_end"]), show.month(latest["month"])),
        (_("ARPA"), show.money(latest["arpa"]), _("MRR per customer")),
        (_("Quick ratio"), show.cell(latest["quick_ratio"], MULTIPLE)["text"], _("gained / lost MRR")),
    ]
    trend = Panel(
        "mrr",
        _("MRR and ARR"),
        [Column("month", _("Month")), Column("mrr", _("MRR"), MONEY), Column("arr", _("ARR"), MONEY),
         Column("customers", FIGURES["customers_with_mrr"].name, COUNT), Column("arpa", _("ARPA"), MONEY)],
        [[r["month"], r["mrr_end"], arr_from_mrr(r["mrr_end"]), r["customers_end"], r["arpa"]] for r in rows],
        charts=[{
            "kind": "trend", "labels": labels, "format": "money",
            "series": [
                {"label": _("MRR"), "values": series(r["mrr_end"] for r in rows), "color": "blue", "fill": True},
                {"label": FIGURES["customers_with_mrr"].name, "values": [str(r["customers_end"]) for r in rows], "color": "grey",
                 "type": "bar", "axis": "y2", "format": "count"},
            ],
        }],
        note=source_note(source),
    )
    steps, step_titles = MOVEMENT_STEPS, movement_titles()
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
                    *movement_series(rows),
                    {"label": _("Net new MRR"), "values": series(net_new_mrr(r) for r in rows),
                     "color": "navy", "type": "line"},
                ],
            },
        ],
        note=_("MRR at end = MRR at start + new + reactivation + expansion − contraction − churn."),
    )
    return {"kpis": kpis, "panels": [trend, movements], "window": (first, last),
            "definitions": figure_definitions(["mrr", "arr", "customers_with_mrr", "arpa"], tenant=tenant, month=latest["month"])}
