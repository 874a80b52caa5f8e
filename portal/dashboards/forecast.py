"""The forecast dashboard: committed MRR and the simulated pipeline's P10/P50/P90 for 12 months."""

from __future__ import annotations

from django.utils.translation import gettext as _

from customers.periods import tenant_today
from portal.dashboards.panels import MONEY, Column, Display, Panel, series
from revenue.figures import FIGURES, figure_definitions
from revenue.selectors.forecast import expected_total, monthly_seed, revenue_forecast

FORECAST_RUNS = 10_000


def forecast_page(request, tenant, show: Display) -> dict:
    # The same month draws the same runs, so reloading the page does not move the fan.
    result = revenue_forecast(tenant=tenant, runs=FORECAST_RUNS, seed=monthly_seed(tenant_today(tenant)))
    rows = result["months"]
    labels = [show.month(r["month"]) for r in rows]
    last = rows[-1]
    kpis = [
        (FIGURES["committed_mrr"].name, show.money(rows[0]["committed_mrr"]), labels[0]),
        (_("Expected in %(month)s") % {"month": labels[-1]}, show.money(expected_total(last)),
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
    return {"kpis": kpis, "panels": [fan], "definitions": figure_definitions(
        ["committed_mrr"], tenant=tenant, window=(rows[0]["month"], last["month"]))}
