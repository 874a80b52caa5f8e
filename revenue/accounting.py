"""The accounting export: a month's invoices, credit notes, payments and refunds as a journal.

Every document becomes one voucher (verifikation) of balanced postings, debits positive and
credits negative, so each voucher sums to exactly 0:

==========================  ===========================================================
invoice issued              D receivables total; C sales (net); C output VAT;
                            and for approved credits taken off the bill:
                            D credits granted, C receivables
invoice voided after issue  the same voucher reversed, on the day it was voided
credit note                 D sales (net); D output VAT; C receivables total
payment received            D bank; C receivables (the whole amount: what no invoice has
                            taken stays a credit balance on the customer's receivables)
payment voided (bounced)    D receivables; C bank, on the day it was voided
refund paid                 D receivables; C bank
==========================  ===========================================================

Sales go to the reverse-charge account when the invoice is under reverse charge (no VAT).
Dates are the tenant's: issue dates, the day money was received or refunded, and the local day
a void happened. Accounts come from the tenant's ``AccountPlan`` (BAS defaults).

Two files:

- ``journal_csv``: one row per posting, amounts in each document's currency (debit and credit
  columns), so every voucher balances in its own currency.
- ``journal_sie4``: SIE 4 (``#FORMAT PC8``, i.e. code page 437, as the format prescribes) in the
  tenant's reporting currency. A document in another currency converts at the latest exchange rate
  on or before its date (``RateBook``; a missing rate is refused, never guessed as 1). Each posting
  rounds half up to the cent and the receivables or bank posting takes the rounding difference,
  so the voucher still sums to 0. Exchange differences between an invoice and its payment are not
  booked: the accountant books them (the CSV journal keeps the original amounts).
"""

import csv
import io
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from billing.models import CreditNote, Invoice, Payment, Refund
from customers.models import Tenant
from customers.periods import add_months
from revenue.models import AccountPlan
from revenue.models.accounting import ACCOUNTS
from revenue.selectors.common import RateBook

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
PROGRAM = "Customer economics portal"


@dataclass(frozen=True)
class Posting:
    account: str
    amount: Decimal  # debit positive, credit negative


@dataclass(frozen=True)
class Voucher:
    """One balanced entry: a document on a day. ``postings[0]`` is the receivables or bank side,
    which takes a conversion's rounding difference."""

    day: date
    kind: str
    document: str
    customer: str
    currency: str
    text: str
    postings: tuple[Posting, ...]

    @property
    def balance(self) -> Decimal:
        return sum((p.amount for p in self.postings), ZERO)


def account_plan_for(*, tenant: Tenant) -> AccountPlan:
    """The tenant's account plan; until finance saves one, an unsaved plan with the BAS defaults
    (SIE 4 for a Swedish tenant, a CSV journal for the others)."""
    plan = AccountPlan.objects.for_tenant(tenant).first()
    if plan is None:
        swedish = str(tenant.country) == "SE" or tenant.locale == "sv"
        plan = AccountPlan(tenant=tenant, journal_format=AccountPlan.Format.SIE4 if swedish else AccountPlan.Format.CSV)
    return plan


def account_names(plan: AccountPlan, language: str) -> dict[str, str]:
    """Each account number of the plan with its name in ``language`` ("sv" or else English)."""
    return {getattr(plan, field): (swedish if language == "sv" else english) for field, _, swedish, english in ACCOUNTS}


def _local_day(moment: datetime, tenant: Tenant) -> date:
    return timezone.localtime(moment, ZoneInfo(tenant.time_zone)).date()


def _voucher(day, kind, document, customer, currency, text, postings) -> Voucher | None:
    kept = tuple(Posting(account, amount) for account, amount in postings if amount != 0)
    if not kept:
        return None
    voucher = Voucher(day, kind, document, customer, currency, text, kept)
    assert voucher.balance == 0, f"{document} does not balance: {voucher.balance}"
    return voucher


def _reference(row, kind: str) -> str:
    """A payment's or refund's name in the journal: the bank's reference, else its kind and id."""
    return row.reference or f"{kind} {row.pk}"


