"""The admin home's key figures (portal.dashboards.home), for the staff member's active tenant."""

from django import template

from portal.dashboards.home import key_figures

register = template.Library()


@register.simple_tag(takes_context=True)
def tenant_key_figures(context) -> list[dict]:
    """``{% tenant_key_figures as figures %}``: the figures, or none without a staff membership
    (a platform superuser sees every tenant, so no one tenant's figures)."""
    request = context.get("request")
    if request is None or getattr(request, "membership", None) is None:
        return []
    return key_figures(request.tenant)
