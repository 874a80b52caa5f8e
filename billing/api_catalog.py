"""REST endpoints for billing's part of the pricing catalog: billable metrics, price terms, the tenant's
billing settings, and month-end runs.

Writes go through ``billing.services.catalog`` (validated with the models' own ``full_clean``, so the
rules per charge model live in one place, ``PriceTerms.clean``); API keys and staff whose role may edit
billing (finance, owner) write, every member reads (``portal.api.IsTenantMember``). A write that would
change how an issued invoice was priced is answered 409 with the reason (``CatalogInUse``).

Price terms belong to one contract line (version): their amounts are decimal strings in the contract's
currency, which the answer shows as ``currency``. A month-end run is started by finance staff only, as
invoices are finalized by them (``IsBillingStaff``): the request queues it and answers 202.
"""

from functools import partial

import django_filters
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import path
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.response import Response

from billing import tasks
from billing.api import IsBillingStaff
from billing.models import BillableMetric, BillingRun, BillingSettings, ChargeModel, PriceTerms
from billing.models.invoicing import TERMS_KEYS
from billing.month_end import validate_run_period
from billing.services import catalog
from billing.services.price_terms import billing_settings_for
from customers.api_base import (
    DecimalStringField,
    TenantModelSerializer,
    TenantModelViewSet,
    TenantPagination,
    TenantPrimaryKeyRelatedField,
)
from customers.models import ContractLine
from customers.periods import month_key, month_start, parse_month, tenant_today

CONFLICT = OpenApiResponse(description="In use by an issued invoice (or by price terms): `detail` says why and what to do.")
INVALID = OpenApiResponse(description="Invalid input: messages per field.")


# --- billable metrics ----------------------------------------------------------------------------


class BillableMetricSerializer(TenantModelSerializer):
    class Meta:
        model = BillableMetric
        fields = ["id", "code", "name", "event_code", "aggregation", "field", "filters", "unit"]

    def validate_code(self, value):
        # The unique constraint also guards this; checking here names the field in the answer.
        others = BillableMetric.objects.for_tenant(self.context["request"].tenant).filter(code=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(f'The tenant has a metric "{value}" already.')
        return value


METRIC_EXAMPLE = {
    "code": "processed_jobs",
    "name": "Processed jobs",
    "event_code": "",
    "aggregation": "count",
    "field": "quantity",
    "filters": {"status": ["succeeded"]},
    "unit": "jobs",
}
METRIC_EXAMPLES = [
    OpenApiExample("Count of succeeded jobs", value=METRIC_EXAMPLE, request_only=True),
    OpenApiExample("A metric", value={"id": 7, **METRIC_EXAMPLE}, response_only=True),
    OpenApiExample(
        "Field errors", value={"code": ['The tenant has a metric "processed_jobs" already.']},
        response_only=True, status_codes=["400"],
    ),
]


class BillableMetricFilter(django_filters.FilterSet):
    aggregation = django_filters.ChoiceFilter(choices=BillableMetric.Aggregation.choices)

    class Meta:
        model = BillableMetric
        fields = []


@extend_schema_view(
    create=extend_schema(examples=METRIC_EXAMPLES, responses={201: BillableMetricSerializer, 400: INVALID}),
    update=extend_schema(examples=METRIC_EXAMPLES, responses={200: BillableMetricSerializer, 400: INVALID, 409: CONFLICT}),
    partial_update=extend_schema(
        examples=METRIC_EXAMPLES, responses={200: BillableMetricSerializer, 400: INVALID, 409: CONFLICT}
    ),
    destroy=extend_schema(responses={204: None, 409: CONFLICT}),
    retrieve=extend_schema(examples=METRIC_EXAMPLES),
)
class BillableMetricViewSet(TenantModelViewSet):
    """How usage events become a billable quantity. What a metric measures (code, event_code,
    aggregation, field, filters) is fixed once an issued invoice was priced from it (409); a metric
    that price terms use is not deleted (409)."""

    queryset = BillableMetric.objects.none()
    serializer_class = BillableMetricSerializer
    filterset_class = BillableMetricFilter
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name"]
    ordering = ["code"]

    def create_object(self, data):
        return catalog.billable_metric_create(tenant=self.tenant, **data)

    def update_object(self, obj, data):
        return catalog.billable_metric_update(metric=obj, **data)

    def perform_destroy(self, instance):
        catalog.billable_metric_delete(metric=instance)


# --- price terms ---------------------------------------------------------------------------------


class PriceTermsSerializer(TenantModelSerializer):
    contract_line = TenantPrimaryKeyRelatedField(
        model=ContractLine, help_text="The contract line (version) these terms price; it keeps them for good."
    )
    contract = serializers.IntegerField(source="contract_line.contract_id", read_only=True)
    currency = serializers.CharField(
        source="contract_line.contract.currency", read_only=True, help_text="The contract's: every amount in `terms` is in it."
    )
    metric = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="",
        help_text="Code of the billable metric a metered model prices (per_unit, graduated, volume, package, "
        "percentage, included_quota); empty for flat and per_seat.",
    )
    terms = serializers.JSONField(
        required=False, default=dict,
        help_text="The charge model's parameters, amounts as decimal strings in the contract's currency (tiers: "
        "[{up_to, unit_price, flat_fee}], the last up_to null). By model: " + "; ".join(
            f"{model}: {', '.join(name for name, _, _ in keys) or '(none)'}" for model, keys in TERMS_KEYS.items()
        ) + "; every model also: minimum_commitment, failed_metric.",
    )

    class Meta:
        model = PriceTerms
        fields = ["id", "contract_line", "contract", "currency", "charge_model", "metric", "terms"]

    def validate_terms(self, value):
        # The model's clean reads the terms as an object before parse_terms can say so.
        if not isinstance(value, dict):
            raise serializers.ValidationError('Terms must be a JSON object, e.g. {"unit_price": "0.50"}.')
        return value

    def validate_metric(self, value):
        tenant = self.context["request"].tenant
        if value and not BillableMetric.objects.for_tenant(tenant).filter(code=value).exists():
            raise serializers.ValidationError(
                f'No billable metric "{value}"; create it first (POST /api/v1/billable-metrics/).'
            )
        return value


