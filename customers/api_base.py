"""Shared building blocks for every app's REST API: tenant-scoped viewsets, fields and serializers.

The tenant of a request is decided once, by ``portal.tenancy.TenantMiddleware``; everything here
reads ``request.tenant`` and scopes explicitly with ``Model.objects.for_tenant(tenant)``.

Conventions every endpoint follows:
- ``tenant`` is never part of a payload. A client that sends it gets 400 (rather than having it
  silently ignored), so nobody believes they wrote into another tenant.
- Related objects (a contract's customer, an opportunity's owner) are looked up in the request's
  tenant only: another tenant's id fails exactly like an id that does not exist.
- Money is ``{"amount": "123.45", "currency": "USD"}``: the amount is a decimal string, exact,
  with trailing zeros dropped down to the currency's minor unit ("100.00", "0.125", "5000" in JPY).
- Model validation errors become 400 with a list of messages per field (``portal.api_errors``).
"""

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type, build_object_type
from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers, viewsets
from rest_framework.pagination import PageNumberPagination

from customers.money import Money, format_amount

__all__ = [
    "CurrencyField",
    "DecimalStringField",
    "MoneyField",
    "StrictCharField",
    "TenantMemberField",
    "TenantModelSerializer",
    "TenantModelViewSet",
    "TenantPagination",
    "TenantPrimaryKeyRelatedField",
    "acting_user",
]


class TenantPagination(PageNumberPagination):
    """``{"count", "next", "previous", "results"}``; 50 a page unless ``?page_size=`` asks (1 to 500).

    A ``page_size`` that is not a whole number from 1 to 500 is a 400 (DRF would silently use the
    default instead); a ``page`` that is not a page of the list is DRF's 404 "Invalid page.".
    """

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            raise serializers.ValidationError(
                {"page_size": [f"Give page_size as a whole number from 1 to {self.max_page_size} (got {raw[:20]!r})."]}
            )
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size, "default": self.page_size}
        return parameters


def acting_user(request):
    """The human behind a request, for audit fields; None for an API key (a machine)."""
    user = getattr(request, "user", None)
    return user if isinstance(user, get_user_model()) else None


class CurrencyField(serializers.ChoiceField):
    """An ISO 4217 code among the currencies the deployment allows (``settings.CURRENCIES``)."""

    default_error_messages = {"invalid_choice": 'Unknown currency "{input}"; use one of {allowed}.'}

    def __init__(self, **kwargs):
        super().__init__(choices=list(settings.CURRENCIES), **kwargs)

    def to_internal_value(self, data):
        if str(data) not in self.choice_strings_to_values:
            self.fail("invalid_choice", input=data, allowed=", ".join(settings.CURRENCIES))
        return str(data)


class MoneyField(serializers.Field):
    """Money as ``{"amount": "123.45", "currency": "USD"}``, read and written the same way.

    The amount must be a decimal string (a JSON number is read by its decimal text) with at most
    ``decimal_places`` decimals and ``max_digits`` digits, like the model column it is stored in.
    """

    default_error_messages = {
        "not_a_dict": 'Give money as an object, {"amount": "123.45", "currency": "USD"}, not a plain value.',
        "invalid_amount": "A valid decimal amount is required.",
        "max_decimal_places": "Ensure there are no more than {places} decimal places.",
        "max_digits": "Ensure there are no more than {digits} digits in total.",
        "negative": "The amount cannot be negative.",
    }

    def __init__(self, *, max_digits: int, decimal_places: int, allow_negative: bool = False, **kwargs):
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        self.allow_negative = allow_negative
        super().__init__(**kwargs)

    def to_representation(self, value: Money):
        currency = str(value.currency)
        return {"amount": format_amount(value.amount, currency), "currency": currency}

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            # Raised as written: ``self.fail`` would run the message's literal braces through str.format.
            raise serializers.ValidationError(self.error_messages["not_a_dict"], code="not_a_dict")
        errors = {}
        amount = self._amount(data.get("amount"), errors)
        try:
            currency = CurrencyField().run_validation(data.get("currency", serializers.empty))
        except serializers.ValidationError as exc:
            errors["currency"] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return Money(amount, currency)

    def _amount(self, raw, errors):
        if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int | float):
            errors["amount"] = [self.error_messages["invalid_amount"]]
            return None
        try:
            amount = Decimal(str(raw).strip())
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite():
            errors["amount"] = [self.error_messages["invalid_amount"]]
            return None
        _, digits, exponent = amount.as_tuple()
        places = max(0, -exponent)
        whole_digits = max(0, len(digits) + exponent)
        if places > self.decimal_places:
            errors["amount"] = [self.error_messages["max_decimal_places"].format(places=self.decimal_places)]
        elif whole_digits > self.max_digits - self.decimal_places:
            errors["amount"] = [self.error_messages["max_digits"].format(digits=self.max_digits)]
        elif amount < 0 and not self.allow_negative:
            errors["amount"] = [self.error_messages["negative"]]
        return amount


