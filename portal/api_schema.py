"""The OpenAPI schema's error answers, documented for every operation from what the operation can do.

``PortalAutoSchema`` (``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``) adds to each operation the error
statuses it can answer, with the JSON body of ``portal.api_errors`` as two components:

- ``Error`` (``{"detail": "…", "code": "…"}``, more members on some 409s) for 401, 403, 404, 409,
  413, 415 and 429;
- ``ValidationErrors`` (messages per field, ``non_field_errors``, or one ``detail``) for 400.

Which statuses, by rule, so that new endpoints are covered without writing anything:

- 401 and 403 when the view needs credentials (any permission other than AllowAny); the 403's text
  is the ``message`` of the view's permissions, so an action that refuses API keys says so;
- 429 on every operation that needs credentials (the API is throttled per key and per user);
- 400 when the operation takes a body or query parameters, and on every write (a service's
  validation refuses it, ``portal.api_errors``);
- 404 when the path names an object, and on paginated lists (a page past the end);
- 409 on every write (a conflicting or protected change, ``portal.api_errors``);
- 415 when the operation takes a body (the API reads JSON only).

A view adds statuses its code answers that no rule sees with ``error_responses = {409: "why"}``;
an ``@extend_schema(responses=…)`` entry for a status wins over the generated one (its description
is kept, and given the error body when it has none).
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import permissions

ERROR_SCHEMA = {
    "type": "object",
    "description": "An error: `detail` says what went wrong and what to do; `code` names it where a client "
    "may branch on it. Some conflicts (409) carry more members, described on the operation.",
    "properties": {
        "detail": {"type": "string", "example": "Not found."},
        "code": {"type": "string"},
    },
    "required": ["detail"],
}
VALIDATION_ERRORS_SCHEMA = {
    "type": "object",
    "description": "Invalid input: a list of messages per field (nested for money and lists of objects), "
    "`non_field_errors` for the input as a whole, or one `detail` for a query parameter or the body.",
    "properties": {
        "detail": {"type": "string"},
        "non_field_errors": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": {"anyOf": [{"type": "array"}, {"type": "object"}, {"type": "string"}]},
    "example": {"reference": ["This field is required."], "acquisition_cost": {"amount": ["A valid decimal amount is required."]}},
}

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
DESCRIPTIONS = {
    400: _("Invalid input; nothing was written."),
    401: _("No credentials, or an API key that is unknown, revoked or expired."),
    403: _("The credentials may not do this."),
    404: _("No such object in this tenant, or a page past the last."),
    409: _("The change conflicts with the object's state or with other records; nothing was written."),
    415: _("The body is not JSON (`Content-Type: application/json`)."),
    429: _("Too many requests; wait the seconds of the `Retry-After` header."),
}


class PortalAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the error answers each operation can give (see the module)."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for status_code, description in self.error_statuses(operation).items():
            response = responses.setdefault(str(status_code), {"description": str(description)})
            if "content" not in response:
                response["content"] = {"application/json": {"schema": self._error_component(status_code)}}
            if status_code == 429:
                response.setdefault("headers", {})["Retry-After"] = {
                    "schema": {"type": "integer", "minimum": 0},
                    "description": "Seconds to wait before trying again.",
                }
        # Every other 4xx the view documents itself gets the error body too, if it named none.
        for status_code, response in responses.items():
            if status_code.startswith("4") and "content" not in response:
                response["content"] = {"application/json": {"schema": self._error_component(int(status_code))}}
        return operation

    def error_statuses(self, operation) -> dict[int, str]:
        """The error statuses this operation can answer, with a description of each."""
        statuses = {}
        parameters = operation.get("parameters", [])
        takes_body = "requestBody" in operation
        if takes_body or self.method in WRITE_METHODS or any(parameter["in"] == "query" for parameter in parameters):
            statuses[400] = DESCRIPTIONS[400]
        if self._needs_credentials():
            statuses[401] = DESCRIPTIONS[401]
            statuses[403] = self._permission_messages() or DESCRIPTIONS[403]
            statuses[429] = DESCRIPTIONS[429]
        if any(parameter["in"] == "path" for parameter in parameters) or self._is_paginated_list():
            statuses[404] = DESCRIPTIONS[404]
        if self.method in WRITE_METHODS:
            statuses[409] = DESCRIPTIONS[409]
        if takes_body:
            statuses[415] = DESCRIPTIONS[415]
        statuses.update(getattr(self.view, "error_responses", {}))
        return dict(sorted(statuses.items()))

    def _needs_credentials(self) -> bool:
        return not any(isinstance(permission, permissions.AllowAny) for permission in self.view.get_permissions())

    def _permission_messages(self) -> str:
        messages = [str(permission.message) for permission in self.view.get_permissions() if getattr(permission, "message", None)]
        return " ".join(dict.fromkeys(messages))

    def _is_paginated_list(self) -> bool:
        return self.method == "GET" and self._is_list_view() and self._get_paginator() is not None

    def _error_component(self, status_code: int):
        name, schema = ("ValidationErrors", VALIDATION_ERRORS_SCHEMA) if status_code == 400 else ("Error", ERROR_SCHEMA)
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
        self.registry.register_on_missing(component)
        return component.ref
