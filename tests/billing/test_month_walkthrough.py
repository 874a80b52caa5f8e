"""One month of one demo customer of each demo tenant: usage in, invoice out, credit note after.

The tenants, metrics, price terms and minimum charge are the demo's own (``portal.demo``); usage
arrives through ``usage_ingest``; the month is invoiced by ``invoice_compute_drafts`` and
``invoice_finalize``, whose delivery runs on commit (hence ``transaction=True``): the PDF is stored
and emailed once. Every amount below is worked out by hand in the comments.
"""

import io
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from pypdf import PdfReader

from billing.metering import usage_ingest
from billing.models import Invoice, InvoiceLine
from billing.services import (
    CreditNoteLineSpec,
    billing_settings_for,
    credit_note_issue,
    invoice_compute_drafts,
    invoice_finalize,
)
from billing.tasks import invoice_deliver
from customers.models import ContractLine, Tenant
from customers.money import Money
from customers.services import LineSpec
from customers.tenancy import platform_scope, tenant_scope
from portal.demo import billing as demo_billing
from portal.demo import jobapi, konsult, optimizer
from portal.demo.contracts import subscribe
from tests.customers.factories import CustomerFactory

OCT_START, OCT_END = date(2026, 10, 1), date(2026, 10, 31)
ISSUED_ON = date(2026, 11, 1)
D = Decimal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def demo_tenant(module) -> Tenant:
    """The demo tenant of ``module`` with its billing settings, metrics and nothing else."""
    tenant = Tenant(**module.TENANT)
    tenant.full_clean()
    tenant.save()
    with tenant_scope(tenant):
        settings = billing_settings_for(tenant=tenant)
        settings.minimum_invoice_amount = module.MINIMUM_INVOICE_AMOUNT
        settings.save()
        demo_billing.metrics_ensure(tenant, module.METRICS)
    return tenant


def customer_of(tenant, ref, **fields):
    with platform_scope():
        return CustomerFactory(tenant=tenant, external_ref=ref, name=ref.replace("-", " ").title(), **fields)


def contract_of(customer, title, lines: dict, module):
    """A contract from October, its usage lines priced as the demo prices them."""
    with tenant_scope(customer.tenant):
        subscribe(customer, title=title, start=OCT_START, lines=lines)
        demo_billing.price_terms_attach(customer.tenant, module.usage_terms)


def at(tenant, day, hour=12) -> str:
    return datetime.combine(date(2026, 10, day), time(hour), tzinfo=ZoneInfo(tenant.time_zone)).isoformat()


def ingest(tenant, events):
    with tenant_scope(tenant):
        result = usage_ingest(tenant=tenant, events=events)
    assert (result.accepted, result.rejected) == (len(events), 0)


def invoice_the_month(tenant, customer) -> Invoice:
    with tenant_scope(tenant):
        invoice_compute_drafts(tenant=tenant, period_start=OCT_START, period_end=OCT_END)
        draft = Invoice.objects.for_tenant(tenant).get(customer=customer, period_start=OCT_START)
        invoice_finalize(invoice=draft, issue_date=ISSUED_ON)
        return Invoice.objects.for_tenant(tenant).get(pk=draft.pk)


def lines_of(invoice):
    return [
        (line.description, line.kind, line.quantity, line.unit_price, line.amount)
        for line in InvoiceLine.objects.for_tenant(invoice.tenant).filter(invoice=invoice).order_by("position")
    ]


def pdf_text(invoice) -> str:
    with default_storage.open(invoice.pdf.name, "rb") as handle:
        return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(handle.read())).pages)


def delivered_once(invoice, mailoutbox):
    """The PDF is stored under the invoice's number and one email went out; a repeated delivery
    task (a retried Celery message) sends nothing more."""
    invoice_deliver(invoice.tenant_id, invoice.pk)
    assert invoice.pdf.name == f"invoices/{invoice.tenant.slug}/2026/{invoice.number}.pdf"
    assert [message.to for message in mailoutbox] == [invoice.customer.billing_emails]
    assert invoice.number in mailoutbox[0].subject
    assert mailoutbox[0].attachments[0][0] == f"{invoice.number}.pdf"


