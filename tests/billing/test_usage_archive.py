"""Archiving a tenant's usage events of an invoiced month to a file, and restoring them exactly."""

import gzip
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from billing.metering import usage_ingest, usage_totals
from billing.models import AiUsageDay, Invoice, InvoiceLine, UsageArchive, UsageEvent, UsageEventKey
from billing.partitions import partition_name, usage_partitions, usage_partitions_ensure
from billing.services.drafts import invoice_compute_drafts
from billing.usage_archive import ArchiveRefused, usage_archive_due, usage_archive_month, usage_archive_restore
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_invoice
from tests.billing.factories import BillableMetricFactory, BillingSettingsFactory
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.postgres_store_only(reason="archives and restores months of the PostgreSQL event table's partitions")

SEPTEMBER = date(2026, 9, 1)
IN_SEPTEMBER = datetime(2026, 10, 1, 12, tzinfo=timezone.utc)  # when the events arrive
AI_CALL = {"provider": "openai", "model": "gpt-x", "input_tokens": 100, "output_tokens": 20}


@pytest.fixture(autouse=True)
def archive_root(settings, tmp_path):
    settings.USAGE_ARCHIVE_ROOT = tmp_path / "archive"
    return settings.USAGE_ARCHIVE_ROOT


@pytest.fixture
def world(tenant_a, tenant_b):
    usage_partitions_ensure(today=date(2026, 8, 1), months_ahead=3)
    made = {
        "northwind": CustomerFactory(tenant=tenant_a, external_ref="northwind"),
        "contoso": CustomerFactory(tenant=tenant_a, external_ref="contoso"),
        "bergen": CustomerFactory(tenant=tenant_b, external_ref="bergen"),
    }
    for tenant in (tenant_a, tenant_b):
        BillableMetricFactory(tenant=tenant, code="jobs", aggregation="sum")
    usage_ingest(tenant=tenant_a, now=IN_SEPTEMBER, events=[
        _event("n1", "northwind", "2026-09-02T10:00:00Z", 2, {"status": "ok\ttab", "note": "a \"quoted\", comma"}),
        _event("n2", "northwind", "2026-09-30T23:59:59Z", "1.500001", AI_CALL),
        _event("c1", "contoso", "2026-09-15T08:00:00+02:00", 7, {}),
        _event("oct", "northwind", "2026-10-01T00:00:00Z", 1, {}),
    ])
    usage_ingest(tenant=tenant_b, now=IN_SEPTEMBER, events=[_event("b1", "bergen", "2026-09-03T10:00:00Z", 4, {})])
    return made


def _event(key, customer, timestamp, quantity, properties):
    return {"customer": customer, "metric": "jobs", "timestamp": timestamp, "idempotency_key": key,
            "quantity": quantity, "properties": properties}


def _invoice_september(*customers):
    return [
        build_invoice(customer, lines=(("Jobs", "3.500001", "2.00"),), period_start=SEPTEMBER,
                      period_end=date(2026, 9, 30), issue_date=date(2026, 10, 1))
        for customer in customers
    ]


def _lines(invoice):
    rows = InvoiceLine.objects.for_tenant(invoice.tenant).filter(invoice=invoice)
    return list(rows.values_list("description", "quantity", "amount"))


def _rows(tenant):
    with platform_scope():
        return list(
            UsageEvent.objects.filter(tenant=tenant).order_by("id").values_list(
                "id", "customer_id", "metric_code", "timestamp", "idempotency_key", "quantity", "properties",
                "received_at",
            )
        )


def test_archiving_writes_the_months_rows_to_a_file_and_deletes_only_those(world, tenant_a, tenant_b, archive_root):
    _invoice_september(world["northwind"], world["contoso"])
    before = _rows(tenant_a)

    archive = usage_archive_month(tenant=tenant_a, month=SEPTEMBER)

    assert [row[4] for row in _rows(tenant_a)] == ["oct"]
    assert [row[4] for row in _rows(tenant_b)] == ["b1"]
    path = Path(archive.path)
    assert path == archive_root / str(tenant_a.pk) / "2026-09.csv.gz"
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert lines[0] == "id,customer_id,metric_code,timestamp,idempotency_key,quantity,properties,received_at"
    assert len(lines) == 4 and archive.rows == 3
    manifest = json.loads((archive_root / str(tenant_a.pk) / "2026-09.manifest.json").read_text())
    assert (manifest["rows"], manifest["sha256"], manifest["tenant_id"]) == (3, archive.sha256, tenant_a.pk)
    assert archive.totals == {
        str(world["northwind"].pk): {"jobs": {"events": 2, "quantity": "3.500001"}},
        str(world["contoso"].pk): {"jobs": {"events": 1, "quantity": "7.000000"}},
    }
    assert len(before) == 4


def test_archived_keys_stay_so_a_retry_is_still_a_duplicate(world, tenant_a):
    _invoice_september(world["northwind"], world["contoso"])
    usage_archive_month(tenant=tenant_a, month=SEPTEMBER)

    result = usage_ingest(tenant=tenant_a, now=IN_SEPTEMBER, events=[_event("n1", "northwind", "2026-09-21T00:00:00Z", 1, {})])

    assert [r.status for r in result.results] == ["duplicate"]
    assert UsageEventKey.objects.for_tenant(tenant_a).count() == 4


