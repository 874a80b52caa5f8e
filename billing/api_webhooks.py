"""``/api/v1/webhook-endpoints/``: the tenant's outgoing webhook endpoints, for owners and API keys.

Only API keys and owners may use it at all, reads included (an endpoint receives the tenant's data);
other roles get 403. Creating one answers 201 with its ``secret``, the only time it is shown;
``POST …/{id}/rotate-secret/`` gives a new one (the old one keeps signing for 24 hours) and shows it
once. A URL the SSRF guard refuses (not https, credentials, a private address) is 400 under ``url``.
``GET …/{id}/deliveries/`` lists the endpoint's latest deliveries with their attempts and
``POST …/{id}/deliveries/{webhook_delivery_id}/redeliver/`` sends one again with the same message id (409
when the endpoint is disabled). Another tenant's endpoint or delivery is a 404.
"""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEventType
from billing.services.webhooks import (
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)
from customers.api_base import StrictCharField, TenantModelSerializer, TenantModelViewSet
from customers.models import Role

DELIVERIES_LISTED = 50


class IsOwnerOrAPIKey(permissions.BasePermission):
    message = "Only the tenant's owners and API keys manage webhook endpoints."

    def has_permission(self, request, view):
        django_request = request._request
        if getattr(django_request, "api_key", None) is not None:
            return True
        membership = getattr(django_request, "membership", None)
        return membership is not None and membership.role == Role.OWNER


class WebhookEndpointSerializer(TenantModelSerializer):
    url = StrictCharField(max_length=2000)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEventType.values), allow_empty=False, max_length=20
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id", "url", "description", "event_types", "enabled", "consecutive_failures", "failing_since",
            "disabled_at", "disabled_reason", "previous_secret_expires_at", "created_at",
        ]
        read_only_fields = [
            "consecutive_failures", "failing_since", "disabled_at", "disabled_reason", "previous_secret_expires_at",
            "created_at",
        ]


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="Shown once: store it now to verify signatures.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["started_at", "status_code", "latency_ms", "succeeded", "error", "response_excerpt"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    message_id = serializers.CharField(source="event.message_id", read_only=True)
    type = serializers.CharField(source="event.type", read_only=True)
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "message_id", "type", "status", "attempts", "next_attempt_at", "delivered_at", "last_error",
                  "created_at", "attempt_log"]


class WebhookEndpointViewSet(TenantModelViewSet):
    """The tenant's webhook endpoints (owners and API keys only)."""

    queryset = WebhookEndpoint.objects.none()
    serializer_class = WebhookEndpointSerializer
    permission_classes = [IsOwnerOrAPIKey]
    ordering_fields = ["created_at", "url"]
    ordering = ["created_at", "id"]
    search_fields = ["url", "description"]

    @extend_schema(responses={201: WebhookEndpointWithSecretSerializer, 400: OpenApiResponse(
        description="A URL the guard refuses (not https, credentials, a private address) or unknown event types.")})
    def create(self, request, *args, **kwargs):
        """Register an endpoint; the answer carries its ``secret``, shown this once."""
        params = WebhookEndpointSerializer(data=request.data, context=self.get_serializer_context())
        params.is_valid(raise_exception=True)
        data = params.validated_data
        endpoint = webhook_endpoint_create(
            tenant=request.tenant, url=data["url"], event_types=data["event_types"],
            description=data.get("description", ""), enabled=data.get("enabled", True),
        )
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def update_object(self, obj, data):
        return webhook_endpoint_update(endpoint=obj, **data)

    @extend_schema(request=None, responses={200: WebhookEndpointWithSecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new secret, shown this once; the previous one keeps signing (a second signature) for 24 hours."""
        endpoint = webhook_endpoint_rotate_secret(endpoint=self.get_object())
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The endpoint's latest deliveries (newest first, at most 50), each with its attempts."""
        endpoint = self.get_object()
        deliveries = (
            WebhookDelivery.objects.for_tenant(request.tenant).filter(endpoint=endpoint)
            .select_related("event").prefetch_related("attempt_log").order_by("-created_at", "-id")[:DELIVERIES_LISTED]
        )
        return Response(WebhookDeliverySerializer(deliveries, many=True).data)

    @extend_schema(request=None, responses={
        202: WebhookDeliverySerializer, 404: OpenApiResponse(description="No such delivery of this endpoint."),
        409: OpenApiResponse(description="The endpoint is disabled."),
    })
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<webhook_delivery_id>\d+)/redeliver")
    def redeliver(self, request, pk=None, webhook_delivery_id=None):
        """Send a delivery again now, with the same message id (a new round of attempts)."""
        endpoint = self.get_object()
        delivery = WebhookDelivery.objects.for_tenant(request.tenant).filter(endpoint=endpoint, pk=webhook_delivery_id).first()
        if delivery is None:
            return Response({"detail": "No such delivery of this endpoint."}, status=status.HTTP_404_NOT_FOUND)
        try:
            delivery = webhook_delivery_redeliver(delivery=delivery)
        except ValidationError as exc:
            return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


def register(router):
    """Add the webhook endpoints to the API router."""
    router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
