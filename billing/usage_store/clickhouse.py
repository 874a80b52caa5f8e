"""Usage events in ClickHouse: the store for event volumes one PostgreSQL cannot hold.

Events go to one MergeTree table, ``usage_events``, partitioned by month and ordered by
(tenant_id, customer_id, metric_code, timestamp). ClickHouse has no row-level security: every
query here names the tenant (``_select`` refuses SQL without ``tenant_id = %(tenant)s``).

Exactly-once (docs/scaling.md, "Exactly-once counting", and ``manage.py benchmark_usage_store``):
the idempotency keys stay in PostgreSQL (``UsageEventKey``, unique per tenant). ``insert_new``
inserts the batch's keys ON CONFLICT DO NOTHING RETURNING, and the events of the new keys go into
an outbox row (``UsageEventBatch``) in the same transaction. After the commit the batch is written
to ClickHouse with ``insert_deduplication_token`` = its id, then deleted. A crash in between leaves
the batch in the outbox; ``pending_flush`` (the ``usage_store_flush`` task, and month-end before
drafting) writes it again, and ClickHouse drops a block whose token it has seen, so an event is
never lost and never counted twice. Events are visible to totals once their batch is written.

Production talks to a server with clickhouse-connect (``CLICKHOUSE_URL`` = ``http(s)://…`` or
``clickhouse://…``); tests and the benchmark run chdb, ClickHouse in-process
(``CLICKHOUSE_URL`` = ``chdb://<directory>``). Both get the same SQL text, parameters bound on the
client by clickhouse-connect's own formatter, and both answer in TabSeparated.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from datetime import timezone as dt_timezone
from decimal import Decimal
from functools import partial

from clickhouse_connect.driver.binding import finalize_query
from django.db import transaction

from billing.models import AiUsageDay, BillableMetric, UsageEventBatch, UsageEventKey
from billing.usage_store.base import SAVINGS_AMOUNT, CopiedEvent, MeteringSQL, StoredEvent, UsageEventStore
from customers.models import Tenant
from customers.tenancy import platform_scope, tenant_cursor

logger = logging.getLogger(__name__)

TABLE = "usage_events"
COLUMNS = (
    "tenant_id", "customer_id", "metric_code", "timestamp", "idempotency_key", "quantity", "properties", "received_at"
)
DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    tenant_id UInt64,
    customer_id UInt64,
    metric_code LowCardinality(String),
    timestamp DateTime64(6, 'UTC'),
    idempotency_key String,
    quantity Decimal(24, 6),
    properties String,
    received_at DateTime64(6, 'UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (tenant_id, customer_id, metric_code, timestamp)
SETTINGS non_replicated_deduplication_window = 100000
"""
# ISO-8601 timestamps with an offset, as usage_ingest writes them.
INSERT_SETTINGS = {"date_time_input_format": "best_effort"}
# The batch's AI calls (events whose properties carry "model"), for the AI-usage roll-up.
AI_STAGE = "billing_usage_ai_stage"
# Property values are read as Decimal(38, 12): 26 digits before the point, 12 after.
PROPERTY_SCALE = 12
_TSV_UNESCAPES = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\", "'": "'", "0": "\x00", "b": "\b", "f": "\f"}
_TSV_ESCAPE = re.compile(r"\\(.)")


def _tsv_field(text: str) -> str | None:
    if text == "\\N":
        return None
    if "\\" not in text:
        return text
    return _TSV_ESCAPE.sub(lambda m: _TSV_UNESCAPES.get(m.group(1), m.group(1)), text)


def _tsv_text(text: str) -> str:
    """``text`` as a TabSeparated field (the escapes ``_tsv_field`` reads)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _tsv_lines(text: str) -> list[str]:
    """The lines of COPY or TabSeparated text: split at newlines only (``str.splitlines`` also splits at
    form feeds, U+2028 and other characters that neither format escapes)."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(dt_timezone.utc) - datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _instant(micros: int) -> datetime:
    from datetime import timedelta

    return datetime(1970, 1, 1, tzinfo=dt_timezone.utc) + timedelta(microseconds=micros)


