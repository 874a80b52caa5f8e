"""The usage API: ingest usage events in bulk, and read a customer's usage for a month.

Authentication and permission come from the REST framework defaults (tenant API key, or a staff
session whose role may edit billing to post and any membership to read). The ingestion view
parses the body itself: a DRF serializer per event would cost more than the whole database round
trip. A body of well-formed events is decoded by msgspec into typed events for
``usage_ingest_typed``; any other body, or a batch with an event to reject, is read again (orjson,
``json.loads`` for exact numbers) and judged event by event as plain dicts by ``usage_ingest``.
"""

import calendar
import json
import re
from datetime import date
from decimal import Decimal

import msgspec
import orjson
from django.db import transaction
from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.metering import (
    MAX_BATCH_EVENTS,
    PROPERTIES_MAX_BYTES,
    PROPERTIES_MAX_DEPTH,
    TENANT_REFUSED,
    IngestRefused,
    UsageBatchIn,
    usage_ingest,
    usage_ingest_typed,
    usage_totals,
)
from billing.models import BillableMetric, UsageEvent
from customers.models import Customer

# 10 000 events at up to ~3 KB each; bigger bodies are refused before they are read.
MAX_BODY_BYTES = 32 * 1024 * 1024
# Objects and lists deeper than this (from the top of the body) are cut before parsing: deep enough
# that whatever held them is refused anyway (properties allow 8 levels), shallow enough for json.
PARSE_MAX_DEPTH = 64
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_CUT = '"(nested too deeply)"'
# Every digit becomes "0" and every other byte a space: a run of 19 digits (an integer orjson would
# read as a float) is then a plain substring search, ~50x faster than a regular expression.
_DIGITS_ONLY = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 19
_PERIOD = re.compile(r"([0-9]{4})-([0-9]{2})\Z")
_PERIOD_SCHEMA = {"type": "string", "pattern": r"^(?!0000)[0-9]{4}-(0[1-9]|1[0-2])$", "example": "2026-11"}


def _json_response(payload, status_code=200):
    try:
        content = orjson.dumps(payload, default=str)
    except TypeError:  # an integer beyond 64 bits echoed back as a key
        content = json.dumps(payload, default=str)
    return HttpResponse(content, status=status_code, content_type="application/json")


def _error(message, status_code=status.HTTP_400_BAD_REQUEST):
    return _json_response({"detail": message}, status_code)


def _int_or_decimal(text):
    # Python refuses to read integers of more than 4 300 digits; as a Decimal it is just out of range.
    return int(text) if len(text) < 4000 else Decimal(text)


def _cut_deep_nesting(text: str) -> str:
    """``text`` with every object or list nested deeper than PARSE_MAX_DEPTH replaced by a string."""
    pieces, depth, cut_at, copied_to = [], 0, None, 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token[0] == '"':
            continue
        if token in "[{":
            depth += 1
            if depth == PARSE_MAX_DEPTH + 1:
                cut_at = match.start()
        else:
            if depth == PARSE_MAX_DEPTH + 1 and cut_at is not None:
                pieces += [text[copied_to:cut_at], _CUT]
                copied_to, cut_at = match.end(), None
            depth -= 1
    pieces.append(text[copied_to:])
    return "".join(pieces)


def _needs_exact_numbers(payload) -> bool:
    """Whether an event of an orjson-parsed payload has a float quantity or key, which only the exact
    parser reads as written (a float keeps 17 digits; quantities are checked to 6 decimal places)."""
    events = payload.get("events", [payload]) if type(payload) is dict else None
    if type(events) is not list:
        return False
    return any(
        type(event) is dict and (type(event.get("quantity")) is float or type(event.get("idempotency_key")) is float)
        for event in events
    )


