"""What the daily reminder run costs: ``dunning_run`` over a tenant with many overdue invoices.

``run_dunning_benchmark`` builds one tenant with ``invoices`` customers, each with one finalized
invoice 4 days overdue (bulk-inserted), and times, in the same run:

- ``baseline_overdue_query``: the selector the run starts from alone (every overdue invoice with its
  amount due), the floor no reminder run can go under;
- ``first_run``: every invoice gets its 3-day reminder (decided under the invoice's lock, emailed
  through the outbox to Django's in-memory mail backend, so no mail server is timed);
- ``second_run``: the same day again, which must send nothing (one read of what is already done).

Prints seconds and milliseconds per invoice, and writes them to ``benchmarks/results/dunning.json``.
"""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.core import mail
from django.test.utils import override_settings

from benchmarks.harness import results_file, results_write, tenant_drop
from billing.models import DunningReminder, Invoice, PaymentStatus
from billing.services.dunning import dunning_run, dunning_schedule_for
from customers.models import Customer, Tenant
from customers.tenancy import platform_scope, tenant_scope

RESULTS_PATH = results_file("dunning")
DUE = date(2026, 12, 31)
RUN_AT = datetime(2027, 1, 4, 9, tzinfo=dt_timezone.utc)  # 4 days overdue: the 3-day step is due


def _build(tenant: Tenant, count: int) -> None:
    customers = Customer.objects.bulk_create(
        Customer(tenant=tenant, name=f"Overdue {n:06d}", external_ref=f"od-{n:06d}", currency="USD", country="US",
                 billing_emails=[f"ap{n}@example.com"])
        for n in range(count)
    )
    Invoice.objects.bulk_create(
        (
            Invoice(
                tenant=tenant, customer=customer, period_start=date(2026, 11, 1), period_end=date(2026, 11, 30),
                currency="USD", status=Invoice.Status.FINALIZED, number=f"OD-{n:06d}", sequence_number=n + 1,
                issue_date=DUE - timedelta(days=30), due_date=DUE, subtotal=Decimal("100.00"), total=Decimal("100.00"),
                amount_due=Decimal("100.00"), finalized_at=RUN_AT - timedelta(days=34),
            )
            for n, customer in enumerate(customers)
        ),
        batch_size=2000,
    )
    dunning_schedule_for(tenant=tenant)


def run_dunning_benchmark(*, invoices: int = 500, path=RESULTS_PATH) -> dict:
    run_id = uuid.uuid4().hex[:8]
    with platform_scope():
        tenant = Tenant.objects.create(
            name=f"Dunning benchmark {run_id}", slug=f"bench-dunning-{run_id}", reporting_currency="USD",
            invoice_number_prefix="OD-",
        )
    try:
        with tenant_scope(tenant), override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            _build(tenant, invoices)
            mail.outbox = []

            started = time.perf_counter()
            overdue = len(
                Invoice.objects.for_tenant(tenant).with_payment_status(today=RUN_AT.date())
                .filter(payment_status=PaymentStatus.OVERDUE).values_list("pk", "due_date")
            )
            baseline = time.perf_counter() - started

            started = time.perf_counter()
            first = dunning_run(tenant=tenant, now=RUN_AT)
            first_seconds = time.perf_counter() - started
            started = time.perf_counter()
            second = dunning_run(tenant=tenant, now=RUN_AT)
            second_seconds = time.perf_counter() - started

            emails = len(mail.outbox)
            reminders = DunningReminder.objects.for_tenant(tenant).count()
            mail.outbox = []
    finally:
        tenant_drop(tenant)
    figures = {
        "invoices": invoices,
        "overdue": overdue,
        "emails_sent": emails,
        "reminders": reminders,
        "first_run_counts": first,
        "second_run_counts": second,
        "seconds": {
            "baseline_overdue_query": round(baseline, 4),
            "first_run": round(first_seconds, 3),
            "second_run": round(second_seconds, 4),
        },
        "milliseconds_per_invoice": {
            "first_run": round(first_seconds / invoices * 1000, 2),
            "second_run": round(second_seconds / invoices * 1000, 3),
        },
    }
    results_write(path, figures)
    return figures
