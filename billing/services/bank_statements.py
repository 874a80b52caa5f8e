"""Bank statement import (CSV): every row matched to an invoice, shown, and written only when confirmed.

The file is a CSV (commas, or semicolons with a decimal comma in amounts) with a header row naming
at least ``date`` (YYYY-MM-DD), ``amount`` (positive: money received) and ``reference`` (the text the payer wrote: invoice number
or OCR); ``currency`` is optional (default: the matched invoice's). Other columns are ignored.

Each row is one of:

- **matched**: exactly one finalized invoice of the tenant that still owes something has its
  number in the reference (case-insensitive, as a whole word), in the row's currency;
- **ambiguous**: the reference names several such invoices (finance records it by hand);
- **unmatched**: it names none that is open (the reason says which: unknown, already paid, void,
  other currency);
- **duplicate**: a live payment with the same date, amount, currency and reference is already
  recorded (a statement imported twice);
- **invalid**: the row itself is wrong (the message says what).

``bank_statement_preview`` reads and matches without writing anything. ``bank_statement_import``
reads and matches the same text again (never trusting an earlier preview) and records every matched
row as a bank-transfer payment of the invoice's customer, allocated to that invoice as far as it
owes; the rest of an overpayment is the customer's credit (and so is a row whose invoice an earlier
row of the same file has already paid). One transaction: all matched rows or none.
"""

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Upper

from billing.models import Invoice, Payment
from billing.services.payments import payment_record
from customers.models import Tenant

MATCHED, AMBIGUOUS, UNMATCHED, DUPLICATE, INVALID = "matched", "ambiguous", "unmatched", "duplicate", "invalid"
REQUIRED_COLUMNS = ("date", "amount", "reference")
MAX_ROWS = 5000
MAX_BYTES = 2_000_000


@dataclass
class StatementRow:
    """One row of a statement and what matching made of it."""

    line: int
    received_on: date | None = None
    amount: Decimal | None = None
    currency: str = ""
    reference: str = ""
    status: str = INVALID
    message: str = ""
    invoice: Invoice | None = None
    candidates: list[str] = field(default_factory=list)


def _sentence(parts: list[str]) -> str:
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def _read(text: str) -> list[StatementRow]:
    if len(text.encode()) > MAX_BYTES:
        raise ValidationError(f"The file is larger than {MAX_BYTES // 1_000_000} MB; split the statement.")
    text = text.lstrip("\ufeff")
    header = text.split("\n", 1)[0]
    # Many banks (Swedish ones among them) write semicolons, with a decimal comma in amounts.
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    columns = {(name or "").strip().lower() for name in reader.fieldnames or []}
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ValidationError(
            f"The first row must name the columns date, amount and reference (missing: {', '.join(missing)})."
        )
    rows = []
    for number, raw in enumerate(reader, start=2):
        if len(rows) >= MAX_ROWS:
            raise ValidationError(f"A statement may have at most {MAX_ROWS} rows; split it.")
        values = {(key or "").strip().lower(): (value or "").strip() for key, value in raw.items() if isinstance(value, str)}
        if not any(values.values()):
            continue
        row = StatementRow(line=number, reference=values.get("reference", "")[:140], currency=values.get("currency", "").upper())
        problems = []
        try:
            row.received_on = date.fromisoformat(values.get("date", ""))
        except ValueError:
            problems.append(f"date {values.get('date', '')!r} is not YYYY-MM-DD")
        try:
            amount_text = values.get("amount", "").replace(" ", "").replace("\u00a0", "")
            if delimiter == ";":
                amount_text = amount_text.replace(",", ".")
            row.amount = Decimal(amount_text)
            if not row.amount.is_finite() or row.amount <= 0 or row.amount.as_tuple().exponent < -2:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            row.amount = None
            problems.append(f"amount {values.get('amount', '')!r} is not a positive amount like 1250.00")
        if not row.reference:
            problems.append("the reference is empty")
        if problems:
            row.message = _sentence(problems)
        rows.append(row)
    return rows


def _words(reference: str) -> set[str]:
    return {word.upper() for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9\-/_.]*[A-Za-z0-9]|[A-Za-z0-9]", reference)}


