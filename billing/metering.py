"""Usage metering: ingest raw usage events exactly once, and total them per customer and metric.

``usage_ingest`` is built for batches of up to 10 000 events arriving over HTTP at tens of
thousands of events per second, so it never builds an ORM object or a serializer per event:
events are checked in plain Python, one statement claims the valid ones' keys in
``billing_usageeventkey`` (``INSERT … ON CONFLICT DO NOTHING RETURNING``), and the events of the
claimed keys are COPY-ed into a session-local staging table and moved into ``billing_usageevent``,
which is partitioned by month.
The key table's primary key is what makes ingestion exactly-once across every month: two concurrent
requests carrying the same key each learn from RETURNING which keys were their own.

``usage_totals`` aggregates set-wise in SQL, one query per billable metric, grouped by customer.

Both go through the configured usage-event store (``billing.usage_store``): the PostgreSQL store
runs ``_insert_new`` and ``_totals_sql`` below; the ClickHouse store keeps the keys in PostgreSQL
and the events in ClickHouse (docs/scaling.md).
"""

from __future__ import annotations

import json
import math
import re
import sys
import zoneinfo
from functools import cached_property
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import Context, Decimal, InvalidOperation
from fractions import Fraction
from json.encoder import c_encode_basestring, c_make_encoder
from typing import Annotated, Any, Iterable, NamedTuple

import msgspec
from django.apps import apps
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone
from orjson import OPT_PASSTHROUGH_DATACLASS, OPT_PASSTHROUGH_DATETIME, OPT_PASSTHROUGH_SUBCLASS
from orjson import dumps as orjson_dumps

from billing.models import BillableMetric, BillingSettings, UsageEvent, UsageEventKey
from billing.usage_store import usage_store_for, usage_store_named, usage_stores_configured
from billing.usage_store.base import UsageEventStore
from customers.models import Contract, Customer, Tenant
from customers.tenancy import tenant_cursor

MAX_BATCH_EVENTS = 10_000
IDEMPOTENCY_KEY_MAX_LENGTH = UsageEvent._meta.get_field("idempotency_key").max_length
CUSTOMER_REF_MAX_LENGTH = Customer._meta.get_field("external_ref").max_length
# numeric(24, 6): 18 digits before the point, 6 after.
QUANTITY_LIMIT = Decimal(10) ** 18
QUANTITY_STEP = Decimal("0.000001")
# `properties` of one event: at most this much JSON (compact, UTF-8) and this many levels of
# objects and lists (the properties object itself is level 1).
PROPERTIES_MAX_BYTES = 4096
PROPERTIES_MAX_DEPTH = 8
# Invoices in these states close their (customer, month) to new usage; a void one does not.
CLOSING_INVOICE_STATUSES = ("finalized", "paid")

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"

UNKNOWN_CUSTOMER = "unknown customer"
UNKNOWN_METRIC = "unknown metric"
BAD_TIMESTAMP = "bad timestamp"
MISSING_KEY = "missing idempotency key"
KEY_NOT_STRING = "idempotency key must be a string"
KEY_TOO_LONG = f"idempotency key longer than {IDEMPOTENCY_KEY_MAX_LENGTH} characters"
KEY_BAD_CHARACTERS = "idempotency key contains characters that cannot be stored"
NON_NUMERIC_QUANTITY = "non-numeric quantity"
NEGATIVE_QUANTITY = "negative quantity"
QUANTITY_OUT_OF_RANGE = "quantity out of range"
QUANTITY_TOO_PRECISE = "quantity has more than 6 decimal places"
BAD_PROPERTIES = "properties must be an object"
PROPERTIES_NOT_STORABLE = "properties contain values that cannot be stored"
NOT_AN_OBJECT = "event must be an object"
PERIOD_INVOICED = "period already invoiced"
PROPERTIES_TOO_LARGE = f"properties larger than {PROPERTIES_MAX_BYTES} bytes of JSON"
PROPERTIES_TOO_DEEP = f"properties nested deeper than {PROPERTIES_MAX_DEPTH} levels"
BEFORE_FIRST_CONTRACT = "timestamp before the customer's first contract month"
# The wording of customers.api_base.TenantModelSerializer.tenant_error, as every REST endpoint says it.
TENANT_REFUSED = "The tenant comes from your credentials and cannot be set."


def too_old(days: int) -> str:
    return f"timestamp more than {days} days in the past"


def too_far_ahead(hours: int) -> str:
    return f"timestamp more than {hours} hours in the future"


_NUMERIC_STRING = re.compile(r"\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*\Z")
# Bounded so that every match casts to numeric without overflow.
_SQL_NUMERIC = r"^\s*[+-]?([0-9]{1,40}(\.[0-9]{0,40})?|\.[0-9]{1,40})([eE][+-]?[0-9]{1,3})?\s*$"
_STAGE_TABLE = "billing_usage_ingest_stage"
# Claims a batch's keys (parameters: the tenant's id, the keys as one array literal) and returns the
# ones this statement inserted; both stores run it. Key order: two transactions with overlapping keys
# wait on each other in the same order (no deadlock).
_KEYS_CLAIM_SQL = (
    f"INSERT INTO {UsageEventKey._meta.db_table} (tenant_id, idempotency_key)"
    ' SELECT %s, key FROM unnest(%s::text[]) AS key ORDER BY key COLLATE "C"'
    " ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING idempotency_key"
)
# A UTC instant as clients usually write it, e.g. 2026-11-05T14:03:00Z or 2026-11-05T14:03:00.25Z.
_PLAIN_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z").fullmatch
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class IngestRefused(ValueError):
    """The request as a whole is refused (not a list, too many events); nothing was stored."""