class _ChdbBackend:
    """ClickHouse in this process (chdb), one session per directory."""

    def __init__(self, path: str):
        from chdb import session

        self.session = session.Session(path)
        self.lock = threading.Lock()

    def query(self, sql: str) -> bytes:
        with self.lock:
            return bytes(self.session.query(sql, "TabSeparated").bytes())

    def insert(self, data: str, token: str, table: str = TABLE) -> None:
        settings = ", ".join(f"{k} = '{v}'" for k, v in {**INSERT_SETTINGS, "insert_deduplication_token": token}.items())
        with self.lock:
            self.session.query(f"INSERT INTO {table} ({', '.join(COLUMNS)}) SETTINGS {settings} FORMAT TabSeparated\n{data}")


class _ServerBackend:
    """A ClickHouse server, over HTTP with clickhouse-connect."""

    def __init__(self, url: str):
        import clickhouse_connect

        self.client = clickhouse_connect.get_client(dsn=url)

    def query(self, sql: str) -> bytes:
        return self.client.raw_query(sql, fmt="TabSeparated")

    def insert(self, data: str, token: str, table: str = TABLE) -> None:
        self.client.raw_insert(
            table, list(COLUMNS), insert_block=data.encode("utf-8"), fmt="TabSeparated",
            settings={**INSERT_SETTINGS, "insert_deduplication_token": token},
        )


def _property_text(param: str) -> str:
    """SQL for ``properties ->> key`` as PostgreSQL reads it: a string unquoted, other values as
    JSON text, null or missing as NULL. The key is the query parameter ``param``."""
    k = f"%({param})s"
    return (
        f"if(JSONType(properties, {k}) = 'String', toNullable(JSONExtractString(properties, {k})),"
        f" if(JSONType(properties, {k}) = 'Null', NULL, toNullable(JSONExtractRaw(properties, {k}))))"
    )


def _value_sql(field: str, scale: int = PROPERTY_SCALE) -> str:
    """The metric's measured value: ``quantity``, or the property ``%(field)s`` when it is a number or
    a numeric string (``%(numeric)s``: the regex of ``metering._SQL_NUMERIC``), else NULL."""
    if field == "quantity":
        return "quantity"
    text = f"assumeNotNull({_property_text('field')})"
    return (
        "if(JSONType(properties, %(field)s) IN ('String', 'Int64', 'UInt64', 'Double')"
        f" AND match({text}, %(numeric)s), toDecimal128OrNull(trimBoth({text}), {scale}), NULL)"
    )


# The AI-usage roll-up (``billing.models.AiUsageDay``) of the events this store keeps: the rule of the
# triggers on billing_usageevent (migration billing/0005), which never see these events. ``_ai_calls_added``
# adds a batch's new calls in PostgreSQL, in the transaction that claims their keys (so exactly once);
# ``AI_CALLS_BY_DAY`` reads a tenant's calls back from ClickHouse for a rebuild.
AI_USAGE_DAY_COLUMNS = "tenant_id, customer_id, day, provider, model, feature, calls, input_tokens, output_tokens"
AI_USAGE_DAY_KEY = "tenant_id, customer_id, day, provider, model, feature"
TOKENS = r"^\s*[0-9]{1,15}\s*$"


