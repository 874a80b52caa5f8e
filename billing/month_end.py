"""Month-end runs: draft every customer's invoice, let finance review, then finalize and deliver them.

A run (``BillingRun``, unique per tenant and period) moves ``pending → drafted → running →
done/failed``; each customer's invoice has a ``BillingRunItem`` moving ``drafted → finalized →
delivered``, or ``failed`` with its error. The stages:

1. ``billing_run_start`` creates the run (a second start finds it) and advances it.
2. ``billing_run_advance`` drafts (``invoice_compute_drafts``, set-wise) and records one item per
   invoice; once the run's ``finalize_on`` day has come (the tenant's grace period after the
   month, or at once when asked), it refreshes the drafts, so finance's adjustments count, marks
   the run running, and queues one ``month_end_chunk`` task per ``chunk_size`` open items.
3. ``billing_run_process_items`` (one chunk) finalizes each item's invoice (gapless numbers), then
   renders its PDF once and emails it once; the last chunk to finish completes the run and sends
   ``billing_run_completed``.

Crash safety: every step is idempotent, so a task that runs twice, two workers on one run, or a
worker killed mid-item (its task redelivered, or the run started again, which re-queues every
open item) all end with one invoice, one PDF and one email per customer. An item is worked on by
one worker at a time (a PostgreSQL advisory lock, which dies with a killed worker's connection);
its invoice is numbered in the same transaction that marks it finalized; the PDF is stored at a
deterministic path under the invoice's row lock and each recipient's email is recorded under its
delivery row's lock (``billing.documents``, ``billing.delivery``). The one window left is that of
any mail system: a worker killed after the mail server accepted a message and before the
``sent`` row commits sends that message again on the retry.

Interrupted runs resume by themselves: a run still finalizing whose open items have not moved for
``STALLED_AFTER`` (its worker was killed, or the broker lost the task) is re-queued by the beat's
``month_end_resume_stalled``; the run's admin page says so and offers "Resume now" meanwhile.

Errors: an item's failure is recorded on it (``error``, ``attempts``). Database and I/O errors and
refused emails are transient: the chunk task retries them with backoff and only its last attempt
marks them failed. Anything else fails the item at once. ``billing_run_retry_failed`` (the admin's
retry action) puts failed items back in the queue.

Imports: the run queues its own ``month_end_chunk`` task, so that task is defined at the end of
this module (registered as ``billing.tasks.month_end_chunk``, re-exported by ``billing.tasks``);
``billing.tasks`` imports this module and nothing here imports ``billing.tasks``, which keeps
billing's import graph free of circles (``tests/billing/test_import_graph.py``).
"""

import logging
from datetime import date, datetime, timedelta
from functools import partial

from celery import shared_task
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, Exists, Max, OuterRef, Q
from django.dispatch import Signal
from django.utils import timezone

from billing.delivery import invoice_send
from billing.documents import invoice_render_pdf
from billing.models import BillingRun, BillingRunItem, Invoice, InvoiceDelivery, TransientItemFailures
from billing.services.drafts import invoice_compute_drafts
from billing.services.invoices import invoice_finalize
from customers.models import Tenant
from customers.periods import add_months, month_bounds, tenant_today
from customers.tenancy import tenant_scope

logger = logging.getLogger(__name__)

CHUNK_SIZE = 200
# Beat looks for tenants whose month has just begun; a few days' window catches a beat that was down.
START_WINDOW_DAYS = 3
MAX_ERROR_LENGTH = 2000
# A finalizing run none of whose open items moved for this long has lost its worker: the beat
# (``billing.tasks.month_end_resume_stalled``, every few minutes) re-queues its open items. Longer
# than one item takes, shorter than a retry's longest backoff would matter (items are idempotent).
STALLED_AFTER = timedelta(minutes=5)
# pg advisory locks take (int4, int4): a namespace for run items, then the item id's low 31 bits.
_ITEM_LOCK_NAMESPACE = 0x42_52  # "BR"
TRANSIENT_ERRORS = (OperationalError, InterfaceError, OSError)

Status = BillingRun.Status
ItemStatus = BillingRunItem.Status

