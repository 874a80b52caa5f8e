"""Reading an ISO 20022 camt.053 bank statement (BankToCustomerStatement), versions 001.02 to 001.08.

Only reading: ``camt053_read`` turns the XML into ``CamtEntry`` rows, one per credit transaction
(an entry of a batch booking with several transaction details is one row per transaction), and a
row per entry it will not record: debits, reversals, entries not booked. Matching and writing are
``billing.services.bank_statements``.

Elements are found by local name, so any namespace works (the versions differ in a few paths, read
here both ways: ``Sts`` is text up to .07 and ``Sts/Cd`` in .08; the debtor's name is
``RltdPties/Dbtr/Nm`` up to .07 and ``RltdPties/Dbtr/Pty/Nm`` in .08; a transaction's own amount is
``AmtDtls/TxAmt/Amt`` and, from .04, also ``Amt``).

The parser is hardened: no DTD is loaded, entities are never resolved, nothing is fetched over the
network, libxml2's size limits stay on (no ``huge_tree``), and a document with a DOCTYPE at all is
refused before parsing (a bank never sends one; entity tricks need one).
"""

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from lxml import etree

CAMT_053 = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(\d\d)$")
SUPPORTED_VERSIONS = range(2, 9)  # 001.02 … 001.08
NOT_PROVIDED = "NOTPROVIDED"  # what banks write when the payer gave no end-to-end id
OTHER_MESSAGES = {
    "BkToCstmrAcctRpt": "a camt.052 account report",
    "BkToCstmrDbtCdtNtfctn": "a camt.054 debit/credit notification",
    "CstmrCdtTrfInitn": "a pain.001 payment order",
}

CREDIT, IGNORED = "credit", "ignored"


@dataclass
class CamtEntry:
    """One row of the statement: a credit transaction to match (``kind`` credit) or an entry not
    recorded (``kind`` ignored, with ``reason``). ``number`` counts entries from 1 in file order;
    a batch entry's transactions are ``number`` with ``part`` 1, 2, …"""

    number: int
    kind: str
    part: int = 0
    amount: Decimal | None = None
    currency: str = ""
    booked_on: date | None = None
    value_on: date | None = None
    references: tuple[str, ...] = ()  # structured creditor references first, then the unstructured text
    bank_reference: str = ""
    payer: str = ""
    reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.number}.{self.part}" if self.part else str(self.number)


def _local(tag) -> str:
    # "{namespace}Ntry" → "Ntry"; comments and processing instructions have no string tag.
    return tag[tag.rfind("}") + 1:] if isinstance(tag, str) else ""


def _children(element, name: str) -> list:
    return [child for child in element if _local(child.tag) == name]


def _child(element, *path: str):
    """The first element down ``path`` (local names), or None."""
    for name in path:
        if element is None:
            return None
        found = _children(element, name)
        element = found[0] if found else None
    return element


def _text(element, *path: str) -> str:
    found = _child(element, *path)
    return (found.text or "").strip() if found is not None else ""


def _all(element, *path: str) -> list:
    """Every element down ``path``: all matches at each step."""
    level = [element]
    for name in path:
        level = [child for parent in level for child in _children(parent, name)]
    return level


def _day(element, name: str) -> date | None:
    holder = _child(element, name)
    if holder is None:
        return None
    text = _text(holder, "Dt") or _text(holder, "DtTm")[:10]
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _amount(element) -> tuple[Decimal | None, str]:
    if element is None:
        return None, ""
    currency = (element.get("Ccy") or "").strip().upper()
    try:
        amount = Decimal((element.text or "").strip())
    except InvalidOperation:
        return None, currency
    return (amount if amount.is_finite() else None), currency


def _transaction_amount(details):
    for path in (("Amt",), ("AmtDtls", "TxAmt", "Amt"), ("AmtDtls", "InstdAmt", "Amt")):
        found = _child(details, *path)
        if found is not None:
            return found
    return None


def _references(details) -> tuple[str, ...]:
    remittance = _all(details, "RmtInf")
    structured = [
        (ref.text or "").strip()
        for info in remittance
        for ref in _all(info, "Strd", "CdtrRefInf", "Ref")
    ]
    unstructured = [(text.text or "").strip() for info in remittance for text in _children(info, "Ustrd")]
    return tuple(part for part in [*structured, *unstructured] if part)


def _payer(details) -> str:
    debtor = _child(details, "RltdPties", "Dbtr")
    if debtor is None:
        return ""
    return (_text(debtor, "Nm") or _text(debtor, "Pty", "Nm"))[:140]


def _bank_reference(entry, details) -> str:
    for value in (
        _text(details, "Refs", "AcctSvcrRef") if details is not None else "",
        _text(entry, "AcctSvcrRef"),
        _text(details, "Refs", "EndToEndId") if details is not None else "",
    ):
        if value and value.upper() != NOT_PROVIDED:
            return value[:140]
    return ""


