"""Money, quantity and date filters for portal pages, in the active language (billing.formatting)."""

from django import template
from django.utils import translation

from billing import formatting

register = template.Library()


@register.filter
def money(amount, currency):
    """``{{ invoice.total|money:invoice.currency }}`` → ``$1,234.50`` / ``1 234,50 kr``."""
    if amount is None or amount == "":
        return ""
    return formatting.format_money(amount, currency, translation.get_language())


@register.filter
def unit_price(amount, currency):
    return formatting.format_unit_price(amount, currency, translation.get_language())


@register.filter
def quantity(value):
    return "" if value is None else formatting.format_quantity(value, translation.get_language())


@register.filter
def day(value):
    return formatting.format_day(value, translation.get_language())


@register.filter
def percent(value):
    return formatting.format_percent(value, translation.get_language())