def test_the_invoice_and_the_ai_roll_up_are_unchanged_by_archiving(world, tenant_a):
    invoice, _ = _invoice_september(world["northwind"], world["contoso"])
    lines_before = _lines(invoice)
    roll_up_before = list(AiUsageDay.objects.for_tenant(tenant_a).values_list("day", "calls", "input_tokens"))

    usage_archive_month(tenant=tenant_a, month=SEPTEMBER)
    counts = invoice_compute_drafts(tenant=tenant_a, period_start=SEPTEMBER, period_end=date(2026, 9, 30))

    after = Invoice.objects.for_tenant(tenant_a).get(pk=invoice.pk)
    assert (after.status, after.total) == (Invoice.Status.FINALIZED, invoice.total)
    assert _lines(after) == lines_before == [("Jobs", Decimal("3.500001"), Decimal("7.00"))]
    assert counts["created"] == counts["updated"] == 0
    assert list(AiUsageDay.objects.for_tenant(tenant_a).values_list("day", "calls", "input_tokens")) == roll_up_before
    assert roll_up_before == [(date(2026, 9, 30), 1, 100)]


def test_an_uninvoiced_month_is_refused_and_nothing_changes(world, tenant_a, archive_root):
    _invoice_september(world["northwind"])  # contoso's September is still open

    with pytest.raises(ArchiveRefused, match="1 customer month"):
        usage_archive_month(tenant=tenant_a, month=SEPTEMBER)

    assert len(_rows(tenant_a)) == 4
    assert not archive_root.exists() and not UsageArchive.objects.for_tenant(tenant_a).exists()


def test_a_draft_invoice_does_not_close_the_month(world, tenant_a):
    _invoice_september(world["northwind"])
    build_invoice(world["contoso"], period_start=SEPTEMBER, period_end=date(2026, 9, 30), finalize=False)

    with pytest.raises(ArchiveRefused, match="not fully invoiced"):
        usage_archive_month(tenant=tenant_a, month=SEPTEMBER)


def test_a_month_not_over_is_refused(world, tenant_a):
    with pytest.raises(ArchiveRefused, match="not over"):
        usage_archive_month(tenant=tenant_a, month=date(2099, 1, 1))


def test_a_month_archived_twice_is_refused(world, tenant_a):
    _invoice_september(world["northwind"], world["contoso"])
    usage_archive_month(tenant=tenant_a, month=SEPTEMBER)

    with pytest.raises(ArchiveRefused, match="already archived"):
        usage_archive_month(tenant=tenant_a, month=SEPTEMBER)


def test_restoring_brings_back_exactly_the_rows(world, tenant_a):
    _invoice_september(world["northwind"], world["contoso"])
    before = _rows(tenant_a)
    totals_before = usage_totals(tenant=tenant_a, period_start=SEPTEMBER, period_end=date(2026, 9, 30))
    usage_archive_month(tenant=tenant_a, month=SEPTEMBER)

    restored = usage_archive_restore(tenant=tenant_a, month=SEPTEMBER)

    assert restored == 3
    assert _rows(tenant_a) == before
    assert usage_totals(tenant=tenant_a, period_start=SEPTEMBER, period_end=date(2026, 9, 30)) == totals_before
    assert UsageArchive.objects.for_tenant(tenant_a).get().restored_at is not None


def test_an_altered_file_is_not_restored(world, tenant_a):
    _invoice_september(world["northwind"], world["contoso"])
    archive = usage_archive_month(tenant=tenant_a, month=SEPTEMBER)
    path = Path(archive.path)
    text = gzip.decompress(path.read_bytes()).decode().replace(",7.000000,", ",70.000000,")
    path.write_bytes(gzip.compress(text.encode()))

    with pytest.raises(ArchiveRefused, match="checksum"):
        usage_archive_restore(tenant=tenant_a, month=SEPTEMBER)

    assert [row[4] for row in _rows(tenant_a)] == ["oct"]


def test_the_partition_is_dropped_only_when_every_tenant_archived_the_month(world, tenant_a, tenant_b):
    _invoice_september(world["northwind"], world["contoso"], world["bergen"])
    september = partition_name(SEPTEMBER)

    usage_archive_month(tenant=tenant_a, month=SEPTEMBER)
    kept = september in usage_partitions()
    usage_archive_month(tenant=tenant_b, month=SEPTEMBER)

    assert kept and september not in usage_partitions()
    usage_archive_restore(tenant=tenant_b, month=SEPTEMBER)
    assert september in usage_partitions() and [row[4] for row in _rows(tenant_b)] == ["b1"]


def test_the_months_due_follow_the_tenants_setting(world, tenant_a, tenant_b):
    BillingSettingsFactory(tenant=tenant_a, usage_archive_after_months=2)

    assert usage_archive_due(tenant=tenant_a, today=date(2026, 11, 15)) == [SEPTEMBER]
    assert usage_archive_due(tenant=tenant_a, today=date(2026, 10, 31)) == []
    assert usage_archive_due(tenant=tenant_b, today=date(2026, 11, 15)) == []  # no setting: keep everything


def test_the_command_archives_and_restores_a_month(world, tenant_a):
    _invoice_september(world["northwind"], world["contoso"])
    out = StringIO()

    call_command("usage_archive", tenant=tenant_a.slug, month="2026-09", stdout=out)
    call_command("usage_archive", tenant=tenant_a.slug, month="2026-09", restore=True, stdout=out)

    assert "2026-09: archived 3 events" in out.getvalue() and "2026-09: restored 3 events." in out.getvalue()
    with pytest.raises(CommandError, match="Nothing was changed"):
        call_command("usage_archive", tenant=tenant_a.slug, month="2026-10", stdout=out, stderr=StringIO())
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("usage_archive", tenant=tenant_a.slug, month="2026-9", stdout=out)
