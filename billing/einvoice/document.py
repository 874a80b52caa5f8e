"""One neutral view of an issued invoice or credit note, which the UBL and CII writers both print.

EN 16931 semantics, taken from the billing records without recomputing money:

- Lines: ``LineExtensionAmount`` is the stored, rounded line amount. A negative line (a discount or
  credit line) is written with a negative quantity and a positive price, as EN 16931 allows no
  negative item price (BR-27). A prorated line's price is its unit price × the proration fraction
  (six decimals; the line amount stays the stored one).
- VAT category (one per document, as billing applies one rate per invoice): reverse charge → AE
  (0 %, exemption reason "Reverse charge", VATEX-EU-AE); a positive rate → S; a zero rate from a
  seller with a VAT number → Z; a zero rate from a seller without one → O ("Not subject to VAT",
  VATEX-EU-O), where neither party's VAT number may be printed (BR-O-02..04).
- The VAT breakdown groups lines by (category, rate). With one group its tax is the document's stored
  VAT amount (billing rounds VAT once on the net); with several, each group's tax is rounded
  ROUND_HALF_UP on its taxable amount.
- Totals: line total = tax exclusive = the net (subtotal − discounts); tax inclusive = the stored
  total; prepaid = credits applied when issued; payable = total − prepaid (the invoice's amount due
  as issued). Payments and credit notes made later do not change an issued e-invoice.

``EInvoiceError`` is raised when the figures would not agree to the cent (never printed).
"""

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from django.utils import translation
from django.utils.translation import gettext_noop

from stdnum import iban as stdnum_iban

from billing.models import BillingSettings, CreditNote, Invoice
from customers.peppol import LEGAL_ENTITY_SCHEMES, peppol_id_split

CENT = Decimal("0.01")
PRICE_PLACES = Decimal("0.000001")
ZERO = Decimal(0)
UNIT_CODE = "C62"  # UN/ECE Recommendation 20: "one" (a unit)
INVOICE_TYPE_CODE = "380"
CREDIT_NOTE_TYPE_CODE = "381"
CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"


