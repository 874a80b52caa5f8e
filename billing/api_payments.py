"""``/api/v1/payments/``: payments received, recorded and voided over the API.

Members and API keys of the tenant read; API keys and staff whose role may edit billing (finance,
owners) record (POST), void (``POST …/{id}/void/``) and refund credit (``POST …/{id}/refund/``);
other roles get 403. Payments are never
edited or deleted (PUT, PATCH, DELETE are 405). Recording goes through
``billing.services.payment_record``: a refusal is 400 with the field it concerns (an allocation
the rules refuse is under ``allocations``, naming the invoice); voiding a void payment is 409, and
so is a refund the rules refuse (more than the credit left, a void payment, a date before the money
arrived).
Another tenant's payment, customer or invoice is a 404 or an unknown id, never a hint.
"""

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from billing import services
from billing.models import Payment, PaymentAllocation, Refund
from billing.serializers import PaymentCreateSerializer, PaymentRefundSerializer, PaymentSerializer, PaymentVoidSerializer
from customers.api_base import TenantPagination, acting_user


class PaymentFilter(django_filters.FilterSet):
    customer = django_filters.NumberFilter(field_name="customer_id")
    method = django_filters.ChoiceFilter(choices=Payment.Method.choices)
    received_from = django_filters.DateFilter(field_name="received_on", lookup_expr="gte")
    received_to = django_filters.DateFilter(field_name="received_on", lookup_expr="lte")
    invoice = django_filters.NumberFilter(field_name="allocations__invoice_id", distinct=True)

    class Meta:
        model = Payment
        fields = []


class PaymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Payments of the tenant, newest received first, each with its allocations and unallocated credit."""

    queryset = Payment.objects.none()
    serializer_class = PaymentSerializer
    filterset_class = PaymentFilter
    pagination_class = TenantPagination
    ordering_fields = ["received_on", "amount"]
    ordering = ["-received_on", "-id"]
    search_fields = ["reference", "customer__name"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no tenant
            return self.queryset
        tenant = self.request.tenant
        allocations = PaymentAllocation.objects.for_tenant(tenant).select_related("invoice", "payment").order_by("id")
        refunds = Refund.objects.for_tenant(tenant).order_by("id")
        return (
            Payment.objects.for_tenant(tenant)
            .with_unallocated()
            .select_related("customer")
            .prefetch_related(Prefetch("allocations", queryset=allocations), Prefetch("refunds", queryset=refunds))
        )

    def _read(self, payment):
        return PaymentSerializer(self.get_queryset().get(pk=payment.pk), context=self.get_serializer_context()).data

    @extend_schema(
        request=PaymentCreateSerializer,
        responses={
            201: PaymentSerializer,
            400: OpenApiResponse(description="Invalid input, or an allocation the rules refuse (per field)."),
            403: OpenApiResponse(description="Your role may not record payments."),
        },
    )
    def create(self, request, *args, **kwargs):
        """Record a payment and allocate it (to the invoices named, else the oldest open ones)."""
        params = PaymentCreateSerializer(data=request.data, context=self.get_serializer_context())
        params.is_valid(raise_exception=True)
        data = params.validated_data
        allocations = services.AUTO
        if "allocations" in data:
            allocations = [(a["invoice"], a["amount"].amount if a.get("amount") is not None else None)
                           for a in data["allocations"]]
        try:
            payment = services.payment_record(
                tenant=request.tenant,
                customer=data["customer"],
                amount=data["amount"].amount,
                currency=str(data["amount"].currency),
                received_on=data["received_on"],
                method=data["method"],
                reference=data["reference"],
                note=data["note"],
                allocations=allocations,
                created_by=acting_user(request),
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                raise
            raise ValidationError({"allocations": exc.messages}) from None
        return Response(self._read(payment), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=PaymentVoidSerializer,
        responses={
            200: PaymentSerializer,
            400: OpenApiResponse(description="No reason given."),
            409: OpenApiResponse(description="The payment is already void."),
        },
    )
    @action(detail=True, methods=["post"])
    def void(self, request, pk=None):
        """Void a payment (it bounced, or was a mistake): invoices it paid owe that part again."""
        payment = self.get_object()
        params = PaymentVoidSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            services.payment_void(payment=payment, reason=params.validated_data["reason"])
        except ValidationError as exc:
            return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
        return Response(self._read(payment))

    @extend_schema(
        request=PaymentRefundSerializer,
        responses={
            201: PaymentSerializer,
            400: OpenApiResponse(description="Invalid input (per field)."),
            403: OpenApiResponse(description="Your role may not refund."),
            409: OpenApiResponse(description="The rules refuse it: more than the credit left, a void payment, a date before the money arrived or in the future."),
        },
    )
    @action(detail=True, methods=["post"])
    def refund(self, request, pk=None):
        """Pay part of the payment's unallocated money (the customer's credit) back to the customer."""
        payment = self.get_object()
        params = PaymentRefundSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            services.payment_refund(payment=payment, created_by=acting_user(request), **params.validated_data)
        except ValidationError as exc:
            return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
        return Response(self._read(payment), status=status.HTTP_201_CREATED)