def _invoice_postings(invoice: Invoice, plan: AccountPlan, sign: int) -> list[tuple[str, Decimal]]:
    net = invoice.total - invoice.vat_amount
    sales = plan.sales_reverse_charge_account if invoice.reverse_charge else plan.sales_account
    postings = [
        (plan.receivables_account, sign * (invoice.total - invoice.credit_applied)),
        (sales, -sign * net),
        (plan.output_vat_account, -sign * invoice.vat_amount),
    ]
    if invoice.credit_applied:
        postings.append((plan.credits_granted_account, sign * invoice.credit_applied))
    return postings


def journal_entries(*, tenant: Tenant, month: date) -> list[Voucher]:
    """Every voucher of ``month`` (its first day) for ``tenant``, in document currency, by day
    then kind then document number. Drafts are not in the books; nothing is written."""
    first, after = month.replace(day=1), add_months(month.replace(day=1), 1)
    plan = account_plan_for(tenant=tenant)
    vouchers: list[Voucher | None] = []
    invoices = Invoice.objects.for_tenant(tenant).select_related("customer").exclude(status=Invoice.Status.DRAFT)
    for invoice in invoices.filter(issue_date__gte=first, issue_date__lt=after, finalized_at__isnull=False):
        vouchers.append(_voucher(
            invoice.issue_date, "invoice", invoice.number or "", invoice.customer.name, invoice.currency,
            f"Invoice {invoice.number} {invoice.customer.name}", _invoice_postings(invoice, plan, 1),
        ))
    for invoice in invoices.filter(status=Invoice.Status.VOID, voided_at__isnull=False, finalized_at__isnull=False):
        day = _local_day(invoice.voided_at, tenant)
        if first <= day < after:
            vouchers.append(_voucher(
                day, "invoice_void", invoice.number or "", invoice.customer.name, invoice.currency,
                f"Void invoice {invoice.number} {invoice.customer.name}", _invoice_postings(invoice, plan, -1),
            ))
    notes = CreditNote.objects.for_tenant(tenant).select_related("customer", "invoice")
    for note in notes.filter(issue_date__gte=first, issue_date__lt=after):
        sales = plan.sales_reverse_charge_account if note.invoice.reverse_charge else plan.sales_account
        vouchers.append(_voucher(
            note.issue_date, "credit_note", note.number, note.customer.name, note.currency,
            f"Credit note {note.number} {note.customer.name}",
            [(plan.receivables_account, -note.total), (sales, note.subtotal), (plan.output_vat_account, note.vat_amount)],
        ))
    payments = Payment.objects.for_tenant(tenant).select_related("customer")
    for payment in payments.filter(received_on__gte=first, received_on__lt=after):
        reference = _reference(payment, "payment")
        vouchers.append(_voucher(
            payment.received_on, "payment", reference, payment.customer.name, payment.currency,
            f"Payment {payment.customer.name} {reference}",
            [(plan.bank_account, payment.amount), (plan.receivables_account, -payment.amount)],
        ))
    for payment in payments.filter(voided_at__isnull=False):
        day = _local_day(payment.voided_at, tenant)
        if first <= day < after:
            reference = _reference(payment, "payment")
            vouchers.append(_voucher(
                day, "payment_void", reference, payment.customer.name, payment.currency,
                f"Void payment {payment.customer.name} {reference}",
                [(plan.bank_account, -payment.amount), (plan.receivables_account, payment.amount)],
            ))
    for refund in Refund.objects.for_tenant(tenant).select_related("customer").filter(refunded_on__gte=first, refunded_on__lt=after):
        reference = _reference(refund, "refund")
        vouchers.append(_voucher(
            refund.refunded_on, "refund", reference, refund.customer.name, refund.currency,
            f"Refund {refund.customer.name} {reference}",
            [(plan.bank_account, -refund.amount), (plan.receivables_account, refund.amount)],
        ))
    order = {"invoice": 0, "credit_note": 1, "invoice_void": 2, "payment": 3, "refund": 4, "payment_void": 5}
    return sorted((v for v in vouchers if v is not None), key=lambda v: (v.day, order[v.kind], v.document))


