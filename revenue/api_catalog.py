"""REST endpoints for revenue's part of the pricing catalog: price plans and exchange rates.

Writes go through ``revenue.catalog`` (validated with the models' ``full_clean``: a plan's terms by the
same per-model rules as billing's price terms). API keys and staff whose role may edit money (finance,
owner) write; every member reads. An exchange rate that converted a closed month's frozen figures is
neither changed nor deleted, and no rate is added that would convert one: 409 with the reason.
"""

import django_filters
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers

from billing.models import BillableMetric, ChargeModel
from customers.api_base import CurrencyField, MoneyField, MoneyFieldSchema, TenantModelSerializer, TenantModelViewSet
from customers.money import Money
from revenue import catalog
from revenue.models import ExchangeRate, PricePlan

INVALID = OpenApiResponse(description="Invalid input: messages per field.")
CONFLICT = OpenApiResponse(description="The rate converted (or would convert) a closed month's frozen figures.")


class PlanMoneyField(MoneyField):
    """A plan's amount column, read and written as money in the plan's currency."""

    def get_attribute(self, instance):
        return Money(super().get_attribute(instance), instance.currency)


class PlanMoneyFieldSchema(MoneyFieldSchema):
    """The same shape in the schema as every other money value."""

    target_class = PlanMoneyField


class PricePlanSerializer(TenantModelSerializer):
    currency = CurrencyField()
    base_fee = PlanMoneyField(max_digits=18, decimal_places=2, required=False, help_text="Per month.")
    unit_price = PlanMoneyField(
        max_digits=18, decimal_places=6, required=False,
        help_text="The default per-unit or per-package price of a metered model.",
    )
    metric = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    terms = serializers.JSONField(
        required=False, default=dict,
        help_text="The charge model's parameters, as on price terms (amounts as decimal strings in the plan's currency).",
    )

    class Meta:
        model = PricePlan
        fields = ["id", "code", "name", "currency", "base_fee", "charge_model", "metric", "unit_price", "terms", "description"]

    def validate_code(self, value):
        others = PricePlan.objects.for_tenant(self.context["request"].tenant).filter(code=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(f'The catalog has a plan "{value}" already.')
        return value

    def validate_terms(self, value):
        # The model's clean reads the terms as an object before parse_terms can say so.
        if not isinstance(value, dict):
            raise serializers.ValidationError('Terms must be a JSON object, e.g. {"unit_price": "0.50"}.')
        return value

    def validate_metric(self, value):
        # PricePlan.clean says so too; here the message says where to create one.
        if value and not BillableMetric.objects.for_tenant(self.context["request"].tenant).filter(code=value).exists():
            raise serializers.ValidationError(
                f'No billable metric "{value}"; create it first (POST /api/v1/billable-metrics/).'
            )
        return value

    def validate(self, attrs):
        currency = attrs.get("currency") or getattr(self.instance, "currency", None)
        errors = {}
        if self.instance is not None and currency != self.instance.currency:
            # The stored amounts are in the old currency: a new currency needs its amounts restated.
            for name in ("base_fee", "unit_price"):
                if name not in attrs:
                    errors[name] = [f"The plan moves to {currency}: give its {name} in {currency} too."]
        for name in ("base_fee", "unit_price"):
            money = attrs.get(name)
            if money is None:
                continue
            if str(money.currency) != currency:
                errors[name] = [f"Give it in the plan's currency, {currency} (got {money.currency})."]
            attrs[name] = money.amount
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


PLAN_EXAMPLE = {
    "code": "starter",
    "name": "Starter",
    "currency": "USD",
    "base_fee": {"amount": "29.00", "currency": "USD"},
    "charge_model": "included_quota",
    "metric": "processed_jobs",
    "unit_price": {"amount": "0", "currency": "USD"},
    "terms": {"included": "100", "overage_unit_price": "0.50", "grace_percent": "1"},
    "description": "100 jobs a month, $0.50 per extra job",
}
PLAN_EXAMPLES = [
    OpenApiExample("Starter plan", value=PLAN_EXAMPLE, request_only=True),
    OpenApiExample("A plan", value={"id": 3, **PLAN_EXAMPLE}, response_only=True),
    OpenApiExample(
        "Field errors", response_only=True, status_codes=["400"],
        value={"terms": ["overage_unit_price is required for included_quota."],
               "base_fee": ["Give it in the plan's currency, USD (got SEK)."]},
    ),
]


class PricePlanFilter(django_filters.FilterSet):
    currency = django_filters.CharFilter(lookup_expr="iexact")
    charge_model = django_filters.ChoiceFilter(choices=ChargeModel.choices)

    class Meta:
        model = PricePlan
        fields = []


@extend_schema_view(
    create=extend_schema(examples=PLAN_EXAMPLES, responses={201: PricePlanSerializer, 400: INVALID}),
    update=extend_schema(examples=PLAN_EXAMPLES, responses={200: PricePlanSerializer, 400: INVALID}),
    partial_update=extend_schema(examples=PLAN_EXAMPLES, responses={200: PricePlanSerializer, 400: INVALID}),
    retrieve=extend_schema(examples=PLAN_EXAMPLES),
)
class PricePlanViewSet(TenantModelViewSet):
    """The tenant's plan catalog: a monthly base fee plus one charge, which the pricing what-ifs compare
    with what each customer was billed. Plans price no invoice, so they change and go freely."""

    queryset = PricePlan.objects.none()
    serializer_class = PricePlanSerializer
    filterset_class = PricePlanFilter
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "base_fee"]
    ordering = ["code"]

    def create_object(self, data):
        return catalog.price_plan_create(tenant=self.tenant, **data)

    def update_object(self, obj, data):
        return catalog.price_plan_update(plan=obj, **data)

    def perform_destroy(self, instance):
        catalog.price_plan_delete(plan=instance)


