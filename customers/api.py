"""REST endpoints for customers, contacts and contracts, all inside the request's tenant."""

from collections.abc import Mapping

import django_filters
from django.db import transaction
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from customers import services
from customers.api_base import TenantModelViewSet, acting_user
from customers.models import BillingInterval, Contact, Contract, ContractChange, ContractLine, Customer
from customers.serializers import (
    ContactSerializer,
    ContractCancelSerializer,
    ContractChangeRequestSerializer,
    ContractChangeSerializer,
    ContractLineChangeSerializer,
    ContractSerializer,
    ContractUpdateSerializer,
    CustomerSerializer,
    DraftContractUpdateSerializer,
)


# Every filter is declared: django-filter would otherwise inspect the scoped managers at import
# time, outside any tenant scope. Ids filter as plain numbers, so another tenant's id simply
# matches nothing and is never looked up.


class CustomerFilter(django_filters.FilterSet):
    account_manager = django_filters.NumberFilter(field_name="account_manager_id")
    country = django_filters.CharFilter(field_name="country", lookup_expr="iexact")
    currency = django_filters.CharFilter(field_name="currency", lookup_expr="iexact")
    tier = django_filters.CharFilter(field_name="tier", lookup_expr="iexact")
    segment = django_filters.CharFilter(field_name="segment", lookup_expr="iexact")

    class Meta:
        model = Customer
        fields = []


class CustomerViewSet(TenantModelViewSet):
    """Customers of the tenant. Deleting one that still has contracts or opportunities gives 409."""

    queryset = Customer.objects.none()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    search_fields = ["name", "external_ref"]
    ordering_fields = ["name", "external_ref", "created_at", "tier", "segment"]
    ordering = ["name"]

    def create_object(self, data):
        return services.customer_create(tenant=self.tenant, **data)


class ContactFilter(django_filters.FilterSet):
    customer = django_filters.NumberFilter(field_name="customer_id")
    is_billing_contact = django_filters.BooleanFilter()

    class Meta:
        model = Contact
        fields = []


class ContactViewSet(TenantModelViewSet):
    queryset = Contact.objects.none()
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    search_fields = ["name", "email", "customer__name"]
    ordering_fields = ["name", "email"]
    ordering = ["name"]


class ContractFilter(django_filters.FilterSet):
    customer = django_filters.NumberFilter(field_name="customer_id")
    status = django_filters.ChoiceFilter(choices=Contract.Status.choices)
    currency = django_filters.CharFilter(lookup_expr="iexact")
    billing_interval = django_filters.ChoiceFilter(choices=BillingInterval.choices)

    class Meta:
        model = Contract
        fields = []


