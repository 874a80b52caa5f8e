"""Money: an exact Decimal amount and an ISO 4217 currency code, and the rules every app follows.

- Amounts are ``Decimal``, never float. A currency is its ISO 4217 code (``"USD"``).
- The minor unit comes from the currency (ISO 4217, via py-moneyed): USD and SEK have 2 decimals,
  JPY none, KWD 3. Nothing assumes cents.
- Rounding is explicit and named: ``money_round`` rounds half up (half away from zero) to the
  currency's minor unit; a caller that needs another rule passes it.
- Totals are per currency (``money_totals``): amounts in different currencies are never added.
- ``format_money`` writes an amount as the reader's language does, with the currency's minor-unit
  places (``$1,234.50``, ``1 234,50 kr``, ``¥1,235``); ``format_amount`` is the exact plain text the
  API sends (``"100.00"``, ``"0.125"``, ``"5000"`` in JPY).

Storage: billing keeps an amount column (``DecimalField(**MONEY_COLUMN)``) next to the document's
``currency``; customers and revenue keep django-money's ``MoneyField``, whose value is a py-moneyed
``Money`` (``.amount``, ``.currency``). This module is the one place either library is imported.
"""

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import moneyed
from babel.numbers import format_currency, get_currency_symbol
from djmoney.models.fields import MoneyField
from djmoney.money import Money
from djmoney.settings import CURRENCY_CHOICES

from customers.locales import locale_for

__all__ = [
    "CURRENCY_CHOICES",
    "MONEY_COLUMN",
    "Money",
    "MoneyError",
    "MoneyField",
    "format_amount",
    "format_money",
    "format_unit_price",
    "minor_unit",
    "minor_unit_places",
    "money_round",
    "money_totals",
]

# An amount column (invoice totals, costs): 16 whole digits and 2 decimals. Every currency the deployment
# allows (settings.CURRENCIES) must fit its minor unit in those decimals: ``money_checks`` refuses to start
# otherwise (KWD's 3 decimals would need a wider column, not silent rounding).
MONEY_COLUMN = {"max_digits": 18, "decimal_places": 2}
UNIT_PRICE_MAX_PLACES = 6


class MoneyError(ValueError):
    """An amount or currency that money cannot be made of (unknown currency, non-decimal amount)."""


@lru_cache(maxsize=None)
def minor_unit_places(currency: str) -> int:
    """Decimal places of the currency's minor unit: 2 for USD, 0 for JPY, 3 for KWD.

    Raises MoneyError for a code that is not an ISO 4217 currency, or one whose minor unit is not a
    power of ten (none is today; this refuses to guess).
    """
    if not isinstance(currency, str):
        raise MoneyError(f"A currency is an ISO 4217 code string, got {currency!r}.")
    try:
        sub_unit = moneyed.get_currency(currency).sub_unit
    except moneyed.CurrencyDoesNotExist:
        raise MoneyError(f"Unknown currency {currency!r}.") from None
    places = len(str(sub_unit)) - 1
    if sub_unit != 10**places:
        raise MoneyError(f"Currency {currency} has a minor unit of 1/{sub_unit}, not a power of ten.")
    return places


def minor_unit(currency: str) -> Decimal:
    """The currency's smallest unit as a quantum: ``Decimal("0.01")``, ``Decimal("1")``, ``Decimal("0.001")``."""
    return Decimal(1).scaleb(-minor_unit_places(currency))


def money_round(amount: Decimal, currency: str, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``amount`` rounded to the currency's minor unit (half up unless ``rounding`` says otherwise).

    ``money_round(Decimal("2.345"), "USD") == Decimal("2.35")``; ``money_round(Decimal("1234.5"), "JPY")
    == Decimal("1235")``. Raises MoneyError for a non-Decimal amount or an unknown currency.
    """
    if not isinstance(amount, Decimal):
        raise MoneyError(f"Money amounts are Decimals, got {amount!r}.")
    return amount.quantize(minor_unit(currency), rounding=rounding)


def money_totals(amounts: Iterable[tuple[Decimal, str]]) -> dict[str, Decimal]:
    """Sum ``(amount, currency)`` pairs per currency, exactly: ``{"USD": Decimal("12.50"), "SEK": …}``.

    Amounts in different currencies are never added together; currencies appear in first-seen order.
    """
    totals: dict[str, Decimal] = {}
    for amount, currency in amounts:
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    return totals


def money_checks(app_configs=None, **kwargs):
    """System check: every allowed currency is known and its minor unit fits ``MONEY_COLUMN``."""
    from django.conf import settings
    from django.core.checks import Error

    errors = []
    for currency in settings.CURRENCIES:
        try:
            places = minor_unit_places(currency)
        except MoneyError as exc:
            errors.append(Error(str(exc), id="customers.E001"))
            continue
        if places > MONEY_COLUMN["decimal_places"]:
            errors.append(Error(
                f"{currency} has {places} decimals but amounts are stored with {MONEY_COLUMN['decimal_places']}.",
                hint="Remove it from CURRENCIES or widen customers.money.MONEY_COLUMN (a migration).",
                id="customers.E002",
            ))
    return errors


def format_amount(amount: Decimal, currency: str) -> str:
    """The exact amount as plain text, no trailing zeros beyond the currency's minor unit (the API's form).

    ``format_amount(Decimal("100"), "USD") == "100.00"``, ``format_amount(Decimal("0.1250"), "USD") ==
    "0.125"``, ``format_amount(Decimal("5000.00"), "JPY") == "5000"``. Nothing is rounded away.
    """
    places = minor_unit_places(currency)
    normalized = amount.normalize()
    if -normalized.as_tuple().exponent < places:
        normalized = amount.quantize(Decimal(1).scaleb(-places))
    return f"{normalized:f}"


def _currency_pattern(locale: str, places: int) -> str:
    digits = "#,##0" + ("." + "0" * places if places else "")
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
    """``amount`` in ``currency`` as ``language`` writes it, rounded half up to the currency's minor unit.

    ``format_money(Decimal("1234.5"), "SEK", "sv") == "1\\u00a0234,50\\u00a0kr"``,
    ``format_money(Decimal("1234.5"), "USD", "en") == "$1,234.50"``, ``format_money(Decimal("1234.5"),
    "JPY", "en") == "¥1,235"``. A currency without a local symbol keeps its code, separated by a
    no-break space (``SEK 1,234.50`` in English).
    """
    places = minor_unit_places(currency)
    return _format_currency(money_round(Decimal(amount), currency), currency, language, places)


def format_unit_price(price: Decimal, currency: str, language: str | None) -> str:
    """A unit price with the currency's minor-unit places, or as many as it really has, up to six (``$0.0035``)."""
    exponent = Decimal(price).normalize().as_tuple().exponent
    places = minor_unit_places(currency)
    if isinstance(exponent, int):
        places = min(UNIT_PRICE_MAX_PLACES, max(places, -exponent))
    return _format_currency(price, currency, language, places)