class PriceTermsUpdateSerializer(PriceTermsSerializer):
    """A change of terms keeps their contract line."""

    contract_line = TenantPrimaryKeyRelatedField(model=ContractLine, read_only=True)


PRICE_TERMS_EXAMPLES = [
    OpenApiExample(
        "Graduated tiers", request_only=True,
        value={
            "contract_line": 42, "charge_model": "graduated", "metric": "processed_jobs",
            "terms": {"tiers": [
                {"up_to": "100", "unit_price": "0.50", "flat_fee": "10.00"},
                {"up_to": None, "unit_price": "0.30"},
            ]},
        },
    ),
    OpenApiExample(
        "Per unit", request_only=True,
        value={"contract_line": 43, "charge_model": "per_unit", "metric": "compute_ms", "terms": {"unit_price": "0.0001"}},
    ),
    OpenApiExample(
        "Percentage of savings", request_only=True,
        value={
            "contract_line": 44, "charge_model": "percentage", "metric": "savings",
            "terms": {"rate_percent": "20", "fixed_fee_per_event": "0.10", "free_events": 3},
        },
    ),
    OpenApiExample(
        "Price terms", response_only=True,
        value={
            "id": 9, "contract_line": 42, "contract": 12, "currency": "USD", "charge_model": "package",
            "metric": "processed_jobs", "terms": {"package_size": "100", "package_price": "5.00", "free_units": "50"},
        },
    ),
    OpenApiExample(
        "Field errors", response_only=True, status_codes=["400"],
        value={"terms": ["package_size is required for package."], "metric": ['No billable metric "jobs"; create it first (POST /api/v1/billable-metrics/).']},
    ),
]


class PriceTermsFilter(django_filters.FilterSet):
    contract = django_filters.NumberFilter(field_name="contract_line__contract_id")
    contract_line = django_filters.NumberFilter(field_name="contract_line_id")
    metric = django_filters.CharFilter()
    charge_model = django_filters.ChoiceFilter(choices=ChargeModel.choices)

    class Meta:
        model = PriceTerms
        fields = []


@extend_schema_view(
    create=extend_schema(examples=PRICE_TERMS_EXAMPLES, responses={201: PriceTermsSerializer, 400: INVALID, 409: CONFLICT}),
    update=extend_schema(examples=PRICE_TERMS_EXAMPLES, responses={200: PriceTermsSerializer, 400: INVALID, 409: CONFLICT}),
    partial_update=extend_schema(
        examples=PRICE_TERMS_EXAMPLES, responses={200: PriceTermsSerializer, 400: INVALID, 409: CONFLICT}
    ),
    destroy=extend_schema(responses={204: None, 409: CONFLICT}),
    retrieve=extend_schema(examples=PRICE_TERMS_EXAMPLES),
)
class PriceTermsViewSet(TenantModelViewSet):
    """How a contract line is priced: its charge model, the metric it meters and the model's terms,
    validated per model with a message naming the term. Terms of a line version already on an issued
    invoice are history (409): change the line from a date (``POST /contracts/{id}/changes/``), then the
    new version's terms."""

    queryset = PriceTerms.objects.none()
    serializer_class = PriceTermsSerializer
    filterset_class = PriceTermsFilter
    ordering_fields = ["id", "metric", "charge_model"]
    ordering = ["id"]

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return PriceTermsUpdateSerializer
        return super().get_serializer_class()

    def scope_queryset(self, queryset):
        return queryset.select_related("contract_line__contract")

    def create_object(self, data):
        return catalog.price_terms_create(**data)

    def update_object(self, obj, data):
        changes = {"charge_model": obj.charge_model, "metric": obj.metric, "terms": obj.terms, **data}
        return catalog.price_terms_update(price_terms=obj, **changes)

    def perform_destroy(self, instance):
        catalog.price_terms_delete(price_terms=instance)


