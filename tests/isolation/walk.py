"""Every URL of the site, filled with tenant B's object ids: from the URL resolvers, the admin registry
and the OpenAPI schema. Nothing here names a page; a new URL is walked as soon as it is routed.

A ``Probe`` is one request: a URL, a method, a body, and whether it aims at one of tenant B's objects
(then only 403/404, a 405 for a write, or a redirect to a login page is right) or is a page without an
object id (any status below 500, but no tenant-B marker). A URL parameter the walker cannot fill
raises ``Unfillable`` naming the route, unless the route is in ``SKIPPED`` with the reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from drf_spectacular.generators import SchemaGenerator

from billing import pay_links
from customers.services import ChangeAction
from customers.tenancy import platform_scope
from portal.views.customer_portal import EXPORT_FORMATS
from tests.isolation.world import TenantWorld, tenant_owned_models

# Routes not walked, with the reason.
SKIPPED = {
    "admin:<catch-all>": "admin/(?P<url>.*)$ answers any path with a redirect or 404; every real admin path is walked",
    "<format-suffix>": "DRF's .json/.api suffix routes run the same view as the plain route, which is walked",
}
# Parameters that hold an object id, by name, when the route itself does not say which model.
ID_PARAMS = {
    "customer_id": "customers.Customer",
    "invoice_id": "billing.Invoice",
    "credit_note_id": "billing.CreditNote",
    "line_id": "billing.InvoiceLine",
}
WRITE_METHODS = ("post", "put", "patch", "delete")
MAX_POSTS = 4
# A form a POST to any HTML page carries: tenant B's ids under every name a form may take them.
FORM_KEYS = ("tenant", "customer", "contract", "invoice", "credit_request", "opportunity", "rule")


class Unfillable(Exception):
    pass


@dataclass(frozen=True)
class Probe:
    route: str  # the route's name (or pattern), for the report
    url: str
    method: str = "get"
    body: str | None = None  # JSON text for the API, else a form
    content_type: str | None = None
    targets_b: bool = False  # the URL names one of tenant B's objects
    data: tuple = ()  # form fields (key, value) for an HTML POST

    def describe(self) -> str:
        return f"{self.method.upper()} {self.url} [{self.route}]"


@dataclass
class Route:
    pattern: str
    name: str | None
    callback: object
    params: list[str]  # named parameters, or "#0", "#1" for regex groups without a name


def routes(resolver=None, prefix="", namespaces=()) -> list[Route]:
    """Every URL pattern, with its full pattern text, namespaced name and parameter names."""
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        text = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            spaces = namespaces + ((entry.namespace,) if entry.namespace else ())
            found += routes(entry, text, spaces)
            continue
        assert isinstance(entry, URLPattern)
        pattern = entry.pattern
        if hasattr(pattern, "converters") and pattern.converters:
            params = list(pattern.converters)
        else:
            regex = pattern.regex
            named = list(regex.groupindex)
            params = named or [f"#{i}" for i in range(regex.groups)]
        name = ":".join(namespaces + (entry.name,)) if entry.name else None
        found.append(Route(text, name, entry.callback, params))
    return found


def _model(label):
    return apps.get_model(label)


def b_ids(b_pks, label) -> list:
    ids = b_pks.get(label, [])
    if not ids:
        raise Unfillable(f"tenant B has no {label} row to aim at")
    return ids


def admin_model(route: Route):
    match = re.match(r"admin/(\w+)/(\w+)/", route.pattern)
    if match:
        try:
            return apps.get_model(match.group(1), match.group(2))
        except LookupError:
            return None
    return None


def history_ids(model, pk) -> list:
    history = getattr(model, "history", None)
    if history is None:
        return []
    with platform_scope():
        return list(model.history.model._base_manager.filter(**{model._meta.pk.attname: pk}).values_list("pk", flat=True))


def fill_route(route: Route, b: TenantWorld, b_pks, extra) -> list[tuple[str, bool]]:
    """(url, aims at B) for every way of filling ``route``'s parameters; Unfillable when it can't."""
    params = route.params
    if not params:
        if route.name is None:
            raise Unfillable(f"unnamed route {route.pattern}")
        return [(reverse(route.name), False)]
    if route.pattern.startswith("admin/") and route.name is None and "(?P<url>" in route.pattern:
        return []  # SKIPPED["admin:<catch-all>"]
    if "format" in params:
        return []  # SKIPPED["<format-suffix>"]
    model = admin_model(route)

    def reverse_each(values_list):
        urls = []
        for args in values_list:
            urls.append(reverse(route.name, kwargs=args) if isinstance(args, dict) else reverse(route.name, args=args))
        return urls

    # The admin: change/delete/history/custom views of a model, by object_id.
    if model is not None and params[0] in ("object_id", "#0", "pk"):
        label = model._meta.label
        ids = b_pks.get(label) if label in b_pks else extra["user_ids"] if label == "auth.User" else None
        if ids is None:
            ids = extra["other_ids"].get(label)
        if not ids:
            raise Unfillable(f"{route.name or route.pattern}: no tenant-B {label} id")
        if route.name is None:  # <path:object_id>/ redirects to the change page
            base = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            return [(f"{base}{pk}/", True) for pk in ids]
        if params == ["#0", "#1"]:  # simple_history's version page
            # A model without a history table still has the admin's version URL: aim it at B's id.
            pairs = [(pk, version) for pk in ids for version in history_ids(model, pk) or [pk]]
            return [(u, True) for u in reverse_each(pairs)]
        if params == ["object_id", "action"]:
            return [(u, True) for u in reverse_each([{"object_id": pk, "action": a} for pk in ids for a in ChangeAction.values])]
        if params in (["object_id"], ["pk"]):  # ["pk"]: a third-party admin's own views (django-otp's QR code)
            return [(u, True) for u in reverse_each([{params[0]: pk} for pk in ids])]
    if model is not None and model._meta.label == "auth.User" and params == ["id"]:
        return [(u, True) for u in reverse_each([{"id": pk} for pk in extra["user_ids"]])]
    if route.name == "admin:view_on_site":
        pairs = [
            {"content_type_id": ContentType.objects.get_for_model(_model(label)).pk, "object_id": pk}
            for label, pks in b_pks.items() for pk in pks[:1]
        ]
        return [(u, True) for u in reverse_each(pairs)]
    if route.name == "admin:app_list":
        labels = sorted({m._meta.app_label for m in admin.site._registry})
        return [(reverse("admin:app_list", kwargs={"app_label": label}), False) for label in labels]
    if set(params) == {"uidb64", "token"}:  # a reset link: public, guarded by its token
        uid = urlsafe_base64_encode(force_bytes(b.portal_user.pk))
        return [(reverse(route.name, kwargs={"uidb64": uid, "token": "set-password"}), False)]
    if params == ["token"] and route.name == "card_pay":  # a pay link: public, guarded by its signature
        forged = [signing.dumps([b.tenant.pk, pk], salt=pay_links.SALT, key="not-our-secret") for pk in b_pks["billing.Invoice"]]
        return [(u, True) for u in reverse_each([[token] for token in forged])]
    if params == ["tenant_slug"]:
        # The card provider's webhook of tenant B: public, guarded by B's signing secret, as a reset link by
        # its token. Nobody's session opens it; unsigned it answers 400 and must show nothing of B.
        return [(reverse(route.name, args=[b.tenant.slug]), False)]
    if set(params) == {"page_key", "panel_key"}:
        return [(url, False) for url in extra["csv_links"]]
    # Routes with object ids named by their parameter, and a few parameters that take a value list.
    options: list[dict] = [{}]
    targets = False
    for param in params:
        if id_param_model(param):
            values = b_ids(b_pks, id_param_model(param))
            targets = True
        elif param == "export_format":
            values = list(EXPORT_FORMATS)
        else:
            raise Unfillable(f"{route.name or route.pattern}: no rule fills <{param}>")
        options = [{**o, param: v} for o in options for v in values]
    return [(u, targets) for u in reverse_each(options)]


def page_probes(b: TenantWorld, b_pks, extra) -> tuple[list[Probe], list[str]]:
    """GET (and a POST for every object URL and page) of every non-API route; and the routes not fillable."""
    probes, unfillable = [], []
    form = tuple((key, str(extra["b_form_ids"][key])) for key in FORM_KEYS)
    for route in routes():
        if route.pattern.startswith("api/v1/") and route.name != "api-root":
            continue  # walked from the OpenAPI schema; api_routes_missing_from_schema checks none is left out
        try:
            filled = fill_route(route, b, b_pks, extra)
        except Unfillable as exc:
            unfillable.append(str(exc))
            continue
        label = route.name or route.pattern
        for n, (url, targets) in enumerate(filled):
            probes.append(Probe(label, url, "get", targets_b=targets))
            # No POST to a logout (it ends the identity's session and holds no data) nor to the admin's
            # <object_id>/ redirect (it only redirects to the change page, which is POSTed to itself).
            # A page without an object id is POSTed once (the dashboards' CSV links are one view), and a
            # route with many fillings (view_on_site: one per model) with its first MAX_POSTS.
            posted = n < (MAX_POSTS if targets else 1)
            if posted and "logout" not in label and route.name is not None:
                probes.append(Probe(label, url, "post", targets_b=targets, data=form + (("post", "yes"),)))
    return probes, unfillable


def action_probes(request_for_role, b_pks) -> list[Probe]:
    """Every admin action the role is offered, POSTed to the changelist with tenant B's ids."""
    probes = []
    for model, model_admin in admin.site._registry.items():
        ids = b_pks.get(model._meta.label)
        if not ids:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for action in model_admin.get_actions(request_for_role):
            data = (("action", action), ("index", "0"), ("post", "yes"), *(("_selected_action", str(pk)) for pk in ids))
            probes.append(Probe(f"{model._meta.label} action {action}", url, "post", data=data))
    return probes


