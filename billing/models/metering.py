"""What is metered: billable metrics of a tenant and the usage events customers generate.

Usage events are written in bulk by ``billing.metering.usage_ingest`` (COPY + INSERT … ON CONFLICT),
never one ORM object at a time, and read set-wise by ``billing.metering.usage_totals``.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy
from django.db.models import Q
from django.utils import timezone

from customers.models import Customer
from customers.tenancy import TenantOwned

IDEMPOTENCY_KEY_MAX_LENGTH = 128
FILTER_SCALARS = (str, int, float, bool)


class BillableMetric(TenantOwned):
    """How a tenant turns usage events into a billable quantity per customer and period.

    ``aggregation`` over the events of the metric's ``code``: count of events, sum / max / latest
    of ``field`` (``quantity`` or a property name), count of unique values of ``field``, or the
    weighted sum of ``field`` over time (Lago's ``weighted_sum``): each event's value is a delta
    (+ or −) to a running total that starts at 0 at the period's start, and the period's quantity
    is Σ running total × seconds it was held / seconds in the period, rounded to 6 decimal places
    (ROUND_HALF_UP). 3 seats held the whole of a 30-day month and 2 more from its 16th give
    3 + 2 × 15/30 = 4. Negative deltas must come as a property (an event's quantity is never negative).
    ``filters`` keeps only events whose properties match, e.g. ``{"status": ["failed"]}``: every key
    must match (AND), a list lists the accepted values (OR), values compare as JSON text.
    """

    class Aggregation(models.TextChoices):
        COUNT = "count", "Count"
        SUM = "sum", "Sum"
        MAX = "max", "Maximum"
        UNIQUE_COUNT = "unique_count", "Unique count"
        LATEST = "latest", "Latest value"
        WEIGHTED_SUM = "weighted_sum", "Weighted sum over time"

    code = models.SlugField(max_length=64, help_text="The metric's own name, used by price terms.")
    event_code = models.SlugField(
        max_length=64,
        blank=True,
        help_text="The name of the events it reads; empty: events named like the metric. Lets two "
        "metrics read the same events, e.g. all jobs and only the failed ones.",
    )
    name = models.CharField(max_length=200)
    aggregation = models.CharField(max_length=14, choices=Aggregation.choices, default=Aggregation.COUNT)
    field = models.CharField(
        max_length=64, default="quantity", help_text="What to add up: the events' quantity or one of their properties (not used when counting)."
    )
    filters = models.JSONField(default=dict, blank=True)
    unit = models.CharField(max_length=32, blank=True, help_text="e.g. jobs, ms, GB")

    class Meta:
        verbose_name = gettext_lazy("billable metric")
        verbose_name_plural = gettext_lazy("billable metrics")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="metric_unique_code"),
            models.CheckConstraint(
                condition=Q(aggregation__in=["count", "sum", "max", "unique_count", "latest", "weighted_sum"]),
                name="metric_known_aggregation",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"

    @property
    def source_code(self) -> str:
        """The ``metric`` name of the events this metric aggregates."""
        return self.event_code or self.code

    def clean(self):
        errors = {}
        if self.aggregation != self.Aggregation.COUNT and not self.field:
            errors["field"] = "Name the field to aggregate: `quantity` or a property name."
        if not isinstance(self.filters, dict):
            errors["filters"] = 'Filters must be an object, e.g. {"status": ["failed"]}.'
        else:
            for key, value in self.filters.items():
                values = value if isinstance(value, list) else [value]
                if not values or not all(isinstance(v, FILTER_SCALARS) for v in values):
                    errors["filters"] = f"Filter `{key}` needs a value or a non-empty list of plain values."
                    break
        if errors:
            raise ValidationError(errors)


class UsageEvent(TenantOwned):
    """One metered fact. ``idempotency_key`` is unique per tenant: a repeat is never counted twice.

    The table is partitioned by calendar month (UTC) of ``timestamp`` (migration 0020, see
    ``billing.partitions``), so a unique index on it would have to include ``timestamp``, and the same
    key sent again with another timestamp would not collide. Uniqueness of the key is therefore held by
    ``UsageEventKey``, an unpartitioned table of (tenant, key) claimed in the same transaction, just
    before the insert; a trigger claims the keys of rows inserted any other way (the ORM, factories), so a
    duplicate there still raises IntegrityError.

    The highest-volume table, tuned for bulk inserts: one index, the primary key (tenant, metric_code,
    timestamp, customer, id), so a new event writes one index entry. Reads of one metric read it
    directly; reads by time alone first find the tenant's metric codes and then read it once per code
    (``billing.usage_store.postgres``). The foreign keys have no database constraint (PostgreSQL
    checks a deferred FK row by row at commit, which tripled the cost of an insert). Integrity
    holds because ``usage_ingest`` resolves customers in the same transaction and locks them FOR
    KEY SHARE, once per batch, and PROTECT still refuses deletes through the ORM.
    Write events only through ``usage_ingest`` (factories in tests aside).
    """

    tenant = models.ForeignKey(
        "customers.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    metric_code = models.SlugField(max_length=64, db_index=False)
    timestamp = models.DateTimeField()
    idempotency_key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    quantity = models.DecimalField(max_digits=24, decimal_places=6, default=Decimal(1))
    properties = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = gettext_lazy("usage event")
        verbose_name_plural = gettext_lazy("usage events")
        # No index here: the table's one index is its primary key in the database, (tenant, metric_code,
        # timestamp, customer, id) (migration 0023). A partitioned table's keys must hold the partition
        # key (timestamp); ``id`` still comes from one sequence, so it stays unique, and Django keeps
        # using it alone as the key (no store looks an event up by it).

    def __str__(self):
        when = f" @ {self.timestamp:%Y-%m-%d %H:%M}" if self.timestamp else ""
        return f"{self.metric_code} × {self.quantity}{when}"


class UsageEventKey(TenantOwned):
    """The idempotency keys of a tenant's usage events, one row each, forever (archiving keeps them).

    The unique key of events across all month partitions and across stores: ``usage_ingest``
    inserts the keys of a batch here with ``ON CONFLICT DO NOTHING RETURNING`` and then stores only the
    events whose key that statement claimed, in the same transaction, so two concurrent requests
    carrying one key still store it once. The ClickHouse store claims keys here with the same statement and writes only the claimed events there
    (see ``UsageEventBatch``). Written only by those statements and the trigger on ``UsageEvent``
    (migration 0020); no foreign key constraint, for the reason given on ``UsageEvent``.
    """

    pk = models.CompositePrimaryKey("tenant", "idempotency_key")
    tenant = models.ForeignKey(
        "customers.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    # Compared byte by byte: a key is only ever matched for equality, which "C" decides exactly as the
    # database's default collation does, and every claim walks the key index down, comparing strings
    # at each step; in "C" that is memcmp instead of the locale's strcoll.
    idempotency_key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH, db_collation="C")

    class Meta:
        verbose_name = gettext_lazy("usage event key")
        verbose_name_plural = gettext_lazy("usage event keys")

    def __str__(self):
        return self.idempotency_key


class UsageEventBatch(TenantOwned):
    """The outbox of the ClickHouse store: new events whose keys are committed here, not yet written there.

    Created in the ingesting transaction with the keys, so a batch exists exactly when its keys do.
    After the commit the batch is written to ClickHouse with ``insert_deduplication_token`` set to
    its id and deleted; a crash in between leaves it here, and ``usage_store_flush`` writes it again:
    ClickHouse drops a block whose token it has already seen, so nothing is lost or counted twice.
    ``rows`` is the batch in ClickHouse's TabSeparated format.
    """

    rows = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = gettext_lazy("pending usage batch")
        verbose_name_plural = gettext_lazy("pending usage batches")
        indexes = [models.Index(fields=["tenant", "created_at"], name="usage_batch_tenant_created")]

    def __str__(self):
        return f"usage batch {self.pk}"


class UsageArchive(TenantOwned):
    """One tenant's usage events of one closed month, moved to a gzipped CSV file (billing.usage_archive).

    ``sha256`` and ``rows`` are the file's checksum and row count (also in its manifest beside it);
    ``totals`` keeps each customer's per-metric quantities of the month as ``usage_totals`` computed
    them before the rows were deleted, ``{"<customer_id>": {"<metric>": "<decimal>"}}``.
    ``restored_at`` is set when the rows were loaded back.
    """

    month = models.DateField(help_text="First day of the archived month (UTC months, as the partitions).")
    path = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    rows = models.BigIntegerField()
    totals = models.JSONField(default=dict, blank=True)
    archived_at = models.DateTimeField(default=timezone.now)
    restored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = gettext_lazy("usage archive")
        verbose_name_plural = gettext_lazy("usage archives")
        ordering = ["-month"]
        constraints = [models.UniqueConstraint(fields=["tenant", "month"], name="usage_archive_one_per_month")]

    def __str__(self):
        return f"Usage of {self.month:%Y-%m} ({self.rows} events)"
