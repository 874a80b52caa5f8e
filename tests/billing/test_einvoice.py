"""E-invoices: Peppol BIS 3.0 UBL and Factur-X CII, valid against the official XSDs and the EN 16931
rules, with the invoice's own figures to the cent."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.einvoice import EInvoiceError, credit_note_ubl, invoice_ubl
from billing.einvoice.cii import cii_bytes
from billing.einvoice.document import (
    CUSTOMIZATION_ID,
    PROFILE_ID,
    EDocument,
    Line,
    TaxCategory,
    credit_note_document,
    invoice_document,
    tax_breakdown,
    tenant_address,
)
from billing.einvoice.ubl import ubl_bytes
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
    tenant_b.payment_account = "SE45 5000 0000 0583 9825 7466"
    tenant_b.payment_bic = "ESSESESS"
    tenant_b.save()
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
