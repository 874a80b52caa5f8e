"""Tenant isolation over every URL: as each role of tenant A, a portal user and an API key of tenant A,
every admin URL (changelist, change, history, delete, custom views, actions, autocomplete), every staff
page, every API operation of the OpenAPI schema and every portal page and download, aimed at tenant B's
object ids (issue 12). NetBox's generic view tests are the model: nothing here names a page, so a new
URL, admin, API endpoint or tenant-owned model is walked without a new test.

Each request aimed at one of tenant B's objects must be refused (403 or 404; 405 for a write the URL
does not take; a redirect to a login page for an identity the page is not for); every other page may
answer as it likes below 500. No response, whatever its status, may carry a tenant-B marker (B's word,
invoice numbers or amount; see ``tests/isolation/world.py``) in its body or headers, and afterwards no
row of tenant B has changed and no row of tenant A points at one of tenant B's.

``test_every_url_as_every_identity`` is the whole walk (slow: ./bin/test runs it);
``test_every_route_as_an_owner_quick`` samples it for the quick loop: one request of each route (aimed
at tenant B's object where the route takes one), as tenant A's owner.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.db import transaction
from django.test import Client
from django.urls import Resolver404, resolve, reverse

from benchmarks.pages import staff_request
from customers.models import Role
from customers.tenancy import TenantOwned, platform_scope, tenant_scope
from tests.isolation import walk
from tests.isolation.world import (
    B_WORD,
    NOT_BUILT,
    b_rows,
    build_world,
    cross_tenant_references,
    markers_found,
    missing_models,
    platform_row,
    snapshot,
)

REFUSED = {403, 404, 405}  # 405: the URL takes no such method, which says nothing of the object


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Both tenants, built once for the module in a transaction rolled back at its end."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            a, b = build_world()
            yield a, b, _extra(a, b)
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def _extra(a, b) -> dict:
    """What the walker needs beyond B's ids: B's users, platform rows, the dashboards' CSV links."""
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from rest_framework_api_key.models import APIKey

    from billing.models import CreditRequest, Invoice
    from customers.models import Contract, Customer
    from revenue.models import AnomalyRule, Opportunity

    with platform_scope():
        group = Group.objects.create(name=f"{B_WORD} platform group")
        platform_key, _ = APIKey.objects.create_key(name=f"{B_WORD} platform key")
        first = lambda model, **kw: model._base_manager.filter(tenant=b.tenant, **kw).order_by("pk").first().pk  # noqa: E731
        form_ids = {
            "tenant": b.tenant.pk, "customer": first(Customer), "contract": first(Contract, status="active"),
            "invoice": first(Invoice, status="finalized"), "credit_request": first(CreditRequest),
            "opportunity": first(Opportunity), "rule": first(AnomalyRule),
        }
        # Tenant B's owner's two-factor devices: platform-wide admins, tied to a user, not a tenant.
        totp = TOTPDevice.objects.create(user=b.owner, name=f"{B_WORD} phone", confirmed=True)
        backup = StaticDevice.objects.create(user=b.owner, name=f"{B_WORD} backup codes", confirmed=True)
    other_ids = {"customers.Tenant": [b.tenant.pk], "auth.Group": [group.pk],
                 "rest_framework_api_key.APIKey": [platform_key.pk],
                 "otp_totp.TOTPDevice": [totp.pk], "otp_static.StaticDevice": [backup.pk]}
    for model in admin.site._registry:  # other platform-wide admins (login attempts, …): a row naming B
        label = model._meta.label
        if issubclass(model, TenantOwned) or label in other_ids or label == "auth.User":
            continue
        with platform_scope():
            row = platform_row(model)
        if row is not None:
            other_ids[label] = [row.pk]
    owner = Client()
    owner.force_login(a.owner)
    links = set()
    for pattern in walk.routes():
        if pattern.name and pattern.name.startswith("dashboards:") and not pattern.params:
            body = owner.get(reverse(pattern.name)).content.decode()
            links.update(re.findall(r'href="(/staff/[\w-]+/[\w-]+\.csv)"', body))
    assert links, "the dashboards offer no CSV link to walk"
    return {
        "user_ids": [b.owner.pk, b.portal_user.pk],
        "other_ids": other_ids,
        "csv_links": sorted(links),
        "b_form_ids": form_ids,
    }