def job_events(tenant, ref, jobs, failed):
    return [
        {"customer": ref, "metric": "processed_jobs", "timestamp": at(tenant, 1 + n % 28),
         "idempotency_key": f"{ref}-job-{n}",
         "properties": {"status": "failed" if n < failed else "succeeded", "compute_ms": 1000, "data_gb": "0.010"}}
        for n in range(jobs)
    ]


@pytest.mark.usage_events
def test_job_api_starter_month_with_overage_and_failed_jobs(mailoutbox):
    tenant = demo_tenant(jobapi)
    other = demo_tenant(optimizer)  # a second tenant with a customer of the same reference
    with tenant_scope(other):
        demo_billing.metrics_ensure(other, jobapi.METRICS)
    free = customer_of(tenant, "tiny-labs")
    starter = customer_of(tenant, "quillon-payroll")
    lookalike = customer_of(other, "quillon-payroll")
    contract_of(free, "Job API subscription", jobapi._plan_lines("Free", 1, "USD"), jobapi)
    contract_of(starter, "Job API subscription", jobapi._plan_lines("Starter", 1, "USD"), jobapi)
    ingest(tenant, job_events(tenant, "quillon-payroll", 102, failed=2))
    ingest(other, job_events(other, "quillon-payroll", 300, failed=0))
    ingest(tenant, job_events(tenant, "tiny-labs", 4, failed=0))
    with tenant_scope(tenant):
        invoice_compute_drafts(tenant=tenant, period_start=OCT_START, period_end=OCT_END)
        first = Invoice.objects.for_tenant(tenant).get(customer=free)
        invoice_finalize(invoice=first, issue_date=ISSUED_ON)
    mailoutbox.clear()  # the free customer's invoice (0.00) went out first

    invoice = invoice_the_month(tenant, starter)

    # Starter: $29 with 100 jobs. 102 processed jobs: 2 over the quota, above the 1 % grace
    # (1 job), so both are billed at $0.50 = $1.00. Of the 102, 2 failed: without them the
    # overage would be 0, so they are credited $1.00 − $0 = $1.00. Use above the quota (102 %)
    # earns no utilisation discount. 29.00 + 1.00 − 1.00 = 29.00, above the $1 minimum; no VAT.
    assert lines_of(invoice) == [
        ("Plan fee", "charge", D(1), D("29.00"), D("29.00")),
        ("Processed jobs: jobs above 100 included", "charge", D(2), D("0.50"), D("1.00")),
        ("Processed jobs: 2 failed jobs credited", "credit", D(1), D("-1.00"), D("-1.00")),
    ]
    assert (invoice.subtotal, invoice.discount_total, invoice.vat_amount, invoice.total, invoice.amount_due) == (
        D("30.00"), D("1.00"), D("0.00"), D("29.00"), D("29.00"),
    )
    assert (first.total, invoice.number) == (D("0.00"), "JS-2026-00002")
    assert not Invoice.objects.for_tenant(other).filter(customer=lookalike).exists()  # no contract there
    delivered_once(invoice, mailoutbox)

    with tenant_scope(tenant):
        note = credit_note_issue(
            invoice=invoice,
            lines=[CreditNoteLineSpec(description="Queue outage on 12 October: 10 % of the plan fee", unit_price=D("2.90"))],
            reason="Queue outage on 12 October",
        )

    assert (note.subtotal, note.vat_amount, note.total) == (D("2.90"), D("0.00"), D("2.90"))
    assert note.number == f"JS-CN-{timezone.localdate().year}-00001"  # its own sequence, not the invoices'


