"""Read-only metric endpoints under /api/v1/metrics/, inside the request's tenant.

Query parameters (all optional): ``from`` and ``to`` as ``YYYY-MM`` (default: the twelve months
ending with the last closed month), ``segment`` as ``dimension:value`` (tier, segment, country,
account_manager), and per endpoint ``month``, ``group_by``, ``seed``, ``runs``. Bad input → 400
``{"detail": "..."}``; a missing exchange rate → 409 naming currency and date.

Amounts are decimal strings in the tenant's reporting currency rounded to its minor unit (cents for USD,
whole yen for JPY; ROUND_HALF_UP); ratios are rounded to 4 decimals and measures that are neither
(HHI, scores, z-scores) to 2. Rounding happens here only: selectors keep exact Decimals.
Closed months with a MetricSnapshot (whole tenant or the same segment) are read from it; anything
else is computed live.
"""

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.money import money_round
from customers.periods import PeriodError, add_months, last_closed_month, months_between, parse_month
from revenue.economics.profitability import cost_data_months
from revenue.figures import FIGURES, figure_definition
from revenue.selectors.clv import unit_economics
from revenue.selectors.common import SEGMENT_COLUMNS, MetricError, MissingExchangeRate, Segment
from revenue.selectors.concentration import revenue_concentration
from revenue.selectors.forecast import revenue_forecast
from revenue.selectors.frozen import monthly_figures, snapshots_for
from revenue.selectors.movements import mrr_movements
from revenue.selectors.mrr import arr_from_mrr, mrr_series
from revenue.selectors.pipeline import pipeline_summary

RATIO_KEYS = {
    "nrr", "grr", "customer_churn_rate", "gross_mrr_churn", "net_mrr_churn", "quick_ratio", "top5_share", "gini",
    "share", "win_rate", "win_rate_by_value", "coverage", "weighted_coverage", "average_days_to_close",
    "gross_margin", "churn_rate", "lifetime_months", "cac_payback_months", "recurring_ratio", "expansion_rate",
    "time_to_revenue_months", "lorenz",
}
# Decimals that are neither money nor a ratio: index points, scores and statistics of usage.
MEASURE_KEYS = {
    "hhi", "score", "score_one_month_before", "score_two_months_before", "points", "weight", "raw", "threshold",
    "observed", "baseline", "stddev", "z_score", "auc_one_month", "auc_two_months", "probability", "tenure",
}
MONTH_KEYS = {"month"}
RATIO_PLACES = Decimal("0.0001")
MEASURE_PLACES = Decimal("0.01")
MAX_MONTHS = 120
MAX_RUNS = 100_000


def jsonable(value, *, currency: str, key: str = "", ratios=RATIO_KEYS, months=MONTH_KEYS):
    """The payload as JSON values, recursively: Decimals to strings, dates to ISO (``months`` keys as YYYY-MM).

    A Decimal under a ``ratios`` key keeps 4 places, under a MEASURE_KEYS key 2; every other Decimal
    is money and rounds (half up) to the minor unit of ``currency``, the tenant's reporting currency.
    Objects that name another ``currency`` (a customer's, on ROI or what-if rows) are not rounded in
    it: what-if rows name the customer's currency beside amounts already converted, and rounding a
    yen amount to cents loses nothing where rounding a dollar amount to yen would.
    """
    if isinstance(value, Decimal):
        if key in ratios:
            return str(value.quantize(RATIO_PLACES, rounding=ROUND_HALF_UP))
        if key in MEASURE_KEYS:
            return str(value.quantize(MEASURE_PLACES, rounding=ROUND_HALF_UP))
        return str(money_round(value, currency))
    if isinstance(value, date):
        return value.isoformat()[:7] if key in months else value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v, currency=currency, key=str(k), ratios=ratios, months=months) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, currency=currency, key=key, ratios=ratios, months=months) for v in value]
    return value


# What the views below accept, as the schema says it (customers.periods.parse_month: YYYY-MM from 1900).
MONTH_SCHEMA = {"type": "string", "pattern": r"^(19|[2-9][0-9])[0-9]{2}-(0[1-9]|1[0-2])$", "example": "2026-03"}
DECIMAL_SCHEMA = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "example": "0.2"}
DECIMAL_PATTERN = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
SEGMENT_PATTERN = rf"^(({'|'.join(SEGMENT_COLUMNS)}):[\s\S]*)?$"


