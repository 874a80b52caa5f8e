"""Role areas are declared by each app for its own models; customers.roles names no other app."""

import ast
from pathlib import Path

from django.apps import apps

from customers import roles
from customers.tenancy import TenantOwned

ROLES_SOURCE = Path(roles.__file__)


def test_every_tenant_owned_model_has_an_area_its_own_app_declared():
    undeclared = [
        model._meta.label_lower
        for model in apps.get_models()
        if issubclass(model, TenantOwned) and roles.declared_area(model) is None
    ]
    assert undeclared == []


def test_an_app_cannot_declare_another_apps_models():
    try:
        roles.register_areas("billing", {"revenue.opportunity": roles.BILLING})
    except Exception as exc:  # ImproperlyConfigured
        assert "cannot declare" in str(exc)
    else:
        raise AssertionError("billing declared a revenue model")
    assert roles.area_of(apps.get_model("revenue", "Opportunity")) == roles.PIPELINE


def test_customers_roles_names_no_other_app():
    others = {config.label for config in apps.get_app_configs()} - {"customers"}
    tree = ast.parse(ROLES_SOURCE.read_text())
    imported = {
        (node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    # "billing" is also the name of an area (finance's); as a string it may only be that.
    named = {s for s in strings if s.split(".")[0] in others and s not in roles.AREAS}
    assert imported & others == set()
    assert named == set()