class EInvoiceError(Exception):
    """An e-invoice cannot be made. ``code`` says why: ``draft``, ``void``, ``no_lines`` (nothing billed),
    ``missing_data`` (a country or VAT number EN 16931 requires is not set) or ``figures`` (they would not
    agree with the document's to the cent)."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TaxCategory:
    code: str  # UNCL5305: S, AE, Z, O, E
    rate: Decimal | None  # None for O (not subject to VAT): no rate is printed
    exemption_reason: str = ""
    exemption_code: str = ""


STANDARD = "S"
REVERSE_CHARGE = TaxCategory("AE", ZERO, "Reverse charge", "VATEX-EU-AE")
ZERO_RATED = TaxCategory("Z", ZERO)
NOT_SUBJECT = TaxCategory("O", None, "Not subject to VAT", "VATEX-EU-O")


@dataclass(frozen=True)
class Address:
    street: str = ""
    additional_street: str = ""
    city: str = ""
    postal_code: str = ""
    subdivision: str = ""
    country: str = ""


@dataclass(frozen=True)
class Party:
    name: str
    legal_name: str
    address: Address
    vat_number: str = ""
    endpoint_scheme: str = ""
    endpoint_id: str = ""
    legal_id: str = ""
    legal_id_scheme: str = ""
    email: str = ""


@dataclass(frozen=True)
class Line:
    position: int
    description: str
    quantity: Decimal
    price: Decimal
    amount: Decimal
    category: TaxCategory
    note: str = ""


@dataclass(frozen=True)
class TaxSubtotal:
    category: TaxCategory
    taxable: Decimal
    tax: Decimal


@dataclass
class EDocument:
    is_credit_note: bool
    number: str
    issue_date: date
    currency: str
    seller: Party
    buyer: Party
    lines: list[Line]
    taxes: list[TaxSubtotal]
    line_total: Decimal
    tax_total: Decimal
    total: Decimal
    prepaid: Decimal
    payable: Decimal
    buyer_reference: str
    due_date: date | None = None
    period_start: date | None = None
    period_end: date | None = None
    notes: list[str] = field(default_factory=list)
    payment_terms: str = ""
    payment_account: str = ""
    payment_account_is_iban: bool = True
    payment_bic: str = ""
    payment_reference: str = ""
    invoice_reference: str = ""
    invoice_reference_date: date | None = None
    language: str = "en"

    @property
    def type_code(self) -> str:
        return CREDIT_NOTE_TYPE_CODE if self.is_credit_note else INVOICE_TYPE_CODE


def money(value: Decimal) -> str:
    """An amount as EN 16931 writes it: two decimals, no grouping."""
    return format(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP), "f")


def decimal_text(value: Decimal) -> str:
    """A quantity, price or rate without trailing zeros (``2``, ``0.35``, ``25``)."""
    text = format(Decimal(value).normalize(), "f")
    return text if text not in ("-0",) else "0"


_POSTAL_THEN_CITY = re.compile(r"^(\d[\d ]{2,8}\d)\s+(\S.*)$")  # "111 21 Stockholm"
_CITY_STATE_ZIP = re.compile(r"^(.+?),\s*([A-Z]{2})\s+(\d{5}(?:-\d{4})?)$")  # "New York, NY 10014"


def tenant_address(text: str, country: str) -> Address:
    """The tenant's free-text address as structured parts: first line the street, any middle line more
    street, the last line "postal code city" or "City, ST zip" when it reads so, else the city."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return Address(country=country)
    street, rest = lines[0], lines[1:]
    if not rest:
        return Address(street=street, country=country)
    last, middle = rest[-1], rest[:-1]
    city, postal, subdivision = last, "", ""
    if match := _POSTAL_THEN_CITY.match(last):
        postal, city = match.group(1), match.group(2)
    elif match := _CITY_STATE_ZIP.match(last):
        city, subdivision, postal = match.groups()
    return Address(
        street=street, additional_street=", ".join(middle), city=city, postal_code=postal,
        subdivision=subdivision, country=country,
    )


def _endpoint(peppol_id: str, email: str) -> tuple[str, str]:
    scheme, value = peppol_id_split(peppol_id)
    if scheme:
        return scheme, value
    # Without a Peppol id, the EAS scheme "EM" (electronic mail) still names where the document goes.
    return ("EM", email) if email else ("", "")


def _payee_account(tenant) -> dict:
    """The account customers pay to, from the tenant's payment details (``BillingSettings``, the
    same ones the PDF and the email print): an IBAN with its BIC, or a Swedish bankgiro number
    (then the payment reference is the invoice's OCR). Empty when the tenant has none."""
    settings = BillingSettings.objects.for_tenant(tenant).first()
    if settings is None or not settings.payment_method:
        return {}
    if settings.payment_method == BillingSettings.PaymentMethod.BANKGIRO:
        return {"payment_account": settings.bankgiro.replace("-", ""), "payment_account_is_iban": False}
    return {"payment_account": stdnum_iban.compact(settings.iban), "payment_bic": settings.bic.strip()}


def _seller(tenant) -> Party:
    scheme, value = peppol_id_split(tenant.peppol_id)
    legal = (value, scheme) if scheme in LEGAL_ENTITY_SCHEMES else ("", "")
    return Party(
        name=tenant.name,
        legal_name=tenant.legal_name or tenant.name,
        address=tenant_address(tenant.address, str(tenant.country or "")),
        vat_number=tenant.vat_number.strip(),
        endpoint_scheme=scheme,
        endpoint_id=value,
        legal_id=legal[0],
        legal_id_scheme=legal[1],
    )