def _ai_calls_added(table: str) -> str:
    """SQL adding the calls of the staged events whose keys are in ``claimed`` to ``table``, per customer,
    day of the tenant's calendar, provider, model and feature. Parameters: tenant id, tokens regex twice."""
    return f"""
INSERT INTO {table} ({AI_USAGE_DAY_COLUMNS})
SELECT t.id, s.customer_id, (s.ts AT TIME ZONE t.time_zone)::date,
       LEFT(COALESCE(s.properties ->> 'provider', ''), 200),
       LEFT(COALESCE(s.properties ->> 'model', ''), 200),
       LEFT(COALESCE(NULLIF(s.properties ->> 'feature', ''), s.properties ->> 'task_type', ''), 200),
       COUNT(*),
       SUM(CASE WHEN s.properties ->> 'input_tokens' ~ %s THEN (s.properties ->> 'input_tokens')::numeric ELSE 0 END),
       SUM(CASE WHEN s.properties ->> 'output_tokens' ~ %s THEN (s.properties ->> 'output_tokens')::numeric ELSE 0 END)
FROM {AI_STAGE} s JOIN claimed c ON c.idempotency_key = s.idempotency_key JOIN customers_tenant t ON t.id = %s
WHERE s.properties ? 'model'
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT ({AI_USAGE_DAY_KEY}) DO UPDATE SET calls = {table}.calls + EXCLUDED.calls,
    input_tokens = {table}.input_tokens + EXCLUDED.input_tokens,
    output_tokens = {table}.output_tokens + EXCLUDED.output_tokens
"""


def _tokens_sql(param: str) -> str:
    text = f"ifNull({_property_text(param)}, '')"
    return f"sum(if(match({text}, %(tokens)s), toDecimal128OrZero(extract({text}, '[0-9]+'), 0), toDecimal128(0, 0)))"


AI_CALLS_BY_DAY = f"""
SELECT customer_id, toString(toDate(timestamp, %(time_zone)s)) AS day,
       leftUTF8(ifNull({_property_text('provider')}, ''), 200) AS provider,
       leftUTF8(ifNull({_property_text('model')}, ''), 200) AS model,
       leftUTF8(ifNull(nullIf({_property_text('feature')}, ''), ifNull({_property_text('task_type')}, '')), 200) AS feature,
       count(), {_tokens_sql('input_tokens')}, {_tokens_sql('output_tokens')}
FROM {{source}}
WHERE tenant_id = %(tenant)s AND JSONHas(properties, 'model')
GROUP BY customer_id, day, provider, model, feature
"""