@pytest.mark.usage_events
def test_optimizer_mid_tier_month_bills_a_fifth_of_savings_plus_the_platform_fee(mailoutbox):
    tenant = demo_tenant(optimizer)
    demo_tenant(konsult)
    customer = customer_of(tenant, "kestrel-commerce")
    contract_of(customer, "AI spend optimization", optimizer._lines("Mid", "USD"), optimizer)
    reports = [("09", "12345.67", "9876.54"), ("10", "800.00", "900.00")]  # mid-month correction: worse, saves 0
    ingest(tenant, [
        {"customer": "kestrel-commerce", "metric": "savings_report", "timestamp": at(tenant, int(day), 20),
         "idempotency_key": f"kestrel-{day}",
         "properties": {"baseline": baseline, "optimized": optimized,
                        "savings": str(optimizer.savings_of(baseline=D(baseline), optimized=D(optimized)))}}
        for day, baseline, optimized in reports
    ])

    invoice = invoice_the_month(tenant, customer)

    # Savings 12 345.67 − 9 876.54 = 2 469.13, plus 0 (never negative) = 2 469.13;
    # 20 % = 493.826 → 493.83. Mid tier platform fee 500.00. Total 993.83.
    assert lines_of(invoice) == [
        ("Platform fee", "charge", D(1), D("500.00"), D("500.00")),
        ("Share of verified savings", "charge", D("2469.13"), D("0.20"), D("493.83")),
    ]
    assert (invoice.total, invoice.number) == (D("993.83"), "NA-2026-00001")
    delivered_once(invoice, mailoutbox)

    with tenant_scope(tenant):
        note = credit_note_issue(
            invoice=invoice,
            lines=[CreditNoteLineSpec(description="Savings overstated", quantity=D("250.00"), unit_price=D("0.20"))],
            reason="Provider price change",
        )

    assert (note.total, note.number) == (D("50.00"), f"NA-CN-{timezone.localdate().year}-00001")


@pytest.mark.usage_events
def test_consultancy_month_in_swedish_with_hours_retainer_and_moms(mailoutbox):
    tenant = demo_tenant(konsult)
    demo_tenant(jobapi)
    customer = customer_of(tenant, "norrsken-logistik", currency="SEK", language="sv", country="SE")
    lines = {
        "retainer": LineSpec(description="Rådgivningsretainer", kind=ContractLine.Kind.RECURRING,
                             unit_price=Money("8333", "SEK")),
        "hours": LineSpec(description="Konsulttimmar", kind=ContractLine.Kind.USAGE,
                          unit_price=Money(konsult.HOURLY_RATE, "SEK")),
    }
    contract_of(customer, "Rådgivning och timmar", lines, konsult)
    ingest(tenant, [
        {"customer": "norrsken-logistik", "metric": "hours", "timestamp": at(tenant, day, 17), "quantity": hours,
         "idempotency_key": f"norrsken-{day}"}
        for day, hours in [(6, "2.5"), (14, "4"), (27, "1.5")]
    ])

    invoice = invoice_the_month(tenant, customer)

    # 8 hours × 1 450 = 11 600.00; retainer 8 333.00; net 19 933.00; moms 25 % = 4 983.25;
    # att betala 24 916.25 SEK.
    assert lines_of(invoice) == [
        ("Rådgivningsretainer", "charge", D(1), D("8333.00"), D("8333.00")),
        ("Konsulttimmar", "charge", D(8), D("1450.00"), D("11600.00")),
    ]
    assert (invoice.subtotal, invoice.vat_rate, invoice.vat_amount, invoice.total) == (
        D("19933.00"), D("25"), D("4983.25"), D("24916.25"),
    )
    assert invoice.number == "SK-2026-00001"
    delivered_once(invoice, mailoutbox)
    text = pdf_text(invoice)
    assert "Faktura" in text and "Att betala" in text and "24\u00a0916,25" in text.replace(" ", "\u00a0")

    with tenant_scope(tenant):
        note = credit_note_issue(
            invoice=invoice,
            lines=[CreditNoteLineSpec(description="Workshop förkortad", unit_price=D("1000"))],
            reason="Workshopen förkortades",
        )

    # 1 000.00 + 25 % moms = 1 250.00
    assert (note.subtotal, note.vat_amount, note.total) == (D("1000.00"), D("250.00"), D("1250.00"))
    assert note.number == f"SK-CN-{timezone.localdate().year}-00001"
