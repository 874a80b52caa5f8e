"""The dashboard pages: their keys, titles, builders, controls and URL names."""

from __future__ import annotations

from django.utils.translation import gettext as _

from portal.dashboards.concentration import concentration_page
from portal.dashboards.forecast import forecast_page
from portal.dashboards.panels import Page
from portal.dashboards.pipeline import pipeline_page
from portal.dashboards.retention import retention_page
from portal.dashboards.revenue import revenue_page
from portal.dashboards.unit_economics import unit_economics_page

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
