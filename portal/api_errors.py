"""JSON errors for the API: DRF's handler plus the model-level errors it does not know.

Every error body is JSON: ``{"detail": "…"}`` for authentication, permission, not-found and
conflicts; ``{"<field>": ["message", …], "non_field_errors": […]}`` for invalid input, whether DRF's
serializers or a model's ``full_clean`` in a service refused it. Outside DRF's views (a URL no
view matches, an unhandled exception), Django's error handlers answer ``{"detail": "…", "code": "…"}``
under ``/api/`` (``server_error`` for a 500), ``ApiJsonErrorsMiddleware`` turns any other
non-JSON error under ``/api/`` into the same shape, and a NUL in an API query string is a JSON 400
(``APIQueryGuardMiddleware``). ``portal.api_schema`` documents these bodies in the OpenAPI schema.
"""

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from billing.services import CatalogInUse
from customers.change_guards import ContractChangeRefused


def validation_error_detail(exc: DjangoValidationError) -> dict[str, list[str]]:
    """A model ValidationError as DRF shapes serializer errors: messages per field."""
    if not hasattr(exc, "error_dict"):
        return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
    return {
        (api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field): messages
        for field, messages in exc.message_dict.items()
    }


def exception_handler(exc, context):
    """DRF's handler, plus model validation errors as 400 and conflicting writes as 409."""
    if isinstance(exc, ContractChangeRefused):
        # Dated into an invoiced period: history is never rewritten (customers.change_guards).
        refusal = exc.refusal
        first_open = refusal.first_open_date.isoformat() if refusal.first_open_date else None
        return Response(
            {"detail": refusal.message, "invoice": refusal.document, "first_open_date": first_open},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, CatalogInUse):
        # A catalog write that would change how an issued invoice was priced (billing.services.catalog).
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        return Response(validation_error_detail(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ProtectedError):
        return Response(
            {"detail": "This object is still referenced by other records and cannot be deleted."},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, IntegrityError):
        # full_clean runs before every save, so this is a race with a concurrent write.
        return Response(
            {"detail": "This conflicts with a change made at the same time; reload and try again."},
            status=status.HTTP_409_CONFLICT,
        )
    return drf_exception_handler(exc, context)


# --- Errors outside DRF's views (Django's handler400/403/404/500, see portal.urls) ---------------
# Under /api/ every answer is JSON, even a URL no view matches or an unhandled exception; elsewhere
# Django's own pages. The 500 itself is logged with its traceback by Django (logger django.request).


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _api_error(detail: str, code: str, status_code: int) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status_code)


def bad_request(request, exception):
    if _is_api(request):
        return _api_error("The request could not be read.", "bad_request", status.HTTP_400_BAD_REQUEST)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if _is_api(request):
        return _api_error(
            "You do not have permission to perform this action.", "permission_denied", status.HTTP_403_FORBIDDEN
        )
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    if _is_api(request):
        return _api_error("No API endpoint at this address.", "not_found", status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return _api_error(
            "The server failed to answer this request; the error is logged. Try again later.",
            "server_error",
            status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return defaults.server_error(request)


_ERROR_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    429: "throttled",
    500: "server_error",
}
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ApiJsonErrorsMiddleware:
    """Under /api/, an error answered in anything but JSON is answered in JSON.

    The API's own views and the handlers above already answer JSON; this catches the rest (a plain
    405 of the docs page, a YAML error of the schema view), keeping Allow, Retry-After and
    WWW-Authenticate.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and _is_api(request)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            replaced = _api_error(
                f"{response.reason_phrase}.", _ERROR_CODES.get(response.status_code, "error"), response.status_code
            )
            for header in _KEPT_HEADERS:
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response


class APIQueryGuardMiddleware:
    """A NUL character in an API request's query string is a 400 naming the parameter.

    PostgreSQL text cannot hold NUL, so such a value would fail in the database (a 500) as a
    filter, a search term or a reference; it is never a meaningful value.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _is_api(request):
            for name, values in request.GET.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    shown = name.replace("\x00", "\\0")[:40]
                    return JsonResponse({"detail": f"The query parameter {shown!r} contains a NUL character (%00)."}, status=400)
        return self.get_response(request)
