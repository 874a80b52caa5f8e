"""The month-end run page: live counts from the rows, the month default, Resume, and resuming a run whose
worker died (the beat's ``month_end_resume_stalled``) with one invoice, PDF and email per customer."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing import month_end, tasks
from billing.models import BillingRun, BillingRunItem, Invoice, InvoiceDelivery
from billing.month_end import billing_run_process_items, billing_run_start
from billing.services import invoice_compute_drafts, invoice_finalize
from customers.models import Role
from customers.periods import last_closed_month, month_key
from customers.periods import month_end as month_end_of
from customers.tenancy import platform_scope, tenant_scope
from tests.billing.test_month_end import (  # noqa: F401 (media_root and snapshots_queued: autouse fixtures)
    JUNE,
    _failing_render_for,
    media_root,
    run_of,
    snapshots_queued,
    subscribe,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def five(tenant_a, tenant_b):
    """Five subscribers of tenant A (Echo without email), one of tenant B."""
    with platform_scope():
        customers = [subscribe(tenant_a, name) for name in ("Alpha Labs", "Beta Works", "Delta Co", "Echo AB")]
        customers.insert(3, subscribe(tenant_a, "Dim Ltd", emails=[]))
        subscribe(tenant_b, "Bergen AB")
    return customers


def counts_on_page(client, run) -> dict:
    page = client.get(reverse("admin:billing_billingrun_change", args=(run.pk,))).content.decode()
    return {name: int(value) for name, value in re.findall(r'data-count="(\w+)">(?:<a [^>]*>)?(\d+)', page)}


def test_the_run_page_counts_finalized_emailed_and_failed_from_the_rows(
    client, member_factory, five, tenant_a, monkeypatch, django_capture_on_commit_callbacks
):
    _failing_render_for("Beta Works", ValueError("template exploded"), monkeypatch)  # numbered, never emailed
    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        run = billing_run_start(tenant=tenant_a, period_start=JUNE, finalize=True, dispatch=False)
    items = dict(BillingRunItem.objects.for_tenant(tenant_a).filter(run=run).values_list("customer__name", "pk"))
    # Alpha, Beta, Dim worked; Delta and Echo still open, as if the worker died before them.
    billing_run_process_items(run=run, item_ids=[items["Alpha Labs"], items["Beta Works"], items["Dim Ltd"]])
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    counts = counts_on_page(client, run)

    assert counts == {
        "customers": 5, "through": 3, "finalized": 3, "emailed": 1, "failed": 1, "skipped": 0, "open": 2,
    }
    assert counts["through"] == len(mail.outbox) + 1 + 1  # Alpha emailed, Dim has no address, Beta failed
    assert Invoice.objects.for_tenant(tenant_a).exclude(status="draft").count() == counts["finalized"]
    assert InvoiceDelivery.objects.for_tenant(tenant_a).filter(status="sent").count() == counts["emailed"]


def test_emails_sent_before_the_item_is_marked_are_counted(
    client, member_factory, five, tenant_a, django_capture_on_commit_callbacks
):
    """The demo's finding: 55 emails out, the run said "Emailed 0". The count is the delivery rows'."""
    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        run = billing_run_start(tenant=tenant_a, period_start=JUNE, finalize=True, dispatch=False)
    billing_run_process_items(run=run, item_ids=list(BillingRunItem.objects.for_tenant(tenant_a).filter(run=run).values_list("pk", flat=True)))
    # The worker died after the emails went out and before the items and the run were recounted.
    BillingRunItem.objects.for_tenant(tenant_a).filter(run=run).update(status="finalized", emails_sent=0)
    BillingRun.objects.for_tenant(tenant_a).filter(pk=run.pk).update(status="running", emailed=0, finalized=0)
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    counts = counts_on_page(client, run)

    assert (counts["emailed"], counts["finalized"], counts["through"], counts["open"]) == (4, 5, 0, 5)
    assert len(mail.outbox) == 4


def test_a_fully_finalized_month_reads_as_such(client, member_factory, five, tenant_a, django_capture_on_commit_callbacks):
    """Its invoices were finalized outside a run; a run started for review then finds them all numbered."""
    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        invoice_compute_drafts(tenant=tenant_a, period_start=JUNE, period_end=month_end_of(JUNE))
        for invoice in Invoice.objects.for_tenant(tenant_a).filter(period_start=JUNE):
            invoice_finalize(invoice=invoice)
        run = billing_run_start(tenant=tenant_a, period_start=JUNE)  # review period: not finalizing
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    page = client.get(reverse("admin:billing_billingrun_change", args=(run.pk,))).content.decode()
    listing = client.get(reverse("admin:billing_billingrun_changelist")).content.decode()

    assert run.status == "drafted"
    assert "The month is fully finalized: all 5 invoices are numbered." in page
    assert "all 5 invoices finalized, 4 emailed" in listing  # invoice_finalize delivered them


def test_the_month_defaults_to_the_tenants_last_closed_month(client, member_factory, tenant_a):
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    page = client.get(reverse("admin:billing_billingrun_start")).content.decode()

    expected = month_key(last_closed_month(tenant_a))
    assert re.search(rf'<input type="month" name="period" value="{expected}"', page)


@pytest.mark.parametrize("month, message", [
    ("2026-13", "Write the month as YYYY-MM, e.g. 2026-03 (got &#x27;2026-13&#x27;)."),
    ("26-11", "Write the month as YYYY-MM, e.g. 2026-03 (got &#x27;26-11&#x27;)."),
    ("2999-01", "2999-01 has not begun yet"),
])
def test_a_bad_month_is_a_form_error(client, member_factory, tenant_a, month, message):
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    response = client.post(reverse("admin:billing_billingrun_start"), {"period": month})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not BillingRun.objects.for_tenant(tenant_a).exists()


def test_a_stalled_run_shows_resume_and_the_button_finishes_it(
    client, member_factory, five, tenant_a, django_capture_on_commit_callbacks
):
    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        run = billing_run_start(tenant=tenant_a, period_start=JUNE, finalize=True, dispatch=False)
    long_ago = timezone.now() - timedelta(minutes=30)
    BillingRunItem.objects.for_tenant(tenant_a).filter(run=run).update(updated_at=long_ago)
    BillingRun.objects.for_tenant(tenant_a).filter(pk=run.pk).update(finalizing_at=long_ago)
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    page = client.get(reverse("admin:billing_billingrun_change", args=(run.pk,))).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:billing_billingrun_resume", args=(run.pk,)))

    assert 'id="run-stalled"' in page and 'id="run-resume"' in page
    assert response.status_code == 302
    assert run_of(tenant_a).status == "done"
    assert counts_on_page(client, run) == {
        "customers": 5, "through": 5, "finalized": 5, "emailed": 4, "failed": 0, "skipped": 0, "open": 0,
    }


def test_resume_is_refused_to_a_viewer(client, member_factory, five, tenant_a, django_capture_on_commit_callbacks):
    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        run = billing_run_start(tenant=tenant_a, period_start=JUNE, finalize=True, dispatch=False)
    client.force_login(member_factory(tenant_a, Role.VIEWER))

    response = client.post(reverse("admin:billing_billingrun_resume", args=(run.pk,)))

    assert response.status_code == 403
    assert run_of(tenant_a).status == "running"


def test_the_beat_resumes_a_run_interrupted_mid_item_with_one_of_everything(
    five, tenant_a, tenant_b, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """Killed after Alpha was delivered and while Beta was numbered but not yet emailed: the beat finds
    the run stalled and re-queues it; each customer ends with one invoice, one PDF and one email."""
    real = _failing_render_for("Beta Works", KeyboardInterrupt(), monkeypatch)  # the kill, mid-item
    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        run = billing_run_start(tenant=tenant_a, period_start=JUNE, finalize=True, dispatch=False)
    with pytest.raises(KeyboardInterrupt):
        billing_run_process_items(run=run, item_ids=list(BillingRunItem.objects.for_tenant(tenant_a).filter(run=run).order_by("customer__name").values_list("pk", flat=True)))
    monkeypatch.setattr(month_end, "invoice_render_pdf", real)
    assert (len(mail.outbox), Invoice.objects.for_tenant(tenant_a).exclude(status="draft").count()) == (1, 2)

    assert tasks.month_end_resume_stalled() == 0  # not stalled yet: an item moved a moment ago
    # Time passes with no worker on the run.
    earlier = timezone.now() - month_end.STALLED_AFTER - timedelta(seconds=1)
    BillingRunItem.objects.for_tenant(tenant_a).filter(run=run).update(updated_at=earlier)
    BillingRun.objects.for_tenant(tenant_a).filter(pk=run.pk).update(finalizing_at=earlier)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.month_end_resume_stalled() == 1

    run = run_of(tenant_a)
    invoices = list(Invoice.objects.for_tenant(tenant_a).order_by("sequence_number"))
    assert run.status == "done"
    assert [(i.customer.name, i.sequence_number, i.status) for i in invoices] == [
        ("Alpha Labs", 1, "finalized"), ("Beta Works", 2, "finalized"), ("Delta Co", 3, "finalized"),
        ("Echo AB", 4, "finalized"), ("Dim Ltd", 5, "finalized"),  # in the order the customers were added
    ]
    assert sorted(path.name for path in Path(settings.MEDIA_ROOT).rglob("*.pdf")) == [f"{i.number}.pdf" for i in invoices]
    assert sorted(m.to[0] for m in mail.outbox) == [
        "ap@alpha-labs.example.com", "ap@beta-works.example.com", "ap@delta-co.example.com", "ap@echo-ab.example.com",
    ]
    assert (run.customers, run.finalized, run.emailed, run.failed) == (5, 5, 4, 0)
    assert not Invoice.objects.for_tenant(tenant_b).exists()


def test_the_beat_schedule_resumes_stalled_runs_every_five_minutes():
    from portal.schedule import BEAT_SCHEDULE

    entry = BEAT_SCHEDULE["billing-month-end-resume"]
    assert entry["task"] == "billing.tasks.month_end_resume_stalled"
    assert entry["schedule"].minute == set(range(0, 60, 5))



def test_the_run_page_makes_as_many_queries_for_four_failed_items_as_for_one(
    client, member_factory, five, tenant_a, django_capture_on_commit_callbacks
):
    """Each failed item's row names its run: without the run joined in, every row read it again."""
    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        run = billing_run_start(tenant=tenant_a, period_start=JUNE, finalize=True, dispatch=False)
    items = BillingRunItem.objects.for_tenant(tenant_a).filter(run=run).order_by("pk")
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    url = reverse("admin:billing_billingrun_change", args=(run.pk,))
    client.get(url)  # warms the per-process caches (content types), so both counts are the page's own
    queries = []
    for failed in (1, 4):
        items.filter(pk__in=list(items.values_list("pk", flat=True)[:failed])).update(status="failed", error="SMTP refused")
        with CaptureQueriesContext(connection) as captured:
            page = client.get(url)
        assert page.status_code == 200 and page.content.decode().count("SMTP refused") == failed
        queries.append(len(captured.captured_queries))

    assert queries[0] == queries[1]
