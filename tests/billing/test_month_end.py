"""Month-end runs, service level: drafts, review period, finalizing and delivery, failures and retries."""

from datetime import date, datetime, timedelta, timezone
from io import StringIO

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from billing import month_end
from billing.models import BillingRun, BillingRunItem, Invoice, InvoiceDelivery, TransientItemFailures
from billing.month_end import (
    billing_run_advance,
    billing_run_completed,
    billing_run_process_items,
    billing_run_retry_failed,
    billing_run_start,
    month_end_due,
)
from customers.models import ContractLine, Role
from customers.money import Money
from customers.periods import month_bounds, parse_month, tenant_today
from customers.tenancy import platform_scope, tenant_scope
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory

JUNE = date(2025, 6, 1)  # a closed month: contracts below start in January 2025


def subscribe(tenant, name, *, fee="100.00", emails=None):
    customer = CustomerFactory(
        tenant=tenant, name=name, currency=tenant.reporting_currency,
        billing_emails=[f"ap@{name.lower().replace(' ', '-')}.example.com"] if emails is None else emails,
    )
    contract = ContractFactory(customer=customer, tenant=tenant, start_date=date(2025, 1, 1))
    ContractLineFactory(contract=contract, tenant=tenant, unit_price=Money(fee, customer.currency))
    return customer


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def snapshots_queued(monkeypatch):
    """The revenue snapshots a completed run queues (recorded here: revenue's own tests run them)."""
    from revenue import tasks as revenue_tasks

    queued = []
    monkeypatch.setattr(revenue_tasks.snapshot_closed_month, "delay", lambda tenant_id: queued.append(tenant_id))
    return queued


@pytest.fixture
def world(tenant_a, tenant_b):
    """Three subscribers of tenant A (one without email), one of tenant B."""
    with platform_scope():
        customers = [
            subscribe(tenant_a, "Alpha Labs"),
            subscribe(tenant_a, "Beta Works", fee="250.00"),
            subscribe(tenant_a, "Gamma Ltd", emails=[]),
        ]
        subscribe(tenant_b, "Bergen AB")
    return customers


def run_of(tenant) -> BillingRun:
    return BillingRun.objects.for_tenant(tenant).get()


def items_of(run):
    return list(
        BillingRunItem.objects.for_tenant(run.tenant)
        .filter(run=run)
        .order_by("customer__name")
        .values_list("customer__name", "status", "emails_sent", "error")
    )


def start(tenant, django_capture_on_commit_callbacks, **kwargs):
    with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
        return billing_run_start(tenant=tenant, period_start=JUNE, **kwargs)


def test_finalized_run_numbers_renders_and_emails_each_customer_once(world, tenant_a, tenant_b, django_capture_on_commit_callbacks):
    start(tenant_a, django_capture_on_commit_callbacks, finalize=True)

    run = run_of(tenant_a)
    assert (run.status, run.customers, run.drafted, run.finalized, run.emailed, run.failed) == ("done", 3, 3, 3, 2, 0)
    assert run.started_at and run.finished_at
    invoices = Invoice.objects.for_tenant(tenant_a).order_by("sequence_number")
    assert [i.sequence_number for i in invoices] == [1, 2, 3]
    assert all(i.status == "finalized" and i.pdf.name for i in invoices)
    assert sorted(m.to[0] for m in mail.outbox) == ["ap@alpha-labs.example.com", "ap@beta-works.example.com"]
    assert items_of(run) == [
        ("Alpha Labs", "delivered", 1, ""), ("Beta Works", "delivered", 1, ""), ("Gamma Ltd", "delivered", 0, ""),
    ]
    assert not BillingRun.objects.for_tenant(tenant_b).exists()
    assert not Invoice.objects.for_tenant(tenant_b).exists()


