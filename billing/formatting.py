"""Money, number and date formatting for invoices, credit notes, their emails and the portal.

One place decides how an amount looks in a language, so the PDF, the email and the portal agree.
CLDR data comes from Babel (a dependency of django-money): Swedish writes ``1 234,50 kr`` with a
no-break space as thousands separator and a decimal comma; English writes ``$1,234.50``. The
amounts are exact Decimals; nothing here rounds except to the decimals asked for.
"""

from datetime import date
from decimal import Decimal

from babel.dates import format_date as babel_format_date
from babel.numbers import format_currency, format_decimal, get_currency_symbol

# The customer's language (customers.models.LANGUAGE_CHOICES) → the CLDR locale its documents use.
LOCALES = {"en": "en_US", "sv": "sv_SE"}
DEFAULT_LANGUAGE = "en"


def locale_for(language: str | None) -> str:
    """The CLDR locale of a customer language; unknown or empty languages read as English."""
    return LOCALES.get((language or DEFAULT_LANGUAGE)[:2].lower(), LOCALES[DEFAULT_LANGUAGE])


def _currency_pattern(locale: str, places: int) -> str:
    digits = "#,##0." + "0" * places
    # CLDR: English puts the symbol first, Swedish after the number behind a no-break space.
    return f"{digits}\u00a0¤" if locale.startswith("sv") else f"¤{digits}"


def _format_currency(amount: Decimal, currency: str, language: str | None, places: int) -> str:
    locale = locale_for(language)
    text = format_currency(
        Decimal(amount), currency, format=_currency_pattern(locale, places), locale=locale, currency_digits=False
    )
    if not locale.startswith("sv") and get_currency_symbol(currency, locale=locale) == currency:
        text = text.replace(currency, currency + "\u00a0", 1)  # "SEK 1,234.50", not "SEK1,234.50"
    return text


def format_money(amount: Decimal, currency: str, language: str | None) -> str:
    """``amount`` in ``currency`` as the customer's language writes it, with two decimals.

    ``format_money(Decimal("1234.5"), "SEK", "sv") == "1\\u00a0234,50\\u00a0kr"`` and
    ``format_money(Decimal("1234.5"), "USD", "en") == "$1,234.50"``. A currency without a local
    symbol in English keeps its code, separated by a no-break space (``SEK 1,234.50``).
    """
    return _format_currency(amount, currency, language, 2)


def format_quantity(quantity: Decimal, language: str | None) -> str:
    """A quantity without trailing zeros (``1.5``, ``1 000`` / ``1,000``), up to six decimals."""
    return format_decimal(Decimal(quantity), format="#,##0.######", locale=locale_for(language))


def format_unit_price(price: Decimal, currency: str, language: str | None) -> str:
    """A unit price: two decimals, or as many as it really has, up to six (``$0.0035``)."""
    exponent = Decimal(price).normalize().as_tuple().exponent
    places = min(6, max(2, -exponent)) if isinstance(exponent, int) else 2
    return _format_currency(price, currency, language, places)


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
