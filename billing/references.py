"""Swedish payment references: the OCR number on an invoice and the bankgiro number it is paid to.

Both end in a Luhn (modulus 10) check digit: from the right, every second digit starting with the
one left of the check digit is doubled (a two-digit product counts as the sum of its digits), and
the check digit makes the total a multiple of 10.

OCR numbers here are Bankgirot's *OCR with length digit and check digit* ("hård kontroll" with
length check): ``base + length digit + check digit``, where the length digit is the length of the
whole reference (length and check digits included) modulo 10, and the check digit is computed over
everything before it. A payer's bank refuses a reference with a wrong check or length digit when
the payee's bankgiro is set up for it; a statement may still carry one (a typo, or a bank that does
not check), and matching reports it instead of guessing.

An invoice's base is its issue year and its five-digit place in the tenant's gapless invoice
sequence (``2026`` + ``00012``), so an OCR is unique per tenant for as long as the sequence is, and
a reader can tell the invoice from it: SK-2026-00012 has OCR 20260001217 (base 202600012, length
digit 1 for eleven digits, check digit 7).
"""

import re

from django.utils.translation import gettext as _

OCR_MAX_DIGITS = 25  # Bankgirot's limit
OCR_MIN_DIGITS = 2
_DIGITS = re.compile(r"\d+")


def luhn_check_digit(digits: str) -> str:
    """The Luhn check digit to append to ``digits`` (a non-empty string of 0-9)."""
    if not digits or not _DIGITS.fullmatch(digits):
        raise ValueError(f"{digits!r} is not a string of digits.")
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:  # the rightmost digit of the payload is doubled once the check digit follows
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_is_valid(number: str) -> bool:
    """Whether ``number`` (digits only, at least two) ends in its own Luhn check digit."""
    if len(number) < 2 or not _DIGITS.fullmatch(number):
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


def ocr_from_base(base: str) -> str:
    """``base`` + length digit + Luhn check digit (see the module docstring)."""
    length_digit = str((len(base) + 2) % 10)
    payload = base + length_digit
    return payload + luhn_check_digit(payload)


def ocr_for_invoice(*, year: int, sequence_number: int) -> str:
    """The OCR number of the invoice ``sequence_number`` issued in ``year``."""
    return ocr_from_base(f"{year:04d}{sequence_number:05d}")


def ocr_problem(reference: str) -> str:
    """Why ``reference`` is not a valid OCR number ("" when it is): length, length digit or check digit."""
    if not _DIGITS.fullmatch(reference or ""):
        return f"OCR {reference!r} has characters other than digits"
    if not OCR_MIN_DIGITS + 1 <= len(reference) <= OCR_MAX_DIGITS:
        return f"OCR {reference} has {len(reference)} digits; an OCR number has 3 to {OCR_MAX_DIGITS}"
    if not luhn_is_valid(reference):
        return f"OCR {reference} has a wrong check digit"
    if reference[-2] != str(len(reference) % 10):
        return f"OCR {reference} has a wrong length digit"
    return ""


def bankgiro_digits(value: str) -> str:
    """``value`` without the spaces and hyphen people write in a bankgiro number."""
    return re.sub(r"[\s\-]", "", value or "")


def bankgiro_problem(value: str) -> str:
    """Why ``value`` is not a bankgiro number ("" when it is): 7 or 8 digits ending in a Luhn check digit."""
    digits = bankgiro_digits(value)
    if not _DIGITS.fullmatch(digits) or len(digits) not in (7, 8):
        return _("A bankgiro number has 7 or 8 digits, e.g. 123-4566 or 5050-1055.")
    if not luhn_is_valid(digits):
        return _("Bankgiro %(number)s has a wrong check digit; check the number.") % {"number": bankgiro_format(digits)}
    return ""


def bankgiro_format(value: str) -> str:
    """A bankgiro number as Bankgirot writes it: 123-4566 or 5050-1055."""
    digits = bankgiro_digits(value)
    return f"{digits[:-4]}-{digits[-4:]}" if len(digits) > 4 else digits