class ExchangeRateSerializer(TenantModelSerializer):
    currency = CurrencyField()
    rate = serializers.DecimalField(
        max_digits=20, decimal_places=10, min_value=0,
        help_text="Units of the tenant's reporting currency one unit of `currency` buys, above 0.",
    )

    class Meta:
        model = ExchangeRate
        fields = ["id", "currency", "rate", "effective_on"]

    def validate_rate(self, value):
        if value <= 0:
            raise serializers.ValidationError("A rate is above 0.")
        return value

    def validate(self, attrs):
        currency = attrs.get("currency", getattr(self.instance, "currency", None))
        effective_on = attrs.get("effective_on", getattr(self.instance, "effective_on", None))
        others = ExchangeRate.objects.for_tenant(self.context["request"].tenant).filter(
            currency=currency, effective_on=effective_on
        )
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(
                {"effective_on": [f"{currency} has a rate from {effective_on} already; change that one."]}
            )
        return attrs


RATE_EXAMPLE = {"currency": "EUR", "rate": "1.0875000000", "effective_on": "2026-11-01"}
RATE_EXAMPLES = [
    OpenApiExample("EUR into the reporting currency from November", value=RATE_EXAMPLE, request_only=True),
    OpenApiExample("A rate", value={"id": 5, **RATE_EXAMPLE}, response_only=True),
    OpenApiExample(
        "Field errors", response_only=True, status_codes=["400"],
        value={"effective_on": ["EUR has a rate from 2026-11-01 already; change that one."]},
    ),
    OpenApiExample(
        "Frozen month", response_only=True, status_codes=["409"],
        value={"detail": "The EUR rate from 2026-10-01 converted the figures of 2026-10, which are closed and "
               "frozen. Date the new rate after 2026-10."},
    ),
]


class ExchangeRateFilter(django_filters.FilterSet):
    currency = django_filters.CharFilter(lookup_expr="iexact")
    effective_from = django_filters.DateFilter(field_name="effective_on", lookup_expr="gte")
    effective_to = django_filters.DateFilter(field_name="effective_on", lookup_expr="lte")

    class Meta:
        model = ExchangeRate
        fields = []


@extend_schema_view(
    create=extend_schema(examples=RATE_EXAMPLES, responses={201: ExchangeRateSerializer, 400: INVALID, 409: CONFLICT}),
    update=extend_schema(examples=RATE_EXAMPLES, responses={200: ExchangeRateSerializer, 400: INVALID, 409: CONFLICT}),
    partial_update=extend_schema(
        examples=RATE_EXAMPLES, responses={200: ExchangeRateSerializer, 400: INVALID, 409: CONFLICT}
    ),
    destroy=extend_schema(responses={204: None, 409: CONFLICT}),
    retrieve=extend_schema(examples=RATE_EXAMPLES),
)
class ExchangeRateViewSet(TenantModelViewSet):
    """Stored rates into the tenant's reporting currency; metrics take the latest on or before the day
    they convert at, and never fetch one."""

    queryset = ExchangeRate.objects.none()
    serializer_class = ExchangeRateSerializer
    filterset_class = ExchangeRateFilter
    ordering_fields = ["currency", "effective_on"]
    ordering = ["currency", "-effective_on"]

    def create_object(self, data):
        return catalog.exchange_rate_create(tenant=self.tenant, **data)

    def update_object(self, obj, data):
        return catalog.exchange_rate_update(exchange_rate=obj, **data)

    def perform_destroy(self, instance):
        catalog.exchange_rate_delete(exchange_rate=instance)


def register(router):
    """Add the catalog's viewsets to the API router."""
    router.register("price-plans", PricePlanViewSet, basename="price-plan")
    router.register("exchange-rates", ExchangeRateViewSet, basename="exchange-rate")
