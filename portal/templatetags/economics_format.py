"""Template helpers for the economics pages: ratios as percentages."""

from decimal import Decimal

from django import template

from billing import formatting
from customers.locales import formats_language

register = template.Library()


@register.filter
def ratio_percent(value):
    """A ratio (0.1234) as a percentage in the tenant's (staff) or active language (``12.34%``); empty for None."""
    if value is None or value == "":
        return "—"
    return formatting.format_percent((Decimal(value) * 100).quantize(Decimal("0.01")), formats_language())