class EventResult(NamedTuple):
    idempotency_key: Any
    status: str
    reason: str | None = None

    def as_dict(self) -> dict:
        return {"idempotency_key": self.idempotency_key, "status": self.status, "reason": self.reason}


class IngestResult:
    """One result per submitted event, in submission order, and the counts per status.

    Made of EventResults, or of plain ``(key, status, reason)`` tuples (the fast path: ten thousand
    named tuples cost more than judging their events), which ``results`` reads as EventResults."""

    def __init__(self, results: list[EventResult] | list[tuple] | None = None):
        self._rows = results if results is not None else []

    @cached_property
    def results(self) -> list[EventResult]:
        return [row if type(row) is EventResult else EventResult._make(row) for row in self._rows]

    def _count(self, status: str) -> int:
        return sum(1 for row in self._rows if row[1] == status)

    @property
    def accepted(self) -> int:
        return self._count(ACCEPTED)

    @property
    def duplicates(self) -> int:
        return self._count(DUPLICATE)

    @property
    def rejected(self) -> int:
        return self._count(REJECTED)

    def as_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "results": [{"idempotency_key": k, "status": s, "reason": r} for k, s, r in self._rows],
        }


class UsageEventIn(msgspec.Struct, gc=False):
    """One event in the shape nearly every client sends, as ``billing.api_usage`` decodes it for
    ``usage_ingest_typed``: string customer, metric, timestamp and key, an integer quantity in range
    (or none), an object of properties (or none). A body with any other shape does not decode (a
    float or string quantity, a missing field, a key too long, a value of another type) and goes to
    ``usage_ingest``, which judges every shape. ``tenant`` is here only to be noticed."""

    customer: str
    metric: str
    timestamp: str
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=IDEMPOTENCY_KEY_MAX_LENGTH)]
    quantity: Annotated[int, msgspec.Meta(ge=0, lt=10**18)] | None = None
    properties: dict[str, Any] | None = None
    tenant: Any = msgspec.UNSET


class UsageBatchIn(msgspec.Struct, gc=False):
    """``{"events": [...]}`` of UsageEventIn; other members are ignored, as ``usage_ingest``'s caller does."""

    events: list[UsageEventIn]
    tenant: Any = msgspec.UNSET


def _decimal_as_json_number(value):
    # Property numbers arrive as Decimal (the API parses floats exactly for `quantity`); inside
    # `properties` they are stored as JSON numbers, so double precision is all they keep.
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _properties_encoder():
    # The C encoder built once: json.dumps with options builds it again on every call (3-4x slower).
    if c_make_encoder is None or c_encode_basestring is None:
        return json.JSONEncoder(
            ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_decimal_as_json_number
        ).encode
    encode = c_make_encoder(
        None, _decimal_as_json_number, c_encode_basestring, None, ":", ",", False, False, False
    )
    return lambda value: "".join(encode(value, 0))


_dump_properties = _properties_encoder()
# What json cannot write (datetimes, dataclasses, subclasses of dict and str) goes to ``default``,
# which refuses it, and on to json's own verdict.
_ORJSON_STRICT = OPT_PASSTHROUGH_DATACLASS | OPT_PASSTHROUGH_DATETIME | OPT_PASSTHROUGH_SUBCLASS