def _buyer(customer) -> Party:
    email = next((address.strip() for address in customer.billing_emails or [] if address.strip()), "")
    scheme, value = _endpoint(customer.peppol_id, email)
    return Party(
        name=customer.name,
        legal_name=customer.name,
        address=Address(
            street=customer.address_line1,
            additional_street=customer.address_line2,
            city=customer.city,
            postal_code=customer.postal_code,
            country=str(customer.country or ""),
        ),
        vat_number=customer.vat_number.strip(),
        endpoint_scheme=scheme,
        endpoint_id=value,
        legal_id=customer.org_number.strip(),
        email=email,
    )


def tax_category(*, reverse_charge: bool, vat_rate: Decimal, seller_vat_number: str) -> TaxCategory:
    """The EN 16931 VAT category of a document billed at ``vat_rate`` (see the module docstring)."""
    if reverse_charge:
        return REVERSE_CHARGE
    if vat_rate > 0:
        return TaxCategory(STANDARD, Decimal(vat_rate))
    return ZERO_RATED if seller_vat_number else NOT_SUBJECT


def _price(quantity: Decimal, unit_price: Decimal, proration: str) -> tuple[Decimal, Decimal]:
    """(quantity, price) with a non-negative price: the sign goes on the quantity."""
    price = Decimal(unit_price)
    if proration not in ("", "1"):
        fraction = Fraction(proration)
        price = (Decimal(fraction.numerator) * price / Decimal(fraction.denominator)).quantize(
            PRICE_PLACES, rounding=ROUND_HALF_UP
        )
    if price < 0:
        return -Decimal(quantity), -price
    return Decimal(quantity), price


def tax_breakdown(lines: list[Line], *, document_tax: Decimal) -> list[TaxSubtotal]:
    """VAT per (category, rate), in order of first appearance. One group carries the document's own VAT
    amount; several are each rounded (ROUND_HALF_UP) on their taxable amount."""
    groups: OrderedDict[TaxCategory, Decimal] = OrderedDict()
    for line in lines:
        groups[line.category] = groups.get(line.category, ZERO) + line.amount
    if len(groups) <= 1:
        category = next(iter(groups)) if groups else None
        return [TaxSubtotal(category, taxable, document_tax) for category, taxable in groups.items()] if category else []
    return [
        TaxSubtotal(category, taxable, (taxable * (category.rate or ZERO) / 100).quantize(CENT, rounding=ROUND_HALF_UP))
        for category, taxable in groups.items()
    ]


def _check(document: EDocument, *, expected_total: Decimal) -> EDocument:
    line_total = sum((line.amount for line in document.lines), ZERO)
    tax = sum((subtotal.tax for subtotal in document.taxes), ZERO)
    problems = []
    if line_total != document.line_total:
        problems.append(f"lines sum to {line_total}, the document's net is {document.line_total}")
    if tax != document.tax_total:
        problems.append(f"VAT per rate sums to {tax}, the document's VAT is {document.tax_total}")
    if document.line_total + document.tax_total != expected_total:
        problems.append(f"net + VAT is {document.line_total + document.tax_total}, the total is {expected_total}")
    if problems:
        raise EInvoiceError(f"{document.number}: " + "; ".join(problems) + ".", code="figures")
    missing = []
    if not document.seller.address.country:
        missing.append("the tenant has no country (Admin → Tenants)")
    if not document.buyer.address.country:
        missing.append(f"customer {document.buyer.name} has no country")
    needs_seller_vat = sorted({t.category.code for t in document.taxes} & {"S", "Z", "AE"})
    if needs_seller_vat and not document.seller.vat_number:
        missing.append(f"the tenant has no VAT number, which VAT category {', '.join(needs_seller_vat)} requires")
    if missing:
        raise EInvoiceError(f"{document.number} cannot be an EN 16931 e-invoice: " + "; ".join(missing) + ".", code="missing_data")
    return document


def _language(customer) -> str:
    return customer.language if customer.language in ("en", "sv") else "en"


def _text(language: str, message: str, **values) -> str:
    """A note of the document in the customer's language (the figures and codes are the standard's)."""
    with translation.override(language):
        return translation.gettext(message) % values


