"""Economics endpoints under /api/v1/economics/, inside the request's tenant: margins,
profitability, ROI and savings evidence, churn risk and its back-test, anomalies, pricing what-ifs
(all read-only), and the monthly costs to serve per customer (listed, and imported in bulk).

Windows as the metric endpoints: ``from``/``to`` as ``YYYY-MM`` (default: the twelve months ending
with the last closed month). Amounts are decimal strings rounded to their currency's minor unit,
ratios to 4 decimals (``revenue.api_metrics.jsonable``); bad input is a 400 with ``{"detail": ...}``, an unknown id a 404.
"""

import re
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.response import Response

from billing.models import InvoiceLine
from customers.models import Customer
from customers.periods import PeriodError, tenant_today
from revenue.api_metrics import (
    COMMON_PARAMETERS,
    RATIO_KEYS,
    MetricView,
    decimal_parameter,
    integer_parameter,
    jsonable,
    month_parameter,
)
from revenue.economics.anomalies import recent_alerts
from revenue.economics.churn_risk import RISK_THRESHOLD, churn_risk_scores, validate_churn_risk
from revenue.economics.cost_import import MAX_ROWS, customer_costs_import
from revenue.economics.profitability import margins, profitability
from revenue.economics.roi import customer_roi, savings_evidence
from revenue.economics.whatif import movers, pricing_whatif
from revenue.models import AnomalyRule, CustomerCost
from revenue.selectors.common import MetricError, MissingExchangeRate

ECONOMICS_RATIOS = RATIO_KEYS | {
    "margin_rate", "roi", "payback_months", "thin_margin", "target_margin", "increase_rate", "margin_rate_at_cap",
    "monthly_calls", "tier_median_calls", "cost_per_call", "ratio", "share", "lift", "mean_score",
}
WINDOW = COMMON_PARAMETERS[:2]


ECONOMICS_MONTHS = {"month", "from", "to", "cost_months"}
MAX_SCORE = 100  # churn-risk scores run from 0 to 100 (the signals' weights add up to it)
MAX_MARGIN = Decimal("0.9999")  # margin rates are below 1 (revenue.economics.profitability)


class EconomicsView(MetricView):
    def get(self, request, **kwargs):
        self.kwargs = kwargs
        try:
            payload = self.compute(request, request.tenant)
            return Response(jsonable(payload, currency=request.tenant.reporting_currency, ratios=ECONOMICS_RATIOS,
                                     months=ECONOMICS_MONTHS))
        except MissingExchangeRate as exc:
            return Response({"detail": str(exc)}, status=409)
        except MetricError as exc:
            return Response({"detail": str(exc)}, status=400)
        except PeriodError as exc:
            return Response({"detail": " ".join(exc.messages)}, status=400)


DAY_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def day_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.DATE, description=f"{description}, YYYY-MM-DD; not in the future.")