def test_starting_a_finished_run_again_changes_nothing(world, tenant_a, django_capture_on_commit_callbacks):
    first = start(tenant_a, django_capture_on_commit_callbacks, finalize=True)
    second = start(tenant_a, django_capture_on_commit_callbacks, finalize=True)

    assert second.pk == first.pk and second.status == "done"
    assert BillingRun.objects.for_tenant(tenant_a).count() == 1
    assert Invoice.objects.for_tenant(tenant_a).count() == 3
    assert len(mail.outbox) == 2


def test_without_finalize_the_drafts_wait_for_the_review_period(world, tenant_a, django_capture_on_commit_callbacks):
    tenant_a.draft_grace_days = 5
    tenant_a.save()

    run = start(tenant_a, django_capture_on_commit_callbacks)

    assert run.status == "drafted"
    assert run.finalize_on == tenant_today(tenant_a) + timedelta(days=5)  # June is long closed
    assert set(Invoice.objects.for_tenant(tenant_a).values_list("status", flat=True)) == {"draft"}
    assert [status for _, status, _, _ in items_of(run)] == ["drafted"] * 3
    assert mail.outbox == []


def test_a_month_just_ended_is_finalized_after_the_grace_days(world, tenant_a, django_capture_on_commit_callbacks):
    today = tenant_today(tenant_a)
    this_month = today.replace(day=1)

    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        run = billing_run_start(tenant=tenant_a, period_start=this_month)

    period_end = month_bounds(this_month)[1]
    assert run.finalize_on == period_end + timedelta(days=1 + tenant_a.draft_grace_days)


def test_advance_finalizes_drafts_once_their_day_has_come_with_refreshed_amounts(world, tenant_a, django_capture_on_commit_callbacks):
    run = start(tenant_a, django_capture_on_commit_callbacks)
    # Finance corrects a price during the review; then the review period ends.
    line = ContractLine.objects.for_tenant(tenant_a).get(contract__customer__name="Alpha Labs")
    line.unit_price = Money("120.00", "USD")
    line.save()
    BillingRun.objects.for_tenant(tenant_a).filter(pk=run.pk).update(finalize_on=tenant_today(tenant_a))

    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        run = billing_run_advance(run=run)

    run.refresh_from_db()
    assert run.status == "done" and run.finalized == 3
    alpha = Invoice.objects.for_tenant(tenant_a).get(customer__name="Alpha Labs")
    assert (alpha.status, alpha.total) == ("finalized", 120)


def test_advance_before_the_day_leaves_the_drafts_alone(world, tenant_a, django_capture_on_commit_callbacks):
    run = start(tenant_a, django_capture_on_commit_callbacks)

    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        run = billing_run_advance(run=run)

    assert run.status == "drafted"
    assert not Invoice.objects.for_tenant(tenant_a).exclude(status="draft").exists()


def test_future_month_is_refused(tenant_a):
    next_month = month_bounds(tenant_today(tenant_a))[1] + timedelta(days=1)

    with pytest.raises(ValidationError, match="has not begun"), tenant_scope(tenant_a):
        billing_run_start(tenant=tenant_a, period_start=next_month)
    assert not BillingRun.objects.for_tenant(tenant_a).exists()


def test_bad_period_text_is_refused_with_a_clear_message():
    with pytest.raises(ValidationError, match="Write the month as YYYY-MM"):
        parse_month("June 2025")


def test_processing_items_again_after_a_crash_sends_nothing_twice(world, tenant_a, django_capture_on_commit_callbacks):
    run = start(tenant_a, django_capture_on_commit_callbacks, finalize=True)
    # A worker killed after delivering but before recording it leaves the items looking unfinished.
    items = BillingRunItem.objects.for_tenant(tenant_a).filter(run=run)
    items.update(status=BillingRunItem.Status.FINALIZED)

    billing_run_process_items(run=run, item_ids=list(items.values_list("pk", flat=True)))

    assert len(mail.outbox) == 2
    assert list(Invoice.objects.for_tenant(tenant_a).order_by("sequence_number").values_list("sequence_number", flat=True)) == [1, 2, 3]
    assert InvoiceDelivery.objects.for_tenant(tenant_a).filter(status="sent").count() == 2
    assert [status for _, status, _, _ in items_of(run)] == ["delivered"] * 3


