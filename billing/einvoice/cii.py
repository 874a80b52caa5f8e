"""UN/CEFACT Cross Industry Invoice (CII D16B) XML of an ``EDocument``, Factur-X / ZUGFeRD profile EN 16931.

The XML embedded in a Factur-X PDF (``billing.einvoice.facturx``). TypeCode 380 for an invoice, 381
for a credit note (with ``InvoiceReferencedDocument`` naming the invoice it corrects). Elements are
written in the order of the Factur-X EN 16931 XSD, which ``factur-x`` checks on every embedding.
"""

from lxml import etree

from billing.einvoice.document import UNIT_CODE, EDocument, Party, decimal_text, money

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
GUIDELINE_ID = "urn:cen.eu:en16931:2017"


def _el(parent, ns: str, name: str, text=None, **attributes):
    element = etree.SubElement(parent, f"{{{ns}}}{name}", {key: str(value) for key, value in attributes.items()})
    if text is not None:
        element.text = str(text)
    return element


def _ram(parent, name: str, text=None, **attributes):
    return _el(parent, RAM, name, text, **attributes)


def _date(parent, name: str, day):
    _el(_ram(parent, name), UDT, "DateTimeString", day.strftime("%Y%m%d"), format="102")


def _party(parent, name: str, party: Party, *, print_vat: bool):
    node = _ram(parent, name)
    _ram(node, "Name", party.legal_name)
    if party.legal_id:
        attributes = {"schemeID": party.legal_id_scheme} if party.legal_id_scheme else {}
        legal = _ram(node, "SpecifiedLegalOrganization")
        _ram(legal, "ID", party.legal_id, **attributes)
        if party.name != party.legal_name:
            _ram(legal, "TradingBusinessName", party.name)
    address = _ram(node, "PostalTradeAddress")
    for element, value in (
        ("PostcodeCode", party.address.postal_code),
        ("LineOne", party.address.street),
        ("LineTwo", party.address.additional_street),
        ("CityName", party.address.city),
        ("CountryID", party.address.country),
        ("CountrySubDivisionName", party.address.subdivision),
    ):
        if value:
            _ram(address, element, value)
    if party.endpoint_id:
        _ram(_ram(node, "URIUniversalCommunication"), "URIID", party.endpoint_id, schemeID=party.endpoint_scheme)
    if print_vat and party.vat_number:
        _ram(_ram(node, "SpecifiedTaxRegistration"), "ID", party.vat_number, schemeID="VA")


def _tax(parent, category, *, calculated=None, basis=None):
    node = _ram(parent, "ApplicableTradeTax")
    if calculated is not None:
        _ram(node, "CalculatedAmount", money(calculated))
    _ram(node, "TypeCode", "VAT")
    if basis is not None and category.exemption_reason:
        _ram(node, "ExemptionReason", category.exemption_reason)
    if basis is not None:
        _ram(node, "BasisAmount", money(basis))
    _ram(node, "CategoryCode", category.code)
    if basis is not None and category.exemption_code:
        _ram(node, "ExemptionReasonCode", category.exemption_code)
    if category.rate is not None:
        _ram(node, "RateApplicablePercent", decimal_text(category.rate))
    return node


def cii_tree(document: EDocument) -> etree._Element:
    """The document's CrossIndustryInvoice tree (EN 16931 profile)."""
    currency = document.currency
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap={"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT})
    context = _el(root, RSM, "ExchangedDocumentContext")
    _ram(_ram(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", GUIDELINE_ID)
    header = _el(root, RSM, "ExchangedDocument")
    _ram(header, "ID", document.number)
    _ram(header, "TypeCode", document.type_code)
    _date(header, "IssueDateTime", document.issue_date)
    for note in document.notes:
        _ram(_ram(header, "IncludedNote"), "Content", note)

    transaction = _el(root, RSM, "SupplyChainTradeTransaction")
    for line in document.lines:
        item = _ram(transaction, "IncludedSupplyChainTradeLineItem")
        line_document = _ram(item, "AssociatedDocumentLineDocument")
        _ram(line_document, "LineID", line.position)
        if line.note:
            _ram(_ram(line_document, "IncludedNote"), "Content", line.note)
        _ram(_ram(item, "SpecifiedTradeProduct"), "Name", line.description)
        agreement = _ram(item, "SpecifiedLineTradeAgreement")
        _ram(_ram(agreement, "NetPriceProductTradePrice"), "ChargeAmount", decimal_text(line.price))
        _ram(_ram(item, "SpecifiedLineTradeDelivery"), "BilledQuantity", decimal_text(line.quantity), unitCode=UNIT_CODE)
        settlement = _ram(item, "SpecifiedLineTradeSettlement")
        _tax(settlement, line.category)
        _ram(_ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation"), "LineTotalAmount", money(line.amount))

    agreement = _ram(transaction, "ApplicableHeaderTradeAgreement")
    _ram(agreement, "BuyerReference", document.buyer_reference)
    print_vat = all(subtotal.category.code != "O" for subtotal in document.taxes)
    _party(agreement, "SellerTradeParty", document.seller, print_vat=print_vat)
    _party(agreement, "BuyerTradeParty", document.buyer, print_vat=print_vat)
    _ram(transaction, "ApplicableHeaderTradeDelivery")

    settlement = _ram(transaction, "ApplicableHeaderTradeSettlement")
    if document.payment_reference:
        _ram(settlement, "PaymentReference", document.payment_reference)
    _ram(settlement, "InvoiceCurrencyCode", currency)
    if document.payment_account:
        means = _ram(settlement, "SpecifiedTradeSettlementPaymentMeans")
        _ram(means, "TypeCode", "30")
        account_id = "IBANID" if document.payment_account_is_iban else "ProprietaryID"
        _ram(_ram(means, "PayeePartyCreditorFinancialAccount"), account_id, document.payment_account)
        if document.payment_bic:
            _ram(_ram(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", document.payment_bic)
    for subtotal in document.taxes:
        _tax(settlement, subtotal.category, calculated=subtotal.tax, basis=subtotal.taxable)
    if document.period_start and document.period_end:
        period = _ram(settlement, "BillingSpecifiedPeriod")
        _date(period, "StartDateTime", document.period_start)
        _date(period, "EndDateTime", document.period_end)
    if document.payment_terms or document.due_date:
        terms = _ram(settlement, "SpecifiedTradePaymentTerms")
        if document.payment_terms:
            _ram(terms, "Description", document.payment_terms)
        if document.due_date:
            _date(terms, "DueDateDateTime", document.due_date)
    totals = _ram(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _ram(totals, "LineTotalAmount", money(document.line_total))
    _ram(totals, "TaxBasisTotalAmount", money(document.line_total))
    _ram(totals, "TaxTotalAmount", money(document.tax_total), currencyID=currency)
    _ram(totals, "GrandTotalAmount", money(document.total))
    if document.prepaid:
        _ram(totals, "TotalPrepaidAmount", money(document.prepaid))
    _ram(totals, "DuePayableAmount", money(document.payable))
    if document.invoice_reference:
        reference = _ram(settlement, "InvoiceReferencedDocument")
        _ram(reference, "IssuerAssignedID", document.invoice_reference)
        if document.invoice_reference_date:
            _el(_ram(reference, "FormattedIssueDateTime"), QDT, "DateTimeString",
                document.invoice_reference_date.strftime("%Y%m%d"), format="102")
    return root


def cii_bytes(document: EDocument) -> bytes:
    """The document as UTF-8 CII XML with its declaration."""
    return etree.tostring(cii_tree(document), xml_declaration=True, encoding="UTF-8", pretty_print=True)