def _contains_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def _nested_deeper_than(value, limit: int) -> bool:
    """Whether objects and lists nest more than ``limit`` levels (``value`` itself is level 1).

    Iterative, and it stops at the limit, so neither a deep nor a self-containing value can
    exhaust the stack."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                pending.append((child, depth + 1))
    return False


def _storable_text(text: str) -> bool:
    """PostgreSQL text cannot hold NUL, and UTF-8 cannot encode lone surrogates."""
    if text.isascii():
        return "\x00" not in text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _properties_text(properties: dict) -> tuple[str | None, str | None]:
    """(properties as compact JSON text, None) or (None, the reason they are refused), by ``json``:
    the exact judge of what orjson could not write (or wrote with a null that may have been a NaN)."""
    try:
        properties_json = _dump_properties(properties)
    except (TypeError, ValueError, RecursionError):
        properties_json = None
    # Nine levels take nine brackets, so only then is the nesting walked (brackets inside strings
    # count too: the walk decides). A value too deep to encode is walked as well.
    if (
        properties_json is None or properties_json.count("{") + properties_json.count("[") > PROPERTIES_MAX_DEPTH
    ) and _nested_deeper_than(properties, PROPERTIES_MAX_DEPTH):
        return None, PROPERTIES_TOO_DEEP
    if properties_json is None or not _storable_text(properties_json) or (
        "\\u0000" in properties_json and _contains_nul(properties)
    ):
        return None, PROPERTIES_NOT_STORABLE
    size = len(properties_json) if properties_json.isascii() else len(properties_json.encode("utf-8"))
    if size > PROPERTIES_MAX_BYTES:
        return None, PROPERTIES_TOO_LARGE
    return properties_json, None


def _properties_json(properties: dict) -> tuple[str | None, str | None]:
    """(an event's properties object as compact JSON text, None) or (None, the reason it is refused).

    orjson writes the common object; what it cannot write, or wrote with a null that may have been a
    NaN, is judged again by ``json`` (``_properties_text``)."""
    try:
        encoded = orjson_dumps(properties, default=_decimal_as_json_number, option=_ORJSON_STRICT)
    except TypeError:  # orjson.JSONEncodeError: a value orjson cannot write; json decides
        encoded = None
    # orjson writes NaN and infinities as null: json refuses them, so a null is looked at again.
    if encoded is not None and b"null" not in encoded:
        if encoded.count(b"{") + encoded.count(b"[") > PROPERTIES_MAX_DEPTH and _nested_deeper_than(
            properties, PROPERTIES_MAX_DEPTH
        ):
            return None, PROPERTIES_TOO_DEEP
        # orjson writes valid UTF-8 only, and NUL as the escape \u0000.
        if b"\\u0000" in encoded and _contains_nul(properties):
            return None, PROPERTIES_NOT_STORABLE
        if len(encoded) > PROPERTIES_MAX_BYTES:
            return None, PROPERTIES_TOO_LARGE
        return encoded.decode(), None
    return _properties_text(properties)


def _copy_field(text: str) -> str:
    """``text`` escaped for COPY's text format (backslash, tab, newline and carriage return)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


def _quantity_text(raw) -> tuple[str | None, str | None]:
    """(the quantity as numeric text, None), or (None, the reason it is refused)."""
    kind = type(raw)
    if kind is int:
        if raw < 0:
            return None, NEGATIVE_QUANTITY
        if raw >= QUANTITY_LIMIT:
            return None, QUANTITY_OUT_OF_RANGE
        return str(raw), None
    if kind is Decimal:
        value = raw
    elif kind is float:
        value = Decimal(repr(raw))
    elif kind is str and _NUMERIC_STRING.match(raw):
        try:
            value = Decimal(raw.strip())
        except InvalidOperation:
            return None, NON_NUMERIC_QUANTITY
    else:
        return None, NON_NUMERIC_QUANTITY
    if not value.is_finite():
        return None, NON_NUMERIC_QUANTITY
    if value < 0:
        return None, NEGATIVE_QUANTITY
    if value >= QUANTITY_LIMIT:
        return None, QUANTITY_OUT_OF_RANGE
    if value.as_tuple().exponent < -6 and value != value.quantize(QUANTITY_STEP):
        return None, QUANTITY_TOO_PRECISE
    return str(value), None


def _month_start(moment: datetime, tz) -> date:
    local = moment.astimezone(tz)
    return date(local.year, local.month, 1)


def _array_literal(values: Iterable[int | str]) -> str:
    """``values`` as one PostgreSQL array literal, to send as a single parameter cast in the SQL
    (``%s::bigint[]``, ``%s::text[]``). Django binds parameters on the client, and psycopg quotes a
    list element by element in Python: a batch's 2 000 refs and twice 2 000 ids took 4.8 ms that way,
    1.2 ms as literals. Every element is double-quoted, so a text element may hold anything but NUL.
    When no element holds a quote or a backslash (keys and refs almost never do), joins make it: a
    batch's 10 000 keys in 0.3 ms instead of 2.5."""
    if not isinstance(values, (list, tuple, dict)):
        values = list(values)  # read twice below
    if not values:
        return "{}"
    try:
        plain = ",".join(values)  # str elements only; also tells whether any needs escaping
    except TypeError:
        values = [str(value) for value in values]
        plain = ",".join(values)
    if "\\" in plain or '"' in plain:
        return '{"' + '","'.join(str(v).replace("\\", "\\\\").replace('"', '\\"') for v in values) + '"}'
    return '{"' + '","'.join(values) + '"}'


def _invoiced_periods(tenant: Tenant, customer_ids: Iterable[int]) -> set[tuple[int, date]]:
    """(customer_id, first day of month) pairs already closed by a finalized or paid invoice.

    Reads ``billing.Invoice`` (tenant, customer, period_start = first day of the invoiced month,
    status). Without that model (it lives in another part of the app) no period is closed.
    """
    try:
        invoice_model = apps.get_model("billing", "Invoice")
    except LookupError:
        return set()
    ids = list(customer_ids)
    if not ids:
        return set()
    with tenant_cursor(tenant) as cursor:
        # One array parameter: `customer_id__in` would send thousands of placeholders per batch. As
        # bigint[]: bigint = integer is not hashed, and each row was compared with every id in turn
        # (12 ms for 2 000 customers; 0.8 ms as bigint[]).
        cursor.execute(
            f"SELECT customer_id, period_start FROM {invoice_model._meta.db_table}"
            " WHERE tenant_id = %s AND customer_id = ANY(%s::bigint[]) AND status = ANY(%s)",
            [tenant.pk, _array_literal(ids), list(CLOSING_INVOICE_STATUSES)],
        )
        return set(cursor.fetchall())


class _Window(NamedTuple):
    """The instants an event's timestamp must lie between, and the reasons given outside them."""

    earliest: datetime | None
    too_early: str | None
    latest: datetime
    too_late: str


def _windows(
    tenant: Tenant, customer_ids: Iterable[int], tz, received_at: datetime
) -> tuple[dict[int, _Window], _Window]:
    """Each customer's plausibility window, and the one of a customer without a contract.

    An event may be dated from the first day (in the tenant's time zone) of the month of its
    customer's first contract (any status) and, when the tenant's billing settings set
    ``usage_max_age_days``, not more than that many days before it arrives (the later of the two
    applies); and not more than ``usage_max_future_hours`` (default 24) after it arrives.
    """
    limits = (
        BillingSettings.objects.for_tenant(tenant).values_list("usage_max_age_days", "usage_max_future_hours").first()
    )
    max_age_days, future_hours = limits or (None, BillingSettings._meta.get_field("usage_max_future_hours").default)
    latest, too_late = received_at + timedelta(hours=future_hours), too_far_ahead(future_hours)
    if max_age_days is None:
        default = _Window(None, None, latest, too_late)
    else:
        default = _Window(received_at - timedelta(days=max_age_days), too_old(max_age_days), latest, too_late)
    ids = list(customer_ids)
    if not ids:
        return {}, default
    with tenant_cursor(tenant) as cursor:
        cursor.execute(
            f"SELECT customer_id, MIN(start_date) FROM {Contract._meta.db_table}"
            " WHERE tenant_id = %s AND customer_id = ANY(%s::bigint[]) GROUP BY customer_id",  # see _invoiced_periods
            [tenant.pk, _array_literal(ids)],
        )
        first_starts = cursor.fetchall()
    windows = {}
    by_month: dict[date, _Window] = {}  # customers share start months: one window each
    for customer_id, first_start in first_starts:
        month = first_start.replace(day=1)
        window = by_month.get(month)
        if window is None:
            month_start = datetime.combine(month, time.min, tzinfo=tz).astimezone(dt_timezone.utc)
            if default.earliest is not None and default.earliest > month_start:
                window = default
            else:
                window = _Window(month_start, BEFORE_FIRST_CONTRACT, latest, too_late)
            by_month[month] = window
        windows[customer_id] = window
    return windows, default


def _usable_refs(events: list) -> list[str]:
    """The distinct customer refs that could match: external refs are ASCII slugs, so nothing else
    (and nothing that could not be sent as a query parameter) reaches the query."""
    try:
        candidates = {event.get("customer") for event in events if type(event) is dict}
    except TypeError:  # an unhashable ref (a list, an object) among them
        candidates = {
            event.get("customer") for event in events if type(event) is dict and type(event.get("customer")) is str
        }
    return _usable(candidates)


def _usable(candidates: Iterable) -> list[str]:
    return [
        ref
        for ref in candidates
        if type(ref) is str and ref.isascii() and len(ref) <= CUSTOMER_REF_MAX_LENGTH and "\x00" not in ref
    ]


def _customer_ids_locked(tenant: Tenant, refs: list[str]) -> dict[str, int]:
    """Customer ids by external ref, each row locked FOR KEY SHARE until the transaction ends.

    UsageEvent has no database foreign keys (checking two per row at commit tripled the cost of
    an insert); this lock is the same guarantee taken once per customer and batch: no customer
    (and so no tenant, whose customers reference it) can be deleted under the events being stored.
    """
    if not refs:
        return {}
    with tenant_cursor(tenant) as cursor:
        # Django's select_for_update has no KEY SHARE mode; explicit tenant filter, as for_tenant would.
        cursor.execute(
            f"SELECT external_ref, id FROM {Customer._meta.db_table}"
            " WHERE tenant_id = %s AND external_ref = ANY(%s::text[]) FOR KEY SHARE",
            [tenant.pk, _array_literal(refs)],
        )
        return dict(cursor.fetchall())


class _BatchContext(NamedTuple):
    """What judging a batch's events needs from the database, read once per batch."""

    metric_codes: set[str]
    customer_by_ref: dict[str, int]
    invoiced: set[tuple[int, date]]
    windows: dict[int, _Window]
    default_window: _Window


def _batch_context(tenant: Tenant, refs: list[str], tz, received_at: datetime) -> _BatchContext:
    """The tenant's event codes, the batch's customers (locked, see ``_customer_ids_locked``), their
    invoiced months and plausibility windows; in the caller's transaction."""
    metric_codes = {
        event_code or code
        for code, event_code in BillableMetric.objects.for_tenant(tenant).values_list("code", "event_code")
    }
    customer_by_ref = _customer_ids_locked(tenant, refs)
    invoiced = _invoiced_periods(tenant, customer_by_ref.values())
    windows, default_window = _windows(tenant, customer_by_ref.values(), tz, received_at)
    return _BatchContext(metric_codes, customer_by_ref, invoiced, windows, default_window)


def usage_store() -> UsageEventStore:
    """The configured usage-event store (``USAGE_EVENT_STORE``), built on this module's SQL.

    Every read and write of usage events goes through it: billing and revenue never know which
    store is in use (``billing.usage_store``, docs/scaling.md)."""
    return usage_store_for(sys.modules[__name__])


def usage_store_of(kind: str) -> UsageEventStore:
    """The store ``kind`` ("postgres" or "clickhouse") whatever is in use: for operations that move
    events between stores (``manage.py usage_store_copy``). Raises ValueError for an unknown kind or
    ClickHouse without ``CLICKHOUSE_URL``."""
    return usage_store_named(kind, sys.modules[__name__])


def usage_events_purge(*, tenant_id: int) -> None:
    """``customers.purge.tenant_purge``'s hook, after its commit: delete the purged tenant's events in
    every configured store (``usage_stores_configured``). Idempotent."""
    for store in usage_stores_configured(sys.modules[__name__]):
        store.purge_tenant(tenant_id=tenant_id)


def usage_ingest(*, tenant: Tenant, events: list[dict], now: datetime | None = None) -> IngestResult:
    """Store each valid, new usage event of ``tenant`` exactly once; report every event's fate.

    ``events`` are raw dicts: ``customer`` (the customer's external_ref), ``metric`` (a
    BillableMetric code of the tenant), ``timestamp`` (ISO-8601 with a UTC offset),
    ``idempotency_key`` (required string, at most 128 characters, unique per tenant forever),
    ``quantity`` (non-negative number or numeric string, at most 6 decimals; default 1) and
    ``properties`` (an object, optional). ``now`` is stamped as ``received_at`` (default: now).

    Returns one EventResult per event, in order: ``accepted`` (stored by this call), ``duplicate``
    (the key is already stored, by an earlier call, a concurrent one, or earlier in this batch:
    the first valid event with a key wins) or ``rejected`` with a reason. An event whose timestamp
    falls in a (customer, calendar month in the tenant's time zone) already closed by a finalized
    or paid invoice is rejected as ``period already invoiced``, unless its key is already stored
    (a retry), which is a duplicate; so is an event dated outside the plausibility window (see
    ``_windows``: not before the customer's first contract month, at most a day ahead by default,
    both set per tenant on its BillingSettings). A ``tenant`` member is refused (the tenant is the
    caller's); ``properties`` may hold at most 4 096 bytes of JSON nested at most 8 levels. No
    value of any type makes the call fail: a rejected event never blocks the others.

    Customers and metrics are resolved with one query each; everything runs in one transaction.
    Raises IngestRefused (nothing stored) when ``events`` is not a list or holds more than 10 000.
    """
    if not isinstance(events, list):
        raise IngestRefused("Events must be a list of objects.")
    if len(events) > MAX_BATCH_EVENTS:
        raise IngestRefused(
            f"A request may carry at most {MAX_BATCH_EVENTS:,} events; this one has {len(events):,}.".replace(",", " ")
        )
    received_at = now or timezone.now()
    tz = zoneinfo.ZoneInfo(tenant.time_zone)
    results: list[EventResult | None] = [None] * len(events)
    fromisoformat = datetime.fromisoformat
    utc = dt_timezone.utc

    with transaction.atomic():
        metric_codes, customer_by_ref, invoiced, windows, default_window = _batch_context(
            tenant, _usable_refs(events), tz, received_at
        )
        invoiced_customers = {customer_id for customer_id, _ in invoiced}

        rows: dict[str, str] = {}  # key -> COPY line, the batch's first event of each key, in batch order
        staged: list[tuple[int, str]] = []  # (position, key) of each row
        late_rejections: list[int] = []  # positions whose keys may already be stored (a retry)
        for position, event in enumerate(events):
            if type(event) is not dict:
                results[position] = EventResult(None, REJECTED, NOT_AN_OBJECT)
                continue
            key = event.get("idempotency_key")
            if key is None or key == "":
                results[position] = EventResult(None, REJECTED, MISSING_KEY)
                continue
            if type(key) is not str:
                results[position] = EventResult(key, REJECTED, KEY_NOT_STRING)
                continue
            if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
                results[position] = EventResult(key, REJECTED, KEY_TOO_LONG)
                continue
            if not _storable_text(key):
                results[position] = EventResult(None, REJECTED, KEY_BAD_CHARACTERS)
                continue
            if "tenant" in event:
                results[position] = EventResult(key, REJECTED, TENANT_REFUSED)
                continue
            ref = event.get("customer")
            customer_id = customer_by_ref.get(ref) if type(ref) is str else None
            if customer_id is None:
                results[position] = EventResult(key, REJECTED, UNKNOWN_CUSTOMER)
                continue
            metric = event.get("metric")
            if type(metric) is not str or metric not in metric_codes:
                results[position] = EventResult(key, REJECTED, UNKNOWN_METRIC)
                continue
            try:
                moment = fromisoformat(event.get("timestamp"))
                # In UTC, as stored; a time that leaves Python's years 1..9999 could not be read back,
                # in UTC or in the tenant's time zone (its month closes invoices and is shown to staff).
                moment = moment.astimezone(utc) if moment.tzinfo is not None else None
                if moment is not None and (moment.year == 1 or moment.year == 9999):
                    _month_start(moment, tz)  # only at the ends of the range can the local time overflow
            except (TypeError, ValueError, OverflowError):
                moment = None
            if moment is None:
                results[position] = EventResult(key, REJECTED, BAD_TIMESTAMP)
                continue
            window = windows.get(customer_id, default_window)
            if window.earliest is not None and moment < window.earliest:
                results[position] = EventResult(key, REJECTED, window.too_early)
                late_rejections.append(position)
                continue
            if moment > window.latest:
                results[position] = EventResult(key, REJECTED, window.too_late)
                late_rejections.append(position)
                continue
            raw_quantity = event.get("quantity")
            if raw_quantity is None:
                quantity = "1"
            else:
                quantity, refusal = _quantity_text(raw_quantity)
                if refusal:
                    results[position] = EventResult(key, REJECTED, refusal)
                    continue
            properties = event.get("properties")
            if properties is None:
                properties_json = "{}"
            elif type(properties) is not dict:
                results[position] = EventResult(key, REJECTED, BAD_PROPERTIES)
                continue
            else:
                properties_json, refusal = _properties_json(properties)
                if refusal:
                    results[position] = EventResult(key, REJECTED, refusal)
                    continue
            if customer_id in invoiced_customers and (customer_id, _month_start(moment, tz)) in invoiced:
                results[position] = EventResult(key, REJECTED, PERIOD_INVOICED)
                late_rejections.append(position)
                continue
            if key in rows:
                results[position] = EventResult(key, DUPLICATE)
                continue
            rows[key] = (
                f"{customer_id}\t{metric}\t{moment.isoformat()}\t{_copy_field(key)}\t{quantity}\t"
                f"{_copy_field(properties_json)}\n"
            )
            staged.append((position, key))

        store = usage_store()
        inserted = store.insert_new(tenant=tenant, rows=rows, received_at=received_at)
        for position, key in staged:
            results[position] = EventResult(key, ACCEPTED if key in inserted else DUPLICATE)

        if late_rejections:
            retried = store.stored_keys(tenant=tenant, keys=[results[p].idempotency_key for p in late_rejections])
            for position in late_rejections:
                if results[position].idempotency_key in retried:
                    results[position] = EventResult(results[position].idempotency_key, DUPLICATE)

    return IngestResult(results=results)


def refuse_customer_delete_with_usage(sender, *, instance: Customer, **kwargs) -> None:
    """``pre_delete`` receiver for customers: one with usage events cannot be deleted, in any store.

    The PostgreSQL table's PROTECT foreign key refuses it before this runs; events kept elsewhere have
    no foreign key, so the store is asked. Raises ``ProtectedError`` as PROTECT does."""
    if usage_store().customer_has_events(tenant=Tenant(pk=instance.tenant_id), customer_id=instance.pk):
        raise ProtectedError(
            f"Cannot delete customer {instance.pk}: it has usage events.", {instance}
        )


def usage_ingest_typed(
    *, tenant: Tenant, events: list[UsageEventIn], now: datetime | None = None
) -> IngestResult | None:
    """``usage_ingest`` for a batch in which every event is accepted or a duplicate; else None.

    The fast path for decoded events (``UsageEventIn``): the same checks, the same rows and the same
    answers as ``usage_ingest`` gives the same events as dicts, without an event-by-event look at
    shapes the decoding already ruled out. At the first event ``usage_ingest`` would reject (or that
    this path does not judge: a ``tenant`` member, a timestamp in year 1 or 9999) it returns None
    having stored nothing, and the caller runs ``usage_ingest``, which gives every reason. Runs in
    one transaction (a savepoint inside the caller's).
    """
    if len(events) > MAX_BATCH_EVENTS:
        return None
    received_at = now or timezone.now()
    tz = zoneinfo.ZoneInfo(tenant.time_zone)
    fromisoformat = datetime.fromisoformat
    utc = dt_timezone.utc
    unset = msgspec.UNSET
    results: list[tuple | None] = [None] * len(events)

    with transaction.atomic():
        metric_codes, customer_by_ref, invoiced, windows, default_window = _batch_context(
            tenant, _usable({event.customer for event in events}), tz, received_at
        )
        invoiced_customers = {customer_id for customer_id, _ in invoiced}
        rows: dict[str, str] = {}
        staged: list[tuple[int, str]] = []
        for position, event in enumerate(events):
            key = event.idempotency_key
            # The decoder refuses lone surrogates, so of what text cannot store only NUL is left.
            if event.tenant is not unset or "\x00" in key:
                return None
            customer_id = customer_by_ref.get(event.customer)
            if customer_id is None or event.metric not in metric_codes:
                return None
            timestamp = event.timestamp
            try:
                moment = fromisoformat(timestamp)
                if moment.tzinfo is not utc:
                    if moment.tzinfo is None:
                        return None
                    moment = moment.astimezone(utc)
                    timestamp = None
            except (ValueError, OverflowError):
                return None
            year = moment.year
            if year == 1 or year == 9999:
                return None
            window = windows.get(customer_id, default_window)
            if (window.earliest is not None and moment < window.earliest) or moment > window.latest:
                return None
            properties = event.properties
            if properties is None:
                properties_json = "{}"
            else:
                # Decoded JSON holds only what orjson writes as _properties_json would (no NaN, no
                # subclass), except integers beyond 64 bits (TypeError); anything near a limit goes
                # to _properties_json, which judges it as usage_ingest does.
                try:
                    encoded = orjson_dumps(properties)
                except TypeError:
                    encoded = None
                # The checks on the decoded text (the same characters: all are ASCII, which UTF-8 never
                # uses inside a longer sequence): `in` on a str took a fifth of the time it took on
                # bytes here, and a flat object (no "[", no second "{") skips counting the nesting.
                properties_json = encoded.decode() if encoded is not None else None
                if (
                    properties_json is not None
                    and len(encoded) <= PROPERTIES_MAX_BYTES
                    and "null" not in properties_json
                    and "\\u0000" not in properties_json
                    and (
                        ("[" not in properties_json and properties_json.find("{", 1) < 0)
                        or properties_json.count("{") + properties_json.count("[") <= PROPERTIES_MAX_DEPTH
                    )
                ):
                    if "\\" in properties_json:  # orjson escapes tabs and newlines, so only a backslash needs COPY's
                        properties_json = properties_json.translate(_COPY_ESCAPES)
                else:
                    properties_json, refusal = _properties_json(properties)
                    if refusal:
                        return None
                    properties_json = _copy_field(properties_json)
            if customer_id in invoiced_customers and (customer_id, _month_start(moment, tz)) in invoiced:
                return None
            if key in rows:
                results[position] = (key, DUPLICATE, None)
                continue
            quantity = event.quantity
            # The text as sent when it is UTC in the plain form (the usual case), which the database
            # reads as the instant Python just checked; formatting the datetime again costs more than
            # all the checks above. Whole seconds (20 characters, "-", "-", "T", ":", ":" and "Z" every
            # third one from the fifth) are told apart by one slice in less than half the regex's time;
            # fromisoformat has read the rest as digits.
            if timestamp is None or not (
                (len(timestamp) == 20 and timestamp[4::3] == "--T::Z") or _PLAIN_UTC(timestamp)
            ):
                timestamp = moment.isoformat()
            rows[key] = (
                f"{customer_id}\t{event.metric}\t{timestamp}\t{_copy_field(key)}\t"
                f"{1 if quantity is None else quantity}\t{properties_json}\n"
            )
            staged.append((position, key))

        inserted = usage_store().insert_new(tenant=tenant, rows=rows, received_at=received_at)
        for position, key in staged:
            results[position] = (key, ACCEPTED, None) if key in inserted else (key, DUPLICATE, None)
    return IngestResult(results=results)


def _insert_new(*, tenant: Tenant, rows: dict[str, str], received_at: datetime) -> set[str]:
    """Claim the keys of ``rows`` (key -> COPY text line, in batch order) and store the events of the
    keys claimed; returns those keys.

    First one statement claims every key in ``UsageEventKey`` (``ON CONFLICT DO NOTHING``: the
    unique key across every month partition, see ``UsageEvent``); a key stored before, in any month,
    or by a concurrent transaction (which this one waits for) is not claimed, so its event is not
    stored twice even with another timestamp. Keys are claimed in key order so that two transactions
    with overlapping keys always wait on each other in the same order (no deadlock). Then only the
    claimed events are COPY-ed into the staging table and moved into the event table: a duplicate
    costs the database a key lookup and nothing else (staging every event and joining the claimed
    keys back took a sixth of the database's time per event with 30 % duplicates, docs/scaling.md).
    ``billing.usage_keys_claimed`` tells the events' key trigger that the keys are already claimed.
    Events go in in time order: the table's key (tenant, metric, time, …) then takes each metric's
    events page by page instead of at random, which cost 20 % more on a 10 000-event batch (more as
    the month grows past the buffer cache). Events at the same instant keep the batch's order (the
    stage's ``ctid``: it is only ever appended to in a transaction), so ids still tell which came last
    (the ``latest`` aggregation).
    """
    if not rows:
        return set()
    table = UsageEvent._meta.db_table
    with tenant_cursor(tenant) as cursor:
        cursor.execute(_KEYS_CLAIM_SQL, [tenant.pk, _array_literal(rows)])
        claimed = {key for (key,) in cursor.fetchall()}
        if not claimed:
            return claimed
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE_TABLE} ("
            " customer_id bigint NOT NULL, metric_code varchar(64) NOT NULL, ts timestamptz NOT NULL,"
            " idempotency_key varchar(128) NOT NULL, quantity numeric(24, 6) NOT NULL, properties jsonb NOT NULL"
            ") ON COMMIT DELETE ROWS;"
            # Empty unless the caller's transaction ingested before (the commit empties it otherwise).
            f" DELETE FROM {_STAGE_TABLE}; SELECT set_config('billing.usage_keys_claimed', 'on', true)"
        )
        with cursor.cursor.copy(
            f"COPY {_STAGE_TABLE} (customer_id, metric_code, ts, idempotency_key, quantity, properties) FROM STDIN"
        ) as copy:
            copy.write("".join([line for key, line in rows.items() if key in claimed]))
        cursor.execute(
            f"INSERT INTO {table} (tenant_id, customer_id, metric_code, timestamp, idempotency_key,"
            " quantity, properties, received_at)"
            f" SELECT %s, customer_id, metric_code, ts, idempotency_key, quantity, properties, %s"
            f" FROM {_STAGE_TABLE} ORDER BY ts, ctid",
            [tenant.pk, received_at],
        )
        # The caller's transaction may insert events otherwise, whose keys the trigger must claim.
        cursor.execute("SELECT set_config('billing.usage_keys_claimed', '', true)")
    return claimed