def invoice_document(invoice: Invoice) -> EDocument:
    """The e-invoice view of a finalized (paid, or void once numbered) invoice, lines in order.

    Raises EInvoiceError for a draft (no number yet), an invoice without lines (a month with nothing
    billed), a seller or buyer without the country (or seller VAT number) EN 16931 requires, or figures
    that do not agree to the cent.
    """
    if invoice.status == Invoice.Status.DRAFT or not invoice.number or invoice.issue_date is None:
        raise EInvoiceError("This invoice is a draft: e-invoices exist once it is finalized.", code="draft")
    tenant, customer = invoice.tenant, invoice.customer
    language = _language(customer)
    seller = _seller(tenant)
    category = tax_category(
        reverse_charge=invoice.reverse_charge, vat_rate=invoice.vat_rate, seller_vat_number=seller.vat_number
    )
    lines = []
    for line in invoice.lines.order_by("position"):
        quantity, price = _price(line.quantity, line.unit_price, line.proration)
        note = ""
        if line.proration not in ("", "1"):
            note = _text(language, gettext_noop("Prorated: %(fraction)s of the period"), fraction=line.proration)
        lines.append(Line(line.position, line.description, quantity, price, line.amount, category, note))
    if not lines:
        raise EInvoiceError(
            f"Invoice {invoice.number} has no lines (nothing was billed for its period): an e-invoice needs at "
            "least one line (EN 16931 rule BR-16).",
            code="no_lines",
        )
    net = invoice.subtotal - invoice.discount_total
    notes = [invoice.vat_note] if invoice.vat_note else []
    document = EDocument(
        is_credit_note=False,
        number=invoice.number,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        currency=invoice.currency,
        seller=seller,
        buyer=_buyer(customer),
        lines=lines,
        taxes=tax_breakdown(lines, document_tax=invoice.vat_amount),
        line_total=net,
        tax_total=invoice.vat_amount,
        total=invoice.total,
        prepaid=invoice.credit_applied,
        payable=invoice.total - invoice.credit_applied,
        buyer_reference=invoice.contract.reference if invoice.contract_id else customer.external_ref,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        notes=notes,
        payment_terms=_text(
            language, gettext_noop("Payment within %(days)s days, by %(due_date)s."),
            days=tenant.payment_terms_days, due_date=invoice.due_date.isoformat(),
        )
        if invoice.due_date
        else "",
        payment_reference=invoice.ocr_reference or invoice.number,
        **_payee_account(tenant),
        language=language,
    )
    return _check(document, expected_total=invoice.total)


def credit_note_document(note: CreditNote) -> EDocument:
    """The e-invoice view of a credit note (positive amounts: what is given back), referring to its
    invoice (BillingReference). VAT category as its invoice's."""
    invoice, tenant, customer = note.invoice, note.tenant, note.customer
    seller = _seller(tenant)
    category = tax_category(
        reverse_charge=invoice.reverse_charge, vat_rate=note.vat_rate, seller_vat_number=seller.vat_number
    )
    lines = []
    for line in note.lines.order_by("position"):
        quantity, price = _price(line.quantity, line.unit_price, "1")
        lines.append(Line(line.position, line.description, quantity, price, line.amount, category))
    notes = [note.reason] + ([invoice.vat_note] if invoice.vat_note else [])
    document = EDocument(
        is_credit_note=True,
        number=note.number,
        issue_date=note.issue_date,
        currency=note.currency,
        seller=seller,
        buyer=_buyer(customer),
        lines=lines,
        taxes=tax_breakdown(lines, document_tax=note.vat_amount),
        line_total=note.subtotal,
        tax_total=note.vat_amount,
        total=note.total,
        prepaid=ZERO,
        payable=note.total,
        buyer_reference=invoice.contract.reference if invoice.contract_id else customer.external_ref,
        notes=notes,
        **_payee_account(tenant),
        invoice_reference=invoice.number or "",
        invoice_reference_date=invoice.issue_date,
        language=_language(customer),
    )
    return _check(document, expected_total=note.total)
