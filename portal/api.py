"""The REST API's shared plumbing: API-key authentication, the tenant permission, strict filters.

The tenant of an API request is decided once, by ``portal.tenancy.TenantMiddleware``; the classes
here only turn that decision into DRF's terms.
"""

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, permissions, serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.filters import OrderingFilter

from customers.roles import role_can_edit
from portal.tenancy import API_KEY_PREFIX


class APIKeyPrincipal:
    """The caller of a request authenticated by a tenant API key: a machine, not a Django user.

    DRF also sets it as the Django request's ``user``. ``is_authenticated`` is False so that code
    recording a human user (simple-history's ``history_user``, audit fields) leaves it empty
    instead of failing on a non-User; DRF tells authenticated from anonymous by
    ``request.successful_authenticator``, and ``IsTenantMember`` by ``request.api_key``.
    """

    is_authenticated = False
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, api_key):
        self.api_key = api_key
        self.tenant = api_key.tenant

    def __str__(self):
        return f"API key {self.api_key.name}"


class TenantAPIKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        if not request.META.get("HTTP_AUTHORIZATION", "").startswith(API_KEY_PREFIX):
            return None
        api_key = getattr(request._request, "api_key", None)
        if api_key is None:
            raise exceptions.AuthenticationFailed("The API key is unknown, revoked or expired.")
        return APIKeyPrincipal(api_key), api_key

    def authenticate_header(self, request):
        return "Api-Key"


class TenantAPIKeySchema(OpenApiAuthenticationExtension):
    target_class = TenantAPIKeyAuthentication
    name = "tenantApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; the key decides the tenant.",
        }


class IsTenantMember(permissions.BasePermission):
    """API keys may do anything in their tenant; staff by their role; nobody else anything."""

    message = "You need a tenant API key or a staff membership in a tenant."

    def has_permission(self, request, view):
        django_request = request._request
        if getattr(django_request, "api_key", None) is not None:
            return True
        membership = getattr(django_request, "membership", None)
        if membership is None:
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        model = getattr(getattr(view, "queryset", None), "model", None)
        return model is not None and role_can_edit(membership.role, model)


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter's backend, but a filter parameter is either a valid value or absent.

    django-filter ignores an empty value (``?customer=``) and a boolean it cannot read
    (``?stale=maybe``), so the client gets every row and believes it filtered; here both are a 400
    naming the parameter, like any other invalid value (``?status=bogus``).
    """

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        errors = {}
        for name, declared in filterset.filters.items():
            if name not in request.query_params:
                continue
            value = request.query_params[name]
            if value == "":
                errors[name] = ["Give a value, or leave the parameter out."]
            elif isinstance(declared, django_filters.BooleanFilter) and value not in ("true", "false"):
                errors[name] = [f"Give true or false (got {value[:20]!r})."]
        if errors:
            raise serializers.ValidationError(errors)
        return filterset


class StrictOrderingFilter(OrderingFilter):
    """DRF's ``?ordering=``, but a field the view does not order by is a 400, not silently dropped.

    The schema lists the fields (``ordering_fields``), each also with ``-`` for descending, as a
    comma-separated list: ``?ordering=-created_at,name``.
    """

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if raw is not None:
            valid = {name for name, _ in self.get_valid_fields(queryset, view, {"request": request})}
            invalid = [term for term in (t.strip() for t in raw.split(",")) if term.removeprefix("-") not in valid]
            if invalid:
                raise serializers.ValidationError({self.ordering_param: [
                    f"Order by {', '.join(sorted(valid))}, each optionally with - for descending "
                    f"(got {invalid[0][:40]!r})."
                ]})
        return super().get_ordering(request, queryset, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        fields = getattr(view, "ordering_fields", None)
        if isinstance(fields, list | tuple):
            choices = [prefix + field for field in fields for prefix in ("", "-")]
            for parameter in parameters:
                parameter.update(style="form", explode=False)
                parameter["schema"] = {"type": "array", "items": {"type": "string", "enum": choices}}
        return parameters