# Sent with ``run=`` after a run's move to done or failed commits. Higher layers (portal) hook
# their reporting jobs on it; billing itself knows nothing of them.
billing_run_completed = Signal()


class DeliveryRefused(Exception):
    """The mail server refused some of an invoice's recipients (recorded on their delivery rows)."""


def validate_run_period(*, tenant: Tenant, period_start: date) -> None:
    """Raise ValidationError unless ``period_start`` is a month's first day, not in the tenant's future."""
    if period_start.day != 1:
        raise ValidationError("A month-end run covers a calendar month: the period starts on its first day.")
    if period_start > tenant_today(tenant):
        raise ValidationError(f"{period_start:%Y-%m} has not begun yet in {tenant.time_zone}.")


# --- starting and advancing a run -----------------------------------------------------------


def _lock(run: BillingRun) -> BillingRun:
    return (
        BillingRun.objects.for_tenant(run.tenant).select_for_update(of=("self",)).select_related("tenant").get(pk=run.pk)
    )


def _items(run: BillingRun):
    return BillingRunItem.objects.for_tenant(run.tenant).filter(run=run)


def billing_run_start(
    *,
    tenant: Tenant,
    period_start: date,
    finalize: bool = False,
    started_by=None,
    chunk_size: int = CHUNK_SIZE,
    dispatch: bool = True,
) -> BillingRun:
    """Start (or find) the tenant's run for the month of ``period_start`` and advance it.

    ``finalize`` finalizes the drafts right after drafting them; otherwise they wait for the
    tenant's ``draft_grace_days`` after the month ends (counted from today for a past month), so
    finance can review them. A run that exists already is not created again: starting it again
    resumes it (re-queues its open items), which is how a run whose worker died is finished.
    ``chunk_size`` (customers per task) is set when the run is created. With ``dispatch=False``
    nothing is queued: the caller works the items itself (``billing_run_process_items``).
    Raises ValidationError for a period that is not a whole month or lies in the future.
    """
    validate_run_period(tenant=tenant, period_start=period_start)
    if chunk_size < 1:
        raise ValidationError("A chunk holds at least one customer.")
    today = tenant_today(tenant)
    period_start, period_end = month_bounds(period_start)
    finalize_on = today if finalize else max(period_end + timedelta(days=1), today) + timedelta(days=tenant.draft_grace_days)
    with transaction.atomic():
        BillingRun.objects.for_tenant(tenant).bulk_create(
            [
                BillingRun(
                    tenant=tenant, period_start=period_start, period_end=period_end, finalize_on=finalize_on,
                    chunk_size=chunk_size, started_by=started_by,
                )
            ],
            ignore_conflicts=True,
        )
        run = BillingRun.objects.for_tenant(tenant).select_for_update().get(period_start=period_start)
        if finalize and run.finalize_on > today:
            run.finalize_on = today
            run.save(update_fields=["finalize_on"])
        return billing_run_advance(run=run, dispatch=dispatch)


@transaction.atomic
def billing_run_advance(*, run: BillingRun, dispatch: bool = True) -> BillingRun:
    """Move ``run`` as far as it may go now, under a lock on the run (concurrent callers queue).

    pending → drafted (drafts computed, items recorded); drafted → running once ``finalize_on``
    has come in the tenant's time zone (drafts refreshed first); running → its open items queued
    as chunk tasks (unless ``dispatch=False``), or done/failed when none is open. A finished run
    is left as is. Returns the run.
    """
    run = _lock(run)
    drafted_now = False
    if run.status == Status.PENDING:
        run.started_at = timezone.now()
        _draft(run)
        run.status, run.drafted_at = Status.DRAFTED, timezone.now()
        drafted_now = True
    if run.status == Status.DRAFTED and run.finalize_on <= tenant_today(run.tenant):
        if not drafted_now:
            _draft(run)
        run.status, run.finalizing_at = Status.RUNNING, timezone.now()
    _refresh(run)
    if run.status == Status.RUNNING and dispatch:
        _queue(run, list(_items(run).filter(status__in=BillingRunItem.OPEN_STATUSES).values_list("pk", flat=True)))
    return run


