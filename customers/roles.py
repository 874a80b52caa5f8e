"""What each membership role may do, by area of the product.

Everyone in a tenant may view everything of that tenant. Editing is by area: account managers
keep accounts, contracts and the pipeline; finance keeps accounts, contracts and billing but only
reads the pipeline; viewers read; owners do everything, including the team and API keys.

Which area a model is in is declared by the model's own app, with ``register_areas`` from its
``AppConfig.ready`` (customers declares its own below). A model no app declared is in the team
area: only owners edit it.
"""

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

from customers.models import Role

ACCOUNTS, CONTRACTS, PIPELINE, BILLING, TEAM = "accounts", "contracts", "pipeline", "billing", "team"
AREAS = {ACCOUNTS, CONTRACTS, PIPELINE, BILLING, TEAM}

EDITABLE_AREAS = {
    Role.OWNER: {ACCOUNTS, CONTRACTS, PIPELINE, BILLING, TEAM},
    Role.ACCOUNT_MANAGER: {ACCOUNTS, CONTRACTS, PIPELINE},
    Role.FINANCE: {ACCOUNTS, CONTRACTS, BILLING},
    Role.VIEWER: set(),
}

# Filled by register_areas: "app_label.modelname" -> area, and app_label -> area of its other models.
_AREA_BY_MODEL: dict[str, str] = {}
_AREA_BY_APP: dict[str, str] = {}


def _label(model) -> str:
    return model if isinstance(model, str) else model._meta.label_lower


def register_areas(app_label: str, areas: Mapping[str, str] | None = None, *, default: str | None = None) -> None:
    """App ``app_label`` declares the area of its models: ``areas`` maps a model (class or
    ``"app_label.modelname"``) to an area, ``default`` is the area of its models not named.

    Raises ImproperlyConfigured for an unknown area or a model of another app: an app declares
    only its own models. Registering the same declaration again (a second ``ready``) is harmless.
    """
    for model, area in (areas or {}).items():
        label = _label(model).lower()
        if label.split(".", 1)[0] != app_label or area not in AREAS:
            raise ImproperlyConfigured(f"{app_label} cannot declare {label!r} in area {area!r}.")
        _AREA_BY_MODEL[label] = area
    if default is not None:
        if default not in AREAS:
            raise ImproperlyConfigured(f"{app_label}: no area {default!r}.")
        _AREA_BY_APP[app_label] = default


def declared_area(model) -> str | None:
    """The area ``model``'s app declared for it (by name or as its app's default), or None."""
    label = _label(model)
    return _AREA_BY_MODEL.get(label) or _AREA_BY_APP.get(label.split(".", 1)[0])


def area_of(model) -> str:
    return declared_area(model) or TEAM


def role_can_edit(role: str, model) -> bool:
    """True when ``role`` may add, change or delete rows of ``model`` (a model class or instance)."""
    return area_of(model) in EDITABLE_AREAS.get(role, set())


register_areas(
    "customers",
    {
        "customers.customer": ACCOUNTS,
        "customers.contact": ACCOUNTS,
        "customers.portalaccess": ACCOUNTS,
        "customers.contract": CONTRACTS,
        "customers.contractline": CONTRACTS,
        "customers.contractchange": CONTRACTS,
        "customers.membership": TEAM,
        "customers.tenantapikey": TEAM,
    },
    default=TEAM,
)
