"""The money rules: minor units from the currency, explicit half-up rounding, totals per currency."""

from decimal import ROUND_DOWN, Decimal

import pytest
from django.core.checks import Error
from django.test import override_settings

from customers.money import (
    MoneyError,
    format_amount,
    format_money,
    format_unit_price,
    minor_unit,
    minor_unit_places,
    money_checks,
    money_round,
    money_totals,
)


@pytest.mark.parametrize("currency, places", [("USD", 2), ("SEK", 2), ("JPY", 0), ("KWD", 3), ("EUR", 2)])
def test_minor_unit_comes_from_the_currency(currency, places):
    assert minor_unit_places(currency) == places
    assert minor_unit(currency) == Decimal(1).scaleb(-places)


@pytest.mark.parametrize("currency", ["XYZ", "usd", "", None, 12])
def test_an_unknown_currency_is_refused(currency):
    with pytest.raises(MoneyError):
        minor_unit_places(currency)


@pytest.mark.parametrize(
    "amount, currency, rounded",
    [
        ("2.345", "USD", "2.35"),
        ("-2.345", "USD", "-2.35"),  # half away from zero
        ("2.344", "USD", "2.34"),
        ("1234.5", "JPY", "1235"),
        ("1234.49", "JPY", "1234"),
        ("1.2345", "KWD", "1.235"),
        ("10", "SEK", "10.00"),
    ],
)
def test_money_round_is_half_up_to_the_minor_unit(amount, currency, rounded):
    result = money_round(Decimal(amount), currency)
    assert result == Decimal(rounded) and str(result) == rounded


def test_money_round_takes_another_rule_when_asked():
    assert money_round(Decimal("2.349"), "USD", ROUND_DOWN) == Decimal("2.34")


def test_money_round_refuses_floats():
    with pytest.raises(MoneyError):
        money_round(2.345, "USD")


def test_totals_are_kept_per_currency():
    totals = money_totals([(Decimal("10.50"), "USD"), (Decimal("100"), "SEK"), (Decimal("0.25"), "USD")])
    assert totals == {"USD": Decimal("10.75"), "SEK": Decimal("100")}
    assert list(totals) == ["USD", "SEK"]
    assert money_totals([]) == {}


@pytest.mark.parametrize(
    "amount, currency, text",
    [("100", "USD", "100.00"), ("0.1250", "USD", "0.125"), ("5000.00", "JPY", "5000"), ("1.5", "KWD", "1.500")],
)
def test_format_amount_is_exact_with_the_minor_unit_at_least(amount, currency, text):
    assert format_amount(Decimal(amount), currency) == text


@pytest.mark.parametrize(
    "amount, currency, language, text",
    [
        ("1234.5", "USD", "en", "$1,234.50"),
        ("1234.5", "SEK", "sv", "1\u00a0234,50\u00a0kr"),
        ("1234.5", "SEK", "en", "SEK\u00a01,234.50"),
        ("1234.5", "JPY", "en", "¥1,235"),
        ("1234.5678", "KWD", "en", "KWD\u00a01,234.568"),
        ("0.005", "USD", "en", "$0.01"),  # half up, not Babel's half-even
    ],
)
def test_format_money_uses_the_currency_minor_unit(amount, currency, language, text):
    assert format_money(Decimal(amount), currency, language) == text


def test_format_unit_price_keeps_real_decimals_up_to_six():
    assert format_unit_price(Decimal("0.0035"), "USD", "en") == "$0.0035"
    assert format_unit_price(Decimal("2"), "USD", "en") == "$2.00"
    assert format_unit_price(Decimal("3"), "JPY", "en") == "¥3"


def test_the_deployment_refuses_a_currency_its_columns_cannot_hold():
    assert money_checks() == []
    with override_settings(CURRENCIES=("USD", "KWD", "XYZ")):
        errors = money_checks()
    assert [(type(e), e.id) for e in errors] == [(Error, "customers.E002"), (Error, "customers.E001")]
    assert "KWD has 3 decimals" in errors[0].msg