# --- Totals -------------------------------------------------------------------------------------


def _period_bounds(tenant: Tenant, period_start: date, period_end: date) -> tuple[datetime, datetime]:
    for value in (period_start, period_end):
        if isinstance(value, datetime) or not isinstance(value, date):
            raise ValueError("period_start and period_end must be dates (the period's first and last day).")
    if period_end < period_start:
        raise ValueError("period_end cannot be before period_start.")
    tz = zoneinfo.ZoneInfo(tenant.time_zone)
    start = datetime.combine(period_start, time.min, tzinfo=tz)
    end = datetime.combine(period_end + timedelta(days=1), time.min, tzinfo=tz)
    return start.astimezone(dt_timezone.utc), end.astimezone(dt_timezone.utc)


def _filter_texts(value) -> list[str]:
    # Filters compare with the property as JSON text (`properties ->> key`), so 500 matches "500".
    values = value if isinstance(value, list) else [value]
    texts = []
    for item in values:
        if isinstance(item, bool):
            texts.append("true" if item else "false")
        elif isinstance(item, str):
            texts.append(item)
        else:
            texts.append(json.dumps(item))
    return texts


def _metric_query(metric: BillableMetric, where: str, params: list, period_end: datetime) -> tuple[str, list]:
    table = UsageEvent._meta.db_table
    aggregation = metric.aggregation
    if aggregation == BillableMetric.Aggregation.COUNT:
        return f"SELECT customer_id, COUNT(*) FROM {table} WHERE {where} GROUP BY customer_id", params
    if metric.field == "quantity":
        value_sql, value_params, distinct_sql, distinct_params = "quantity", [], "quantity", []
    else:
        # Numbers and numeric strings are summed, maxed or taken as latest; other values are ignored
        # (a cast of them would fail the whole query).
        value_sql = f"CASE WHEN properties ->> %s ~ '{_SQL_NUMERIC}' THEN (properties ->> %s)::numeric END"
        value_params = [metric.field, metric.field]
        distinct_sql, distinct_params = "NULLIF(properties -> %s, 'null'::jsonb)", [metric.field]
    if aggregation == BillableMetric.Aggregation.UNIQUE_COUNT:
        return (
            f"SELECT customer_id, COUNT(DISTINCT {distinct_sql}) FROM {table} WHERE {where} GROUP BY customer_id",
            distinct_params + params,
        )
    if aggregation == BillableMetric.Aggregation.WEIGHTED_SUM:
        # Σ running total × seconds held, per customer; usage_totals divides by the period's seconds.
        return (
            "SELECT customer_id, SUM(total * EXTRACT(EPOCH FROM (COALESCE(next_at, %s) - timestamp))) FROM"
            " (SELECT customer_id, timestamp, SUM(v) OVER held AS total, LEAD(timestamp) OVER held AS next_at FROM"
            f" (SELECT customer_id, timestamp, id, {value_sql} AS v FROM {table} WHERE {where}) AS e"
            " WHERE v IS NOT NULL"
            " WINDOW held AS (PARTITION BY customer_id ORDER BY timestamp, id"
            " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) AS h GROUP BY customer_id",
            [period_end] + value_params + params,
        )
    if aggregation == BillableMetric.Aggregation.LATEST:
        return (
            f"SELECT DISTINCT ON (customer_id) customer_id, v FROM"
            f" (SELECT customer_id, timestamp, id, {value_sql} AS v FROM {table} WHERE {where}) AS e"
            " WHERE v IS NOT NULL ORDER BY customer_id, timestamp DESC, id DESC",
            value_params + params,
        )
    function = {BillableMetric.Aggregation.SUM: "SUM", BillableMetric.Aggregation.MAX: "MAX"}[aggregation]
    return (
        f"SELECT customer_id, {function}(v) FROM (SELECT customer_id, {value_sql} AS v FROM {table} WHERE {where})"
        " AS e WHERE v IS NOT NULL GROUP BY customer_id",
        value_params + params,
    )


