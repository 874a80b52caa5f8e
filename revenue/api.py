"""REST endpoints for the sales pipeline, inside the request's tenant."""

import re
from datetime import date

import django_filters
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from customers.api_base import TenantModelViewSet
from customers.serializers import ContractSerializer
from revenue import services
from revenue.models import Band, Opportunity
from revenue.serializers import OpportunityLoseSerializer, OpportunitySerializer, OpportunityWinSerializer

QUARTER_PATTERN = re.compile(r"^(\d{4})-Q([1-4])$")


def quarter_bounds(value: str) -> tuple[date, date]:
    """First and last day of a quarter written ``2026-Q4``."""
    year, quarter = (int(part) for part in QUARTER_PATTERN.match(value).groups())
    first_month = 3 * (quarter - 1) + 1
    first = date(year, first_month, 1)
    after = date(year + 1, 1, 1) if quarter == 4 else date(year, first_month + 3, 1)
    return first, date.fromordinal(after.toordinal() - 1)


class OpportunityFilter(django_filters.FilterSet):
    # All declared (see customers.api): no model inspection outside a tenant scope.
    stage = django_filters.ChoiceFilter(choices=Opportunity.Stage.choices)
    kind = django_filters.ChoiceFilter(choices=Opportunity.Kind.choices)
    band = django_filters.ChoiceFilter(choices=Band.choices, method="filter_band")
    owner = django_filters.NumberFilter(field_name="owner_id")
    customer = django_filters.NumberFilter(field_name="customer_id")
    quarter = django_filters.CharFilter(
        method="filter_quarter",
        label="Quarter of the expected close date, e.g. 2026-Q4",
        validators=[RegexValidator(QUARTER_PATTERN, "Write the quarter as YYYY-Qn, e.g. 2026-Q4.")],
    )
    stale = django_filters.BooleanFilter(method="filter_stale", label="Open, above 60% and untouched for 7 days")

    class Meta:
        model = Opportunity
        fields = []

    def filter_band(self, queryset, name, value):
        return queryset.in_band(value)

    def filter_quarter(self, queryset, name, value):
        first, last = quarter_bounds(value)
        return queryset.filter(expected_close_on__gte=first, expected_close_on__lte=last)

    def filter_stale(self, queryset, name, value):
        stale = queryset.stale()
        return stale if value else queryset.exclude(pk__in=stale.values("pk"))


class OpportunityViewSet(TenantModelViewSet):
    """Pipeline opportunities. Editing marks one touched; won and lost ones are closed to edits."""

    queryset = Opportunity.objects.none()
    serializer_class = OpportunitySerializer
    filterset_class = OpportunityFilter
    search_fields = ["title", "prospect_name", "customer__name"]
    ordering_fields = ["expected_close_on", "probability", "amount", "created_at", "last_touched_at", "title"]
    ordering = ["expected_close_on", "-probability"]

    def scope_queryset(self, queryset):
        return queryset.select_related("customer")

    def create_object(self, data):
        return services.opportunity_create(tenant=self.tenant, **data)

    def update_object(self, obj, data):
        return services.opportunity_update(opportunity=obj, **data)

    @extend_schema(request=OpportunityWinSerializer, responses={201: ContractSerializer})
    @action(detail=True, methods=["post"])
    def win(self, request, pk=None):
        """Mark the opportunity won; answers 201 with the draft contract made from it."""
        opportunity = self.get_object()
        params = OpportunityWinSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        contract = services.opportunity_win(opportunity=opportunity, **params.validated_data)
        return Response(
            ContractSerializer(contract, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=OpportunityLoseSerializer, responses=OpportunitySerializer)
    @action(detail=True, methods=["post"])
    def lose(self, request, pk=None):
        """Mark the opportunity lost, with the reason (required)."""
        opportunity = self.get_object()
        params = OpportunityLoseSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        opportunity = services.opportunity_lose(opportunity=opportunity, **params.validated_data)
        return Response(self.get_serializer(opportunity).data)


def register(router):
    """Add this app's viewsets to the API router."""
    router.register("opportunities", OpportunityViewSet)