def month_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, MONTH_SCHEMA, description=description)


def integer_parameter(name: str, low: int, high: int, default: int | None = None, description: str = "") -> OpenApiParameter:
    """An integer query parameter from ``low`` to ``high``, read by ``MetricView.integer`` with the same bounds."""
    schema = {"type": "integer", "minimum": low, "maximum": high}
    if default is not None:
        schema["default"] = default
    return OpenApiParameter(name, schema, description=description)


def decimal_parameter(name: str, low, high, description: str = "") -> OpenApiParameter:
    """A decimal query parameter, read by ``MetricView.decimal`` with the same bounds (stated in the description)."""
    return OpenApiParameter(name, DECIMAL_SCHEMA, description=f"{description}; a decimal from {low} to {high}.")


GROUP_BY_PARAMETER = OpenApiParameter(
    "group_by", OpenApiTypes.STR, enum=list(SEGMENT_COLUMNS), description="One series per value of this dimension."
)
COMMON_PARAMETERS = [
    month_parameter("from", "First month, YYYY-MM (default: eleven months before `to`); at most 120 months to `to`."),
    month_parameter("to", "Last month, YYYY-MM (default: the last closed month); not before `from`."),
    OpenApiParameter(
        "segment",
        {"type": "string", "pattern": SEGMENT_PATTERN},
        description=f"dimension:value, e.g. tier:Starter; the dimension is one of {', '.join(SEGMENT_COLUMNS)}.",
    ),
]


class MetricView(APIView):
    """Parses the shared parameters; subclasses implement ``compute(request, tenant)``.

    A parameter that is not as the schema says is a 400 naming it, never ignored.
    """

    error_responses = {
        400: "A parameter is not as described (`detail` names it and what to write), or the question does not "
        "apply (e.g. evidence for a line not priced on savings).",
        409: "An amount in another currency has no exchange rate for its date (`detail` names both).",
    }

    def get(self, request):
        tenant = request.tenant
        try:
            return Response(jsonable(self.compute(request, tenant), currency=tenant.reporting_currency))
        except MissingExchangeRate as exc:
            return Response({"detail": str(exc)}, status=409)
        except MetricError as exc:
            return Response({"detail": str(exc)}, status=400)
        except PeriodError as exc:
            return Response({"detail": " ".join(exc.messages)}, status=400)

    def window(self, request, tenant) -> tuple[date, date]:
        last_closed = last_closed_month(tenant)
        last = parse_month(request.query_params["to"]) if "to" in request.query_params else last_closed
        first = parse_month(request.query_params["from"]) if "from" in request.query_params else add_months(last, -11)
        if first > last:
            raise MetricError("'from' must not be after 'to'.")
        if len(months_between(first, last)) > MAX_MONTHS:
            raise MetricError(f"Ask for at most {MAX_MONTHS} months at once.")
        return first, last

    def month(self, request, tenant) -> date:
        return parse_month(request.query_params["month"]) if "month" in request.query_params else last_closed_month(tenant)

    def segment(self, request):
        return Segment.parse(request.query_params.get("segment"))

    def integer(self, request, name, default, low, high):
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
            raise MetricError(f"{name} must be a whole number from {low} to {high} (got {raw[:20]!r}).")
        return int(raw)

    def decimal(self, request, name, default, low, high):
        """A decimal from ``low`` to ``high`` written as digits with an optional sign and point (``0.2``)."""
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if not DECIMAL_PATTERN.match(raw) or not low <= Decimal(raw) <= high:
            raise MetricError(f"{name} must be a decimal from {low} to {high} such as {default or low} (got {raw[:20]!r}).")
        return Decimal(raw)

    def choice(self, request, name, choices, default=None):
        """One of ``choices``; any other value is a 400 rather than being ignored."""
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if raw not in choices:
            raise MetricError(f"{name} must be one of {', '.join(choices)} (got {raw[:20]!r}).")
        return raw


MRR_EXAMPLE = OpenApiExample(
    "Two months",
    value={"currency": "USD", "source": "live", "months": [
        {"month": "2025-01", "segment": "", "mrr": "12400.00", "arr": "148800.00", "customers": 31, "arpa": "400.00"},
        {"month": "2025-02", "segment": "", "mrr": "12990.00", "arr": "155880.00", "customers": 32, "arpa": "405.94"},
    ]},
)