def _time_weighted(held: Decimal, period: timedelta) -> Decimal:
    """Σ total × seconds held / seconds in the period, exactly, rounded to 6 places ROUND_HALF_UP."""
    seconds = Fraction(period.days * 86_400 + period.seconds) + Fraction(period.microseconds, 1_000_000)
    scaled = Fraction(held) / seconds * 1_000_000
    magnitude = math.floor(abs(scaled) + Fraction(1, 2))
    return Decimal(magnitude if scaled >= 0 else -magnitude).scaleb(-6, Context(prec=60))


def usage_totals(
    *, tenant: Tenant, period_start: date, period_end: date, customer_ids: Iterable[int] | None = None
) -> dict[tuple[int, str], Decimal]:
    """Each customer's aggregated quantity per billable metric of ``tenant`` over a period.

    ``period_start`` and ``period_end`` are dates, both inclusive, read as calendar days in the
    tenant's time zone (a month is its first and last day). ``customer_ids`` limits the customers
    (None: all). Each metric applies its own aggregation (count, sum, max, unique_count, latest or
    weighted_sum of ``field``, see ``BillableMetric``) to the events passing its ``filters``; a
    weighted sum is Σ running total × seconds held / seconds in the period (the period's instants
    in the tenant's time zone, so a month with a DST change has an hour more or less), rounded to
    6 places. Returns ``{(customer_id, metric_code): Decimal}`` with only the pairs that had usage;
    absent means none. One query per metric, grouped by customer. Raises ValueError for non-date
    bounds or an end before the start.
    """
    start, end = _period_bounds(tenant, period_start, period_end)
    ids = None if customer_ids is None else list(customer_ids)
    if ids is not None and not ids:
        return {}
    metrics = list(BillableMetric.objects.for_tenant(tenant))
    return usage_store().totals(tenant=tenant, metrics=metrics, start=start, end=end, customer_ids=ids)