class MarginsView(EconomicsView):
    @extend_schema(summary="Revenue, cost to serve and gross margin per customer, tier, feature and month",
                   parameters=WINDOW, responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        first, last = self.window(request, tenant)
        return margins(tenant=tenant, first=first, last=last)


class ProfitabilityView(EconomicsView):
    @extend_schema(
        summary="Unprofitable and thin-margin customers with revenue at risk and explained recommendations",
        parameters=[*WINDOW,
                    decimal_parameter("thin_margin", 0, MAX_MARGIN, "Margin rate below which a customer is thin (default 0.20)"),
                    decimal_parameter("target_margin", 0, MAX_MARGIN, "Margin rate the recommendations aim for (default 0.30)")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        first, last = self.window(request, tenant)
        return profitability(
            tenant=tenant, first=first, last=last,
            thin_margin=self.decimal(request, "thin_margin", Decimal("0.20"), 0, MAX_MARGIN),
            target_margin=self.decimal(request, "target_margin", Decimal("0.30"), 0, MAX_MARGIN),
        )


class ROIView(EconomicsView):
    @extend_schema(summary="A savings-billed customer's ROI per month and cumulative", parameters=WINDOW,
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request, customer_id):
        return super().get(request, customer_id=customer_id)

    def compute(self, request, tenant):
        customer = Customer.objects.for_tenant(tenant).filter(pk=self.kwargs["customer_id"]).first()
        if customer is None:
            raise Http404("No such customer.")
        first, last = self.window(request, tenant)
        return customer_roi(tenant=tenant, customer=customer, first=first, last=last)


class EvidenceView(EconomicsView):
    @extend_schema(summary="The savings events behind one percentage-priced invoice line",
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request, line_id):
        return super().get(request, line_id=line_id)

    def compute(self, request, tenant):
        line = InvoiceLine.objects.for_tenant(tenant).filter(pk=self.kwargs["line_id"]).select_related("invoice").first()
        if line is None:
            raise Http404("No such invoice line.")
        return savings_evidence(tenant=tenant, invoice_line=line)


def _day(request, tenant, name: str, default: date) -> date:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        if not DAY_PATTERN.match(raw):
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise MetricError(f"{name} must be a date as YYYY-MM-DD (got {raw[:20]!r}).") from None
    if day > tenant_today(tenant):
        raise MetricError(f"{name} cannot be in the future.")
    return day


class ChurnRiskView(EconomicsView):
    @extend_schema(
        summary="Churn-risk scores with their signals: the at-risk customers, or everyone scored (all=true)",
        parameters=[day_parameter("as_of", "The day scored (default: today)"),
                    decimal_parameter("threshold", 0, MAX_SCORE, f"Score from which a customer is at risk (default {RISK_THRESHOLD})"),
                    integer_parameter("limit", 1, 10_000, 50, "Customers listed at most"),
                    OpenApiParameter("all", OpenApiTypes.STR, enum=["true", "false"],
                                     description="true: list everyone scored, not only the customers at risk")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        as_of = _day(request, tenant, "as_of", tenant_today(tenant))
        threshold = self.decimal(request, "threshold", RISK_THRESHOLD, 0, MAX_SCORE)
        limit = self.integer(request, "limit", 50, 1, 10_000)
        scores = sorted(churn_risk_scores(tenant=tenant, as_of=as_of).values(), key=lambda s: (-s.score, s.customer))
        everyone = self.choice(request, "all", ("true", "false"), "false") == "true"
        listed = scores if everyone else [s for s in scores if s.score >= threshold]
        return {"as_of": as_of, "threshold": threshold, "scored": len(scores),
                "at_risk": sum(1 for s in scores if s.score >= threshold),
                "customers": [s.as_dict(threshold) for s in listed[:limit]]}


class ChurnValidationView(EconomicsView):
    @extend_schema(summary="Back-test of the churn-risk score against the customers who churned",
                   parameters=[integer_parameter("months", 1, 24, 12, "Months back-tested"),
                               decimal_parameter("threshold", 0, MAX_SCORE, f"Score from which a customer is at risk (default {RISK_THRESHOLD})")],
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        return validate_churn_risk(tenant=tenant, months=self.integer(request, "months", 12, 1, 24),
                                   threshold=self.decimal(request, "threshold", RISK_THRESHOLD, 0, MAX_SCORE))


class AnomaliesView(EconomicsView):
    @extend_schema(summary="Usage and spend alerts (spikes, drops, threshold rules) and the tenant's rules",
                   parameters=[day_parameter("since", "First day of the alerts listed (default: 30 days ago)")],
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        since = _day(request, tenant, "since", tenant_today(tenant) - timedelta(days=30))
        rules = AnomalyRule.objects.for_tenant(tenant).values("id", "name", "metric", "threshold", "window", "is_active")
        return {"since": since, "alerts": recent_alerts(tenant=tenant, since=since), "rules": list(rules)}


class WhatIfView(EconomicsView):
    @extend_schema(
        summary="Pricing what-if: the last N closed months re-priced under the catalog's plans, against what was billed",
        parameters=[integer_parameter("months", 1, 24, 3, "Closed months re-priced"),
                    OpenApiParameter("plans", OpenApiTypes.STR,
                                     description="comma-separated plan codes (default: the whole catalog)"),
                    integer_parameter("limit", 0, 1000, 10, "movers listed per plan"),
                    OpenApiParameter("customers", OpenApiTypes.STR, enum=["all"],
                                     description="all: every customer's figures")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        codes = request.query_params.get("plans")
        result = pricing_whatif(
            tenant=tenant, months=self.integer(request, "months", 3, 1, 24),
            plan_codes=[c.strip() for c in codes.split(",") if c.strip()] if codes else None,
        )
        limit = self.integer(request, "limit", 10, 0, 1000)
        result["movers"] = {p["code"]: movers(result, p["code"], limit) for p in result["plans"][1:]}
        if self.choice(request, "customers", ("all",)) != "all":
            del result["customers"]
        return result


MAX_BODY_BYTES = 8 * 1024 * 1024  # MAX_ROWS rows with 200-character notes take about 3 MB
IMPORT_REFUSED = inline_serializer("CustomerCostImportRefused", {
    "detail": serializers.CharField(), "errors": serializers.ListField(child=serializers.CharField()),
})


class CustomerCostsView(EconomicsView):
    """A month's costs to serve per customer (GET), and a bulk import of them (POST).

    Writing needs what editing customer costs in the admin needs (``portal.api.IsTenantMember``
    with this model: ``customers.roles.role_can_edit``); an API key may write.
    """

    queryset = CustomerCost.objects.none()  # names the model for the permission; never queried
    SOURCES = CustomerCost.Source.values

    @extend_schema(
        summary="The costs to serve entered or imported for one month, per customer",
        parameters=[month_parameter("month", "YYYY-MM (default: the last closed month)")],
        responses={200: inline_serializer("CustomerCostMonth", {
            "month": serializers.CharField(),
            "costs": inline_serializer("CustomerCostListed", {
                "customer": serializers.CharField(), "name": serializers.CharField(), "month": serializers.CharField(),
                "amount": serializers.CharField(), "source": serializers.ChoiceField(choices=CustomerCost.Source.values),
                "note": serializers.CharField(),
            }, many=True),
        })},
    )
    def get(self, request):
        return super().get(request)

    def compute(self, request, tenant):
        month = self.month(request, tenant)
        rows = (
            CustomerCost.objects.for_tenant(tenant).filter(month=month).order_by("customer__external_ref", "source")
            .values_list("customer__external_ref", "customer__name", "month", "amount", "source", "note")
        )
        keys = ("customer", "name", "month", "amount", "source", "note")
        return {"month": month, "costs": [dict(zip(keys, row, strict=True)) for row in rows]}

    @extend_schema(
        summary="Import a month's cost to serve per customer: every row is checked, then all are written or none",
        description=(
            f"At most {MAX_ROWS} rows. A row replaces that customer-month's cost of the same source (amount and note; "
            'no note clears it). `source` is "imported" (default) or "entered". Errors name the row, counting the '
            "first element of `costs` as row 1; nothing is written when any row is wrong."
        ),
        request=inline_serializer("CustomerCostImport", {
            "costs": inline_serializer("CustomerCostRow", {
                "customer": serializers.CharField(help_text="The customer's external_ref in this tenant."),
                "month": serializers.CharField(help_text="YYYY-MM"),
                "amount": serializers.DecimalField(max_digits=18, decimal_places=2, min_value=Decimal(0)),
                "note": serializers.CharField(required=False, allow_blank=True, max_length=200),
            }, many=True),
            "source": serializers.ChoiceField(choices=CustomerCost.Source.values, required=False),
        }),
        responses={
            200: inline_serializer("CustomerCostImportResult", {
                "created": serializers.IntegerField(), "updated": serializers.IntegerField(),
                "unchanged": serializers.IntegerField(),
            }),
            400: IMPORT_REFUSED,
            413: IMPORT_REFUSED,
        },
        examples=[OpenApiExample("Two customers", request_only=True, value={"costs": [
            {"customer": "acme", "month": "2026-03", "amount": "1250.00", "note": "cloud bill"},
            {"customer": "globex", "month": "2026-03", "amount": "310.40"},
        ]})],
    )
    def post(self, request):
        # DRF reads a JSON body whole, without Django's upload limit: refuse a huge one unread.
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return self._refused(
                f"The body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB; send at most {MAX_ROWS} rows at once.",
                status=413,
            )
        try:
            body = request.data
        except ParseError as exc:
            return self._refused(f"The body is not valid JSON: {exc.detail}")
        if not isinstance(body, dict):
            return self._refused('Send a JSON object: {"costs": [...], "source": "imported"}.')
        unknown = sorted(str(key) for key in body if key not in ("costs", "source"))
        if unknown:
            return self._refused(f'Unknown field(s) {", ".join(unknown)}; send "costs" and optionally "source".')
        costs = body.get("costs")
        if not isinstance(costs, list):
            return self._refused('"costs" must be a list of {customer, month, amount, note} objects.')
        source = body.get("source", CustomerCost.Source.IMPORTED)
        if source not in self.SOURCES:
            return self._refused(f'"source" must be one of {", ".join(self.SOURCES)}.')
        try:
            counts = customer_costs_import(tenant=request.tenant, rows=costs, source=source)
        except ValidationError as exc:
            problems = len(exc.messages)
            return self._refused(
                f"Nothing was imported: {problems} problem{'s' if problems > 1 else ''} to fix.", exc.messages
            )
        return Response(counts)

    def _refused(self, detail: str, errors: list[str] | None = None, status: int = 400) -> Response:
        return Response({"detail": detail, "errors": errors if errors is not None else [detail]}, status=status)


def url_patterns():
    return [
        path("economics/margins/", MarginsView.as_view(), name="economics-margins"),
        path("economics/profitability/", ProfitabilityView.as_view(), name="economics-profitability"),
        path("economics/roi/<int:customer_id>/", ROIView.as_view(), name="economics-roi"),
        path("economics/invoice-lines/<int:line_id>/evidence/", EvidenceView.as_view(), name="economics-evidence"),
        path("economics/churn-risk/", ChurnRiskView.as_view(), name="economics-churn-risk"),
        path("economics/churn-risk/validation/", ChurnValidationView.as_view(), name="economics-churn-validation"),
        path("economics/anomalies/", AnomaliesView.as_view(), name="economics-anomalies"),
        path("economics/what-if/", WhatIfView.as_view(), name="economics-what-if"),
        path("economics/costs/", CustomerCostsView.as_view(), name="economics-costs"),
    ]