class MRRView(MetricView):
    @extend_schema(
        summary="MRR, ARR, customers and ARPA at each month end",
        parameters=[*COMMON_PARAMETERS, GROUP_BY_PARAMETER],
        responses={200: OpenApiTypes.OBJECT},
        examples=[MRR_EXAMPLE],
    )
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        first, last = self.window(request, tenant)
        segment, group_by = self.segment(request), request.query_params.get("group_by")
        if group_by is None:
            frozen = snapshots_for(tenant, months_between(first, last), segment, last_closed_month(tenant))
            if frozen:
                rows = [
                    {"month": f["month"], "segment": str(segment or ""), "mrr": f["mrr_end"], "arr": arr_from_mrr(f["mrr_end"]),
                     "customers": int(f["customers_end"]), "arpa": f["arpa"]}
                    for f in frozen
                ]
                return {"currency": tenant.reporting_currency, "source": "snapshot", "months": rows}
        rows = mrr_series(tenant=tenant, first=first, last=last, segment=segment, group_by=group_by)
        return {"currency": tenant.reporting_currency, "source": "live", "months": rows}


class MovementsView(MetricView):
    @extend_schema(
        summary="MRR movements per month: new, reactivation, expansion, contraction, churn",
        parameters=[*COMMON_PARAMETERS, GROUP_BY_PARAMETER],
        responses={200: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("One month", value={"currency": "USD", "source": "live", "months": [
            {"month": "2025-04", "segment": "", "mrr_start": "90.00", "new": "0.00", "reactivation": "0.00",
             "expansion": "10.00", "contraction": "0.00", "churn": "0.00", "mrr_end": "100.00", "customers_start": 1,
             "new_customers": 0, "reactivated_customers": 0, "churned_customers": 0, "customers_end": 1}]})],
    )
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        first, last = self.window(request, tenant)
        segment, group_by = self.segment(request), request.query_params.get("group_by")
        rows = mrr_movements(tenant=tenant, first=first, last=last, segment=segment, group_by=group_by)
        return {"currency": tenant.reporting_currency, "source": "live", "months": rows}


class RetentionView(MetricView):
    @extend_schema(
        summary="Churn rates, quick ratio, ARPA, NRR and GRR (12 months) per month",
        parameters=COMMON_PARAMETERS,
        responses={200: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("One month", value={"currency": "USD", "source": "snapshot", "months": [
            {"month": "2025-03", "customer_churn_rate": "0.5000", "gross_mrr_churn": "0.5000",
             "net_mrr_churn": "0.5000", "quick_ratio": "0.0000", "arpa": "100.00", "nrr": "0.7500", "grr": "0.5000"}]})],
    )
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        first, last = self.window(request, tenant)
        rows, source = monthly_figures(tenant=tenant, first=first, last=last, segment=self.segment(request))
        return {"currency": tenant.reporting_currency, "source": source, "months": rows}


class ConcentrationView(MetricView):
    @extend_schema(
        summary="Trailing-12-month revenue concentration: top-5 share, HHI, Gini, flags, Lorenz curve",
        parameters=[month_parameter("month", "Last month of the window, YYYY-MM (default: the last closed month)"),
                    COMMON_PARAMETERS[2]],
        responses={200: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("Four equal customers", value={
            "currency": "USD", "month": "2025-12", "total_revenue": "4800.00", "customers": 4, "top5_share": "1.0000",
            "hhi": "2500.00", "hhi_band": "moderate", "gini": "0.0000", "flagged": [],
            "lorenz": [["0.0000", "0.0000"], ["0.2500", "0.2500"]]})],
    )
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        result = revenue_concentration(tenant=tenant, month=self.month(request, tenant), segment=self.segment(request))
        return {"currency": tenant.reporting_currency, **result}


