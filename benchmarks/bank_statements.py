"""Bank statement import at scale: one statement of ``entries`` payments, as CSV and as camt.053.

``run_bank_statement_benchmark`` builds the tenant ``bench-bank`` (SEK, paid by bankgiro) with one
finalized invoice per customer, each with its OCR number (bulk-created: the benchmark measures the
import, not finalization), then writes the same payments twice: a CSV statement (the baseline: the
import that existed before camt.053) and a camt.053.001.08 statement with a debit after every tenth
credit. Half of the credits quote the OCR number in a structured reference, half the invoice number
in free text. It times, each the median of ``runs``: reading the camt.053 alone, the CSV preview and
the camt.053 preview (read and match); then once the confirm that records every payment (with the
SQL statements it sends, counted by an execute wrapper), and the preview of the same file again
(every row a duplicate). Figures go to
``benchmarks/results/bank_statements.json``.
"""

from __future__ import annotations

import os
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

from django.db import connection, transaction
from django.utils import timezone

from benchmarks.harness import results_file, results_write, tenant_drop_slug, timed_median
from billing.camt import camt053_read
from billing.models import BillingSettings, Invoice, Payment
from billing.references import ocr_for_invoice
from billing.services.bank_statements import MAX_BYTES, MAX_ROWS, bank_statement_import, bank_statement_preview
from customers.models import Customer, Tenant
from customers.tenancy import platform_scope, tenant_scope

SLUG = "bench-bank"
RESULTS_PATH = results_file("bank_statements")
ISSUED = date(2026, 11, 1)


def _amount(n: int) -> Decimal:
    return Decimal(1000 + (n * 37) % 9000) + Decimal(n % 100) / 100


def _build(entries: int) -> tuple[Tenant, list[Invoice]]:
    with platform_scope(), transaction.atomic():
        tenant = Tenant.objects.create(
            name="Bank statement benchmark", slug=SLUG, reporting_currency="SEK", invoice_number_prefix="BB-", locale="sv",
        )
        BillingSettings.objects.create(tenant=tenant, payment_method="bankgiro", bankgiro="123-4566")
        customers = Customer.objects.bulk_create(
            Customer(tenant=tenant, name=f"Kund {n:06d} AB", external_ref=f"bb-{n:06d}", currency="SEK", country="SE")
            for n in range(entries)
        )
        now = timezone.now()
        invoices = Invoice.objects.bulk_create(
            Invoice(
                tenant=tenant, customer=customer, period_start=date(2026, 10, 1), period_end=date(2026, 10, 31),
                currency="SEK", status=Invoice.Status.FINALIZED, number=f"BB-2026-{n + 1:05d}", sequence_number=n + 1,
                ocr_reference=ocr_for_invoice(year=2026, sequence_number=n + 1), issue_date=ISSUED,
                due_date=ISSUED + timedelta(days=30), subtotal=_amount(n), total=_amount(n), amount_due=_amount(n),
                finalized_at=now,
            )
            for n, customer in enumerate(customers)
        )
    return tenant, invoices


def _csv(invoices: list[Invoice], booked: date) -> str:
    rows = ["date,amount,currency,reference"]
    for n, invoice in enumerate(invoices):
        reference = invoice.ocr_reference if n % 2 == 0 else f"Faktura {invoice.number}"
        rows.append(f"{booked},{_amount(n)},SEK,{reference}")
    return "\n".join(rows) + "\n"


