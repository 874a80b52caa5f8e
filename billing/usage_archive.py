"""Archiving a tenant's raw usage events of an invoiced month to a file, and restoring them.

The month partitions (``billing.partitions``) hold every tenant's events, so a tenant's old month
cannot be detached alone: ``usage_archive_month`` exports the tenant's events of one UTC month (the
partitions' months) to ``<USAGE_ARCHIVE_ROOT>/<tenant id>/<YYYY-MM>.csv.gz`` with a manifest beside it
(``.manifest.json``: rows, SHA-256 of the file, columns, per-customer totals), then deletes them. When
no tenant has a row left in that month, its partition is detached and dropped
(``usage_partition_drop_empty``).

What stays in the database: the events' idempotency keys (``UsageEventKey``: a retry of an archived
event is still a duplicate), the AI-usage roll-up (its triggers skip rows moved by archiving), the
``UsageArchive`` row with each customer's event count and quantity per metric code, and of course the
invoices: a finalized invoice's lines carry their quantities and amounts, its PDF is rendered from
them, credit notes are made from its lines, and month-end never recomputes a finalized or paid
invoice. What reads raw events of that month afterwards (the usage summary API, portal usage pages,
anomaly, churn-risk and ROI figures, what-if replays) sees none until ``usage_archive_restore``
loads the file back, checked against its checksum, with the same ids.

A month may be archived when it is over (UTC) and every customer with events in it has a finalized
or paid invoice for each of the tenant's calendar months those events fall in; ``usage_archive_due``
archives the months older than the tenant's ``BillingSettings.usage_archive_after_months``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zoneinfo
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.metering import CLOSING_INVOICE_STATUSES, usage_store
from billing.models import BillingSettings, Invoice, UsageArchive, UsageEvent
from billing.partitions import usage_partition_drop_empty, usage_partitions_ensure
from customers.models import Tenant
from customers.tenancy import tenant_cursor

COLUMNS = ["id", "customer_id", "metric_code", "timestamp", "idempotency_key", "quantity", "properties", "received_at"]
_STAGE = "billing_usage_restore_stage"


class ArchiveRefused(ValueError):
    """The month cannot be archived or restored as asked; nothing changed."""


def _month_bounds(month: date) -> tuple[datetime, datetime]:
    if not isinstance(month, date) or isinstance(month, datetime) or month.day != 1:
        raise ArchiveRefused("Name the month by its first day, e.g. 2026-09-01.")
    start = datetime(month.year, month.month, 1, tzinfo=dt_timezone.utc)
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start, datetime(following.year, following.month, 1, tzinfo=dt_timezone.utc)


def archive_paths(tenant: Tenant, month: date) -> tuple[Path, Path]:
    """(the events file, its manifest) of ``tenant``'s ``month``."""
    folder = Path(settings.USAGE_ARCHIVE_ROOT) / str(tenant.pk)
    return folder / f"{month:%Y-%m}.csv.gz", folder / f"{month:%Y-%m}.manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _uninvoiced(tenant: Tenant, start: datetime, end: datetime) -> int:
    """How many (customer, tenant-local month) pairs with events in [start, end) lack a closing invoice."""
    with tenant_cursor(tenant) as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT e.customer_id,"
            " date_trunc('month', e.timestamp AT TIME ZONE %s)::date AS month"
            f" FROM {UsageEvent._meta.db_table} e WHERE e.tenant_id = %s AND e.timestamp >= %s AND e.timestamp < %s) p"
            f" WHERE NOT EXISTS (SELECT 1 FROM {Invoice._meta.db_table} i WHERE i.tenant_id = %s"
            " AND i.customer_id = p.customer_id AND i.period_start = p.month AND i.status = ANY(%s))",
            [tenant.time_zone, tenant.pk, start, end, tenant.pk, list(CLOSING_INVOICE_STATUSES)],
        )
        return cursor.fetchone()[0]


