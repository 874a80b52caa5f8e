"""The default usage-event store: the ``billing_usageevent`` table, through the SQL in ``billing.metering``.

Nothing here rewrites that SQL (metering hands it over, see ``base.MeteringSQL``): ingestion is
``metering._insert_new`` (INSERT … ON CONFLICT on the key table, then COPY of the claimed events),
totals are ``metering._totals_sql`` (one aggregate query per metric).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.db import transaction
from django.db.models import Case, DecimalField, F, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce

from billing.models import BillableMetric, UsageEvent, UsageEventKey
from billing.partitions import usage_partitions_ensure
from billing.usage_store.base import SAVINGS_AMOUNT, CopiedEvent, MeteringSQL, StoredEvent, UsageEventStore
from customers.models import Tenant
from customers.periods import add_months
from customers.tenancy import tenant_cursor

ZERO = Decimal(0)
TABLE = UsageEvent._meta.db_table
IMPORT_STAGE = "billing_usage_import_stage"
EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)

# The event table's one index is its primary key (tenant, metric_code, timestamp, customer, id), see
# ``UsageEvent``. A read by time alone therefore first finds the tenant's metric codes (``CODES_SQL``)
# and then reads that key once per code (``PER_CODE``): one index range per code, instead of every
# entry of the tenant in the months read. Each code's range is a lateral subquery fenced with
# ``OFFSET 0``, so the planner cannot flatten it into a join (with small statistics it had chosen a
# hash join over the tenant's whole months), and the codes reach it as a literal array, whose length
# the planner knows: a recursive query in the same statement is estimated at 100 codes, which made
# a one-day read look costly enough to compile (JIT: 180 ms for a 20 ms read).
#
# The codes: a loose index scan, one descent of the key per code and month partition. ``{span}``
# limits it to whole UTC months (the partitions of the period read), so every entry it meets there is
# in range and each step finds the next code at once. Codes that no metric defines any more are found
# too.
CODES_SQL = f"""
WITH RECURSIVE codes (code) AS (
    (SELECT metric_code FROM {TABLE} WHERE tenant_id = %(tenant)s{{span}} ORDER BY metric_code LIMIT 1)
    UNION ALL
    SELECT (SELECT metric_code FROM {TABLE} WHERE tenant_id = %(tenant)s AND metric_code > codes.code{{span}}
            ORDER BY metric_code LIMIT 1)
    FROM codes WHERE codes.code IS NOT NULL
)
SELECT code FROM codes WHERE code IS NOT NULL
"""
CODES = "unnest(%(codes)s::text[]) AS c (code)"

# The tenant's events of ``start <= timestamp < end`` (and ``{where}``), as ``e``.
PER_CODE = f"""{CODES} CROSS JOIN LATERAL (
    SELECT * FROM {TABLE}
    WHERE tenant_id = %(tenant)s AND metric_code = c.code AND timestamp >= %(start)s AND timestamp < %(end)s{{where}}
    OFFSET 0
) e"""

# The first entry of each code, the earliest of them.
FIRST_EVENT_SQL = f"""
SELECT MIN(first) FROM {CODES}
CROSS JOIN LATERAL (SELECT MIN(timestamp) AS first FROM {TABLE} WHERE tenant_id = %(tenant)s AND metric_code = c.code) f
"""

BUCKETED_COUNTS_SQL = f"""
SELECT e.customer_id, width_bucket(e.timestamp, %(bounds)s::timestamptz[]), COUNT(*)
FROM {PER_CODE}
GROUP BY 1, 2
"""

# Newest first: each code's newest ``window`` events (one backward range of the key per code), merged.
EVENT_LIST_SQL = f"""
SELECT {{columns}} FROM {CODES}
CROSS JOIN LATERAL (
    SELECT id, {{columns}} FROM {TABLE}
    WHERE tenant_id = %(tenant)s AND metric_code = c.code{{conditions}}
    ORDER BY timestamp DESC, id DESC{{window}} OFFSET 0
) e
ORDER BY timestamp DESC, id DESC{{page}}
"""

DAY_FIGURES_SQL = (
    f"SELECT (e.timestamp AT TIME ZONE 'UTC')::date, COUNT(*), SUM(e.quantity) FROM {PER_CODE.format(where='')} GROUP BY 1"
)
KEYS_BETWEEN_SQL = f"SELECT e.idempotency_key FROM {PER_CODE.format(where='')}"
# Instants as microseconds since the epoch: 3× cheaper to turn into datetimes than ISO text.
EVENTS_BETWEEN_SQL = f"""
SELECT e.customer_id, e.metric_code, (extract(epoch FROM e.timestamp) * 1000000)::bigint, e.idempotency_key,
       e.quantity, e.properties::text, (extract(epoch FROM e.received_at) * 1000000)::bigint