class MoneyFieldSchema(OpenApiSerializerFieldExtension):
    target_class = MoneyField

    def map_serializer_field(self, auto_schema, direction):
        return build_object_type(
            properties={
                "amount": {**build_basic_type(OpenApiTypes.STR), "format": "decimal", "example": "123.45"},
                "currency": {**build_basic_type(OpenApiTypes.STR), "example": "USD", "enum": list(settings.CURRENCIES)},
            },
            required=["amount", "currency"],
            description="Money: the exact decimal amount as a string, and its ISO 4217 currency.",
        )


def _request_tenant(field):
    request = field.context.get("request")
    return getattr(request, "tenant", None)


class TenantPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key resolved only among the request tenant's rows of ``model``.

    Another tenant's id gives DRF's usual 'Invalid pk "…" - object does not exist.', the same as
    an id nobody has, so the answer tells nothing about other tenants.
    """

    def __init__(self, model=None, **kwargs):
        if model is not None and not kwargs.get("read_only"):
            # ``none()`` never queries; it only tells DRF and the schema which model this is.
            kwargs["queryset"] = model.objects.none()
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.scope_queryset(self.queryset.model.objects.for_tenant(_request_tenant(self)))

    def scope_queryset(self, queryset):
        """Narrow further (e.g. to one contract's lines); the tenant filter is already applied."""
        return queryset


class TenantMemberField(serializers.PrimaryKeyRelatedField):
    """A user id among the staff members of the request's tenant; others fail as if missing."""

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", get_user_model().objects.none())
        super().__init__(**kwargs)

    def get_queryset(self):
        return get_user_model().objects.filter(memberships__tenant=_request_tenant(self)).distinct()


class _StringOnly:
    """Text given as a JSON string only: DRF's text fields would store ``0`` as ``"0"``, a silent
    fix-up of a value the schema calls the wrong type."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Give text as a JSON string.", code="not_a_string")
        return super().to_internal_value(data)


class StrictCharField(_StringOnly, serializers.CharField):
    pass


class StrictSlugField(_StringOnly, serializers.SlugField):
    pass


class StrictEmailField(_StringOnly, serializers.EmailField):
    pass


class StrictURLField(_StringOnly, serializers.URLField):
    pass


class DecimalStringField(serializers.DecimalField):
    """A decimal given as a JSON string (``"1.00"``), exact, as the schema says; a JSON number is
    refused rather than read through a binary float."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError('Write the number as a string, e.g. "1.00".', code="not_a_string")
        return super().to_internal_value(data)


class TenantModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer that refuses a client-supplied ``tenant``: the credentials decide it.

    Text columns (char, text, slug, email, URL) take JSON strings only (``_StringOnly``).
    """

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.SlugField: StrictSlugField,
        models.EmailField: StrictEmailField,
        models.URLField: StrictURLField,
    }

    tenant_error = "The tenant comes from your credentials and cannot be set."

    def to_internal_value(self, data):
        if isinstance(data, Mapping) and "tenant" in data:
            raise serializers.ValidationError({"tenant": [self.tenant_error]})
        return super().to_internal_value(data)


class TenantModelViewSet(viewsets.ModelViewSet):
    """CRUD on one tenant-owned model, always in the request's tenant.

    Subclasses set ``queryset = Model.objects.none()`` (which only names the model, for routing,
    permissions and the schema) and may override ``create_object`` / ``update_object`` to call the
    app's services. The defaults validate with ``full_clean`` and save with the request's tenant.
    """

    pagination_class = TenantPagination

    @property
    def tenant(self):
        return self.request.tenant

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no tenant
            return self.queryset
        return self.scope_queryset(self.queryset.model.objects.for_tenant(self.tenant))

    def scope_queryset(self, queryset):
        """Add select_related / prefetch_related / annotations; the tenant filter is applied."""
        return queryset

    def perform_create(self, serializer):
        serializer.instance = self.create_object(dict(serializer.validated_data))

    def perform_update(self, serializer):
        serializer.instance = self.update_object(serializer.instance, dict(serializer.validated_data))

    def create_object(self, data):
        obj = self.queryset.model(tenant=self.tenant, **data)
        obj.full_clean()
        obj.save()
        return obj

    def update_object(self, obj, data):
        for name, value in data.items():
            setattr(obj, name, value)
        obj.full_clean()
        obj.save()
        return obj
