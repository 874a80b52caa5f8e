"""Shared building blocks of the staff dashboards: columns, panels, pages and the Display that
formats figures in the tenant's language and currency (money to its minor unit, ratios to 4 places in CSV,
ROUND_HALF_UP). Nothing here computes a figure; it only shows one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from babel.dates import format_date
from babel.numbers import format_decimal

from billing import formatting
from customers.money import money_round

CENT = Decimal("0.01")
RATIO = Decimal("0.0001")

# Column kinds: how a cell is shown and how it is written to CSV.
TEXT, MONEY, PERCENT, COUNT, MULTIPLE, MONTHS = "text", "money", "percent", "count", "multiple", "months"
LINK = "link"  # a value ``(text, url)``: the text linked on the page, the text alone in CSV


@dataclass
class Column:
    key: str
    title: str
    kind: str = TEXT


@dataclass
class Panel:
    key: str
    title: str
    columns: list[Column]
    rows: list[list]
    charts: list[dict] = field(default_factory=list)
    note: str = ""


@dataclass
class Page:
    key: str
    title: Callable[[], str]
    build: Callable
    controls: str  # "window", "month", "none"


class Display:
    """Formats figures in one language and currency; shared by tables, KPIs and chart hints."""

    def __init__(self, tenant):
        self.language = tenant.locale if tenant.locale in formatting.LOCALES else formatting.DEFAULT_LANGUAGE
        self.locale = formatting.locale_for(self.language)
        self.currency = tenant.reporting_currency

    def money(self, amount) -> str:
        return "—" if amount is None else formatting.format_money(amount, self.currency, self.language)

    def percent(self, ratio) -> str:
        if ratio is None:
            return "—"
        number = format_decimal((ratio * 100).quantize(Decimal("0.1"), ROUND_HALF_UP), format="#,##0.0", locale=self.locale)
        return f"{number}\u00a0%" if self.language == "sv" else f"{number}%"

    def number(self, value, pattern="#,##0") -> str:
        return "—" if value is None else format_decimal(value, format=pattern, locale=self.locale)

    def month(self, month: date) -> str:
        return format_date(month, "MMM yyyy", locale=self.locale)

    def day(self, day) -> str:
        return formatting.format_day(day, self.language)

    def cell(self, value, kind: str) -> dict:
        if kind == LINK:
            text, url = value
            return {"text": text, "url": url, "numeric": False, "negative": False}
        if kind == MONEY:
            text = self.money(value)
        elif kind == PERCENT:
            text = self.percent(value)
        elif kind == COUNT:
            text = self.number(value)
        elif kind == MULTIPLE:
            text = "—" if value is None else self.number(value.quantize(CENT, ROUND_HALF_UP), "#,##0.00") + "×"
        elif kind == MONTHS:
            text = "—" if value is None else self.number(value.quantize(Decimal("0.1"), ROUND_HALF_UP), "#,##0.0")
        else:
            text = "" if value is None else str(value)
        return {"text": text, "numeric": kind != TEXT, "negative": kind == MONEY and value is not None and value < 0}

    def chart_hints(self) -> dict:
        return {"currency": self.currency, "locale": self.locale.replace("_", "-")}


def csv_value(value, kind: str, currency: str) -> str:
    """Money to the currency's minor unit, ratios to 4 places (ROUND_HALF_UP), like the metrics API."""
    if value is None:
        return ""
    if kind == LINK:
        return value[0]
    if kind == MONEY:
        return str(money_round(value, currency))
    if kind in (PERCENT, MULTIPLE, MONTHS):
        return str(value.quantize(RATIO, ROUND_HALF_UP))
    if isinstance(value, date):
        return value.isoformat()[:7] if value.day == 1 else value.isoformat()
    return str(value)


def series(values, places=CENT) -> list[str | None]:
    """Chart values as decimal strings (the browser only draws them)."""
    return [None if v is None else str(v.quantize(places, ROUND_HALF_UP)) for v in values]


class BadRequest(Exception):
    """A query parameter the page cannot use; the message is shown."""
