"""JSON errors for the API: DRF's handler plus the model-level errors it does not know.

Every error body is JSON: ``{"detail": "…"}`` for authentication, permission, not-found and
conflicts; ``{"<field>": ["message", …], "non_field_errors": […]}`` for invalid input, whether DRF's
serializers or a model's ``full_clean`` in a service refused it. A URL under /api/ that matches no
endpoint is a JSON 404 too (``api_not_found``), and a NUL in an API query string a JSON 400
(``APIQueryGuardMiddleware``). ``portal.api_schema`` documents these bodies in the OpenAPI schema.
"""

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError
from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

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


def api_not_found(request, exception=None):
    """``handler404``: a URL under /api/ that matches no endpoint (``/api/v1/contracts/1.5/``) is a
    JSON 404 like every other API error; elsewhere Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


class APIQueryGuardMiddleware:
    """A NUL character in an API request's query string is a 400 naming the parameter.

    PostgreSQL text cannot hold NUL, so such a value would fail in the database (a 500) as a
    filter, a search term or a reference; it is never a meaningful value.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            for name, values in request.GET.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    shown = name.replace("\x00", "\\0")[:40]
                    return JsonResponse({"detail": f"The query parameter {shown!r} contains a NUL character (%00)."}, status=400)
        return self.get_response(request)