def autocomplete_probes() -> list[Probe]:
    """The admin's autocomplete for every field of every admin that offers one, searched for tenant B's word."""
    probes = []
    for model, model_admin in admin.site._registry.items():
        for field_name in model_admin.autocomplete_fields:
            for term in ("Quokka", "quokka-cust"):
                query = urlencode({"app_label": model._meta.app_label, "model_name": model._meta.model_name,
                                   "field_name": field_name, "term": term})
                probes.append(Probe(f"autocomplete {model._meta.label}.{field_name}", f"/admin/autocomplete/?{query}"))
    return probes


def api_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def id_param_model(param: str) -> str | None:
    """The tenant-owned model a ``<name>_id`` parameter names (``credit_note_id`` -> billing.CreditNote)."""
    if param in ID_PARAMS:
        return ID_PARAMS[param]
    if not param.endswith("_id"):
        return None
    wanted = param[: -len("_id")].replace("_", "")
    found = [m._meta.label for m in tenant_owned_models() if m._meta.model_name == wanted]
    return found[0] if len(found) == 1 else None


def _api_values(path: str, param: str, b: TenantWorld, b_pks) -> tuple[list, bool]:
    """Tenant B's values for a schema path's parameter, and whether they name B's objects."""
    label = id_param_model(param)
    if label:
        return b_ids(b_pks, label), True
    view = resolve(re.sub(r"\{[^}]+\}", "1", path)).func
    cls = getattr(view, "cls", None)
    queryset = getattr(cls, "queryset", None)
    if queryset is not None:
        model = queryset.model
    else:  # a view with get_queryset only: its serializer's model
        model = getattr(getattr(getattr(cls, "serializer_class", None), "Meta", None), "model", None)
    lookup_field = getattr(cls, "lookup_field", "pk")
    if model is not None and param in ("id", "pk", lookup_field, getattr(cls, "lookup_url_kwarg", None)):
        field = "pk" if param in ("id", "pk") and lookup_field in ("pk", "id") else lookup_field
        with platform_scope():
            values = list(model._base_manager.filter(tenant=b.tenant).order_by("pk").values_list(field, flat=True))
        if values:
            return values, True
    raise Unfillable(f"API {path}: no rule fills {{{param}}}")