def _draft(run: BillingRun) -> None:
    """Compute or refresh the period's drafts and record one item per invoice (locked run)."""
    tenant = run.tenant
    counts = invoice_compute_drafts(tenant=tenant, period_start=run.period_start, period_end=run.period_end)
    run.problems = counts["problems"]
    invoices = {
        row["customer_id"]: row
        for row in Invoice.objects.for_tenant(tenant)
        .filter(period_start=run.period_start)
        .exclude(status=Invoice.Status.VOID)
        .values("id", "customer_id", "status", "finalized_at")
    }
    items = {item.customer_id: item for item in _items(run).only("id", "tenant_id", "customer_id", "invoice_id", "status")}
    BillingRunItem.objects.for_tenant(tenant).bulk_create(
        [
            BillingRunItem(
                tenant=tenant, run=run, customer_id=customer_id, invoice_id=row["id"],
                status=ItemStatus.DRAFTED if row["status"] == Invoice.Status.DRAFT else ItemStatus.FINALIZED,
                was_draft=row["status"] == Invoice.Status.DRAFT, finalized_at=row["finalized_at"],
            )
            for customer_id, row in invoices.items()
            if customer_id not in items
        ],
        ignore_conflicts=True,
    )
    changed = []
    for customer_id, item in items.items():
        row = invoices.get(customer_id)
        if item.status not in BillingRunItem.OPEN_STATUSES and item.status != ItemStatus.SKIPPED:
            continue
        if row is None:
            # The customer has nothing to bill any more: its draft was removed.
            if item.status != ItemStatus.SKIPPED:
                item.status, item.invoice_id = ItemStatus.SKIPPED, None
                changed.append(item)
        elif item.invoice_id != row["id"] or item.status == ItemStatus.SKIPPED:
            item.invoice_id = row["id"]
            item.status = ItemStatus.DRAFTED if row["status"] == Invoice.Status.DRAFT else ItemStatus.FINALIZED
            changed.append(item)
    BillingRunItem.objects.for_tenant(tenant).bulk_update(changed, ["invoice", "status"], batch_size=1000)


def _queue(run: BillingRun, item_ids: list[int]) -> None:
    """Queue one chunk task per ``chunk_size`` items once the caller's transaction commits."""
    item_ids = sorted(item_ids)
    for offset in range(0, len(item_ids), run.chunk_size):
        chunk = item_ids[offset : offset + run.chunk_size]
        transaction.on_commit(partial(month_end_chunk.delay, run.tenant_id, run.pk, chunk))


def _refresh(run: BillingRun) -> int:
    """Recount the run's items onto it (set-wise, so re-running is harmless); return how many are open."""
    counts = billing_run_counts(run=run)
    open_items = counts["open"]
    for name in ("customers", "drafted", "finalized", "emailed", "failed"):
        setattr(run, name, counts[name])
    if run.status == Status.RUNNING and open_items == 0:
        run.status = Status.FAILED if run.failed else Status.DONE
        run.finished_at = timezone.now()
        transaction.on_commit(partial(billing_run_completed.send, sender=BillingRun, run=run))
    run.save()
    return open_items


# --- working the items ---------------------------------------------------------------------