FROM {PER_CODE.format(where='')}
ORDER BY e.timestamp, e.id
"""


_AMOUNT_SQL = "CASE WHEN properties ->> '{key}' ~ %(amount)s THEN GREATEST((properties ->> '{key}')::numeric, 0) ELSE 0 END"
SAVINGS_SQL = f"""
SELECT customer_id, metric_code, width_bucket(timestamp, %(bounds)s::timestamptz[]),
       SUM(b), SUM(o), SUM(GREATEST(b - o, 0)), COUNT(*)
FROM (
    SELECT customer_id, metric_code, timestamp, {_AMOUNT_SQL.format(key="baseline")} AS b,
           {_AMOUNT_SQL.format(key="optimized")} AS o
    FROM {TABLE}
    WHERE tenant_id = %(tenant)s AND customer_id = ANY(%(customers)s) AND metric_code = ANY(%(codes)s)
      AND timestamp >= %(start)s AND timestamp < %(end)s
) e
GROUP BY 1, 2, 3
"""


def _codes(cursor, params: dict, start: datetime | None = None, end: datetime | None = None) -> list[str]:
    """The tenant's metric codes in the UTC months holding ``start <= timestamp < end`` (every month
    where a bound is None), through ``CODES_SQL``; also put in ``params["codes"]``."""
    span, found = "", {"tenant": params["tenant"]}
    if start is not None:
        span, found["months_start"] = " AND timestamp >= %(months_start)s", _utc_month_start(start)
    if end is not None:
        last = (end - timedelta(microseconds=1)).astimezone(dt_timezone.utc)  # ``end`` is not in the span
        if (last.year, last.month) < (9999, 12):
            span, found["months_end"] = span + " AND timestamp < %(months_end)s", _utc_month_start(last, months=1)
    cursor.execute(CODES_SQL.format(span=span), found)
    params["codes"] = [code for (code,) in cursor.fetchall()]
    return params["codes"]


def _utc_month_start(moment: datetime, *, months: int = 0) -> datetime:
    """Midnight UTC on the first day of the UTC month holding ``moment``, ``months`` months later."""
    return datetime.combine(add_months(moment.astimezone(dt_timezone.utc).date(), months), time.min,
                            tzinfo=dt_timezone.utc)


class PostgresUsageStore(UsageEventStore):
    name = "postgres"

    def __init__(self, sql: MeteringSQL):
        self.sql = sql

    def insert_new(self, *, tenant: Tenant, rows: dict[str, str], received_at: datetime) -> set[str]:
        return self.sql._insert_new(tenant=tenant, rows=rows, received_at=received_at)

    def stored_keys(self, *, tenant: Tenant, keys: list[str]) -> set[str]:
        return self.sql._stored_keys(tenant=tenant, keys=keys)

    def totals(self, *, tenant, metrics, start, end, customer_ids):
        return self.sql._totals_sql(tenant=tenant, metrics=metrics, start=start, end=end, ids=customer_ids)

    def event_amounts(
        self,
        *,
        tenant: Tenant,
        metric: BillableMetric,
        start: datetime,
        end: datetime,
        customer_ids: Iterable[int] | None,
    ) -> dict[int, list[Decimal]]:
        events = UsageEvent.objects.for_tenant(tenant).filter(
            metric_code=metric.source_code, timestamp__gte=start, timestamp__lt=end
        )
        if customer_ids is not None:
            events = events.filter(customer_id__in=list(customer_ids))
        for index, (key, wanted) in enumerate(sorted((metric.filters or {}).items())):
            values = wanted if isinstance(wanted, list) else [wanted]
            texts = [
                "true" if v is True else "false" if v is False else v if isinstance(v, str) else json.dumps(v)
                for v in values
            ]
            events = events.alias(**{f"filter_{index}": KT(f"properties__{key}")}).filter(
                **{f"filter_{index}__in": texts}
            )
        if metric.field == "quantity":
            measured = F("quantity")
        else:
            # Only numbers and numeric strings are cast (a cast of "lots" would fail the whole query).
            events = events.alias(measured_text=KT(f"properties__{metric.field}"))
            measured = Case(
                When(
                    measured_text__regex=self.sql._SQL_NUMERIC,
                    then=Cast("measured_text", DecimalField(max_digits=24, decimal_places=6)),
                ),
                default=None,
            )
        amounts: dict[int, list[Decimal]] = defaultdict(list)
        rows = events.annotate(measured=Coalesce(measured, ZERO, output_field=DecimalField())).order_by(
            "customer_id", "timestamp", "id"
        )
        for customer_id, value in rows.values_list("customer_id", "measured"):
            amounts[customer_id].append(Decimal(value))
        return amounts

    def event_counts(self, *, tenant, bounds, customer_ids=None):
        params = {"tenant": tenant.pk, "bounds": list(bounds), "start": bounds[0], "end": bounds[-1]}
        customers = ""
        if customer_ids is not None:
            customers, params["customers"] = " AND customer_id = ANY(%(customers)s)", list(customer_ids)
        counts: dict[int, dict[int, int]] = defaultdict(dict)
        with tenant_cursor(tenant) as cursor:
            if not _codes(cursor, params, bounds[0], bounds[-1]):
                return counts
            cursor.execute(BUCKETED_COUNTS_SQL.format(where=customers), params)
            for customer_id, bucket, count in cursor.fetchall():
                counts[customer_id][bucket] = count
        return counts

    def savings_buckets(self, *, tenant, metric_codes, bounds, customer_ids):
        params = {"tenant": tenant.pk, "bounds": list(bounds), "start": bounds[0], "end": bounds[-1],
                  "customers": list(customer_ids), "codes": list(metric_codes), "amount": SAVINGS_AMOUNT}
        with tenant_cursor(tenant) as cursor:
            cursor.execute(SAVINGS_SQL, params)
            return {(customer_id, code, bucket): figures for customer_id, code, bucket, *figures in cursor.fetchall()}

    def customer_events(self, *, tenant, customer_id, metric_code, start, end):
        return list(
            UsageEvent.objects.for_tenant(tenant)
            .filter(customer_id=customer_id, metric_code=metric_code, timestamp__gte=start, timestamp__lt=end)
            .order_by("timestamp", "id")
            .values_list("timestamp", "idempotency_key", "properties")
        )

    def ai_usage_rebuild(self, *, tenant):
        # One statement in the database (``billing_ai_usage_rebuild``, migration 0005), set-wise.
        with tenant_cursor(tenant) as cursor:
            cursor.execute("SELECT billing_ai_usage_rebuild(%s)", [tenant.pk])
            return cursor.fetchone()[0]

    def event_list(self, *, tenant, customer_id=None, metric_code=None, start=None, end=None, idempotency_key=None,
                   limit=None, offset=0):
        params = {"tenant": tenant.pk}
        conditions = ""
        for condition, name, value in ((" AND customer_id = %(customer)s", "customer", customer_id),
                                       (" AND timestamp >= %(start)s", "start", start),
                                       (" AND timestamp < %(end)s", "end", end),
                                       (" AND idempotency_key = %(key)s", "key", idempotency_key)):
            if value is not None:
                conditions, params[name] = conditions + condition, value
        window = page = ""
        if limit is not None:
            window, params["window"] = " LIMIT %(window)s", offset + limit
            page, params["limit"] = " LIMIT %(limit)s", limit
        if offset:
            page, params["offset"] = page + " OFFSET %(offset)s", offset
        sql = EVENT_LIST_SQL.format(columns=", ".join(StoredEvent._fields), conditions=conditions, window=window,
                                    page=page)
        with tenant_cursor(tenant) as cursor:
            if metric_code is not None:
                params["codes"] = [metric_code]
            elif not _codes(cursor, params, start, end):
                return []
            cursor.execute(sql, params)
            return [StoredEvent(customer, code, at, key, quantity, json.loads(properties), received)
                    for customer, code, at, key, quantity, properties, received in cursor.fetchall()]

    def customer_has_events(self, *, tenant, customer_id):
        return UsageEvent.objects.for_tenant(tenant).filter(customer_id=customer_id).exists()

    def first_event_at(self, *, tenant):
        params = {"tenant": tenant.pk}
        with tenant_cursor(tenant) as cursor:
            if not _codes(cursor, params):
                return None
            cursor.execute(FIRST_EVENT_SQL, params)
            return cursor.fetchone()[0]

    # --- operations -------------------------------------------------------------------------------

    def purge_tenant(self, *, tenant_id):
        # tenant_purge deleted the tenant's events with every other tenant-owned table.
        return None

    def day_figures(self, *, tenant, start, end):
        params = {"tenant": tenant.pk, "start": start, "end": end}
        with tenant_cursor(tenant) as cursor:
            if not _codes(cursor, params, start, end):
                return {}
            cursor.execute(DAY_FIGURES_SQL, params)
            return {day: (count, quantity) for day, count, quantity in cursor.fetchall()}

    def keys_between(self, *, tenant, start, end):
        params = {"tenant": tenant.pk, "start": start, "end": end}
        with tenant_cursor(tenant) as cursor:
            if not _codes(cursor, params, start, end):
                return set()
            cursor.execute(KEYS_BETWEEN_SQL, params)
            return {key for (key,) in cursor.fetchall()}

    def events_between(self, *, tenant, start, end):
        params = {"tenant": tenant.pk, "start": start, "end": end}
        with tenant_cursor(tenant) as cursor:
            if not _codes(cursor, params, start, end):
                return []
            cursor.execute(EVENTS_BETWEEN_SQL, params)
            return [
                CopiedEvent(customer, code, EPOCH + timedelta(microseconds=at), key, quantity, properties,
                            EPOCH + timedelta(microseconds=received))
                for customer, code, at, key, quantity, properties, received in cursor.fetchall()
            ]

    def events_import(self, *, tenant, events):
        if not events:
            return 0
        months = sorted({e.timestamp.astimezone(dt_timezone.utc).date().replace(day=1) for e in events})
        for month in months:
            usage_partitions_ensure(today=month, months_ahead=0)
        columns = ("customer_id", "metric_code", "timestamp", "idempotency_key", "quantity", "properties", "received_at")
        with transaction.atomic(), tenant_cursor(tenant) as cursor:
            cursor.execute(
                f"INSERT INTO {UsageEventKey._meta.db_table} (tenant_id, idempotency_key)"
                " SELECT %s, unnest(%s::varchar[]) ON CONFLICT DO NOTHING",
                [tenant.pk, [e.idempotency_key for e in events]],
            )
            # COPY cannot write a table under row-level security: into a temporary table first.
            cursor.execute(
                f"CREATE TEMPORARY TABLE {IMPORT_STAGE} ON COMMIT DROP AS SELECT {', '.join(columns)} FROM {TABLE}"
                " WITH NO DATA"
            )
            with cursor.cursor.copy(f"COPY {IMPORT_STAGE} ({', '.join(columns)}) FROM STDIN") as copy:
                for event in events:
                    copy.write_row(event)
            # Moved, not new usage: the key trigger and the AI-usage roll-up stand aside, as for archiving.
            cursor.execute(
                "SELECT set_config('billing.usage_archive', 'on', true);"
                f" INSERT INTO {TABLE} (tenant_id, {', '.join(columns)})"
                f" SELECT {int(tenant.pk)}, {', '.join(columns)} FROM {IMPORT_STAGE};"
                f" DROP TABLE {IMPORT_STAGE}; SELECT set_config('billing.usage_archive', '', true)"
            )
        return len(events)
