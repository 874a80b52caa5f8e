"""Template helpers for the economics pages: ratios as percentages."""

from decimal import Decimal

from django import template
from django.utils import translation

from billing import formatting

register = template.Library()


@register.filter
def ratio_percent(value):
    """A ratio (0.1234) as a percentage in the active language (``12.34%``); empty for None."""
    if value is None or value == "":
        return "—"
    return formatting.format_percent((Decimal(value) * 100).quantize(Decimal("0.01")), translation.get_language())