def billing_run_process_items(
    *, run: BillingRun, item_ids: list[int], final_attempt: bool = True, progress=None, issue_date: date | None = None,
    deliver: bool = True,
) -> dict:
    """Finalize and deliver the run's open items among ``item_ids``; then recount the run.

    Each item: its draft is finalized (numbered) in one transaction with the item's move to
    ``finalized``; then its PDF is rendered (once) and, if the customer has billing emails, it is
    emailed (once per recipient); the item becomes ``delivered`` with ``emails_sent``. An item
    another worker holds is left to it; an item no longer open is skipped. Not one transaction:
    each item commits on its own, so a crash loses at most the item in hand.

    Failures are recorded on the item. A transient one (database, I/O, a refused email) leaves
    the item open and, after the other items, raises TransientItemFailures for the task to retry,
    unless ``final_attempt``, when the item is marked failed. Any other error fails the item.
    ``progress`` (optional) is called with each item id handled. ``issue_date`` dates the invoices it
    finalizes (default: today in the tenant's time zone). ``deliver=False`` closes each finalized
    item without rendering or emailing (invoices that went out before the portal, such as the demo's
    older months: the PDF is rendered on first download). Returns counts by outcome.
    """
    tenant = run.tenant
    outcome = {"delivered": 0, "failed": 0, "skipped": 0, "busy": 0, "retry": 0}
    transient: list[int] = []
    open_ids = list(
        _items(run).filter(pk__in=item_ids, status__in=BillingRunItem.OPEN_STATUSES).order_by("pk").values_list("pk", flat=True)
    )
    with tenant_scope(tenant):
        for item_id in open_ids:
            if not _try_lock_item(item_id):
                outcome["busy"] += 1
                continue
            try:
                result = _process_item(tenant, item_id, issue_date=issue_date, deliver=deliver)
            except Exception as exc:  # recorded on the item: the admin lists it with a retry action
                is_transient = isinstance(exc, (*TRANSIENT_ERRORS, DeliveryRefused))
                if not is_transient:
                    logger.exception("Month-end item %s failed", item_id)
                _record_failure(tenant, item_id, exc, keep_open=is_transient and not final_attempt)
                if is_transient and not final_attempt:
                    transient.append(item_id)
                    result = "retry"
                else:
                    result = "failed"
            finally:
                _unlock_item(item_id)
            outcome[result] += 1
            if progress is not None:
                progress(item_id)
    with transaction.atomic():
        _refresh(_lock(run))
    if transient:
        raise TransientItemFailures(transient)
    return outcome


def _try_lock_item(item_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_ITEM_LOCK_NAMESPACE, item_id & 0x7FFFFFFF])
        return cursor.fetchone()[0]


def _unlock_item(item_id: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_ITEM_LOCK_NAMESPACE, item_id & 0x7FFFFFFF])
    except (OperationalError, InterfaceError):
        pass  # a dead connection took its session locks with it


def _process_item(tenant: Tenant, item_id: int, *, issue_date: date | None, deliver: bool) -> str:
    """Finalize, render and email one item's invoice; returns "delivered" or "skipped"."""
    with transaction.atomic():
        item = BillingRunItem.objects.for_tenant(tenant).get(pk=item_id)
        if item.status not in BillingRunItem.OPEN_STATUSES:
            return "skipped"
        item.attempts += 1
        # Locked before reading its status, so finance finalizing it in the admin meanwhile is seen.
        invoice = (
            Invoice.objects.for_tenant(tenant).select_for_update().filter(pk=item.invoice_id).first()
            if item.invoice_id
            else None
        )
        if invoice is None or invoice.status == Invoice.Status.VOID:
            item.status, item.error = ItemStatus.SKIPPED, "The invoice was removed or voided before it was finalized."
            item.save(update_fields=["status", "error", "attempts", "updated_at"])
            return "skipped"
        if invoice.status == Invoice.Status.DRAFT:
            # The run delivers the invoice itself (below), so finalizing queues no delivery task.
            invoice = invoice_finalize(invoice=invoice, issue_date=issue_date, deliver=False)
        item.status, item.finalized_at = ItemStatus.FINALIZED, item.finalized_at or invoice.finalized_at
        if not deliver:
            item.status, item.error, item.delivered_at = ItemStatus.DELIVERED, "", timezone.now()
        item.save(update_fields=["status", "error", "finalized_at", "delivered_at", "attempts", "updated_at"])
        if not deliver:
            return "delivered"

    invoice = Invoice.objects.for_tenant(tenant).select_related("tenant", "customer").get(pk=invoice.pk)
    invoice_render_pdf(invoice=invoice)
    refused = []
    if invoice.customer.billing_emails:
        refused = [d for d in invoice_send(invoice=invoice) if d.status != InvoiceDelivery.Status.SENT]
    sent = InvoiceDelivery.objects.for_tenant(tenant).filter(invoice=invoice, status=InvoiceDelivery.Status.SENT).count()
    BillingRunItem.objects.for_tenant(tenant).filter(pk=item_id).update(emails_sent=sent, updated_at=timezone.now())
    if refused:
        raise DeliveryRefused("; ".join(f"{d.recipient}: {d.error}" for d in refused))
    BillingRunItem.objects.for_tenant(tenant).filter(pk=item_id).update(
        status=ItemStatus.DELIVERED, error="", delivered_at=timezone.now(), updated_at=timezone.now()
    )
    return "delivered"