# --- billing settings (one per tenant) -----------------------------------------------------------


class BillingSettingsSerializer(TenantModelSerializer):
    minimum_invoice_amount = DecimalStringField(
        max_digits=14, decimal_places=2, min_value=0,
        help_text="A non-zero invoice below this is topped up to it, in the invoice's own currency (so a plain "
        "decimal, not money with a currency); 0 means no minimum.",
    )

    class Meta:
        model = BillingSettings
        fields = [
            "minimum_invoice_amount", "usage_max_age_days", "usage_max_future_hours",
            "payment_method", "bankgiro", "iban", "bic", "bank_name", "payment_reference_text",
        ]
        extra_kwargs = {
            "payment_method": {"help_text": "How customers pay, printed on invoices: \"bankgiro\" (Swedish bankgiro; "
                               "invoices carry an OCR number), \"iban\" (bank transfer) or \"\" (none)."},
            "bankgiro": {"help_text": "With payment_method \"bankgiro\": 7 or 8 digits with a Luhn check digit, e.g. 123-4566."},
            "iban": {"help_text": "With payment_method \"iban\": the account, validated (spaces allowed)."},
            "bic": {"help_text": "With payment_method \"iban\": optional BIC, 8 or 11 characters."},
        }


SETTINGS_EXAMPLES = [
    OpenApiExample(
        "A $1 minimum charge, usage at most 90 days old, paid to an IBAN",
        value={
            "minimum_invoice_amount": "1.00", "usage_max_age_days": 90, "usage_max_future_hours": 24,
            "payment_method": "iban", "bankgiro": "", "iban": "SE4550000000058398257466", "bic": "ESSESESS",
            "bank_name": "SEB", "payment_reference_text": "",
        },
    ),
    OpenApiExample(
        "Paid by bankgiro with OCR", value={"payment_method": "bankgiro", "bankgiro": "123-4566"}, request_only=True,
    ),
    OpenApiExample(
        "Field errors", value={"minimum_invoice_amount": ["Ensure this value is greater than or equal to 0."]},
        response_only=True, status_codes=["400"],
    ),
]