def _failing_render_for(name, exc, monkeypatch):
    real = month_end.invoice_render_pdf

    def render(*, invoice):
        if invoice.customer.name == name:
            raise exc
        return real(invoice=invoice)

    monkeypatch.setattr(month_end, "invoice_render_pdf", render)
    return real


def test_a_failing_item_is_recorded_and_the_others_complete(world, tenant_a, monkeypatch, django_capture_on_commit_callbacks):
    _failing_render_for("Beta Works", ValueError("template exploded"), monkeypatch)

    start(tenant_a, django_capture_on_commit_callbacks, finalize=True)

    run = run_of(tenant_a)
    assert (run.status, run.finalized, run.emailed, run.failed) == ("failed", 3, 1, 1)
    assert items_of(run) == [
        ("Alpha Labs", "delivered", 1, ""),
        ("Beta Works", "failed", 0, "ValueError: template exploded"),
        ("Gamma Ltd", "delivered", 0, ""),
    ]


def test_retry_delivers_the_failed_item_once_fixed(world, tenant_a, monkeypatch, django_capture_on_commit_callbacks):
    real = _failing_render_for("Beta Works", ValueError("template exploded"), monkeypatch)
    start(tenant_a, django_capture_on_commit_callbacks, finalize=True)
    monkeypatch.setattr(month_end, "invoice_render_pdf", real)  # fixed

    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        retried = billing_run_retry_failed(run=run_of(tenant_a))

    run = run_of(tenant_a)
    assert retried == 1
    assert (run.status, run.finalized, run.emailed, run.failed) == ("done", 3, 2, 0)
    assert sorted(m.to[0] for m in mail.outbox) == ["ap@alpha-labs.example.com", "ap@beta-works.example.com"]
    assert list(Invoice.objects.for_tenant(tenant_a).order_by("sequence_number").values_list("sequence_number", flat=True)) == [1, 2, 3]


def test_transient_error_keeps_the_item_open_for_the_task_to_retry(world, tenant_a, monkeypatch, django_capture_on_commit_callbacks):
    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        run = billing_run_start(tenant=tenant_a, period_start=JUNE, finalize=True, dispatch=False)
    _failing_render_for("Beta Works", OSError("disk full"), monkeypatch)
    item_ids = list(BillingRunItem.objects.for_tenant(tenant_a).filter(run=run).values_list("pk", flat=True))

    with pytest.raises(TransientItemFailures) as raised:
        billing_run_process_items(run=run, item_ids=item_ids, final_attempt=False)

    beta = BillingRunItem.objects.for_tenant(tenant_a).get(customer__name="Beta Works")
    assert raised.value.item_ids == [beta.pk]
    assert (beta.status, beta.error) == ("finalized", "OSError: disk full")
    assert run_of(tenant_a).status == "running"


def test_transient_error_on_the_last_attempt_fails_the_item(world, tenant_a, monkeypatch, django_capture_on_commit_callbacks):
    with tenant_scope(tenant_a), django_capture_on_commit_callbacks(execute=True):
        run = billing_run_start(tenant=tenant_a, period_start=JUNE, finalize=True, dispatch=False)
    _failing_render_for("Beta Works", OSError("disk full"), monkeypatch)
    item_ids = list(BillingRunItem.objects.for_tenant(tenant_a).filter(run=run).values_list("pk", flat=True))

    billing_run_process_items(run=run, item_ids=item_ids, final_attempt=True)

    run = run_of(tenant_a)
    assert (run.status, run.failed) == ("failed", 1)