def _part_reference(entry, details, part: int) -> str:
    """A batch transaction's own reference; else the entry's with the part number (never the
    entry's alone, which all parts share)."""
    for value in (_text(details, "Refs", "AcctSvcrRef"), _text(details, "Refs", "EndToEndId")):
        if value and value.upper() != NOT_PROVIDED:
            return value[:140]
    entry_reference = _text(entry, "AcctSvcrRef")
    return f"{entry_reference[:130]}/{part}" if entry_reference else ""


def _status(entry) -> str:
    holder = _child(entry, "Sts")
    if holder is None:
        return ""
    return (_text(holder, "Cd") or (holder.text or "")).strip().upper()


def _parse(data: bytes):
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise ValidationError("The XML file declares a DOCTYPE or entities; a bank statement has none. Upload the file as the bank sent it.")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_comments=True, remove_pis=True,
    )
    try:
        return etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise ValidationError(f"The file is not well-formed XML ({exc.msg}, line {exc.lineno}).") from None


def camt053_read(data: bytes, *, max_rows: int) -> list[CamtEntry]:
    """Every entry of every statement in the camt.053 document ``data`` (UTF-8 bytes), in file order.

    Raises ValidationError for XML that is malformed or tries entity tricks, for another document
    type or camt.053 version, or for more than ``max_rows`` rows. An entry that is readable but not
    a booked credit is a row of kind ``ignored`` with the reason; a credit with a bad amount or date
    is kept as a credit row without it (matching reports it as invalid).
    """
    root = _parse(data)
    namespace = etree.QName(root).namespace or ""
    statement_root = _child(root, "BkToCstmrStmt")
    if etree.QName(root).localname != "Document" or statement_root is None:
        other = next((label for name, label in OTHER_MESSAGES.items() if _child(root, name) is not None), None)
        what = other or f"a <{etree.QName(root).localname}> document"
        raise ValidationError(f"This is {what}, not a camt.053 bank statement (Document/BkToCstmrStmt).")
    version = CAMT_053.match(namespace)
    if namespace and (not version or int(version.group(1)) not in SUPPORTED_VERSIONS):
        raise ValidationError(
            f"The statement's format {namespace} is not one this import reads: camt.053.001.02 to camt.053.001.08."
        )
    rows: list[CamtEntry] = []
    number = 0
    for statement in _children(statement_root, "Stmt"):
        for entry in _children(statement, "Ntry"):
            number += 1
            rows.extend(_entry_rows(entry, number))
            if len(rows) > max_rows:
                raise ValidationError(f"A statement may have at most {max_rows} entries; split it.")
    return rows


def _entry_rows(entry, number: int) -> list[CamtEntry]:
    amount, currency = _amount(_child(entry, "Amt"))
    booked_on, value_on = _day(entry, "BookgDt"), _day(entry, "ValDt")
    direction = _text(entry, "CdtDbtInd").upper()
    status = _status(entry)
    details = _all(entry, "NtryDtls", "TxDtls")
    first = details[0] if details else None
    common = {"number": number, "currency": currency, "booked_on": booked_on, "value_on": value_on}
    ignored = None
    if direction == "DBIT":
        ignored = "A debit (money paid out), not a payment received."
    elif direction != "CRDT":
        ignored = f"Neither credit nor debit (CdtDbtInd {direction or 'missing'})."
    elif _text(entry, "RvslInd").lower() in ("true", "1"):
        ignored = "A reversal of an earlier entry, not a payment received."
    elif status != "BOOK":
        ignored = f"Not booked (status {status or 'missing'}): import the final statement."
    if ignored:
        return [CamtEntry(
            **common, kind=IGNORED, amount=amount, references=_references(first) if first is not None else (),
            payer=_payer(first) if first is not None else "", bank_reference=_bank_reference(entry, first), reason=ignored,
        )]
    # A batch booking: one entry, several transactions each with its own amount and remittance.
    amounts = [_amount(_transaction_amount(d)) for d in details]
    if len(details) > 1 and all(value is not None for value, _ in amounts):
        return [
            CamtEntry(
                **{**common, "currency": tx_currency or currency}, kind=CREDIT, part=part, amount=tx_amount,
                references=_references(tx), payer=_payer(tx), bank_reference=_part_reference(entry, tx, part),
            )
            for part, (tx, (tx_amount, tx_currency)) in enumerate(zip(details, amounts, strict=True), start=1)
        ]
    references = tuple(ref for d in details for ref in _references(d))
    return [CamtEntry(
        **common, kind=CREDIT, amount=amount, references=references,
        payer=_payer(first) if first is not None else "", bank_reference=_bank_reference(entry, first),
    )]
