"""The Content-Security-Policy: on every page, with no inline script left to allow.

The header is checked on each kind of page; the templates are scanned for inline scripts and event
handlers (so a new one fails here, not in a browser); and a real Chromium opens the pages that run
script (dashboards with their charts, the customer 360 page, the admin, the API docs, the portal)
and reports every policy violation it sees.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings

from customers.models import Role
from customers.tenancy import platform_scope
from tests.browser import BROWSER_MARKS, admin_login, chromium_page
from tests.customers.factories import MembershipFactory, PortalAccessFactory
from tests.portal.test_customer_360 import _book

PASSWORD = "pass-word-123"
TEMPLATE_ROOTS = [Path(settings.BASE_DIR) / "templates"]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)
STYLE_ELEMENT = re.compile(r"<style[\s>]", re.I)
# Templates that are never served as a web page: WeasyPrint renders them to PDF (no browser, no policy).
PDF_TEMPLATES = {"billing/document_base.html", "revenue/report_pdf.html"}


def directives(header):
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part}


def served_templates():
    for root in TEMPLATE_ROOTS:
        for path in sorted(root.rglob("*.html")):
            name = path.relative_to(root).as_posix()
            if name not in PDF_TEMPLATES:
                yield name, path.read_text()


def test_no_template_has_an_inline_script_an_event_handler_or_a_style_element():
    found = []
    for name, text in served_templates():
        found += [f"{name}: {m.group(0)[:60]}" for pattern in (INLINE_SCRIPT, EVENT_HANDLER, STYLE_ELEMENT)
                  for m in pattern.finditer(text)]
    assert found == []


def test_the_scan_finds_what_it_looks_for():
    assert INLINE_SCRIPT.search('<script>alert(1)</script>')
    assert not INLINE_SCRIPT.search('<script src="/static/x.js" defer></script>')
    assert EVENT_HANDLER.search('<select name="tenant" onchange="this.form.submit()">')
    assert STYLE_ELEMENT.search("<style>\n body {}</style>")


@pytest.mark.parametrize("path", ["/", "/admin/login/", "/api/docs/", "/healthz", "/no-such-page/"])
def test_every_response_carries_the_policy(client, db, path):
    response = client.get(path)
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["style-src-elem"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]


def test_the_staff_pages_and_api_carry_it_too(client, tenant_a, member_factory):
    client.force_login(member_factory(tenant_a, Role.OWNER))
    for path in ["/admin/", "/staff/", "/staff/concentration/", "/api/v1/customers/"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert directives(response["Content-Security-Policy"])["script-src"] == ["'self'"], path


# Collects what the browser refused, before any page script runs (Playwright's init script is not
# subject to the page's policy).
VIOLATIONS_JS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile));
"""
CHARTS_DRAWN_JS = """() => [...document.querySelectorAll("canvas[data-chart]")].map(
  (canvas) => !!(window.Chart && Chart.getChart(canvas) && canvas.width > 0))"""


def in_browser(test):
    """Chromium's start makes these slow (about 5 s each on the shared 2-core machine)."""
    for mark in [*BROWSER_MARKS, pytest.mark.slow]:
        test = mark(test)
    return test


@in_browser
def test_pages_that_run_script_work_under_the_policy(live_server, tenant_a, tenant_b, member_factory):
    """The dashboards draw their charts, the switcher submits, the API docs render: nothing refused."""
    owner = member_factory(tenant_a, Role.OWNER, username="acme-owner")
    with platform_scope():
        MembershipFactory(user=owner, tenant=tenant_b, role=Role.OWNER)
    customer = _book(tenant_a, "Kestrel Analytics", manager=owner)
    with platform_scope():
        contract = customer.contracts.first()

    seen = {}
    with chromium_page() as page:
        page.add_init_script(VIOLATIONS_JS)
        admin_login(page, live_server, "acme-owner", PASSWORD)
        for name, path in [("admin", "/admin/"), ("customers", "/admin/customers/customer/"),
                           ("customer", f"/admin/customers/customer/{customer.pk}/change/"),
                           ("contract", f"/admin/customers/contract/{contract.pk}/change/"),
                           ("board", "/admin/revenue/opportunity/board/"), ("revenue", "/staff/"), ("retention", "/staff/retention/"),
                           ("concentration", "/staff/concentration/"), ("360", f"/staff/customers/{customer.pk}/"),
                           ("docs", "/api/docs/")]:
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            seen[name] = {
                "violations": page.evaluate("window.__violations"),
                "charts": page.evaluate(CHARTS_DRAWN_JS),
                "swagger": page.locator("#swagger-ui .info").count() if name == "docs" else None,
            }
        # The staff pages' tenant switcher submits on change (staff.js, not an onchange attribute).
        page.goto(live_server.url + "/staff/")
        page.select_option("form.switch select[name=tenant]", str(tenant_b.pk))
        page.wait_for_load_state("networkidle")
        switched_to = page.locator("header strong").inner_text()
        switch_violations = page.evaluate("window.__violations")

    assert {name: s["violations"] for name, s in seen.items()} == {name: [] for name in seen}
    assert seen["revenue"]["charts"] and all(seen["revenue"]["charts"])
    assert seen["360"]["charts"] == [True, True]
    assert seen["docs"]["swagger"] == 1
    assert switched_to == tenant_b.name
    assert switch_violations == []


@in_browser
def test_the_customer_portal_runs_under_the_policy(live_server, tenant_a):
    with platform_scope():
        access = PortalAccessFactory(customer__tenant=tenant_a, user__username="portal-user")
    access.user.set_password(PASSWORD)
    access.user.save()
    with chromium_page() as page:
        page.add_init_script(VIOLATIONS_JS)
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "portal-user")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state("networkidle")
        background = page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
        violations = page.evaluate("window.__violations")
    assert violations == []
    assert background == "rgb(36, 59, 83)"  # portal.css applied: the stylesheet is not an inline <style>
