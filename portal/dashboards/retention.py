"""The retention dashboard: NRR and GRR (12 months), churn rates and ARPA per month."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext as _

from portal.dashboards.common import monthly_figures, source_note, window
from portal.dashboards.panels import COUNT, MONEY, PERCENT, Column, Display, Panel, series
from revenue.figures import FIGURES, figure_definitions


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
        [Column("month", _("Month")), Column("arpa", _("ARPA"), MONEY), Column("customers", FIGURES["customers_with_mrr"].name, COUNT)],
        [[r["month"], r["arpa"], r["customers_end"]] for r in rows],
        charts=[{
            "kind": "trend", "labels": labels, "format": "money",
            "series": [{"label": _("ARPA"), "values": series(r["arpa"] for r in rows), "color": "navy", "fill": True}],
        }],
    )
    return {"kpis": kpis, "panels": [retention, churn, arpa], "window": (first, last),
            "definitions": figure_definitions(["customers_with_mrr", "arpa"], tenant=tenant, month=latest["month"])}