def _stored_keys(*, tenant: Tenant, keys: list[str]) -> set[str]:
    """Which of ``keys`` were stored (the PostgreSQL store's ``stored_keys``): the key table, which
    keeps every key across month partitions and after archiving, not the event table."""
    with tenant_cursor(tenant) as cursor:
        cursor.execute(
            f"SELECT idempotency_key FROM {UsageEventKey._meta.db_table} WHERE tenant_id = %s AND idempotency_key = ANY(%s)",
            [tenant.pk, keys],
        )
        return {key for (key,) in cursor.fetchall()}


def _totals_sql(
    *, tenant: Tenant, metrics: list[BillableMetric], start: datetime, end: datetime, ids: list[int] | None
) -> dict[tuple[int, str], Decimal]:
    """``usage_totals`` over the event table: one query per metric (the PostgreSQL store's ``totals``)."""
    totals: dict[tuple[int, str], Decimal] = {}
    with tenant_cursor(tenant) as cursor:
        for metric in metrics:
            where = "tenant_id = %s AND metric_code = %s AND timestamp >= %s AND timestamp < %s"
            params: list = [tenant.pk, metric.source_code, start, end]
            if ids is not None:
                where += " AND customer_id = ANY(%s::bigint[])"  # see _invoiced_periods
                params.append(ids)
            for key, value in sorted((metric.filters or {}).items()):
                where += " AND properties ->> %s = ANY(%s)"
                params += [key, _filter_texts(value)]
            sql, sql_params = _metric_query(metric, where, params, end)
            cursor.execute(sql, sql_params)
            weighted = metric.aggregation == BillableMetric.Aggregation.WEIGHTED_SUM
            for customer_id, value in cursor.fetchall():
                if value is None:
                    continue
                value = value if isinstance(value, Decimal) else Decimal(value)
                totals[(customer_id, metric.code)] = _time_weighted(value, end - start) if weighted else value
    return totals