def parse_body(body: bytes):
    """The body as JSON, each event's oddities left for the service to judge one by one.

    Quantities are exact (floats read as Decimal); NaN and Infinity, integers too long for Python
    and nesting too deep for the parser do not fail the body: they become values the service
    rejects for their own event. Raises ValueError when the body is not JSON at all.

    orjson reads the common body (integer quantities, string keys) about three times faster than
    ``json``; a body it refuses, one with an integer literal of 19 or more digits (which orjson would
    read as a float) or one with a float quantity or key is read again by ``json`` as before.
    """
    if _LONG_DIGIT_RUN not in body.translate(_DIGITS_ONLY):
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            if not _needs_exact_numbers(payload):
                return payload
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=Decimal)
    except (ValueError, RecursionError):
        pass  # a slower, tolerant second reading, only for bodies the fast one refused
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    try:
        return json.loads(
            _cut_deep_nesting(text), parse_float=Decimal, parse_constant=Decimal, parse_int=_int_or_decimal
        )
    except RecursionError:
        raise ValueError("nested too deeply") from None


_TYPED_BATCH = msgspec.json.Decoder(UsageBatchIn)


def decode_typed_batch(body: bytes) -> UsageBatchIn | None:
    """The body as ``{"events": [...]}`` of well-formed events (``UsageEventIn``), or None.

    msgspec reads and checks the common body in one pass in C; a body of any other shape (one event
    alone, a float quantity, a ``tenant`` at the top, malformed JSON) is None and goes to
    ``parse_body``, whose answers are the contract."""
    try:
        batch = _TYPED_BATCH.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):  # ValidationError is a DecodeError
        return None
    if batch.tenant is not msgspec.UNSET:
        return None
    return batch


_EVENT_EXAMPLE = {
    "customer": "northwind",
    "metric": "processed_jobs",
    "timestamp": "2026-11-05T14:03:00Z",
    "idempotency_key": "job-8812-processed",
    "quantity": 1,
    "properties": {"status": "succeeded", "region": "eu"},
}

_RESULTS = inline_serializer(
    "UsageEventResult",
    {
        "idempotency_key": serializers.CharField(allow_null=True),
        "status": serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"]),
        "reason": serializers.CharField(allow_null=True),
    },
    many=True,
)
_INGEST_RESPONSE = inline_serializer(
    "UsageIngestResponse",
    {
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "rejected": serializers.IntegerField(),
        "results": _RESULTS,
    },
)
_ERROR = inline_serializer("UsageError", {"detail": serializers.CharField()})
_BAD_REQUEST = inline_serializer(
    "UsageBadRequest",
    {
        "detail": serializers.CharField(required=False, help_text="Why the body was refused."),
        "tenant": serializers.ListField(
            child=serializers.CharField(), required=False, help_text="A `tenant` member at the top of the body."
        ),
    },
)