class CLVView(MetricView):
    @extend_schema(
        summary="Unit economics: ARPA, predictive and historical CLV, TCV, CAC payback, time to revenue",
        parameters=[month_parameter("month", "YYYY-MM (default: the last closed month)"),
                    decimal_parameter("gross_margin", 0, 1, "Gross margin (default: the measured one, else 1)")],
        responses={200: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("Capped lifetime", value={
            "currency": "USD", "month": "2025-12", "arpa": "100.00", "gross_margin": "1.0000",
            "gross_margin_assumed": True, "churn_rate": "0.0000", "lifetime_months": "60.0000",
            "lifetime_capped": True, "predictive_clv": "6000.00"})],
    )
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        margin = self.decimal(request, "gross_margin", None, 0, 1)
        return {"currency": tenant.reporting_currency,
                **unit_economics(tenant=tenant, month=self.month(request, tenant), gross_margin=margin)}


class PipelineView(MetricView):
    @extend_schema(
        summary="Open pipeline by quarter/half-year, band and owner; undated apart; coverage; stale; win rate",
        responses={200: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("Summary", value={
            "currency": "USD", "open": {"count": 3, "amount": "6000.00", "weighted": "3300.00"},
            "by_period": {"2026-Q4": {"count": 2, "amount": "4000.00", "weighted": "1700.00"}},
            "undated": {"count": 1, "amount": "2000.00", "weighted": "1600.00"},
            "coverage": {"quarter": "2026-Q4", "coverage": None, "reason": "No target is set for 2026-Q4."}})],
    )
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        return pipeline_summary(tenant=tenant)


class ForecastView(MetricView):
    @extend_schema(
        summary="12-month forecast: committed MRR plus Monte-Carlo pipeline P10/P50/P90",
        parameters=[integer_parameter("seed", 0, 2**32 - 1, description="Random seed (default: a fresh one)"),
                    integer_parameter("runs", 1, MAX_RUNS, 10_000, "Monte-Carlo runs")],
        responses={200: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("One month", value={"currency": "USD", "runs": 10000, "seed": 7,
            "undated": {"count": 1, "amount": "7777.00"}, "months": [
                {"month": "2026-11", "committed_mrr": "150.00", "pipeline_expected": "40.00", "pipeline_p10": "0.00",
                 "pipeline_p50": "0.00", "pipeline_p90": "200.00", "total_p10": "150.00", "total_p50": "150.00",
                 "total_p90": "350.00"}]})],
    )
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        seed = self.integer(request, "seed", None, 0, 2**32 - 1)
        runs = self.integer(request, "runs", 10_000, 1, MAX_RUNS)
        return revenue_forecast(tenant=tenant, seed=seed, runs=runs)


class DefinitionsView(MetricView):
    @extend_schema(
        summary="What each revenue, customer-count and margin figure means, as the staff pages say it",
        parameters=COMMON_PARAMETERS[:2],
        responses={200: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("Two figures", value={"currency": "USD", "from": "2025-12", "to": "2026-11", "figures": {
            "arr": {"name": "ARR", "definition": "ARR: 12 × MRR at the end of Nov 2026, in USD."},
            "customers_with_mrr": {"name": "Customers with MRR", "definition":
                                   "Customers with MRR: customers whose MRR is above 0 at the end of Nov 2026."}}})],
    )
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        """The definitions of ``revenue.figures`` for the window (the month: its last month)."""
        first, last = self.window(request, tenant)
        cost_months = cost_data_months(tenant=tenant, first=first, last=last)
        return {
            "currency": tenant.reporting_currency, "from": first.isoformat()[:7], "to": last.isoformat()[:7],
            "figures": {
                key: {"name": str(figure.name), "definition": figure_definition(
                    key, tenant=tenant, month=last, window=(first, last), cost_months=cost_months)}
                for key, figure in FIGURES.items()
            },
        }


def url_patterns():
    return [
        path("metrics/definitions/", DefinitionsView.as_view(), name="metrics-definitions"),
        path("metrics/mrr/", MRRView.as_view(), name="metrics-mrr"),
        path("metrics/movements/", MovementsView.as_view(), name="metrics-movements"),
        path("metrics/retention/", RetentionView.as_view(), name="metrics-retention"),
        path("metrics/concentration/", ConcentrationView.as_view(), name="metrics-concentration"),
        path("metrics/clv/", CLVView.as_view(), name="metrics-clv"),
        path("metrics/pipeline/", PipelineView.as_view(), name="metrics-pipeline"),
        path("metrics/forecast/", ForecastView.as_view(), name="metrics-forecast"),
    ]
