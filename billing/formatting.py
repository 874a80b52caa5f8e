"""Number, percent and date formatting for invoices, credit notes, their emails and the portal.

One place decides how a quantity, a rate or a day looks in a language, so the PDF, the email and the
portal agree; money itself is written by ``customers.money.format_money`` (minor units from the
currency) and the language → CLDR locale mapping is ``customers.locales``. Swedish writes ``1 234,5``
with a no-break space as thousands separator and a decimal comma; English writes ``1,234.5``.
"""

from datetime import date
from decimal import Decimal

from babel.dates import format_date as babel_format_date
from babel.numbers import format_decimal

from customers.locales import DEFAULT_LANGUAGE, LOCALES, locale_for
from customers.money import format_money, format_unit_price

__all__ = [
    "DEFAULT_LANGUAGE",
    "LOCALES",
    "format_day",
    "format_money",
    "format_percent",
    "format_quantity",
    "format_unit_price",
    "locale_for",
]


def format_quantity(quantity: Decimal, language: str | None) -> str:
    """A quantity without trailing zeros (``1.5``, ``1 000`` / ``1,000``), up to six decimals."""
    return format_decimal(Decimal(quantity), format="#,##0.######", locale=locale_for(language))


def format_percent(rate: Decimal, language: str | None) -> str:
    """A VAT rate given in percent (``25.00`` → ``25 %`` in Swedish, ``25%`` in English)."""
    number = format_decimal(Decimal(rate).normalize(), format="#,##0.##", locale=locale_for(language))
    return f"{number}\u00a0%" if locale_for(language).startswith("sv") else f"{number}%"


def format_day(day: date | None, language: str | None) -> str:
    """A calendar date: ``2026-11-05`` in Swedish (the Swedish convention), ``Nov 5, 2026`` in English."""
    if day is None:
        return ""
    locale = locale_for(language)
    return babel_format_date(day, "yyyy-MM-dd" if locale.startswith("sv") else "medium", locale=locale)