def _refuse_other_store() -> None:
    """Archiving moves rows of PostgreSQL's month partitions; with events in another store there are
    none to move (and a restore would put them where nothing reads them)."""
    refusal = usage_store().archive_refusal
    if refusal:
        raise ArchiveRefused(refusal)


def usage_archive_month(*, tenant: Tenant, month: date) -> UsageArchive:
    """Move ``tenant``'s usage events of the UTC month starting ``month`` to a gzipped CSV file.

    Writes the file (rows ordered by id, a header line, COPY's CSV format) and its manifest, fsynced,
    then deletes the rows and records a ``UsageArchive`` in one transaction; the AI-usage roll-up and
    the idempotency keys are kept. Afterwards the month's partition is dropped if no tenant has rows
    left in it. Raises ArchiveRefused (nothing changed) for a month that is not over, one with a
    customer month not closed by a finalized or paid invoice, or one already archived, and when the
    usage-event store in use is not PostgreSQL (``UsageEventStore.archive_refusal``).
    """
    start, end = _month_bounds(month)
    _refuse_other_store()
    if end > timezone.now():
        raise ArchiveRefused(f"{month:%Y-%m} is not over yet; only closed months can be archived.")
    path, manifest_path = archive_paths(tenant, month)
    table = UsageEvent._meta.db_table
    with transaction.atomic():
        existing = UsageArchive.objects.for_tenant(tenant).select_for_update().filter(month=month).first()
        if existing is not None and existing.restored_at is None:
            raise ArchiveRefused(f"{month:%Y-%m} is already archived ({existing.rows} events in {existing.path}).")
        missing = _uninvoiced(tenant, start, end)
        if missing:
            raise ArchiveRefused(
                f"{month:%Y-%m} is not fully invoiced: {missing} customer month(s) with usage have no finalized "
                "or paid invoice."
            )
        with tenant_cursor(tenant) as cursor:
            cursor.execute(
                f"SELECT customer_id, metric_code, COUNT(*), SUM(quantity) FROM {table}"
                " WHERE tenant_id = %s AND timestamp >= %s AND timestamp < %s GROUP BY 1, 2 ORDER BY 1, 2",
                [tenant.pk, start, end],
            )
            totals: dict[str, dict] = {}
            rows = 0
            for customer_id, metric_code, count, quantity in cursor.fetchall():
                totals.setdefault(str(customer_id), {})[metric_code] = {"events": count, "quantity": str(quantity)}
                rows += count
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            with partial.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                with cursor.cursor.copy(
                    f"COPY (SELECT {', '.join(COLUMNS)} FROM {table} WHERE tenant_id = %s AND timestamp >= %s"
                    " AND timestamp < %s ORDER BY id) TO STDOUT (FORMAT csv, HEADER)",
                    [tenant.pk, start, end],
                ) as copy:
                    for block in copy:
                        gz.write(block)
                gz.close()
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, path)
            sha256 = _sha256(path)
            manifest = {
                "tenant_id": tenant.pk, "tenant": tenant.slug, "month": f"{month:%Y-%m}",
                "from": start.isoformat(), "to": end.isoformat(), "rows": rows, "sha256": sha256,
                "file": path.name, "format": "csv (PostgreSQL COPY), header, gzip", "columns": COLUMNS,
                "totals": totals,
            }
            manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
            # Not new or gone usage: the key trigger and the AI roll-up's delete trigger stand aside.
            cursor.execute(
                "SELECT set_config('billing.usage_archive', 'on', true);"
                f" DELETE FROM {table} WHERE tenant_id = {int(tenant.pk)} AND timestamp >= '{start.isoformat()}'"
                f" AND timestamp < '{end.isoformat()}'; SELECT set_config('billing.usage_archive', '', true)"
            )
        values = {"path": str(path), "sha256": sha256, "rows": rows, "totals": totals,
                  "archived_at": timezone.now(), "restored_at": None}
        if existing is None:
            archive = UsageArchive.objects.create(tenant=tenant, month=month, **values)
        else:
            for name, value in values.items():
                setattr(existing, name, value)
            existing.save()
            archive = existing
    usage_partition_drop_empty(month=month)
    return archive


