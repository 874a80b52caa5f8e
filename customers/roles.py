"""What each membership role may do, by area of the product.

Everyone in a tenant may view everything of that tenant. Editing is by area: account managers
keep accounts, contracts and the pipeline; finance keeps accounts, contracts and billing but only
reads the pipeline; viewers read; owners do everything, including the team and API keys.
"""

from customers.models import Role

ACCOUNTS, CONTRACTS, PIPELINE, BILLING, TEAM = "accounts", "contracts", "pipeline", "billing", "team"

EDITABLE_AREAS = {
    Role.OWNER: {ACCOUNTS, CONTRACTS, PIPELINE, BILLING, TEAM},
    Role.ACCOUNT_MANAGER: {ACCOUNTS, CONTRACTS, PIPELINE},
    Role.FINANCE: {ACCOUNTS, CONTRACTS, BILLING},
    Role.VIEWER: set(),
}

AREA_BY_MODEL = {
    "customers.customer": ACCOUNTS,
    "customers.contact": ACCOUNTS,
    "customers.portalaccess": ACCOUNTS,
    "customers.contract": CONTRACTS,
    "customers.contractline": CONTRACTS,
    "customers.contractchange": CONTRACTS,
    "customers.membership": TEAM,
    "customers.tenantapikey": TEAM,
    # What customers cost to serve is money: finance keeps it, as it keeps billing.
    "revenue.customercost": BILLING,
    "revenue.modelprice": BILLING,
}
AREA_BY_APP = {"billing": BILLING, "revenue": PIPELINE}


def area_of(model) -> str:
    label = model._meta.label_lower
    return AREA_BY_MODEL.get(label) or AREA_BY_APP.get(model._meta.app_label, TEAM)


def role_can_edit(role: str, model) -> bool:
    """True when ``role`` may add, change or delete rows of ``model`` (a model class or instance)."""
    return area_of(model) in EDITABLE_AREAS.get(role, set())