def _record_failure(tenant: Tenant, item_id: int, exc: Exception, *, keep_open: bool) -> None:
    if isinstance(exc, ValidationError):
        message = "; ".join(exc.messages)
    else:
        message = f"{type(exc).__name__}: {exc}"
    changes = {"error": message[:MAX_ERROR_LENGTH], "updated_at": timezone.now()}
    if not keep_open:
        changes["status"] = ItemStatus.FAILED
    try:
        BillingRunItem.objects.for_tenant(tenant).filter(pk=item_id).update(**changes)
    except (OperationalError, InterfaceError):
        raise exc from None  # the database itself is gone: let the task retry the chunk


# --- retrying, scheduling ------------------------------------------------------------------


@transaction.atomic
def billing_run_retry_failed(*, run: BillingRun, item_ids: list[int] | None = None, dispatch: bool = True) -> int:
    """Put the run's failed items (all, or those of ``item_ids``) back in the queue; return how many.

    Drafts are refreshed first when a failed item never got finalized, so a fix to its contract
    counts. Each item goes back to ``drafted`` or ``finalized`` by its invoice's state (its last
    error stays until it succeeds); the run becomes running again and the items are queued
    (unless ``dispatch=False``). A run still drafting or in review has nothing to retry.
    """
    run = _lock(run)
    if run.status in (Status.PENDING, Status.DRAFTED):
        raise ValidationError(f"{run} has not started finalizing; there is nothing to retry yet.")
    failed = _items(run).filter(status=ItemStatus.FAILED)
    if item_ids is not None:
        failed = failed.filter(pk__in=item_ids)
    failed = list(failed.select_related("invoice"))
    if not failed:
        return 0
    if any(item.invoice is None or item.invoice.status == Invoice.Status.DRAFT for item in failed):
        _draft(run)
        failed = list(_items(run).filter(pk__in=[item.pk for item in failed]).select_related("invoice"))
    for item in failed:
        invoice = item.invoice
        if invoice is None:
            item.status = ItemStatus.SKIPPED
        else:
            item.status = ItemStatus.DRAFTED if invoice.status == Invoice.Status.DRAFT else ItemStatus.FINALIZED
    BillingRunItem.objects.for_tenant(run.tenant).bulk_update(failed, ["status"])
    run.status, run.finished_at = Status.RUNNING, None
    _refresh(run)
    if dispatch:
        _queue(run, [item.pk for item in failed if item.status in BillingRunItem.OPEN_STATUSES])
    return len(failed)


def month_end_due(*, now: datetime | None = None) -> dict:
    """What the hourly beat should do now: ``{"start": [(tenant_id, period_start)], "advance": [(tenant_id, run_id)]}``.

    A tenant whose local date is within the first ``START_WINDOW_DAYS`` days of a month and that
    has no run for the month before gets one started. Runs in review whose ``finalize_on`` day
    has come in the tenant's time zone are advanced (finalized). Reads only.
    """
    now = now or timezone.now()
    due: dict = {"start": [], "advance": []}
    for tenant in Tenant.objects.order_by("pk"):
        local_today = tenant_today(tenant, now)
        runs = BillingRun.objects.for_tenant(tenant)
        previous = add_months(local_today, -1)
        if local_today.day <= START_WINDOW_DAYS and not runs.filter(period_start=previous).exists():
            due["start"].append((tenant.pk, previous))
        for run_id in runs.filter(status=Status.DRAFTED, finalize_on__lte=local_today).values_list("pk", flat=True):
            due["advance"].append((tenant.pk, run_id))
    return due


