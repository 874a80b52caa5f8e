"""Money, quantity and date filters, written in ``customers.locales.formats_language()`` (billing.formatting).

That is the customer's language in the portal and the tenant's locale on staff pages.
"""

from django import template

from billing import formatting
from customers.locales import formats_language

register = template.Library()


@register.filter
def money(amount, currency):
    """``{{ invoice.total|money:invoice.currency }}`` → ``$1,234.50`` / ``1 234,50 kr``."""
    if amount is None or amount == "":
        return ""
    return formatting.format_money(amount, currency, formats_language())


@register.filter
def unit_price(amount, currency):
    return formatting.format_unit_price(amount, currency, formats_language())


@register.filter
def quantity(value):
    return "" if value is None else formatting.format_quantity(value, formats_language())


@register.filter
def day(value):
    return formatting.format_day(value, formats_language())


@register.filter
def percent(value):
    return formatting.format_percent(value, formats_language())