def api_bodies(b_pks, b: TenantWorld, extra) -> list[str]:
    """Two JSON bodies for every write: tenant B's ids under every key; B's references as text (also as a batch)."""
    ids = {key: value for key, value in extra["b_form_ids"].items()}
    refs = {
        "customer": "quokka-cust", "external_ref": "quokka-cust", "metric": "quokka_jobs", "metric_code": "quokka_jobs",
        "timestamp": "2026-11-06T10:00:00Z", "idempotency_key": "isolation-probe", "quantity": 1,
        "month": "2026-11", "amount": "1.00", "tenant": ids["tenant"], "reason": "probe", "effective_on": "2026-12-01",
        "close_early": True,
    }
    return [json.dumps(ids), json.dumps({**refs, "events": [refs], "rows": [refs]})]


def api_probes(b: TenantWorld, b_pks, extra) -> tuple[list[Probe], list[str], set[str]]:
    """Every path × method of the OpenAPI schema, path ids filled with tenant B's; writes with JSON bodies."""
    probes, unfillable, paths = [], [], set()
    schema = api_schema()
    bodies = api_bodies(b_pks, b, extra)
    for path, operations in schema["paths"].items():
        paths.add(path)
        path_params = re.findall(r"\{([^}]+)\}", path)
        try:
            fills = [{}]
            for param in path_params:
                values, _targets = _api_values(path, param, b, b_pks)
                fills = [{**f, param: value} for f in fills for value in values]
        except Unfillable as exc:
            unfillable.append(str(exc))
            continue
        for fill in fills:
            url = path
            for param, value in fill.items():
                url = url.replace("{" + param + "}", str(value))
            for method in operations:
                if method not in ("get", *WRITE_METHODS):
                    continue
                label = f"{method.upper()} {path}"
                if method in ("get", "delete"):
                    probes.append(Probe(label, url, method, targets_b=bool(fill)))
                else:
                    probes += [Probe(label, url, method, body=body, content_type="application/json", targets_b=bool(fill))
                               for body in bodies]
    return probes, unfillable, paths


def api_routes_missing_from_schema(schema_paths: set[str]) -> list[str]:
    """API routes (under /api/v1/) whose view no schema path reaches: they would go unwalked."""
    schema_names = set()
    for path in schema_paths:
        try:
            schema_names.add(resolve(re.sub(r"\{[^}]+\}", "1", path)).view_name)
        except Exception:  # noqa: BLE001 - a schema path that does not resolve is reported by its name
            schema_names.add(path)
    missing = []
    for route in routes():
        if not route.pattern.startswith("api/v1/") or "format" in route.params or route.name == "api-root":
            continue
        if route.name not in schema_names:
            missing.append(route.name or route.pattern)
    return sorted(set(missing))