def _camt(invoices: list[Invoice], booked: date) -> str:
    entries = []
    for n, invoice in enumerate(invoices):
        remittance = (
            f"<Strd><CdtrRefInf><Ref>{invoice.ocr_reference}</Ref></CdtrRefInf></Strd>" if n % 2 == 0
            else f"<Ustrd>Faktura {escape(invoice.number)}</Ustrd>"
        )
        entries.append(
            f"<Ntry><Amt Ccy=\"SEK\">{_amount(n)}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
            f"<BookgDt><Dt>{booked}</Dt></BookgDt><ValDt><Dt>{booked}</Dt></ValDt><AcctSvcrRef>BB-{n:07d}</AcctSvcrRef>"
            f"<NtryDtls><TxDtls><Refs><EndToEndId>E2E-{n:07d}</EndToEndId></Refs><Amt Ccy=\"SEK\">{_amount(n)}</Amt>"
            f"<RltdPties><Dbtr><Pty><Nm>Kund {n:06d} AB</Nm></Pty></Dbtr></RltdPties><RmtInf>{remittance}</RmtInf>"
            f"</TxDtls></NtryDtls></Ntry>"
        )
        if n % 10 == 9:
            entries.append(
                f"<Ntry><Amt Ccy=\"SEK\">99.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
                f"<BookgDt><Dt>{booked}</Dt></BookgDt><AcctSvcrRef>BB-D{n:07d}</AcctSvcrRef></Ntry>"
            )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
        "<BkToCstmrStmt><GrpHdr><MsgId>BENCH</MsgId><CreDtTm>2026-12-03T06:00:00</CreDtTm></GrpHdr><Stmt><Id>BENCH-1</Id>"
        + "".join(entries) + "</Stmt></BkToCstmrStmt></Document>\n"
    )


def _count(rows, status: str) -> int:
    return sum(1 for row in rows if row.status == status)


def run_bank_statement_benchmark(*, entries: int = 1000, runs: int = 3, keep: bool = False,
                                 results_path: Path = RESULTS_PATH) -> dict:
    """Build the benchmark tenant, time preview and confirm of one statement in both formats, write the figures."""
    if not 1 <= entries <= MAX_ROWS // 2:
        raise ValueError(f"entries must be from 1 to {MAX_ROWS // 2} (a statement holds at most {MAX_ROWS} rows).")
    tenant_drop_slug(SLUG)
    started = time.perf_counter()
    tenant, invoices = _build(entries)
    figures: dict = {"entries": entries, "runs": runs, "setup_seconds": round(time.perf_counter() - started, 2)}
    booked = date.today() - timedelta(days=1)
    csv_text, camt_text = _csv(invoices, booked), _camt(invoices, booked)
    if len(camt_text.encode()) > MAX_BYTES:
        tenant_drop_slug(SLUG)
        raise ValueError(f"{entries} entries make a camt.053 file over {MAX_BYTES} bytes; use fewer.")
    try:
        with tenant_scope(tenant):
            load_before = os.getloadavg()
            _, read_seconds = timed_median(lambda: camt053_read(camt_text.encode(), max_rows=MAX_ROWS), runs)
            csv_rows, csv_seconds = timed_median(lambda: bank_statement_preview(tenant=tenant, text=csv_text), runs)
            camt_rows, camt_seconds = timed_median(lambda: bank_statement_preview(tenant=tenant, text=camt_text), runs)
            statements = [0]

            def count(execute, sql, params, many, context):
                statements[0] += 1
                return execute(sql, params, many, context)

            began = time.perf_counter()
            with connection.execute_wrapper(count), transaction.atomic():
                written = bank_statement_import(tenant=tenant, text=camt_text)
            import_seconds = time.perf_counter() - began
            again, again_seconds = timed_median(lambda: bank_statement_preview(tenant=tenant, text=camt_text), 1)
            payments = Payment.objects.for_tenant(tenant).count()
        figures.update(
            csv_bytes=len(csv_text.encode()),
            camt_bytes=len(camt_text.encode()),
            camt_read_seconds=round(read_seconds, 3),
            baseline_csv_preview_seconds=round(csv_seconds, 3),
            camt_preview_seconds=round(camt_seconds, 3),
            camt_confirm_seconds=round(import_seconds, 3),
            camt_confirm_ms_per_payment=round(import_seconds * 1000 / max(1, payments), 1),
            camt_confirm_statements=statements[0],
            camt_confirm_statements_per_payment=round(statements[0] / max(1, payments), 1),
            camt_preview_again_seconds=round(again_seconds, 3),
            csv_matched=_count(csv_rows, "matched"),
            camt_matched=_count(camt_rows, "matched"),
            camt_ignored=_count(camt_rows, "ignored"),
            confirmed=_count(written, "matched"),
            payments_recorded=payments,
            duplicates_on_second_preview=_count(again, "duplicate"),
            machine={"cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
                     "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        )
    finally:
        if not keep:
            tenant_drop_slug(SLUG)
    results_write(results_path, figures)
    return figures