def journal_in_reporting_currency(*, tenant: Tenant, vouchers: list[Voucher]) -> list[Voucher]:
    """``vouchers`` converted to the tenant's reporting currency at each document's date (see the
    module docstring). Raises ``MissingExchangeRate`` naming the currency and day."""
    rates = RateBook(tenant)
    converted = []
    for voucher in vouchers:
        rate = rates.rate(voucher.currency, voucher.day)
        rest = [Posting(p.account, (p.amount * rate).quantize(CENT, ROUND_HALF_UP)) for p in voucher.postings[1:]]
        first = Posting(voucher.postings[0].account, -sum((p.amount for p in rest), ZERO))
        converted.append(Voucher(voucher.day, voucher.kind, voucher.document, voucher.customer, tenant.reporting_currency,
                                 voucher.text, (first, *rest)))
    return converted


CSV_HEADER = ["date", "voucher", "kind", "document", "customer", "account", "account_name", "debit", "credit", "currency", "text"]


def journal_csv(*, tenant: Tenant, month: date) -> str:
    """The month's journal as CSV, one row per posting, in each document's currency."""
    plan = account_plan_for(tenant=tenant)
    names = account_names(plan, tenant.locale)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for number, voucher in enumerate(journal_entries(tenant=tenant, month=month), start=1):
        for posting in voucher.postings:
            debit = f"{posting.amount:.2f}" if posting.amount > 0 else ""
            credit = f"{-posting.amount:.2f}" if posting.amount < 0 else ""
            writer.writerow([
                voucher.day.isoformat(), number, voucher.kind, voucher.document, _csv_safe(voucher.customer),
                posting.account, names.get(posting.account, ""), debit, credit, voucher.currency, _csv_safe(voucher.text),
            ])
    return out.getvalue()


def _csv_safe(text: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet; a leading apostrophe keeps it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _sie_text(text: str) -> str:
    """A quoted SIE string: quotes and backslashes escaped, no control characters."""
    text = "".join(ch for ch in text if ch >= " ")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pc8(text: str) -> bytes:
    """``text`` in code page 437, as SIE's PC8 requires: å, ä, ö and most Latin letters are there;
    a letter that is not is written without its accent (ł → l), anything else as ``?``."""
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp437")
        except UnicodeEncodeError:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out += base.encode("cp437", errors="replace") if base else b"?"
    return bytes(out)


def journal_sie4(*, tenant: Tenant, month: date, generated_on: date | None = None) -> bytes:
    """The month's journal as an SIE 4 file (bytes, code page 437) in the reporting currency, with
    the plan's accounts (#KONTO) and one #VER per voucher, series A numbered from 1. The fiscal
    year (#RAR 0) is taken as the calendar year of ``month``. Raises ``MissingExchangeRate``."""
    plan = account_plan_for(tenant=tenant)
    vouchers = journal_in_reporting_currency(tenant=tenant, vouchers=journal_entries(tenant=tenant, month=month))
    generated_on = generated_on or timezone.localdate()
    lines = [
        "#FLAGGA 0",
        f"#PROGRAM {_sie_text(PROGRAM)} 1.0",
        "#FORMAT PC8",
        f"#GEN {generated_on:%Y%m%d}",
        "#SIETYP 4",
        f"#FNAMN {_sie_text(tenant.legal_name or tenant.name)}",
    ]
    if plan.organisation_number:
        lines.append(f"#ORGNR {plan.organisation_number}")
    lines += [
        f"#RAR 0 {month.year}0101 {month.year}1231",
        f"#VALUTA {tenant.reporting_currency}",
    ]
    for number, name in sorted(account_names(plan, "sv").items()):
        lines.append(f"#KONTO {number} {_sie_text(name)}")
    for number, voucher in enumerate(vouchers, start=1):
        lines.append(f"#VER A {number} {voucher.day:%Y%m%d} {_sie_text(voucher.text)} {generated_on:%Y%m%d}")
        lines.append("{")
        lines += [f"   #TRANS {p.account} {{}} {p.amount:.2f}" for p in voucher.postings]
        lines.append("}")
    return _pc8("\r\n".join(lines) + "\r\n")
