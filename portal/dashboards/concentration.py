"""The concentration dashboard: trailing-12-month revenue, top-5 share, HHI, Gini, the largest
customers and the Lorenz curve."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.urls import reverse
from django.utils.translation import gettext as _

from customers.models import Customer
from customers.periods import last_closed_month
from portal.dashboards.common import month_param
from portal.dashboards.panels import CENT, COUNT, LINK, MONEY, PERCENT, RATIO, Column, Display, Panel, series
from revenue.figures import FIGURES, figure_definitions, trailing_window
from revenue.selectors.concentration import revenue_concentration_with_largest

TOP_CUSTOMERS = 10


def concentration_page(request, tenant, show: Display) -> dict:
    month = month_param(request, "month", last_closed_month(tenant))
    figures, largest = revenue_concentration_with_largest(tenant=tenant, month=month, limit=TOP_CUSTOMERS)
    names = dict(Customer.objects.for_tenant(tenant).filter(pk__in=[c["customer_id"] for c in largest]).values_list("pk", "name"))
    total = figures["total_revenue"]
    band_names = {"unconcentrated": _("unconcentrated"), "moderate": _("moderately concentrated"), "high": _("highly concentrated")}
    kpis = [
        (FIGURES["contracted_revenue"].name, show.money(total), _("12 months to %(month)s") % {"month": show.month(month)}),
        (FIGURES["customers_with_contracted_revenue"].name, show.number(figures["customers"]), _("12 months")),
        (_("Top 5 share"), show.percent(figures["top5_share"]), _("of revenue")),
        (_("HHI"), show.number(figures["hhi"].quantize(Decimal(1), ROUND_HALF_UP)) if figures["hhi"] is not None else "—",
         band_names.get(figures["hhi_band"], "")),
        (_("Gini"), show.number(figures["gini"].quantize(CENT, ROUND_HALF_UP), "0.00") if figures["gini"] is not None else "—", _("0 = all equal")),
        (_("Above 10 %"), show.number(len(figures["flagged"])), _("customers")),
    ]
    top = Panel(
        "top_customers",
        _("Largest customers"),
        [Column("rank", "#", COUNT), Column("customer", _("Customer"), LINK), Column("revenue", FIGURES["contracted_revenue"].name, MONEY),
         Column("share", _("Share"), PERCENT), Column("flagged", _("Above 10 %"))],
        [[i, (names.get(c["customer_id"], ""), reverse("customer_360", args=[c["customer_id"]])), c["revenue"], c["share"], _("yes") if c["flagged"] else ""]
         for i, c in enumerate(largest, start=1)],
        charts=[{
            "kind": "hbar", "labels": [names.get(c["customer_id"], "") for c in largest], "format": "percent",
            "series": [{"label": _("Share"), "values": series((c["share"] for c in largest), RATIO),
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
    return {"kpis": kpis, "panels": [top, lorenz], "month": month,
            "definitions": figure_definitions(["contracted_revenue", "customers_with_contracted_revenue"],
                                              tenant=tenant, window=trailing_window(month))}
