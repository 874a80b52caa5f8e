"""Bank statement import (CSV or camt.053 XML): every row matched to an invoice, shown, and written only when confirmed.

A CSV file (commas, or semicolons with a decimal comma in amounts) has a header row naming
at least ``date`` (YYYY-MM-DD), ``amount`` (positive: money received) and ``reference`` (the text the payer wrote: invoice number
or OCR); ``currency`` is optional (default: the matched invoice's). Other columns are ignored.
A text starting with ``<`` is an ISO 20022 camt.053 statement (``billing.camt``): each booked
credit transaction is a row (booking date, amount and currency, the structured creditor references
and unstructured remittance text as its reference, the debtor's name, and the bank's reference of
the transaction); debits, reversals and entries not booked are rows marked **ignored**.

Each row is one of:

- **matched**: exactly one finalized invoice of the tenant that still owes something has its
  number (case-insensitive, as a whole word) or its OCR number in the reference, in the row's
  currency;
- **ambiguous**: the reference names several such invoices (finance records it by hand);
- **unmatched**: it names none that is open (the reason says which: unknown, already paid, void,
  other currency, or, for a tenant paid by bankgiro, an OCR number with a wrong check or length
  digit: reported as such, never matched by guessing);
- **duplicate**: a payment with the row's bank reference is already recorded (or an earlier row of
  the file has it), or a live payment with the same date, amount, currency and reference is (a
  statement imported twice);
- **ignored** (camt.053 only): a debit, reversal or unbooked entry, listed and never written;
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
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Upper

from billing import camt
from billing.models import BillingSettings, Invoice, Payment
from billing.references import ocr_problem
from billing.services.payments import payment_record
from customers.models import Tenant

MATCHED, AMBIGUOUS, UNMATCHED, DUPLICATE, INVALID = "matched", "ambiguous", "unmatched", "duplicate", "invalid"
IGNORED = "ignored"
OCR_MIN_DIGITS = 5  # shorter digit groups in a reference are not taken for attempted OCR numbers
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
    source: str = "csv"  # or "camt.053"
    part: int = 0  # a camt.053 batch entry's transactions: 1, 2, …
    bank_reference: str = ""
    payer: str = ""
    value_on: date | None = None

    @property
    def label(self) -> str:
        """Where the row is in the file: the CSV line, or the camt.053 entry (and transaction)."""
        return f"{self.line}.{self.part}" if self.part else str(self.line)


def _sentence(parts: list[str]) -> str:
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def _read_camt(text: str) -> list[StatementRow]:
    # The text is already Unicode: drop the declaration (its encoding no longer applies) and hand
    # lxml UTF-8.
    entries = camt.camt053_read(XML_DECLARATION.sub("", text, count=1).encode(), max_rows=MAX_ROWS)
    rows = []
    for entry in entries:
        row = StatementRow(
            line=entry.number, part=entry.part, received_on=entry.booked_on, value_on=entry.value_on,
            amount=entry.amount, currency=entry.currency, reference=" ".join(entry.references)[:140],
            bank_reference=entry.bank_reference, payer=entry.payer, source="camt.053",
        )
        if entry.kind == camt.IGNORED:
            row.status, row.message = IGNORED, entry.reason
            rows.append(row)
            continue
        problems = []
        if row.received_on is None:
            problems.append("the entry has no booking date (BookgDt)")
        if row.amount is None or row.amount <= 0 or row.amount.as_tuple().exponent < -2:
            problems.append("the amount is not a positive amount with at most 2 decimals")
            row.amount = None
        if not re.fullmatch(r"[A-Z]{3}", row.currency):
            problems.append(f"the currency {row.currency!r} is not a 3-letter code")
        if not row.reference:
            problems.append("the entry has no remittance information (no reference to match); record it by hand")
        if problems:
            row.message = _sentence(problems)
        rows.append(row)
    return rows


def _read(text: str) -> list[StatementRow]:
    if len(text.encode()) > MAX_BYTES:
        raise ValidationError(f"The file is larger than {MAX_BYTES // 1_000_000} MB; split the statement.")
    text = text.lstrip("\ufeff")
    if text.lstrip().startswith("<"):
        return _read_camt(text)
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


def _ocr_words(words: set[str]) -> set[str]:
    return {word for word in words if word.isdigit() and len(word) >= OCR_MIN_DIGITS}


def _match(tenant: Tenant, rows: list[StatementRow]) -> list[StatementRow]:
    to_match = [row for row in rows if not row.message]
    words = set().union(*(_words(row.reference) for row in to_match)) if to_match else set()
    ocr_words = _ocr_words(words)
    found = list(
        Invoice.objects.for_tenant(tenant)
        .with_balance_due()
        .annotate(number_upper=Upper("number"))
        .filter(Q(number_upper__in=words) | Q(ocr_reference__in=ocr_words))
        .exclude(status=Invoice.Status.DRAFT)
        .select_related("customer")
    ) if words else []
    invoices = {invoice.number.upper(): invoice for invoice in found if invoice.number}
    by_ocr = {invoice.ocr_reference: invoice for invoice in found if invoice.ocr_reference}
    uses_ocr = bool(by_ocr) or (
        bool(ocr_words)
        and BillingSettings.objects.for_tenant(tenant).filter(payment_method=BillingSettings.PaymentMethod.BANKGIRO).exists()
    )
    for row in to_match:
        row_words = sorted(_words(row.reference))
        named = []
        for invoice in [invoices.get(word) for word in row_words] + [by_ocr.get(word) for word in row_words]:
            if invoice is not None and invoice not in named:
                named.append(invoice)
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
                unknown_ocrs = [word for word in _ocr_words(set(row_words)) if word not in by_ocr] if uses_ocr else []
                wrong = [ocr_problem(word) for word in unknown_ocrs if ocr_problem(word)]
                if wrong:
                    row.message = _sentence([*wrong, "not matched: check the number with the payer, or record it by hand"])
                elif unknown_ocrs:
                    row.message = _sentence([f"no invoice of yours has OCR {word}" for word in unknown_ocrs])
                else:
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
    _mark_duplicates(tenant, to_match)
    return rows


def _mark_duplicates(tenant: Tenant, rows: list[StatementRow]) -> None:
    """A row whose bank transaction is recorded already (by its bank reference, also on a void
    payment: it is the same transaction) or named by an earlier row of the file is a duplicate, and
    so is a matched row like a live payment in date, amount, currency and reference."""
    bank_references = {row.bank_reference for row in rows if row.bank_reference}
    recorded_references = set(
        Payment.objects.for_tenant(tenant).filter(bank_reference__in=bank_references).values_list("bank_reference", flat=True)
    ) if bank_references else set()
    seen = {}
    for row in rows:
        if not row.bank_reference:
            continue
        if row.bank_reference in recorded_references:
            row.status, row.invoice = DUPLICATE, None
            row.message = f"Already recorded (bank reference {row.bank_reference})."
        elif row.bank_reference in seen:
            row.status, row.invoice = DUPLICATE, None
            row.message = f"Same bank reference as row {seen[row.bank_reference]}; recorded once."
        else:
            seen[row.bank_reference] = row.label
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


def bank_statement_preview(*, tenant: Tenant, text: str) -> list[StatementRow]:
    """Read and match a CSV or camt.053 statement; writes nothing. Raises ValidationError for a
    file that is not a statement (missing columns, too large, malformed XML, another XML document,
    a DOCTYPE); a bad row is an ``invalid`` row, not an error."""
    return _match(tenant, _read(text))


def _note(row: StatementRow) -> str:
    if row.source == "camt.053":
        payer = f", from {row.payer}" if row.payer else ""
        return f"Bank statement (camt.053), entry {row.label}{payer}"[:300]
    return f"Bank statement, row {row.line}"


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
            # payment_record is atomic (a savepoint here): a concurrent import of the same bank
            # reference loses inside it, and the IntegrityError is a refusal below.
            payment_record(
                tenant=tenant,
                customer=row.invoice.customer,
                amount=row.amount,
                currency=row.currency,
                received_on=row.received_on,
                method=Payment.Method.BANK_TRANSFER,
                reference=row.reference,
                bank_reference=row.bank_reference,
                note=_note(row),
                allocations=[(row.invoice, None)] if still_open else [],
                created_by=created_by,
            )
        except ValidationError as exc:
            raise ValidationError(f"Row {row.label}: {' '.join(exc.messages)}") from None
        except IntegrityError:
            raise ValidationError(
                f"Row {row.label}: a payment with bank reference {row.bank_reference} was recorded meanwhile; "
                "preview the statement again."
            ) from None
    return rows