def _match(tenant: Tenant, rows: list[StatementRow]) -> list[StatementRow]:
    words = set().union(*(_words(row.reference) for row in rows)) if rows else set()
    invoices = {
        invoice.number.upper(): invoice
        for invoice in Invoice.objects.for_tenant(tenant)
        .with_balance_due()
        .annotate(number_upper=Upper("number"))
        .filter(number_upper__in=words)
        .exclude(status=Invoice.Status.DRAFT)
        .select_related("customer")
    }
    for row in rows:
        if row.message:
            continue
        named = [invoices[word] for word in sorted(_words(row.reference)) if word in invoices]
        currency = row.currency or None
        open_ones = [
            invoice for invoice in named
            if invoice.status == Invoice.Status.FINALIZED and invoice.balance_due > 0
            and (currency is None or invoice.currency == currency)
        ]
        row.candidates = [invoice.number for invoice in named]
        if len(open_ones) == 1:
            row.status, row.invoice = MATCHED, open_ones[0]
            row.currency = row.currency or row.invoice.currency
            row.message = f"Pays {row.invoice.number} ({row.invoice.customer.name}), which owes {row.invoice.balance_due} {row.invoice.currency}."
        elif len(open_ones) > 1:
            row.status = AMBIGUOUS
            row.message = f"Names several open invoices: {', '.join(i.number for i in open_ones)}. Record it by hand."
        else:
            row.status = UNMATCHED
            if not named:
                row.message = "No invoice number of yours in the reference."
            else:
                reasons = []
                for invoice in named:
                    if invoice.status == Invoice.Status.PAID or (invoice.status == Invoice.Status.FINALIZED and invoice.balance_due <= 0):
                        reasons.append(f"{invoice.number} is already paid")
                    elif invoice.status == Invoice.Status.VOID:
                        reasons.append(f"{invoice.number} is void")
                    else:
                        reasons.append(f"{invoice.number} is in {invoice.currency}, not {currency}")
                row.message = _sentence(reasons)
    matched = [row for row in rows if row.status == MATCHED]
    recorded = set(
        Payment.objects.for_tenant(tenant)
        .filter(
            voided_at__isnull=True,
            received_on__in={row.received_on for row in matched},
            reference__in={row.reference for row in matched},
        )
        .values_list("received_on", "amount", "currency", "reference")
    ) if matched else set()
    for row in matched:
        if (row.received_on, row.amount, row.currency, row.reference) in recorded:
            row.status, row.message = DUPLICATE, "Already recorded (same date, amount and reference)."
    return rows


def bank_statement_preview(*, tenant: Tenant, text: str) -> list[StatementRow]:
    """Read and match a CSV statement; writes nothing. Raises ValidationError for a file that is
    not a statement (missing columns, too large); a bad row is an ``invalid`` row, not an error."""
    return _match(tenant, _read(text))


@transaction.atomic
def bank_statement_import(*, tenant: Tenant, text: str, created_by=None) -> list[StatementRow]:
    """Record every matched row of ``text`` as a bank-transfer payment (see the module docstring)
    and return all rows as matched again now. Raises ValidationError as the preview does, or when
    a matched row is refused by ``payment_record`` (then nothing is written)."""
    rows = bank_statement_preview(tenant=tenant, text=text)
    for row in rows:
        if row.status != MATCHED:
            continue
        # Two rows of one file may pay one invoice: once it is paid, the next row is the customer's credit.
        still_open = Invoice.objects.for_tenant(tenant).filter(pk=row.invoice.pk, status=Invoice.Status.FINALIZED).exists()
        if not still_open:
            row.message = f"{row.invoice.number} was paid by an earlier row; kept as {row.invoice.customer.name}'s credit."
        try:
            payment_record(
                tenant=tenant,
                customer=row.invoice.customer,
                amount=row.amount,
                currency=row.currency,
                received_on=row.received_on,
                method=Payment.Method.BANK_TRANSFER,
                reference=row.reference,
                note=f"Bank statement, row {row.line}",
                allocations=[(row.invoice, None)] if still_open else [],
                created_by=created_by,
            )
        except ValidationError as exc:
            raise ValidationError(f"Row {row.line}: {' '.join(exc.messages)}") from None
    return rows