class BillingSettingsView(generics.GenericAPIView):
    """The tenant's billing settings: one object, created with defaults on first use (GET, PUT, PATCH)."""

    queryset = BillingSettings.objects.none()  # names the model for the role check of IsTenantMember
    serializer_class = BillingSettingsSerializer

    def get_object(self):
        return billing_settings_for(tenant=self.request.tenant)

    @extend_schema(examples=SETTINGS_EXAMPLES, responses=BillingSettingsSerializer)
    def get(self, request):
        return Response(self.get_serializer(self.get_object()).data)

    def _write(self, request, partial):
        settings = self.get_object()
        serializer = self.get_serializer(settings, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = {
            "minimum_invoice_amount": settings.minimum_invoice_amount,
            "usage_max_age_days": settings.usage_max_age_days,
            "usage_max_future_hours": settings.usage_max_future_hours,
            **{name: getattr(settings, name) for name in catalog.PAYMENT_DETAIL_FIELDS},
            **serializer.validated_data,
        }
        details = {name: data.pop(name) for name in catalog.PAYMENT_DETAIL_FIELDS}
        catalog.billing_settings_update(tenant=request.tenant, **data)
        settings = catalog.billing_payment_details_set(tenant=request.tenant, **details)
        return Response(self.get_serializer(settings).data)

    @extend_schema(examples=SETTINGS_EXAMPLES, responses={200: BillingSettingsSerializer, 400: INVALID})
    def put(self, request):
        return self._write(request, partial=False)

    @extend_schema(examples=SETTINGS_EXAMPLES, responses={200: BillingSettingsSerializer, 400: INVALID})
    def patch(self, request):
        return self._write(request, partial=True)


# --- month-end runs ------------------------------------------------------------------------------


class BillingRunSerializer(serializers.ModelSerializer):
    period = serializers.SerializerMethodField(help_text="The month, YYYY-MM.")

    class Meta:
        model = BillingRun
        fields = [
            "id", "period", "period_start", "period_end", "status", "finalize_on", "customers", "drafted",
            "finalized", "emailed", "failed", "problems", "error", "created_at", "drafted_at", "finished_at",
        ]
        read_only_fields = fields

    def get_period(self, run) -> str:
        return month_key(run.period_start)


class BillingRunStartSerializer(serializers.Serializer):
    period = serializers.CharField(max_length=7, help_text="YYYY-MM: a past month, or the current one to draft it.")
    finalize = serializers.BooleanField(
        default=False,
        help_text="Finalize and send the invoices at once; otherwise they stay drafts for the tenant's review days. "
        "A month still running can only be drafted.",
    )

    def validate(self, attrs):
        tenant = self.context["request"].tenant
        try:
            period_start = parse_month(attrs["period"])
            validate_run_period(tenant=tenant, period_start=period_start)
        except ValidationError as exc:  # PeriodError (not a month) or a month that has not begun
            raise serializers.ValidationError({"period": exc.messages}) from None
        if attrs["finalize"] and period_start == month_start(tenant_today(tenant)):
            raise serializers.ValidationError({"finalize": [
                "This month is still running: a run can only draft it. Finalize an invoice early with "
                'POST /api/v1/invoices/{id}/finalize/ and {"close_early": true}.'
            ]})
        return {**attrs, "period_start": period_start}


class BillingRunFilter(django_filters.FilterSet):
    period = django_filters.DateFilter(field_name="period_start", input_formats=["%Y-%m"], label="Month, YYYY-MM")
    status = django_filters.ChoiceFilter(choices=BillingRun.Status.choices)

    class Meta:
        model = BillingRun
        fields = []


class BillingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The tenant's month-end runs, with their live counters. ``POST`` starts (or resumes) the run of a
    month: it is queued to the workers and answered 202; read it back with ``?period=YYYY-MM``."""

    queryset = BillingRun.objects.none()
    serializer_class = BillingRunSerializer
    filterset_class = BillingRunFilter
    pagination_class = TenantPagination
    ordering = ["-period_start"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return BillingRun.objects.for_tenant(self.request.tenant)

    def get_permissions(self):
        return [IsBillingStaff()] if self.action == "create" else super().get_permissions()

    @extend_schema(
        request=BillingRunStartSerializer,
        responses={
            202: OpenApiResponse(
                inline_serializer("BillingRunQueued", {
                    "detail": serializers.CharField(),
                    "period": serializers.CharField(),
                    "run": serializers.CharField(help_text="Where to read the run's progress."),
                }),
                description="Queued to the workers: `run` is where to read its progress.",
            ),
            400: INVALID,
            403: OpenApiResponse(description="Only finance staff (finance or owner) start month-end; not API keys."),
        },
        examples=[
            OpenApiExample("Draft November for review", value={"period": "2026-11", "finalize": False}, request_only=True),
            OpenApiExample(
                "Queued", response_only=True, status_codes=["202"],
                value={
                    "detail": "Month-end 2026-11 queued: invoices are being drafted for review.",
                    "period": "2026-11", "run": "/api/v1/billing-runs/?period=2026-11",
                },
            ),
        ],
    )
    def create(self, request):
        params = BillingRunStartSerializer(data=request.data, context=self.get_serializer_context())
        params.is_valid(raise_exception=True)
        period_start, finalize = params.validated_data["period_start"], params.validated_data["finalize"]
        transaction.on_commit(partial(
            tasks.month_end_start.delay, request.tenant.pk, period_start.isoformat(), finalize, request.user.pk
        ))
        what = "drafted, finalized and sent" if finalize else "drafted for review"
        key = month_key(period_start)
        return Response(
            {"detail": f"Month-end {key} queued: invoices are being {what}.", "period": key,
             "run": f"/api/v1/billing-runs/?period={key}"},
            status=status.HTTP_202_ACCEPTED,
        )


def register(router):
    """Add the catalog's viewsets to the API router."""
    router.register("billable-metrics", BillableMetricViewSet, basename="billable-metric")
    router.register("price-terms", PriceTermsViewSet, basename="price-terms")
    router.register("billing-runs", BillingRunViewSet, basename="billing-run")


def url_patterns():
    """The singleton billing settings, beside the router's endpoints under ``/api/v1/``."""
    return [path("billing-settings/", BillingSettingsView.as_view(), name="billing-settings")]