class UsageEventIngestView(APIView):
    """POST usage events: one event object, or ``{"events": [...]}`` with up to 10 000."""

    queryset = UsageEvent.objects.none()  # names the model whose area (billing) staff roles must edit
    throttle_scope = "usage_ingest"  # its own request budget per caller: the usage_ingest rate in settings

    def handle_exception(self, exc):
        # The view runs outside ATOMIC_REQUESTS (url_patterns); DRF's error answer marks the innermost
        # transaction for rollback, which is then this block's, never a caller's around the request.
        with transaction.atomic():
            return super().handle_exception(exc)

    @extend_schema(
        operation_id="usage_events_ingest",
        tags=["usage"],
        summary="Ingest usage events (exactly once per idempotency key)",
        description=(
            "Send one event object, or `{\"events\": [...]}` with at most 10 000 events. Each event: "
            "`customer` (your customer reference), `metric` (a billable metric code), `timestamp` "
            "(ISO-8601 with a UTC offset), `idempotency_key` (required, at most 128 characters), "
            "`quantity` (number or numeric string, default 1, at most 6 decimals), `properties` (object). "
            "The answer is always 200 with one result per event in request order: `accepted`, "
            "`duplicate` (the key was already stored: retries are safe) or `rejected` with a reason "
            "(`unknown customer`, `unknown metric`, `bad timestamp`, `missing idempotency key`, "
            "`non-numeric quantity`, `period already invoiced`, ...). A rejected event never blocks the "
            "others. Timestamps must lie in the tenant's plausibility window: not before the first day of "
            "the customer's first contract month (`timestamp before the customer's first contract month`), "
            "not more than 24 hours ahead (`timestamp more than 24 hours in the future`) and, if the tenant "
            "sets a maximum age, not older (`timestamp more than N days in the past`); both limits are "
            "billing settings. `properties` may hold at most "
            f"{PROPERTIES_MAX_BYTES} bytes of JSON nested at most {PROPERTIES_MAX_DEPTH} levels "
            f"(`properties larger than {PROPERTIES_MAX_BYTES} bytes of JSON`, "
            f"`properties nested deeper than {PROPERTIES_MAX_DEPTH} levels`). The tenant comes from your "
            "credentials: a `tenant` member in an event rejects that event, at the top of the body it is a "
            "400. Malformed JSON, a body that is not an object, or more than 10 000 events: 400."
        ),
        request=OpenApiTypes.OBJECT,
        responses={
            200: _INGEST_RESPONSE,
            400: OpenApiResponse(
                _BAD_REQUEST, description="Malformed JSON, not an object, a `tenant` member, or over 10 000 events."
            ),
            401: OpenApiResponse(_ERROR, description="No or unknown API key."),
            403: OpenApiResponse(_ERROR, description="Not allowed to post usage."),
            413: OpenApiResponse(_ERROR, description="Body larger than 32 MiB."),
        },
        examples=[
            OpenApiExample("One event", value=_EVENT_EXAMPLE, request_only=True),
            OpenApiExample(
                "A batch",
                value={
                    "events": [
                        _EVENT_EXAMPLE,
                        {**_EVENT_EXAMPLE, "idempotency_key": "job-8813-processed", "customer": "nobody"},
                    ]
                },
                request_only=True,
            ),
            OpenApiExample(
                "Batch result",
                value={
                    "accepted": 1,
                    "duplicates": 0,
                    "rejected": 1,
                    "results": [
                        {"idempotency_key": "job-8812-processed", "status": "accepted", "reason": None},
                        {"idempotency_key": "job-8813-processed", "status": "rejected", "reason": "unknown customer"},
                    ],
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Too many events",
                value={"detail": "A request may carry at most 10 000 events; this one has 10 001."},
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    def post(self, request):
        """Refuse the envelope as a whole (400, 413) or judge every event alone (200)."""
        django_request = request._request
        try:
            declared_length = int(django_request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared_length = 0
        if declared_length > MAX_BODY_BYTES:
            return _error("The body is larger than 32 MiB; send fewer events per request.", 413)
        body = django_request.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return _error("The body is larger than 32 MiB; send fewer events per request.", 413)
        batch = decode_typed_batch(body)
        if batch is not None:
            result = usage_ingest_typed(tenant=django_request.tenant, events=batch.events)
            if result is not None:
                return _json_response(result.as_dict())
        try:
            payload = parse_body(body)
        except ValueError as exc:
            return _error(f"The body is not valid JSON: {exc}")
        if not isinstance(payload, dict):
            return _error('The body must be one event object or {"events": [...]}.')
        if "tenant" in payload:
            return _json_response({"tenant": [TENANT_REFUSED]}, status.HTTP_400_BAD_REQUEST)
        events = payload["events"] if "events" in payload else [payload]
        if not isinstance(events, list):
            return _error('"events" must be a list of event objects.')
        if len(events) > MAX_BATCH_EVENTS:
            return _error(
                f"A request may carry at most {MAX_BATCH_EVENTS:,} events; this one has {len(events):,}.".replace(
                    ",", " "
                )
            )
        try:
            result = usage_ingest(tenant=django_request.tenant, events=events)
        except IngestRefused as exc:
            return _error(str(exc))
        return _json_response(result.as_dict())


class UsageSummaryView(APIView):
    """GET one customer's usage per billable metric for one calendar month."""

    queryset = UsageEvent.objects.none()

    @extend_schema(
        operation_id="usage_summary",
        tags=["usage"],
        summary="A customer's usage per metric for a month",
        description=(
            "Totals each billable metric of the tenant for the customer over the calendar month (in the "
            "tenant's time zone), with the metric's own aggregation and filters. Quantities are decimal "
            "strings; a metric without usage shows `0`."
        ),
        parameters=[
            OpenApiParameter(
                "customer", {"type": "string", "minLength": 1}, required=True, description="The customer's reference."
            ),
            OpenApiParameter("period", _PERIOD_SCHEMA, required=True, description="The month, `YYYY-MM`."),
        ],
        responses={
            200: inline_serializer(
                "UsageSummary",
                {
                    "customer": serializers.CharField(),
                    "period": serializers.CharField(),
                    "period_start": serializers.DateField(),
                    "period_end": serializers.DateField(),
                    "metrics": inline_serializer(
                        "UsageSummaryMetric",
                        {
                            "code": serializers.CharField(),
                            "name": serializers.CharField(),
                            "unit": serializers.CharField(),
                            "aggregation": serializers.CharField(),
                            "quantity": serializers.DecimalField(max_digits=30, decimal_places=6),
                        },
                        many=True,
                    ),
                },
            ),
            400: OpenApiResponse(_ERROR, description="Missing customer or a period that is not YYYY-MM."),
            404: OpenApiResponse(_ERROR, description="No such customer in this tenant."),
        },
        examples=[
            OpenApiExample(
                "November usage",
                value={
                    "customer": "northwind",
                    "period": "2026-11",
                    "period_start": "2026-11-01",
                    "period_end": "2026-11-30",
                    "metrics": [
                        {
                            "code": "processed_jobs",
                            "name": "Processed jobs",
                            "unit": "jobs",
                            "aggregation": "count",
                            "quantity": "412",
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        tenant = request._request.tenant
        ref = request.query_params.get("customer", "")
        match = _PERIOD.match(request.query_params.get("period", ""))
        if not ref:
            return Response({"detail": "Name the customer: ?customer=<reference>."}, status=400)
        if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
            return Response({"detail": "The period must be a month, YYYY-MM (e.g. 2026-11)."}, status=400)
        customer = Customer.objects.for_tenant(tenant).filter(external_ref=ref).first()
        if customer is None:
            return Response({"detail": "No customer with that reference."}, status=404)
        year, month = int(match.group(1)), int(match.group(2))
        period_start = date(year, month, 1)
        period_end = date(year, month, calendar.monthrange(year, month)[1])
        totals = usage_totals(
            tenant=tenant, period_start=period_start, period_end=period_end, customer_ids=[customer.pk]
        )
        metrics = [
            {
                "code": metric.code,
                "name": metric.name,
                "unit": metric.unit,
                "aggregation": metric.aggregation,
                "quantity": format(totals.get((customer.pk, metric.code), Decimal(0)).normalize(), "f"),
            }
            for metric in BillableMetric.objects.for_tenant(tenant)
        ]
        return Response(
            {
                "customer": customer.external_ref,
                "period": f"{year:04d}-{month:02d}",
                "period_start": period_start.isoformat(),
                "period_end": period_end.isoformat(),
                "metrics": metrics,
            }
        )


def url_patterns():
    """The usage endpoints, to include under ``api/v1/``."""
    return [
        # Outside ATOMIC_REQUESTS: usage_ingest is its own transaction, and inside the request's the
        # throttle's counter (a row of django_cache, the default cache) stayed locked until the
        # request committed, so a caller's concurrent batches waited for each other whole.
        path("usage-events/", transaction.non_atomic_requests(UsageEventIngestView.as_view()), name="usage-events"),
        path("usage-summary/", UsageSummaryView.as_view(), name="usage-summary"),
    ]
