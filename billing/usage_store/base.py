"""What every usage-event store does: the interface billing and revenue read and write events through.

Two stores implement it: ``PostgresUsageStore`` (the default: the ``billing_usageevent`` table,
written and read by the SQL in ``billing.metering``) and ``ClickHouseUsageStore`` (a MergeTree table
ordered by tenant, customer, metric and time, for event volumes one PostgreSQL cannot hold). Which
one runs is the setting ``USAGE_EVENT_STORE``; callers get it from ``billing.metering.usage_store()``
and never know which it is.

Every method takes ``tenant`` and returns that tenant's events only. Instants are aware datetimes
(UTC or not); a period is ``start <= timestamp < end``. Quantities are exact Decimals.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple, Protocol

from billing.models import BillableMetric
from customers.models import Tenant

# A savings property (``baseline``, ``optimized``) counts when it is a number or a numeric string of at
# most 18 digits before the point and 12 after; anything else, and a negative value, counts as 0.
SAVINGS_AMOUNT = r"^\s*[+-]?([0-9]{1,18}(\.[0-9]{0,12})?|\.[0-9]{1,12})\s*$"

# The columns of ``insert_new``'s rows, in order (COPY text format, one event a line).
ROW_COLUMNS = ("customer_id", "metric_code", "timestamp", "idempotency_key", "quantity", "properties")


class StoredEvent(NamedTuple):
    """One usage event as a store keeps it."""

    customer_id: int
    metric_code: str
    timestamp: datetime
    idempotency_key: str
    quantity: Decimal
    properties: dict
    received_at: datetime


class CopiedEvent(NamedTuple):
    """One stored usage event as the copy between stores moves it (``manage.py usage_store_copy``):
    its properties as the JSON text the source keeps, so nothing is decoded and encoded again."""

    customer_id: int
    metric_code: str
    timestamp: datetime
    idempotency_key: str
    quantity: Decimal
    properties: str  # JSON text
    received_at: datetime


class MeteringSQL(Protocol):
    """What the stores use of ``billing.metering``, which hands itself over (``metering.usage_store``).

    Given, not imported: metering calls the store, so a store importing metering would be an
    import circle (tests/billing/test_import_graph.py). The PostgreSQL store runs metering's own
    SQL; the ClickHouse store reads properties and filters by metering's rules."""

    _SQL_NUMERIC: str
    _KEYS_CLAIM_SQL: str

    def _array_literal(self, values) -> str: ...

    def _insert_new(self, *, tenant: Tenant, rows: dict[str, str], received_at: datetime) -> set[str]: ...

    def _stored_keys(self, *, tenant: Tenant, keys: list[str]) -> set[str]: ...

    def _totals_sql(self, *, tenant, metrics, start, end, ids) -> dict[tuple[int, str], Decimal]: ...

    def _filter_texts(self, value) -> list[str]: ...

    def _time_weighted(self, held: Decimal, period: timedelta) -> Decimal: ...