def billing_run_stalled(*, run: BillingRun, counts: dict, now: datetime | None = None) -> bool:
    """Whether ``run`` is finalizing with open items none of which moved for ``STALLED_AFTER``: its
    worker was killed or lost its task (``counts`` from ``billing_run_counts``)."""
    if run.status != Status.RUNNING or not counts["open"]:
        return False
    moved = max(filter(None, [counts["last_moved_at"], run.finalizing_at]), default=None)
    return moved is None or moved < (now or timezone.now()) - STALLED_AFTER


def month_end_stalled(*, now: datetime | None = None) -> list[tuple[int, int]]:
    """The runs to resume: ``(tenant_id, run_id)`` of every stalled run (``billing_run_stalled``). Reads only."""
    stalled = []
    for tenant in Tenant.objects.order_by("pk"):
        for run in BillingRun.objects.for_tenant(tenant).filter(status=Status.RUNNING).select_related("tenant"):
            if billing_run_stalled(run=run, counts=billing_run_counts(run=run), now=now):
                stalled.append((tenant.pk, run.pk))
    return stalled


def billing_run_counts(*, run: BillingRun) -> dict:
    """A run's counts, live from its rows (one query), for its page and its stored counters.

    ``customers``: items (one per customer with an invoice in the period); ``through``: items the run
    is done with (``delivered`` + ``failed`` + ``skipped``), ``open`` the others; ``finalized``: items
    whose invoice is numbered (finalized or paid, by this run or before it); ``emailed``: items whose
    invoice has at least one sent ``InvoiceDelivery``; ``drafted``: items that were drafts when the run
    recorded them; ``delivered``, ``failed``, ``skipped``: items in that status (``through`` is their
    sum); ``last_moved_at``: when an item last changed (None without items).
    """
    sent = InvoiceDelivery.objects.for_tenant(run.tenant).filter(
        invoice_id=OuterRef("invoice_id"), status=InvoiceDelivery.Status.SENT
    )
    counts = _items(run).annotate(was_emailed=Exists(sent)).aggregate(
        customers=Count("pk"),
        drafted=Count("pk", filter=Q(was_draft=True)),
        finalized=Count("pk", filter=Q(invoice__status__in=[Invoice.Status.FINALIZED, Invoice.Status.PAID])),
        emailed=Count("pk", filter=Q(was_emailed=True)),
        delivered=Count("pk", filter=Q(status=ItemStatus.DELIVERED)),
        failed=Count("pk", filter=Q(status=ItemStatus.FAILED)),
        skipped=Count("pk", filter=Q(status=ItemStatus.SKIPPED)),
        open=Count("pk", filter=Q(status__in=BillingRunItem.OPEN_STATUSES)),
        last_moved_at=Max("updated_at"),
    )
    counts["through"] = counts["customers"] - counts["open"]
    return counts


def billing_run_progress(*, run: BillingRun) -> dict:
    """Live item counts of a run by status (one query), for progress displays."""
    counts = dict(_items(run).order_by().values("status").annotate(n=Count("pk")).values_list("status", "n"))
    total = sum(counts.values())
    return {
        "total": total,
        "open": sum(counts.get(s, 0) for s in BillingRunItem.OPEN_STATUSES),
        "done": total - sum(counts.get(s, 0) for s in BillingRunItem.OPEN_STATUSES),
        **{status: counts.get(status, 0) for status in ItemStatus.values},
    }


# --- the chunk task the run queues (defined here: billing.tasks imports this module) -----------


@shared_task(
    name="billing.tasks.month_end_chunk", bind=True, acks_late=True,
    autoretry_for=(OperationalError, TransientItemFailures), retry_backoff=True, retry_backoff_max=600, max_retries=6,
)
def month_end_chunk(self, tenant_id: int, run_id: int, item_ids: list[int]) -> dict:
    """Finalize and deliver one chunk of a run's items; transient failures retry with backoff (the
    items already delivered are skipped on the retry), the last attempt records them as failed."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        run = BillingRun.objects.for_tenant(tenant).select_related("tenant").get(pk=run_id)
        # In-process (no broker) nothing would run a retry later: failures are final at once.
        final_attempt = bool(self.request.is_eager) or self.request.retries >= self.max_retries
        return billing_run_process_items(run=run, item_ids=item_ids, final_attempt=final_attempt)