class ContractViewSet(TenantModelViewSet):
    """Contracts with their line versions.

    Created with their lines in one piece (``customers.services.contract_create``). Once started (not
    a draft), its lines, dates, status, currency and interval change only as dated changes
    (``POST /contracts/{id}/changes/``, or the older ``cancel`` and ``change-line`` actions), so history
    stays replayable; a PUT or PATCH that would change them is answered 409 pointing there. A change
    dated into an invoiced period is refused with 409. A contract is never deleted (cancel it).
    """

    queryset = Contract.objects.none()
    serializer_class = ContractSerializer
    filterset_class = ContractFilter
    search_fields = ["reference", "title", "customer__name"]
    ordering_fields = ["start_date", "end_date", "reference", "created_at"]
    ordering = ["-start_date", "reference"]
    http_method_names = ["get", "post", "patch", "put", "head", "options"]

    def scope_queryset(self, queryset):
        lines = ContractLine.objects.for_tenant(self.tenant)
        return queryset.select_related("customer").prefetch_related(Prefetch("lines", queryset=lines))

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            draft = not getattr(self, "swagger_fake_view", False) and self.get_object().status == Contract.Status.DRAFT
            return DraftContractUpdateSerializer if draft else ContractUpdateSerializer
        return super().get_serializer_class()

    @transaction.atomic
    def update_object(self, contract, data):
        data.pop("customer", None)
        data.pop("currency", None)
        lines = data.pop("lines", None)
        contract = super().update_object(contract, data)
        if lines is not None:
            services.contract_draft_lines_set(contract=contract, lines=[services.LineSpec(**line) for line in lines])
        return self._reloaded(contract)

    @transaction.atomic
    def create_object(self, data):
        lines = [services.LineSpec(**line) for line in data.pop("lines")]
        # contract_create does not take these descriptive fields; they are set in the same transaction.
        extra = {name: data.pop(name) for name in ("notes", "renewal_term_months") if name in data}
        contract = services.contract_create(lines=lines, created_by=acting_user(self.request), **data)
        return self.update_object(contract, extra) if extra else contract

    # What a started contract's PUT or PATCH may not change (a draft's may change its dates and lines,
    # see DraftContractUpdateSerializer); sending them unchanged, as read, is fine.
    LOCKED_FIELDS = ("customer", "status", "currency", "billing_interval", "start_date", "end_date", "lines")

    def update(self, request, *args, **kwargs):
        contract = self.get_object()
        if contract.status != Contract.Status.DRAFT and isinstance(request.data, Mapping):
            current = ContractSerializer(contract, context=self.get_serializer_context()).data
            changed = [name for name in self.LOCKED_FIELDS if name in request.data and request.data[name] != current[name]]
            if changed:
                return self._locked_answer(contract, changed)
        return super().update(request, *args, **kwargs)

    def _locked_answer(self, contract, fields):
        endpoint = reverse("contract-changes", args=[contract.pk])
        message = gettext(
            "Contract %(reference)s has started: its %(fields)s change only as dated changes, so invoiced "
            "months stay as they were. POST %(endpoint)s with an action (upgrade, downgrade, change_quantity, "
            "change_price, add_line, cancel, reactivate) and effective_on."
        ) % {"reference": contract.reference, "fields": ", ".join(fields), "endpoint": endpoint}
        return Response(
            {"detail": message, "fields": fields, "change_endpoint": endpoint}, status=status.HTTP_409_CONFLICT
        )

    @extend_schema(methods=["get"], request=None, responses=ContractChangeSerializer(many=True))
    @extend_schema(
        methods=["post"],
        request=ContractChangeRequestSerializer,
        responses={
            201: ContractChangeSerializer,
            400: OpenApiResponse(description="Invalid or inconsistent change; messages per field."),
            409: OpenApiResponse(
                description="Dated into a period already invoiced: `detail` names the invoice, `invoice` is its "
                "number and `first_open_date` the first day a change may take."
            ),
        },
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def changes(self, request, pk=None):
        """The contract's change timeline (GET), or one dated change of a started contract (POST).

        POST through ``customers.services.contract_change``: new line versions and a ContractChange,
        which is returned (201). A draft contract is edited directly instead (400).
        """
        contract = self.get_object()
        if request.method == "GET":
            changes = ContractChange.objects.for_tenant(self.tenant).filter(contract=contract)
            return Response(ContractChangeSerializer(changes, many=True).data)
        context = {**self.get_serializer_context(), "contract": contract}
        params = ContractChangeRequestSerializer(data=request.data, context=context)
        params.is_valid(raise_exception=True)
        change = services.contract_change(contract=contract, created_by=acting_user(request), **params.validated_data)
        return Response(ContractChangeSerializer(change).data, status=status.HTTP_201_CREATED)

    def _reloaded(self, contract):
        return self.get_queryset().get(pk=contract.pk)

    @extend_schema(request=ContractCancelSerializer, responses=ContractSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """End the contract on ``last_day`` (inclusive); its open lines end then too."""
        contract = self.get_object()
        params = ContractCancelSerializer(data=request.data, context=self.get_serializer_context())
        params.is_valid(raise_exception=True)
        services.contract_cancel(contract=contract, created_by=acting_user(request), **params.validated_data)
        return Response(ContractSerializer(self._reloaded(contract), context=self.get_serializer_context()).data)

    @extend_schema(request=ContractLineChangeSerializer, responses=ContractSerializer)
    @action(detail=True, methods=["post"], url_path="change-line")
    def change_line(self, request, pk=None):
        """Change a line's quantity and/or unit price from ``effective_on`` (an upgrade or downgrade).

        The current version ends the day before and a new version starts; returns the contract.
        """
        contract = self.get_object()
        context = {**self.get_serializer_context(), "contract": contract}
        params = ContractLineChangeSerializer(data=request.data, context=context)
        params.is_valid(raise_exception=True)
        services.contract_line_change(created_by=acting_user(request), **params.validated_data)
        return Response(ContractSerializer(self._reloaded(contract), context=context).data)

    @extend_schema(request=None, responses=ContractSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        """Turn a draft contract (e.g. from a won opportunity) into an active one."""
        contract = self.get_object()
        services.contract_activate(contract=contract, created_by=acting_user(request))
        return Response(ContractSerializer(self._reloaded(contract), context=self.get_serializer_context()).data)


def register(router):
    """Add this app's viewsets to the API router."""
    router.register("customers", CustomerViewSet)
    router.register("contacts", ContactViewSet)
    router.register("contracts", ContractViewSet)