class UsageEventStore(ABC):
    """Where usage events are kept. Stateless apart from connections; one instance per process."""

    name: str
    # Why ``billing.usage_archive`` (PostgreSQL month partitions to files) does not apply, or None.
    archive_refusal: str | None = None

    @abstractmethod
    def insert_new(self, *, tenant: Tenant, rows: dict[str, str], received_at: datetime) -> set[str]:
        """Store the validated events of ``rows`` whose keys the tenant has not stored yet.

        ``rows``: each event's idempotency key (as sent) to its line in PostgreSQL COPY text format
        (ending in a newline), the columns of ``ROW_COLUMNS`` (timestamp ISO-8601 with offset, quantity
        numeric text, properties compact JSON), in the batch's order. Returns the keys this call
        stored; the others are duplicates. Exactly-once under concurrency: two calls with a common key
        never both get it. Runs in the caller's transaction; nothing is visible to totals before it
        commits.
        """

    @abstractmethod
    def stored_keys(self, *, tenant: Tenant, keys: list[str]) -> set[str]:
        """Which of ``keys`` the tenant has already stored (a retry of a stored event is a duplicate)."""

    @abstractmethod
    def totals(
        self,
        *,
        tenant: Tenant,
        metrics: list[BillableMetric],
        start: datetime,
        end: datetime,
        customer_ids: list[int] | None,
    ) -> dict[tuple[int, str], Decimal]:
        """Each customer's aggregated quantity per metric over ``start <= timestamp < end``.

        The contract of ``billing.metering.usage_totals``: every aggregation of ``BillableMetric``,
        its ``filters`` (property as JSON text equal to one of the listed values), ``customer_ids``
        None for all; only pairs with usage; a weighted sum already divided by the period's seconds
        and rounded to 6 places.
        """

    @abstractmethod
    def event_amounts(
        self,
        *,
        tenant: Tenant,
        metric: BillableMetric,
        start: datetime,
        end: datetime,
        customer_ids: Iterable[int] | None,
    ) -> dict[int, list[Decimal]]:
        """Each customer's measured amount of ``metric``, event by event in time order (filters
        applied; an event without a numeric value measures 0). For per-event pricing."""

    @abstractmethod
    def event_counts(
        self, *, tenant: Tenant, bounds: list[datetime], customer_ids: list[int] | None = None
    ) -> dict[int, dict[int, int]]:
        """Events per customer between consecutive ``bounds`` (sorted instants), all metrics.

        ``{customer_id: {i: count}}`` where bucket ``i`` (1 … len(bounds) − 1) holds
        ``bounds[i-1] <= timestamp < bounds[i]``; empty buckets are absent."""

    @abstractmethod
    def savings_buckets(
        self, *, tenant: Tenant, metric_codes: list[str], bounds: list[datetime], customer_ids: list[int]
    ) -> dict[tuple[int, str, int], list]:
        """Verified savings of events named ``metric_codes`` (performance pricing), per customer, event
        metric code and bucket between ``bounds`` (as ``event_counts``): ``[Σ baseline, Σ optimized,
        Σ max(baseline − optimized, 0), events]``, properties read by ``SAVINGS_AMOUNT``."""

    @abstractmethod
    def customer_events(
        self, *, tenant: Tenant, customer_id: int, metric_code: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, str, dict]]:
        """One customer's events of one metric code, in time order: ``(timestamp, idempotency_key,
        properties)``. For evidence pages listing the events behind an invoice line."""

    @abstractmethod
    def event_list(
        self,
        *,
        tenant: Tenant,
        customer_id: int | None = None,
        metric_code: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        idempotency_key: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[StoredEvent]:
        """The tenant's events, newest first (by timestamp, then arrival), of one customer, metric code,
        ``start <= timestamp < end`` or key when given; ``limit`` of them after ``offset`` (None: all).
        For the admin's list of events and for checks of what was stored."""

    @abstractmethod
    def customer_has_events(self, *, tenant: Tenant, customer_id: int) -> bool:
        """Whether the customer has any usage event stored (committed; a store with an outbox writes
        it first), so that it cannot be deleted."""

    @abstractmethod
    def first_event_at(self, *, tenant: Tenant) -> datetime | None:
        """The instant of the tenant's first usage event, or None without any."""

    @abstractmethod
    def ai_usage_rebuild(self, *, tenant: Tenant) -> int:
        """Make the tenant's AI-usage roll-up (``billing.models.AiUsageDay``) again from its events, in
        the caller's transaction (its time zone changed: events move across days); the rows made."""

    def pending_flush(self, *, tenant: Tenant | None = None) -> int:
        """Write what a crash left between the relational database and the store; how many batches.

        Called inside a transaction, it also writes that transaction's own batches, so what it
        ingested is visible to reads before the commit (a bulk loader that bills what it loaded, as
        the demo does); should that transaction roll back, the events stay in the store under keys
        that no longer exist. A no-op for a store that keeps events in the relational database itself."""
        return 0

    # --- operations: tenant purge and copies between stores ---------------------------------------

    @abstractmethod
    def purge_tenant(self, *, tenant_id: int) -> None:
        """Delete every event of the tenant ``tenant_id`` (``customers.purge.tenant_purge``, after its
        commit: the tenant row is gone, so this takes the id). Idempotent."""

    @abstractmethod
    def day_figures(self, *, tenant: Tenant, start: datetime, end: datetime) -> dict[date, tuple[int, Decimal]]:
        """``{UTC day: (events, Σ quantity)}`` over ``start <= timestamp < end``; days without events absent."""

    @abstractmethod
    def keys_between(self, *, tenant: Tenant, start: datetime, end: datetime) -> set[str]:
        """The idempotency keys of the tenant's events over ``start <= timestamp < end``."""

    @abstractmethod
    def events_between(self, *, tenant: Tenant, start: datetime, end: datetime) -> list[CopiedEvent]:
        """The tenant's events over ``start <= timestamp < end`` (a day at a time: all in memory)."""

    @abstractmethod
    def events_import(self, *, tenant: Tenant, events: list[CopiedEvent]) -> int:
        """Store ``events`` moved from another store, as they were (received_at included); returns how many.

        Not new usage: their keys are claimed in ``UsageEventKey`` if missing (ON CONFLICT DO NOTHING),
        the caller has left out events the store holds already (``keys_between``), and nothing derived
        from ingestion (the AI-usage roll-up) changes. Written before this returns."""