def test_refused_email_is_a_failed_item_with_the_server_message(world, tenant_a, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "tests.billing.test_month_end.RefusingBackend"

    start(tenant_a, django_capture_on_commit_callbacks, finalize=True)

    run = run_of(tenant_a)
    assert (run.status, run.finalized, run.emailed, run.failed) == ("failed", 3, 0, 2)
    assert items_of(run)[0] == ("Alpha Labs", "failed", 0, "DeliveryRefused: ap@alpha-labs.example.com: 550 mailbox unavailable")


class RefusingBackend:
    """A mail server that refuses every message."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("550 mailbox unavailable")


def test_completed_run_queues_the_revenue_snapshot(world, tenant_a, snapshots_queued, django_capture_on_commit_callbacks):
    completed = []
    billing_run_completed.connect(lambda sender, run, **kw: completed.append(run.pk), weak=False, dispatch_uid="test")
    try:
        run = start(tenant_a, django_capture_on_commit_callbacks, finalize=True)
    finally:
        billing_run_completed.disconnect(dispatch_uid="test")

    assert completed == [run.pk]
    assert snapshots_queued == [tenant_a.pk]


def test_run_with_no_customers_is_done_at_once(tenant_a, tenant_b, django_capture_on_commit_callbacks):
    run = start(tenant_a, django_capture_on_commit_callbacks, finalize=True)

    assert (run.status, run.customers) == ("done", 0)


# --- the hourly beat ------------------------------------------------------------------------


def test_beat_starts_a_tenant_whose_month_has_begun_in_its_own_time_zone(tenant_a, tenant_b):
    tenant_a.time_zone = "Pacific/Auckland"  # UTC+13 in December
    tenant_a.save()
    tenant_b.time_zone = "America/Los_Angeles"
    tenant_b.save()

    due = month_end_due(now=datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc))

    assert due == {"start": [(tenant_a.pk, date(2026, 11, 1))], "advance": []}


def test_beat_does_not_start_a_month_that_has_a_run(tenant_a, tenant_b, django_capture_on_commit_callbacks):
    start(tenant_a, django_capture_on_commit_callbacks)  # June 2025, in review
    now = datetime(2025, 7, 1, 0, 30, tzinfo=timezone.utc)

    due = month_end_due(now=now)

    assert due["start"] == [(tenant_b.pk, JUNE)]


def test_beat_finalizes_runs_whose_review_period_is_over(world, tenant_a, django_capture_on_commit_callbacks):
    run = start(tenant_a, django_capture_on_commit_callbacks)
    later = datetime.combine(run.finalize_on, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=1)

    assert month_end_due(now=later - timedelta(days=1))["advance"] == []
    assert month_end_due(now=later)["advance"] == [(tenant_a.pk, run.pk)]


# --- the management command -----------------------------------------------------------------


def test_command_runs_the_month_end_and_prints_the_counts(world, tenant_a):
    out = StringIO()

    call_command("month_end", "--tenant", "acme", "--period", "2025-06", "--finalize", stdout=out, stderr=StringIO())

    assert "Done: 3 customers, 3 drafted, 3 finalized, 2 emailed, 0 failed" in out.getvalue()
    assert set(Invoice.objects.for_tenant(tenant_a).values_list("status", flat=True)) == {"finalized"}


def test_command_refuses_a_bad_period_with_a_message(world):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Write the month as YYYY-MM"):
        call_command("month_end", "--tenant", "acme", "--period", "2025-13", stdout=StringIO())


def test_command_refuses_an_unknown_tenant(world):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No tenant"):
        call_command("month_end", "--tenant", "nope", "--period", "2025-06", stdout=StringIO())


# --- the admin ------------------------------------------------------------------------------


def test_finance_starts_a_run_from_the_admin(client, member_factory, world, tenant_a, django_capture_on_commit_callbacks):
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:billing_billingrun_start"), {"period": "2025-06", "finalize": "on"})

    assert response.status_code == 302
    assert run_of(tenant_a).status == "done"
    assert len(mail.outbox) == 2


def test_admin_start_form_shows_a_bad_period(client, member_factory, world, tenant_a):
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    response = client.post(reverse("admin:billing_billingrun_start"), {"period": "2999-01"})

    assert response.status_code == 200
    assert "has not begun yet" in response.content.decode()
    assert not BillingRun.objects.for_tenant(tenant_a).exists()


def test_viewer_may_not_start_a_run(client, member_factory, world, tenant_a):
    client.force_login(member_factory(tenant_a, Role.VIEWER))

    response = client.post(reverse("admin:billing_billingrun_start"), {"period": "2025-06"})

    assert response.status_code == 403


def test_failed_items_are_listed_with_their_error_and_retried_from_the_admin(
    client, member_factory, world, tenant_a, monkeypatch, django_capture_on_commit_callbacks
):
    real = _failing_render_for("Beta Works", ValueError("template exploded"), monkeypatch)
    start(tenant_a, django_capture_on_commit_callbacks, finalize=True)
    monkeypatch.setattr(month_end, "invoice_render_pdf", real)  # fixed
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    listing = client.get(reverse("admin:billing_billingrunitem_changelist") + "?status__exact=failed").content.decode()
    failed = BillingRunItem.objects.for_tenant(tenant_a).get(status="failed")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:billing_billingrunitem_changelist"),
            {"action": "retry", "_selected_action": [failed.pk], "index": 0},
        )

    assert "Beta Works" in listing and "template exploded" in listing
    assert response.status_code == 302
    assert run_of(tenant_a).status == "done"


def test_other_tenants_runs_are_not_listed(client, member_factory, world, tenant_a, tenant_b, django_capture_on_commit_callbacks):
    start(tenant_b, django_capture_on_commit_callbacks, finalize=True)
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    response = client.get(reverse("admin:billing_billingrun_changelist"))

    assert response.status_code == 200
    assert "Month-end 2025-06" not in response.content.decode()


def test_resend_action_emails_the_invoice_again(client, member_factory, world, tenant_a, django_capture_on_commit_callbacks):
    start(tenant_a, django_capture_on_commit_callbacks, finalize=True)
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    delivery = InvoiceDelivery.objects.for_tenant(tenant_a).get(recipient="ap@alpha-labs.example.com")

    with django_capture_on_commit_callbacks(execute=True):  # the resend is queued to the workers
        response = client.post(
            reverse("admin:billing_invoicedelivery_changelist"),
            {"action": "resend", "_selected_action": [delivery.pk], "index": 0},
        )

    assert response.status_code == 302
    assert [m.to[0] for m in mail.outbox].count("ap@alpha-labs.example.com") == 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)


def test_a_working_run_shows_its_live_progress_and_reloads_itself(client, member_factory, world, tenant_a,
                                                                   django_capture_on_commit_callbacks):
    start(tenant_a, django_capture_on_commit_callbacks)  # drafts for review: three items drafted
    run = run_of(tenant_a)
    BillingRun.objects.for_tenant(tenant_a).filter(pk=run.pk).update(status=BillingRun.Status.RUNNING)
    items = BillingRunItem.objects.for_tenant(tenant_a).filter(run=run)
    items.filter(customer__name="Alpha Labs").update(status=BillingRunItem.Status.DELIVERED)
    items.filter(customer__name="Beta Works").update(status=BillingRunItem.Status.FAILED)
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    page = client.get(reverse("admin:billing_billingrun_change", args=(run.pk,))).content.decode()
    listing = client.get(reverse("admin:billing_billingrun_changelist")).content.decode()

    line = "2 of 3 through: 0 finalized, 0 emailed, 1 failed"  # the drafts were never numbered
    assert line in page and line in listing
    assert '<meta http-equiv="refresh" content="5">' in page and '<meta http-equiv="refresh" content="5">' in listing


def test_a_finished_run_stays_still(client, member_factory, world, tenant_a, django_capture_on_commit_callbacks):
    start(tenant_a, django_capture_on_commit_callbacks, finalize=True)
    run = run_of(tenant_a)
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    page = client.get(reverse("admin:billing_billingrun_change", args=(run.pk,))).content.decode()

    assert run.status == BillingRun.Status.DONE
    assert "3 of 3 through: 3 finalized, 2 emailed, 0 failed" in page
    assert 'http-equiv="refresh"' not in page