def identities(a) -> list[tuple[str, Client, object]]:
    """(name, logged-in client, the user or None) for each role of tenant A, its portal user and its API key."""
    found = []
    for role in Role.values:
        client = Client(raise_request_exception=False)
        client.force_login(a.staff[role])
        found.append((f"staff:{role}", client, a.staff[role]))
    portal = Client(raise_request_exception=False)
    portal.force_login(a.portal_user)
    found.append(("portal user", portal, None))
    found.append(("api key", Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Api-Key {a.api_key}"), None))
    return found


def probes_for(a, b, extra, user) -> tuple[list[walk.Probe], list[str]]:
    b_pks = b_rows(b.tenant)
    pages, unfillable = walk.page_probes(b, b_pks, extra)
    api, api_unfillable, schema_paths = walk.api_probes(b, b_pks, extra)
    probes = pages + api + walk.autocomplete_probes()
    if user is not None:
        with tenant_scope(a.tenant):
            probes += walk.action_probes(staff_request(user, a.tenant), b_pks)
    missing = walk.api_routes_missing_from_schema(schema_paths)
    return probes, unfillable + api_unfillable + [f"API route not in the schema: {name}" for name in missing]


def _form(data):
    form = {}
    for key, value in data:
        form.setdefault(key, []).append(value)
    return form


def send(client, probe: walk.Probe):
    if probe.method == "get":
        return client.get(probe.url, follow=True)
    if probe.body is not None:
        return getattr(client, probe.method)(probe.url, data=probe.body, content_type=probe.content_type)
    return client.post(probe.url, data=_form(probe.data))


def _login_paths():
    return {reverse("admin:login"), reverse("portal:login")}


def sent_elsewhere(probe: walk.Probe, response) -> bool:
    """True when the response sends the identity to a login page or a page that takes no object id
    (a staff member sent from the portal to the admin home): a refusal that shows nothing."""
    if probe.method == "get":
        if not response.redirect_chain:
            return False
        target = response.request["PATH_INFO"]
    elif response.status_code in (301, 302, 303):
        target = urlsplit(response.headers["Location"]).path
    else:
        return False
    if target in _login_paths():
        return True
    try:
        match = resolve(target)
    except Resolver404:
        return False
    return not match.args and not match.captured_kwargs


def judge(probe: walk.Probe, response) -> str | None:
    """What is wrong with ``response`` to ``probe``, or None."""
    status = response.status_code
    if status >= 500:
        return f"{status} server error"
    if probe.targets_b and status not in REFUSED and not sent_elsewhere(probe, response):
        return f"{status} for tenant B's object (expected {sorted(REFUSED)}, a 405, or a redirect away)"
    if getattr(response, "streaming", False):
        body = b"".join(response.streaming_content).decode("utf-8", "replace")
    else:
        body = response.content.decode("utf-8", "replace")
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    echoed = probe.url + " " + (probe.body or "") + " " + " ".join(str(v) for _, v in probe.data)
    leaked = markers_found(body + "\n" + headers, echoed=echoed)
    if leaked:
        return f"{status} shows tenant B's {leaked}"
    return None


def run_walk(world, identity_filter, *, sample: bool = False) -> dict:
    a, b, extra = world
    assert missing_models(b.tenant) == [], (
        "tests/isolation/world.py builds no row of these tenant-owned models; extend _build_tenant() "
        f"or list them in NOT_BUILT with the reason: {missing_models(b.tenant)} (NOT_BUILT: {NOT_BUILT})"
    )
    before = snapshot(b.tenant)
    failures, tried, routes_seen = [], Counter(), set()
    started = time.perf_counter()
    for name, client, user in identities(a):
        if not identity_filter(name):
            continue
        probes, unfillable = probes_for(a, b, extra, user)
        if sample:  # the first probe of each route that aims at tenant B's objects, if any
            firsts = {}
            for probe in sorted(probes, key=lambda p: not p.targets_b):
                firsts.setdefault(probe.route.split(" ", 1)[-1], probe)
            probes = list(firsts.values())
        assert unfillable == [], (
            "URLs the isolation walk cannot fill (add a rule in tests/isolation/walk.py):\n" + "\n".join(unfillable)
        )
        for probe in probes:
            response = send(client, probe)
            tried[name] += 1
            routes_seen.add(probe.route)
            problem = judge(probe, response)
            if problem:
                failures.append(f"{name}: {probe.describe()}: {problem}")
    elapsed = time.perf_counter() - started
    assert failures == [], f"{len(failures)} isolation failures:\n" + "\n".join(failures[:80])
    assert snapshot(b.tenant) == before, "a request changed tenant B's rows"
    assert cross_tenant_references(a.tenant) == [], "a request made tenant A's rows point at tenant B's"
    report = {"requests": sum(tried.values()), "by identity": dict(tried), "routes": len(routes_seen),
              "seconds": round(elapsed, 1)}
    print(f"\nisolation walk: {report}")
    return report


@pytest.mark.slow
def test_every_url_as_every_identity(world, db):
    report = run_walk(world, lambda name: True)
    assert len(report["by identity"]) == len(Role.values) + 2


def test_every_route_as_an_owner_quick(world, db):
    report = run_walk(world, lambda name: name == f"staff:{Role.OWNER}", sample=True)
    assert report["routes"] > 250
