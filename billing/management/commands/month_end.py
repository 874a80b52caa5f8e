"""``manage.py month_end --tenant SLUG --period YYYY-MM [--finalize]``: run a tenant's month-end, with progress.

Starts (or resumes) the tenant's run for the month (``billing.month_end.billing_run_start``) and
shows a progress bar over its invoices with the counts and the time left. The Celery workers do
the work (on the database broker when no CELERY_BROKER_URL is set: `./bin/demo` runs one) and the
command watches it, so a worker must be running; only with tasks run eagerly (the test settings)
does the command work the items itself, chunk by chunk. Without ``--finalize`` the run stops at drafts, which
are finalized after the tenant's review period (the hourly beat task does it).
"""

import time

from celery import current_app
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from billing.models import BillingRun, BillingRunItem
from billing.month_end import billing_run_process_items, billing_run_progress, billing_run_start
from customers.models import Tenant
from customers.periods import parse_month
from customers.tenancy import tenant_scope

POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = "Start (or resume) a tenant's month-end run for a month and show its progress."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--period", required=True, help="The month, YYYY-MM (a past or the current month).")
        parser.add_argument("--finalize", action="store_true", help="Finalize and send at once, skipping the review period.")
        parser.add_argument("--chunk-size", type=int, default=200, help="Customers per worker task (new runs only).")
        parser.add_argument("--no-wait", action="store_true", help="Start the run and return; do not watch it.")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        in_process = bool(current_app.conf.task_always_eager)
        try:
            period_start = parse_month(options["period"])
            with tenant_scope(tenant):
                self.stdout.write(f"Drafting {tenant.slug} {period_start:%Y-%m}…")
                run = billing_run_start(
                    tenant=tenant, period_start=period_start, finalize=options["finalize"],
                    chunk_size=options["chunk_size"], dispatch=not in_process,
                )
                self.stdout.write(
                    f"Run {run.pk}: {run.get_status_display()}; {run.customers} customers, {run.drafted} drafted"
                    + (f", {len(run.problems)} skipped" if run.problems else "")
                )
                for problem in run.problems:
                    self.stdout.write(f"  skipped: {problem}")
                if run.status == BillingRun.Status.DRAFTED:
                    self.stdout.write(f"Drafts are in review; they are finalized from {run.finalize_on} (tenant time).")
                    return
                if run.status == BillingRun.Status.RUNNING and not options["no_wait"]:
                    if in_process:
                        self._work(run)
                    else:
                        self._watch(run)
                run.refresh_from_db()
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(
            f"{run.get_status_display()}: {run.customers} customers, {run.drafted} drafted, {run.finalized} finalized, "
            f"{run.emailed} emailed, {run.failed} failed"
        )
        if run.failed:
            self.stdout.write("Failed items are listed in the admin (Billing runs → failed), with their errors and a retry action.")

    def _bar(self, run, progress):
        return tqdm(
            total=progress["total"], initial=progress["done"], unit="invoice", desc=f"{run}", file=self.stderr._out,
            dynamic_ncols=True,
        )

    @staticmethod
    def _postfix(bar, progress):
        bar.set_postfix(
            finalized=progress["finalized"] + progress["delivered"], delivered=progress["delivered"],
            failed=progress["failed"], refresh=False,
        )

    def _work(self, run):
        """No broker: work the open items here, a chunk at a time, ticking the bar per invoice."""
        open_ids = list(
            BillingRunItem.objects.for_tenant(run.tenant)
            .filter(run=run, status__in=BillingRunItem.OPEN_STATUSES)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        progress = billing_run_progress(run=run)
        with self._bar(run, progress) as bar:
            for offset in range(0, len(open_ids), run.chunk_size):
                billing_run_process_items(
                    run=run, item_ids=open_ids[offset : offset + run.chunk_size], progress=lambda _: bar.update(1)
                )
                self._postfix(bar, billing_run_progress(run=run))

    def _watch(self, run):
        """With a broker: the workers do the items; poll the counts until the run is finished."""
        progress = billing_run_progress(run=run)
        with self._bar(run, progress) as bar:
            while True:
                progress = billing_run_progress(run=run)
                bar.total = progress["total"]
                bar.update(progress["done"] - bar.n)
                self._postfix(bar, progress)
                run.refresh_from_db(fields=["status"])
                if run.is_finished:
                    break
                time.sleep(POLL_SECONDS)
