"""E-invoices: Peppol BIS 3.0 UBL and Factur-X CII, valid against the official XSDs and the EN 16931
rules, with the invoice's own figures to the cent."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from billing.einvoice import EInvoiceError, credit_note_ubl, invoice_ubl
from billing.einvoice.cii import cii_bytes
from billing.einvoice.document import (
    CUSTOMIZATION_ID,
    Address,
    PROFILE_ID,
    Line,
    TaxCategory,
    credit_note_document,
    invoice_document,
    tax_breakdown,
    tenant_address,
)
from billing.einvoice.ubl import ubl_bytes
from billing.services import billing_payment_details_set
from customers.peppol import validate_peppol_id
from customers.tenancy import platform_scope, tenant_scope
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.billing.einvoice_checks import (
    UBL_NS,
    assert_valid_cii,
    assert_valid_ubl,
    cii_figures,
    ubl_figures,
)
from tests.customers.factories import CustomerFactory


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def swedish_seller(tenant_b):
    tenant_b.legal_name = "Bergström Konsult AB"
    tenant_b.vat_number = "SE556732170701"
    tenant_b.vat_rate = Decimal("25")
    tenant_b.country = "SE"
    tenant_b.address = "Drottninggatan 55\n111 21 Stockholm"
    tenant_b.peppol_id = "0007:5567321707"
    tenant_b.save()
    with tenant_scope(tenant_b):
        billing_payment_details_set(tenant=tenant_b, payment_method="iban", iban="SE45 5000 0000 0583 9825 7466", bic="ESSESESS")
    return tenant_b


@pytest.fixture
def us_seller(tenant_a):
    tenant_a.legal_name = "Acme Optimizer Inc."
    tenant_a.country = "US"
    tenant_a.address = "548 Market St, Suite 300\nSan Francisco, CA 94104"
    tenant_a.peppol_id = "0060:123456789"
    tenant_a.save()
    return tenant_a


def _customer(tenant, **fields):
    defaults = {
        "name": "Kund AB",
        "currency": "SEK",
        "language": "sv",
        "vat_number": "SE556000000101",
        "org_number": "556000-0001",
        "peppol_id": "0007:5560000001",
        "address_line1": "Storgatan 1",
        "postal_code": "411 38",
        "city": "Göteborg",
        "country": "SE",
        "billing_emails": ["ap@kund.example"],
    }
    with platform_scope():
        return CustomerFactory(tenant=tenant, **{**defaults, **fields})


def _ubl(invoice):
    content, filename = invoice_ubl(invoice=invoice)
    return content, filename


def _cii(invoice):
    with tenant_scope(invoice.tenant):
        return cii_bytes(invoice_document(invoice))


def test_standard_rate_invoice_is_valid_ubl_with_the_invoice_figures(swedish_seller):
    invoice = build_invoice(
        _customer(swedish_seller),
        lines=(("Workshop", "2", "12500.00"), ("Hours", "7.5", "1350.00"), ("Loyalty discount", "1", "-1000.00")),
        vat_rate="25",
    )
    content, filename = _ubl(invoice)
    tree = assert_valid_ubl(content)
    assert filename == f"{invoice.number}.xml"
    assert tree.findtext("cbc:CustomizationID", namespaces=UBL_NS) == CUSTOMIZATION_ID
    assert tree.findtext("cbc:ProfileID", namespaces=UBL_NS) == PROFILE_ID
    assert ubl_figures(tree) == {
        "lines": [Decimal("25000.00"), Decimal("10125.00"), Decimal("-1000.00")],
        "taxes": {("S", "25"): (Decimal("34125.00"), Decimal("8531.25"))},
        "tax": Decimal("8531.25"),
        "net": Decimal("34125.00"),
        "total": Decimal("42656.25"),
        "payable": Decimal("42656.25"),
    }
    assert invoice.total == Decimal("42656.25") and invoice.vat_amount == Decimal("8531.25")


def test_standard_rate_invoice_is_valid_cii(swedish_seller):
    invoice = build_invoice(_customer(swedish_seller), lines=(("Workshop", "2", "12500.00"),), vat_rate="25")
    tree = assert_valid_cii(_cii(invoice))
    assert cii_figures(tree)["total"] == invoice.total == Decimal("31250.00")


def test_the_rule_check_catches_a_total_that_does_not_add_up(swedish_seller):
    """The EN 16931 check is live: a payable amount changed by one cent breaks BR-CO-16."""
    from tests.billing.einvoice_checks import schematron_errors

    invoice = build_invoice(_customer(swedish_seller), lines=(("Workshop", "1", "100.00"),), vat_rate="25")
    content, _ = _ubl(invoice)
    broken = content.replace(b'<cbc:PayableAmount currencyID="SEK">125.00<', b'<cbc:PayableAmount currencyID="SEK">125.01<')
    assert broken != content
    assert any("BR-CO-16" in error for error in schematron_errors(broken, "ubl"))
    cii = _cii(invoice)
    broken_cii = cii.replace(b"<ram:DuePayableAmount>125.00<", b"<ram:DuePayableAmount>125.01<")
    assert broken_cii != cii
    assert any("BR-CO-16" in error for error in schematron_errors(broken_cii, "cii"))


def test_reverse_charge_invoice_is_category_ae_with_its_exemption_reason(swedish_seller):
    customer = _customer(
        swedish_seller, name="Muster GmbH", currency="EUR", language="en", vat_number="DE123456789",
        peppol_id="9930:DE123456789", org_number="", address_line1="Hauptstraße 5", postal_code="10115",
        city="Berlin", country="DE",
    )
    invoice = build_invoice(customer, lines=(("Retainer", "1", "4000.00"), ("Hours", "3", "95.50")), reverse_charge=True)
    content, _ = _ubl(invoice)
    tree = assert_valid_ubl(content)
    category = tree.find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", UBL_NS)
    assert category.findtext("cbc:ID", namespaces=UBL_NS) == "AE"
    assert category.findtext("cbc:TaxExemptionReasonCode", namespaces=UBL_NS) == "VATEX-EU-AE"
    assert category.findtext("cbc:TaxExemptionReason", namespaces=UBL_NS) == "Reverse charge"
    assert tree.find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", UBL_NS).attrib == {"schemeID": "9930"}
    assert ubl_figures(tree)["taxes"] == {("AE", "0"): (Decimal("4286.50"), Decimal("0.00"))}
    cii = cii_figures(assert_valid_cii(_cii(invoice)))
    assert (cii["net"], cii["tax"], cii["total"]) == (Decimal("4286.50"), Decimal("0.00"), invoice.total)


def test_zero_vat_from_a_seller_without_vat_number_is_not_subject_and_prints_no_vat_numbers(us_seller):
    customer = _customer(
        us_seller, name="Northwind LLC", currency="USD", language="en", vat_number="", org_number="",
        peppol_id="", address_line1="1 Main St", postal_code="02110", city="Boston", country="US",
    )
    invoice = build_invoice(customer, lines=(("Savings share", "1", "2345.67"), ("Platform fee", "1", "500.00")))
    content, _ = _ubl(invoice)
    tree = assert_valid_ubl(content)
    assert ubl_figures(tree)["taxes"] == {("O", None): (Decimal("2845.67"), Decimal("0.00"))}
    assert tree.findall(".//cac:PartyTaxScheme", UBL_NS) == []
    # Without a Peppol id the buyer is addressed by its billing email (EAS scheme EM).
    endpoint = tree.find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", UBL_NS)
    assert (endpoint.get("schemeID"), endpoint.text) == ("EM", "ap@kund.example")
    address = tree.find("cac:AccountingSupplierParty/cac:Party/cac:PostalAddress", UBL_NS)
    assert [address.findtext(f"cbc:{name}", namespaces=UBL_NS) for name in ("CityName", "PostalZone", "CountrySubentity")] == [
        "San Francisco", "94104", "CA"
    ]
    assert cii_figures(assert_valid_cii(_cii(invoice)))["payable"] == invoice.amount_due == Decimal("2845.67")


def test_zero_vat_from_a_seller_with_a_vat_number_is_zero_rated(us_seller):
    us_seller.vat_number = "US123456789"
    us_seller.save()
    customer = _customer(us_seller, currency="USD", language="en", vat_number="GB123456789", peppol_id="", country="GB",
                         postal_code="SW1A 1AA", city="London")
    invoice = build_invoice(customer, lines=(("Platform fee", "1", "99.00"),))
    tree = assert_valid_ubl(_ubl(invoice)[0])
    assert ubl_figures(tree)["taxes"] == {("Z", "0"): (Decimal("99.00"), Decimal("0.00"))}
    assert_valid_cii(_cii(invoice))


def test_credit_applied_when_issued_is_prepaid_and_payable_is_the_amount_due(swedish_seller):
    invoice = build_invoice(_customer(swedish_seller), lines=(("Seats", "12", "150.00"),), vat_rate="25", credit_applied="250.00")
    figures = ubl_figures(assert_valid_ubl(_ubl(invoice)[0]))
    assert (figures["total"], figures["payable"]) == (Decimal("2250.00"), Decimal("2000.00")) == (invoice.total, invoice.amount_due)
    assert cii_figures(assert_valid_cii(_cii(invoice)))["payable"] == Decimal("2000.00")


def test_credit_note_is_a_ubl_credit_note_referring_to_its_invoice(swedish_seller):
    invoice = build_invoice(_customer(swedish_seller), lines=(("Workshop", "1", "12500.00"),), vat_rate="25")
    note = build_credit_note(invoice, amount="1000.00")
    content, filename = credit_note_ubl(credit_note=note)
    tree = assert_valid_ubl(content, credit_note=True)
    assert filename == f"{note.number}.xml"
    assert tree.findtext("cbc:CreditNoteTypeCode", namespaces=UBL_NS) == "381"
    assert tree.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=UBL_NS) == invoice.number
    assert ubl_figures(tree) == {
        "lines": [Decimal("1000.00")],
        "taxes": {("S", "25"): (Decimal("1000.00"), Decimal("250.00"))},
        "tax": Decimal("250.00"),
        "net": Decimal("1000.00"),
        "total": Decimal("1250.00"),
        "payable": Decimal("1250.00"),
    }
    assert note.total == Decimal("1250.00")
    with tenant_scope(note.tenant):
        cii = assert_valid_cii(cii_bytes(credit_note_document(note)))
    assert cii.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces={
        "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
        "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    }) == "381"
    assert cii_figures(cii)["total"] == Decimal("1250.00")


def test_several_rates_are_broken_down_per_rate_each_rounded(swedish_seller):
    """Billing applies one rate per invoice; the writers break down any mix of rates all the same."""
    invoice = build_invoice(_customer(swedish_seller), lines=(("Workshop", "1", "100.00"),), vat_rate="25")
    with tenant_scope(invoice.tenant):
        document = invoice_document(invoice)
    standard, reduced = TaxCategory("S", Decimal("25")), TaxCategory("S", Decimal("12"))
    document.lines = [
        Line(1, "Consulting", Decimal("3"), Decimal("333.33"), Decimal("999.99"), standard),
        Line(2, "Course book", Decimal("2"), Decimal("49.95"), Decimal("99.90"), reduced),
        Line(3, "Catering", Decimal("1"), Decimal("10.05"), Decimal("10.05"), reduced),
    ]
    document.taxes = tax_breakdown(document.lines, document_tax=Decimal(0))
    document.line_total, document.tax_total = Decimal("1109.94"), Decimal("250.00") + Decimal("13.19")
    document.total = document.payable = Decimal("1373.13")
    assert [(t.category.rate, t.taxable, t.tax) for t in document.taxes] == [
        (Decimal("25"), Decimal("999.99"), Decimal("250.00")),
        (Decimal("12"), Decimal("109.95"), Decimal("13.19")),
    ]
    assert ubl_figures(assert_valid_ubl(ubl_bytes(document)))["taxes"] == {
        ("S", "25"): (Decimal("999.99"), Decimal("250.00")),
        ("S", "12"): (Decimal("109.95"), Decimal("13.19")),
    }
    assert len(cii_figures(assert_valid_cii(cii_bytes(document)))["taxes"]) == 2


def test_a_prorated_line_prints_its_prorated_price_and_its_stored_amount(swedish_seller):
    from billing.models import InvoiceLine
    from billing.services import invoice_finalize

    draft = build_invoice(_customer(swedish_seller), lines=(("Retainer", "1", "9000.00"),), vat_rate="25", finalize=False)
    with tenant_scope(swedish_seller):
        InvoiceLine.objects.for_tenant(swedish_seller).filter(invoice=draft).update(proration="11/30", amount=Decimal("3300.00"))
        type(draft).objects.for_tenant(swedish_seller).filter(pk=draft.pk).update(
            subtotal=Decimal("3300.00"), vat_amount=Decimal("825.00"), total=Decimal("4125.00"), amount_due=Decimal("4125.00")
        )
        draft.refresh_from_db()
    invoice = invoice_finalize(invoice=draft, issue_date=draft.period_end)
    tree = assert_valid_ubl(_ubl(invoice)[0])
    line = tree.find("cac:InvoiceLine", UBL_NS)
    assert line.findtext("cac:Price/cbc:PriceAmount", namespaces=UBL_NS) == "3300"
    assert line.findtext("cbc:LineExtensionAmount", namespaces=UBL_NS) == "3300.00"
    # The notes speak the customer's language (Swedish here); the figures and codes are the standard's.
    assert line.findtext("cbc:Note", namespaces=UBL_NS) == "Periodiserat: 11/30 av perioden"
    assert tree.findtext("cac:PaymentTerms/cbc:Note", namespaces=UBL_NS) == (
        f"Betalning inom 30 dagar, senast {invoice.due_date.isoformat()}."
    )


def test_a_draft_or_void_invoice_has_no_e_invoice(swedish_seller):
    from billing.services import invoice_void

    customer = _customer(swedish_seller)
    draft = build_invoice(customer, finalize=False)
    with pytest.raises(EInvoiceError, match="draft"):
        invoice_ubl(invoice=draft)
    voided = invoice_void(invoice=build_invoice(customer, period_start=draft.period_start.replace(month=10),
                                                period_end=draft.period_start.replace(month=10, day=31)))
    with pytest.raises(EInvoiceError, match="void"):
        invoice_ubl(invoice=voided)


def test_figures_that_do_not_add_up_are_refused_not_printed(swedish_seller):
    invoice = build_invoice(_customer(swedish_seller), lines=(("Workshop", "1", "100.00"),), vat_rate="25")
    invoice.vat_amount = Decimal("25.01")  # in memory only: as if the stored VAT disagreed with the total
    with pytest.raises(EInvoiceError, match="net \\+ VAT is 125.01, the total is 125.00"):
        invoice_ubl(invoice=invoice)


@pytest.mark.parametrize(
    "value",
    ["0007:5567321707", "0088:7300010000001", "9930:DE123456789", "0060:123456789", "EM:ap@kund.example", "0192:987654321"],
)
def test_peppol_ids_of_known_schemes_are_accepted(value):
    validate_peppol_id(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5567321707", 'Write the Peppol id as "scheme:value"'),
        ("1234:5567321707", "1234 is not a Peppol scheme"),
        ("0007:556732-1707", "0007 Peppol id is a Swedish organisation number of 10 digits"),
        ("0088:7300010000002", "check digit is wrong"),
        ("9930:123456789", "German VAT number"),
        ("0002:has space", "1 to 50 letters"),
    ],
)
def test_malformed_peppol_ids_are_refused_with_what_to_write(value, message):
    with translation.override("en"), pytest.raises(ValidationError, match=message):
        validate_peppol_id(value)


def test_a_malformed_peppol_id_is_refused_in_swedish_to_a_swedish_reader():
    with translation.override("sv"), pytest.raises(ValidationError, match="Skriv Peppol-id som"):
        validate_peppol_id("5567321707")


def test_tenant_addresses_are_read_into_parts():
    assert tenant_address("Drottninggatan 55\n111 21 Stockholm", "SE") == Address(
        street="Drottninggatan 55", city="Stockholm", postal_code="111 21", country="SE"
    )
    address = tenant_address("200 Varick St, Suite 610\nFloor 6\nNew York, NY 10014", "US")
    assert (address.street, address.additional_street, address.city, address.subdivision, address.postal_code) == (
        "200 Varick St, Suite 610", "Floor 6", "New York", "NY", "10014"
    )
    assert tenant_address("Somewhere", "").city == ""


def test_an_invoice_without_lines_has_no_e_invoice_and_says_why(swedish_seller):
    invoice = build_invoice(_customer(swedish_seller), lines=(), vat_rate="25")
    assert invoice.total == Decimal("0.00")
    with pytest.raises(EInvoiceError, match=f"Invoice {invoice.number} has no lines .*BR-16"):
        invoice_ubl(invoice=invoice)


def test_a_party_without_the_country_or_vat_number_en_16931_requires_is_refused_naming_it(swedish_seller):
    invoice = build_invoice(_customer(swedish_seller, name="Landlös AB", country=""), vat_rate="25")
    swedish_seller.vat_number = ""
    swedish_seller.save()
    invoice.tenant.refresh_from_db()

    with pytest.raises(EInvoiceError) as refused:
        invoice_ubl(invoice=invoice)

    assert refused.value.code == "missing_data"
    assert str(refused.value) == (
        f"{invoice.number} cannot be an EN 16931 e-invoice: customer Landlös AB has no country; "
        "the tenant has no VAT number, which VAT category S requires."
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("peppol_id", "0007:55673217", "Swedish organisation number of 10 digits"),
    ],
)
def test_a_tenants_malformed_peppol_id_is_refused(swedish_seller, field, value, message):
    setattr(swedish_seller, field, value)
    with translation.override("en"), pytest.raises(ValidationError, match=message):
        swedish_seller.full_clean()


def test_the_payment_account_is_the_tenants_payment_details_iban_or_bankgiro_with_ocr(swedish_seller):
    iban_invoice = build_invoice(_customer(swedish_seller), lines=(("Workshop", "1", "100.00"),), vat_rate="25")
    tree = assert_valid_ubl(_ubl(iban_invoice)[0])
    means = "cac:PaymentMeans/cac:PayeeFinancialAccount"
    assert tree.findtext(f"{means}/cbc:ID", namespaces=UBL_NS) == "SE4550000000058398257466"
    assert tree.findtext(f"{means}/cac:FinancialInstitutionBranch/cbc:ID", namespaces=UBL_NS) == "ESSESESS"
    assert tree.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=UBL_NS) == iban_invoice.number

    with tenant_scope(swedish_seller):
        billing_payment_details_set(tenant=swedish_seller, payment_method="bankgiro", bankgiro="1234566")
    bankgiro_invoice = build_invoice(
        _customer(swedish_seller, name="Kund 2 AB"), lines=(("Workshop", "1", "100.00"),), vat_rate="25",
        period_start=date(2026, 10, 1), period_end=date(2026, 10, 31),
    )
    assert bankgiro_invoice.ocr_reference
    tree = assert_valid_ubl(_ubl(bankgiro_invoice)[0])
    assert tree.findtext(f"{means}/cbc:ID", namespaces=UBL_NS) == "1234566"
    assert tree.findtext(f"{means}/cac:FinancialInstitutionBranch/cbc:ID", namespaces=UBL_NS) == "SE:BANKGIRO"
    assert tree.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=UBL_NS) == bankgiro_invoice.ocr_reference
    cii = assert_valid_cii(_cii(bankgiro_invoice))
    assert [e.text for e in cii.iter("{*}ProprietaryID")] == ["1234566"]