def usage_archive_restore(*, tenant: Tenant, month: date) -> int:
    """Load ``tenant``'s archived events of ``month`` back from the file, same ids; returns the rows.

    The file must match the SHA-256 and row count recorded when it was written. One transaction; the
    month's partition is made again if it was dropped. Raises ArchiveRefused (nothing changed) when
    the month is not archived, already restored, or its file is missing or altered, and when the
    usage-event store in use is not PostgreSQL.
    """
    start, end = _month_bounds(month)
    _refuse_other_store()
    table = UsageEvent._meta.db_table
    usage_partitions_ensure(today=month, months_ahead=0)
    with transaction.atomic():
        archive = UsageArchive.objects.for_tenant(tenant).select_for_update().filter(month=month).first()
        if archive is None or archive.restored_at is not None:
            raise ArchiveRefused(f"{month:%Y-%m} has no archive to restore.")
        path = Path(archive.path)
        if not path.is_file():
            raise ArchiveRefused(f"The archive file {path} is missing.")
        if _sha256(path) != archive.sha256:
            raise ArchiveRefused(f"The archive file {path} does not match its checksum; it was not restored.")
        with tenant_cursor(tenant) as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE {_STAGE} ON COMMIT DROP AS SELECT {', '.join(COLUMNS)} FROM {table} WITH NO DATA"
            )
            with gzip.open(path, "rb") as gz, cursor.cursor.copy(
                f"COPY {_STAGE} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv, HEADER)"
            ) as copy:
                for block in iter(lambda: gz.read(1 << 20), b""):
                    copy.write(block)
            cursor.execute(
                f"SELECT COUNT(*), COUNT(*) FILTER (WHERE timestamp < %s OR timestamp >= %s) FROM {_STAGE}", [start, end]
            )
            rows, outside = cursor.fetchone()
            if rows != archive.rows or outside:
                raise ArchiveRefused(f"The archive file {path} holds {rows} rows, not the {archive.rows} archived.")
            cursor.execute(
                "SELECT set_config('billing.usage_archive', 'on', true);"
                f" INSERT INTO {table} (tenant_id, {', '.join(COLUMNS)})"
                f" SELECT {int(tenant.pk)}, {', '.join(COLUMNS)} FROM {_STAGE};"
                f" DROP TABLE {_STAGE}; SELECT set_config('billing.usage_archive', '', true)"
            )
        archive.restored_at = timezone.now()
        archive.save(update_fields=["restored_at"])
    return rows


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def usage_archive_due(*, tenant: Tenant, today: date | None = None) -> list[date]:
    """The months of ``tenant`` to archive now: with events, before the last
    ``usage_archive_after_months`` months (the current one included; none when unset), never archived (a restored month is archived
    again only by name); fully invoiced or not (the archiving itself refuses those that are not). None
    when the store in use does not archive (``UsageEventStore.archive_refusal``)."""
    if usage_store().archive_refusal:
        return []
    months_kept = (
        BillingSettings.objects.for_tenant(tenant).values_list("usage_archive_after_months", flat=True).first()
    )
    if not months_kept:
        return []
    today = today or timezone.now().astimezone(zoneinfo.ZoneInfo("UTC")).date()
    before = _add_months(today.replace(day=1), 1 - months_kept)  # the current month counts as one kept
    with tenant_cursor(tenant) as cursor:
        cursor.execute(
            "SELECT DISTINCT date_trunc('month', timestamp AT TIME ZONE 'UTC')::date"
            f" FROM {UsageEvent._meta.db_table} WHERE tenant_id = %s AND timestamp < %s ORDER BY 1",
            [tenant.pk, datetime(before.year, before.month, 1, tzinfo=dt_timezone.utc)],
        )
        months = [month for (month,) in cursor.fetchall()]
    # A restored month stays until archived again by name: someone brought it back on purpose.
    archived = set(UsageArchive.objects.for_tenant(tenant).filter(month__in=months).values_list("month", flat=True))
    return [month for month in months if month not in archived]