class ClickHouseUsageStore(UsageEventStore):
    name = "clickhouse"
    archive_refusal = (
        "Usage events are kept in ClickHouse, whose month partitions hold every tenant's events: there is no "
        "tenant's month to detach, and compressed columns keep closed months cheap (docs/scaling.md)."
    )
    # What the reads name in FROM (the benchmark reads a ReplacingMergeTree copy with FINAL).
    source = TABLE

    def __init__(self, url: str, sql: MeteringSQL):
        self.sql = sql
        if not url:
            raise ValueError("USAGE_EVENT_STORE = 'clickhouse' needs CLICKHOUSE_URL.")
        self.backend = _ChdbBackend(url[len("chdb://"):]) if url.startswith("chdb://") else _ServerBackend(url)
        self.backend.query(DDL)

    # --- SQL --------------------------------------------------------------------------------------

    def _select(self, sql: str, params: dict) -> list[list[str | None]]:
        """Rows of TabSeparated fields; the SQL must filter by the tenant it is given."""
        if "tenant_id = %(tenant)s" not in sql or not isinstance(params.get("tenant"), int):
            raise ValueError("Every ClickHouse query filters by tenant_id: there is no row-level security there.")
        body = self.backend.query(finalize_query(sql, params)).decode("utf-8")
        return [[_tsv_field(f) for f in line.split("\t")] for line in _tsv_lines(body)]

    def _where(self, tenant: Tenant, start: datetime, end: datetime, customer_ids, metric=None) -> tuple[str, dict]:
        where = (
            "tenant_id = %(tenant)s AND timestamp >= fromUnixTimestamp64Micro(%(start)s, 'UTC')"
            " AND timestamp < fromUnixTimestamp64Micro(%(end)s, 'UTC')"
        )
        params = {"tenant": tenant.pk, "start": _micros(start), "end": _micros(end)}
        if metric is not None:
            where += " AND metric_code = %(metric)s"
            params.update(metric=metric.source_code, field=metric.field, numeric=self.sql._SQL_NUMERIC)
            for index, (key, value) in enumerate(sorted((metric.filters or {}).items())):
                where += f" AND {_property_text(f'filter_key_{index}')} IN %(filter_{index})s"
                params[f"filter_key_{index}"] = key
                params[f"filter_{index}"] = tuple(self.sql._filter_texts(value))
        if customer_ids is not None:
            where += " AND customer_id IN %(customers)s"
            params["customers"] = tuple(customer_ids) or (0,)
        return where, params

    # --- writes -----------------------------------------------------------------------------------

    def insert_new(self, *, tenant: Tenant, rows: dict[str, str], received_at: datetime) -> set[str]:
        if not rows:
            return set()
        # A superset of the AI calls (the SQL checks the key itself): most batches have none.
        ai_lines = [line for line in rows.values() if '"model"' in line]
        claim, claim_params = self.sql._KEYS_CLAIM_SQL, [tenant.pk, self.sql._array_literal(rows)]
        with tenant_cursor(tenant) as cursor:
            if ai_lines:
                cursor.execute(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {AI_STAGE} (customer_id bigint NOT NULL,"
                    " metric_code varchar(64) NOT NULL, ts timestamptz NOT NULL,"
                    ' idempotency_key varchar(128) COLLATE "C" NOT NULL,'
                    " quantity numeric(24, 6) NOT NULL, properties jsonb NOT NULL) ON COMMIT DELETE ROWS;"
                    f" DELETE FROM {AI_STAGE}"
                )
                with cursor.cursor.copy(
                    f"COPY {AI_STAGE} (customer_id, metric_code, ts, idempotency_key, quantity, properties) FROM STDIN"
                ) as copy:
                    copy.write("".join(ai_lines))
                # The new calls join the roll-up in the statement that claims their keys: exactly once.
                cursor.execute(
                    f"WITH claimed AS ({claim}), rolled AS ({_ai_calls_added(AiUsageDay._meta.db_table)})"
                    " SELECT idempotency_key FROM claimed",
                    claim_params + [TOKENS, TOKENS, tenant.pk],
                )
            else:
                cursor.execute(claim, claim_params)
            inserted = {key for (key,) in cursor.fetchall()}
            if not inserted:
                return inserted
            received = received_at.astimezone(dt_timezone.utc).isoformat()
            prefix = f"{tenant.pk}\t"
            batch_rows = "".join(
                f"{prefix}{line[:-1]}\t{received}\n" for key, line in rows.items() if key in inserted
            )
            cursor.execute(
                f"INSERT INTO {UsageEventBatch._meta.db_table} (tenant_id, rows, created_at)"
                " VALUES (%s, %s, %s) RETURNING id",
                [tenant.pk, batch_rows, received_at],
            )
            batch_id = cursor.fetchone()[0]
        self._after_commit(partial(self._flush_batches, tenant_id=tenant.pk, batch_ids=[batch_id]))
        return inserted

    def _after_commit(self, write) -> None:
        """Write the batch once its keys are committed (a failure is logged; the sweep retries)."""
        transaction.on_commit(write, robust=True)

    def _flush_batches(self, *, tenant_id: int, batch_ids: list[int] | None) -> int:
        """Write pending batches (these ids, or all the tenant's) to ClickHouse, then delete them.

        Each batch under a row lock (SKIP LOCKED: a batch another flush is writing is its business),
        in its own transaction, written with its id as deduplication token. A failure is logged and
        leaves the batch for the next flush."""
        tenant = Tenant(pk=tenant_id)
        written = 0
        pending = batch_ids
        if pending is None:
            with tenant_cursor(tenant) as cursor:
                cursor.execute(
                    f"SELECT id FROM {UsageEventBatch._meta.db_table} WHERE tenant_id = %s ORDER BY id", [tenant_id]
                )
                pending = [batch_id for (batch_id,) in cursor.fetchall()]
        for batch_id in pending:
            try:
                with transaction.atomic(), tenant_cursor(tenant) as cursor:
                    cursor.execute(
                        f"SELECT rows FROM {UsageEventBatch._meta.db_table} WHERE tenant_id = %s AND id = %s"
                        " FOR UPDATE SKIP LOCKED",
                        [tenant_id, batch_id],
                    )
                    row = cursor.fetchone()
                    if row is None:
                        continue
                    self.backend.insert(row[0], token=f"usage-batch-{tenant_id}-{batch_id}")
                    cursor.execute(
                        f"DELETE FROM {UsageEventBatch._meta.db_table} WHERE tenant_id = %s AND id = %s",
                        [tenant_id, batch_id],
                    )
                    written += 1
            except Exception:
                logger.exception("Usage batch %s of tenant %s not written to ClickHouse; it stays pending.", batch_id, tenant_id)
        return written

    def pending_flush(self, *, tenant: Tenant | None = None) -> int:
        if tenant is not None:
            return self._flush_batches(tenant_id=tenant.pk, batch_ids=None)
        with platform_scope(reason="usage batches pending for ClickHouse, every tenant"):
            tenant_ids = list(UsageEventBatch.objects.values_list("tenant_id", flat=True).distinct())
        return sum(self._flush_batches(tenant_id=tenant_id, batch_ids=None) for tenant_id in tenant_ids)

    def ai_usage_rebuild(self, *, tenant: Tenant) -> int:
        """The tenant's AI-usage roll-up made again from its events in ClickHouse (batches still
        pending are written first), in the caller's transaction; returns the rows made."""
        self.pending_flush(tenant=tenant)
        table = AiUsageDay._meta.db_table
        with tenant_cursor(tenant) as cursor:
            cursor.execute(f"SELECT time_zone FROM {Tenant._meta.db_table} WHERE id = %s", [tenant.pk])
            (time_zone,) = cursor.fetchone()
            rows = self._select(
                AI_CALLS_BY_DAY.format(source=self.source),
                {"tenant": tenant.pk, "time_zone": time_zone, "tokens": TOKENS, "provider": "provider",
                 "model": "model", "feature": "feature", "task_type": "task_type",
                 "input_tokens": "input_tokens", "output_tokens": "output_tokens"},
            )
            columns = list(zip(*rows)) or [()] * 8
            AiUsageDay.objects.for_tenant(tenant).delete()
            cursor.execute(
                f"INSERT INTO {table} ({AI_USAGE_DAY_COLUMNS}) SELECT %s, * FROM unnest(%s::bigint[], %s::date[],"
                " %s::text[], %s::text[], %s::text[], %s::bigint[], %s::numeric[], %s::numeric[])",
                [tenant.pk, *(list(column) for column in columns)],
            )
            return cursor.rowcount

    def stored_keys(self, *, tenant: Tenant, keys: list[str]) -> set[str]:
        with tenant_cursor(tenant) as cursor:
            cursor.execute(
                f"SELECT idempotency_key FROM {UsageEventKey._meta.db_table}"
                " WHERE tenant_id = %s AND idempotency_key = ANY(%s)",
                [tenant.pk, keys],
            )
            return {key for (key,) in cursor.fetchall()}

    # --- reads ------------------------------------------------------------------------------------

    def _metric_sql(self, metric: BillableMetric, where: str) -> str:
        aggregation = metric.aggregation
        if aggregation == BillableMetric.Aggregation.COUNT:
            return f"SELECT customer_id, count() FROM {self.source} WHERE {where} GROUP BY customer_id"
        if aggregation == BillableMetric.Aggregation.UNIQUE_COUNT:
            if metric.field == "quantity":
                distinct = "uniqExact(quantity)"
            else:
                distinct = "uniqExactIf(JSONExtractRaw(properties, %(field)s), JSONType(properties, %(field)s) != 'Null')"
            return f"SELECT customer_id, {distinct} FROM {self.source} WHERE {where} GROUP BY customer_id"
        value = _value_sql(metric.field)
        inner = f"SELECT customer_id, timestamp, received_at, idempotency_key, {value} AS v FROM {self.source} WHERE {where}"
        if aggregation == BillableMetric.Aggregation.WEIGHTED_SUM:
            # Σ running total × seconds held = Σ each delta × seconds from it to the period's end.
            return (
                "SELECT customer_id, sum(toDecimal256(v, 12) * dateDiff('microsecond', timestamp,"
                f" fromUnixTimestamp64Micro(%(end)s, 'UTC'))) FROM ({inner}) WHERE v IS NOT NULL GROUP BY customer_id"
            )
        if aggregation == BillableMetric.Aggregation.LATEST:
            # Within one batch PostgreSQL numbers rows in key order ("C" collation), as ClickHouse compares.
            return (
                f"SELECT customer_id, argMax(v, (timestamp, received_at, idempotency_key)) FROM ({inner})"
                " WHERE v IS NOT NULL GROUP BY customer_id"
            )
        function = {BillableMetric.Aggregation.SUM: "sum", BillableMetric.Aggregation.MAX: "max"}[aggregation]
        return f"SELECT customer_id, {function}(v) FROM ({inner}) WHERE v IS NOT NULL GROUP BY customer_id"

    def totals(self, *, tenant, metrics, start, end, customer_ids):
        totals: dict[tuple[int, str], Decimal] = {}
        for metric in metrics:
            where, params = self._where(tenant, start, end, customer_ids, metric)
            weighted = metric.aggregation == BillableMetric.Aggregation.WEIGHTED_SUM
            for customer_id, value in self._select(self._metric_sql(metric, where), params):
                if value is None:
                    continue
                amount = Decimal(value)
                if weighted:
                    amount = self.sql._time_weighted(amount / 1_000_000, end - start)
                totals[(int(customer_id), metric.code)] = amount
        return totals

    def event_amounts(
        self,
        *,
        tenant: Tenant,
        metric: BillableMetric,
        start: datetime,
        end: datetime,
        customer_ids: Iterable[int] | None,
    ) -> dict[int, list[Decimal]]:
        where, params = self._where(tenant, start, end, None if customer_ids is None else list(customer_ids), metric)
        sql = (
            f"SELECT customer_id, ifNull({_value_sql(metric.field, 6)}, toDecimal128(0, 6)) FROM {self.source} WHERE {where}"
            " ORDER BY customer_id, timestamp, received_at, idempotency_key"
        )
        amounts: dict[int, list[Decimal]] = defaultdict(list)
        for customer_id, value in self._select(sql, params):
            amounts[int(customer_id)].append(Decimal(value))
        return amounts

    def event_counts(self, *, tenant, bounds, customer_ids=None):
        where, params = self._where(tenant, bounds[0], bounds[-1], customer_ids)
        params["bounds"] = [_micros(b) for b in bounds]
        sql = (
            "SELECT customer_id, arrayCount(b -> b <= toUnixTimestamp64Micro(timestamp), %(bounds)s) AS bucket, count()"
            f" FROM {self.source} WHERE {where} GROUP BY customer_id, bucket"
        )
        counts: dict[int, dict[int, int]] = defaultdict(dict)
        for customer_id, bucket, count in self._select(sql, params):
            counts[int(customer_id)][int(bucket)] = int(count)
        return counts

    def savings_buckets(self, *, tenant, metric_codes, bounds, customer_ids):
        where, params = self._where(tenant, bounds[0], bounds[-1], list(customer_ids))
        params.update(bounds=[_micros(b) for b in bounds], codes=tuple(metric_codes) or ("",), amount=SAVINGS_AMOUNT)
        amount = (
            "if(JSONType(properties, '{key}') IN ('String', 'Int64', 'UInt64', 'Double')"
            " AND match(assumeNotNull({text}), %(amount)s),"
            " greatest(toDecimal128OrZero(trimBoth(assumeNotNull({text})), 12), toDecimal128(0, 12)), toDecimal128(0, 12))"
        )
        b = amount.format(key="baseline", text=_property_text("baseline_key"))
        o = amount.format(key="optimized", text=_property_text("optimized_key"))
        params.update(baseline_key="baseline", optimized_key="optimized")
        sql = (
            "SELECT customer_id, metric_code, arrayCount(x -> x <= toUnixTimestamp64Micro(timestamp), %(bounds)s) AS bucket,"
            " sum(b), sum(o), sum(greatest(b - o, toDecimal128(0, 12))), count()"
            f" FROM (SELECT customer_id, metric_code, timestamp, {b} AS b, {o} AS o FROM {self.source}"
            f" WHERE {where} AND metric_code IN %(codes)s) GROUP BY customer_id, metric_code, bucket"
        )
        return {
            (int(customer_id), code, int(bucket)): [Decimal(base), Decimal(optimized), Decimal(saved), int(events)]
            for customer_id, code, bucket, base, optimized, saved, events in self._select(sql, params)
        }

    def customer_events(self, *, tenant, customer_id, metric_code, start, end):
        where, params = self._where(tenant, start, end, [customer_id])
        params["metric"] = metric_code
        sql = (
            f"SELECT toUnixTimestamp64Micro(timestamp), idempotency_key, properties FROM {self.source}"
            f" WHERE {where} AND metric_code = %(metric)s ORDER BY timestamp, received_at, idempotency_key"
        )
        return [(_instant(int(micros)), key, json.loads(properties)) for micros, key, properties in self._select(sql, params)]

    def event_list(self, *, tenant, customer_id=None, metric_code=None, start=None, end=None, idempotency_key=None,
                   limit=None, offset=0):
        where, params = "tenant_id = %(tenant)s", {"tenant": tenant.pk}
        for column, value, condition in (
            ("customer", customer_id, "customer_id = %(customer)s"),
            ("metric", metric_code, "metric_code = %(metric)s"),
            ("start", start, "timestamp >= fromUnixTimestamp64Micro(%(start)s, 'UTC')"),
            ("end", end, "timestamp < fromUnixTimestamp64Micro(%(end)s, 'UTC')"),
            ("key", idempotency_key, "idempotency_key = %(key)s"),
        ):
            if value is not None:
                where += f" AND {condition}"
                params[column] = _micros(value) if column in ("start", "end") else value
        sql = (
            "SELECT customer_id, metric_code, toUnixTimestamp64Micro(timestamp), idempotency_key, quantity, properties,"
            f" toUnixTimestamp64Micro(received_at) FROM {self.source} WHERE {where}"
            " ORDER BY timestamp DESC, received_at DESC, idempotency_key DESC"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        elif offset:
            sql += f" OFFSET {int(offset)}"
        return [
            StoredEvent(int(customer), code, _instant(int(at)), key, Decimal(quantity), json.loads(properties),
                        _instant(int(received)))
            for customer, code, at, key, quantity, properties, received in self._select(sql, params)
        ]

    def customer_has_events(self, *, tenant, customer_id):
        self.pending_flush(tenant=tenant)
        sql = f"SELECT 1 FROM {self.source} WHERE tenant_id = %(tenant)s AND customer_id = %(customer)s LIMIT 1"
        return bool(self._select(sql, {"tenant": tenant.pk, "customer": customer_id}))

    def first_event_at(self, *, tenant):
        rows = self._select(
            f"SELECT toUnixTimestamp64Micro(minOrNull(timestamp)) FROM {self.source} WHERE tenant_id = %(tenant)s",
            {"tenant": tenant.pk},
        )
        return None if not rows or rows[0][0] is None else _instant(int(rows[0][0]))

    # --- operations -------------------------------------------------------------------------------

    def purge_tenant(self, *, tenant_id):
        """A lightweight DELETE: the rows are masked at once (``lightweight_deletes_sync`` = 2 waits
        until every replica masks them, so no read after this returns sees them) and dropped from disk
        by the next merges of their parts. Safe to run after the purge's commit: the tenant's keys and
        pending batches went in that transaction, and a flush already writing a batch held its row
        lock, so the purge waited for it: no write of this tenant can reach ClickHouse afterwards.
        Not DROP PARTITION: a month's partition holds every tenant's events."""
        if not isinstance(tenant_id, int):
            raise ValueError("purge_tenant needs the tenant's id.")
        self.backend.query(
            finalize_query(
                f"DELETE FROM {TABLE} WHERE tenant_id = %(tenant)s SETTINGS lightweight_deletes_sync = 2",
                {"tenant": tenant_id},
            )
        )

    def _between(self, tenant: Tenant, start: datetime, end: datetime) -> tuple[str, dict]:
        return self._where(tenant, start, end, None)

    def day_figures(self, *, tenant, start, end):
        where, params = self._between(tenant, start, end)
        rows = self._select(f"SELECT toDate(timestamp), count(), sum(quantity) FROM {self.source} WHERE {where} GROUP BY 1", params)
        return {date.fromisoformat(day): (int(count), Decimal(quantity)) for day, count, quantity in rows}

    def keys_between(self, *, tenant, start, end):
        where, params = self._between(tenant, start, end)
        return {key for (key,) in self._select(f"SELECT idempotency_key FROM {self.source} WHERE {where}", params)}

    def events_between(self, *, tenant, start, end):
        where, params = self._between(tenant, start, end)
        sql = (
            "SELECT customer_id, metric_code, toUnixTimestamp64Micro(timestamp), idempotency_key, quantity, properties,"
            f" toUnixTimestamp64Micro(received_at) FROM {self.source} WHERE {where}"
            " ORDER BY timestamp, received_at, idempotency_key"
        )
        return [
            CopiedEvent(int(customer), code, _instant(int(at)), key, Decimal(quantity), properties, _instant(int(received)))
            for customer, code, at, key, quantity, properties, received in self._select(sql, params)
        ]

    # Rows per INSERT of a copy: a block ClickHouse writes as one part, well below a part's useful size.
    IMPORT_BLOCK = 100_000

    def events_import(self, *, tenant, events):
        if not events:
            return 0
        with tenant_cursor(tenant) as cursor:
            cursor.execute(
                f"INSERT INTO {UsageEventKey._meta.db_table} (tenant_id, idempotency_key)"
                " SELECT %s, unnest(%s::varchar[]) ON CONFLICT DO NOTHING",
                [tenant.pk, [e.idempotency_key for e in events]],
            )
        # A token of its own per copy: a block copied again after a purge or a failed copy must not be
        # taken for a duplicate of the earlier one (the caller already left out what the table holds).
        run = uuid.uuid4().hex
        for offset in range(0, len(events), self.IMPORT_BLOCK):
            block = "".join(
                "\t".join((
                    str(tenant.pk), str(e.customer_id), _tsv_text(e.metric_code),
                    e.timestamp.astimezone(dt_timezone.utc).isoformat(), _tsv_text(e.idempotency_key),
                    str(e.quantity), _tsv_text(e.properties), e.received_at.astimezone(dt_timezone.utc).isoformat(),
                )) + "\n"
                for e in events[offset : offset + self.IMPORT_BLOCK]
            )
            self.backend.insert(block, token=f"usage-copy-{tenant.pk}-{run}-{offset}")
        return len(events)

    def truncate(self) -> None:
        """Empty the event table (tests and benchmarks only)."""
        self.backend.query(f"TRUNCATE TABLE {TABLE}")
