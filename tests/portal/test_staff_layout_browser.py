"""Staff pages at 1 280 × 800 in a real headless Chromium (Debian's): nothing scrolls sideways, and the
pipeline board moves a card through the opportunity service."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from customers.admin_base import TenantAdmin
from customers.models import Role, Tenant
from customers.money import Money
from customers.tenancy import platform_scope
from revenue.models import Opportunity
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.billing.factories import BillableMetricFactory, UsageEventFactory
from tests.browser import BROWSER_MARKS, STAFF_VIEWPORT, admin_login, chromium_page
from tests.customers.factories import ContactFactory, ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.factories import ExchangeRateFactory, OpportunityFactory, QuarterTargetFactory

pytestmark = BROWSER_MARKS
PASSWORD = "pass-word-123"

# What scrolls sideways: the page itself, or any box inside the content that clips or scrolls its
# content (Django wraps the result list in such a box, so a page can be 1 280 px wide while the
# pipeline's inline-edited columns hide in it). Form fields (and the autocomplete's box) scroll or
# cut their own text and are skipped.
OVERFLOW_JS = """() => {
  const found = [];
  if (document.documentElement.scrollWidth > %d) found.push("page " + document.documentElement.scrollWidth);
  for (const el of document.querySelectorAll("#content, #content *")) {
    if (["INPUT", "TEXTAREA", "SELECT", "OPTION"].includes(el.tagName) || el.closest(".select2-container")) continue;
    if (getComputedStyle(el).overflowX !== "visible" && el.scrollWidth > el.clientWidth + 1) {
      found.push(el.tagName + "." + el.className + " " + el.scrollWidth + ">" + el.clientWidth);
    }
  }
  return found;
}""" % STAFF_VIEWPORT["width"]


def tenant_admin_urls(tenant) -> list[tuple[str, str]]:
    """(kind, url) for every list, add form and (where a row exists) change form of the tenant's
    models in the admin's registry: a new admin is walked without touching this test."""
    urls = []
    with platform_scope():
        for model, model_admin in admin.site._registry.items():
            if not isinstance(model_admin, TenantAdmin) and model is not Tenant:
                continue
            info = model._meta.app_label, model._meta.model_name
            urls.append(("list", reverse("admin:%s_%s_changelist" % info)))
            urls.append(("add", reverse("admin:%s_%s_add" % info)))
            rows = model._default_manager.filter(pk=tenant.pk) if model is Tenant else (
                model._default_manager.filter(tenant=tenant))
            first = rows.order_by("pk").first()
            if first is not None and getattr(model_admin, "object_pages", True):
                try:
                    urls.append(("change", reverse("admin:%s_%s_change" % info, args=(first.pk,))))
                except NoReverseMatch:
                    pass
    return sorted(urls, key=lambda item: item[1])


@pytest.fixture
def busy_tenant(tenant_a, tenant_b, member_factory):
    """Tenant A with long names, many countries and a row in most of its tables; its owner and a manager."""
    owner = member_factory(tenant_a, Role.OWNER, username="owner")
    manager = member_factory(tenant_a, Role.ACCOUNT_MANAGER, username="account-manager-with-a-long-name")
    with platform_scope():
        ExchangeRateFactory(tenant=tenant_a, currency="SEK")
        QuarterTargetFactory(tenant=tenant_a, year=2026, quarter=4)
        BillableMetricFactory(tenant=tenant_a)
        customers = []
        for n, country in enumerate(["US", "SE", "DE", "FR", "GB", "NO", "DK", "FI", "NL", "ES", "IT", "PL", "CA"]):
            customer = CustomerFactory(
                tenant=tenant_a, country=country, account_manager=manager if n % 2 else owner,
                name=f"Northwind Analytics and Industrial Optimization Holdings {n} International LLC",
                vat_number=f"EU{n:09d}", billing_emails=[f"accounts-payable-department-{n}@example.com"])
            ContactFactory(customer=customer, tenant=tenant_a, name="Maximiliane Aurelia von Hohenberg-Schwarzenfeld",
                           email=f"maximiliane.von.hohenberg-schwarzenfeld.{n}@example.com")
            customers.append(customer)
        contract = ContractFactory(customer=customers[0], tenant=tenant_a,
                                   title="Enterprise platform subscription with premium support and onboarding")
        for description in ("Platform fee, enterprise tier with unlimited seats", "Premium support (24/7)"):
            ContractLineFactory(contract=contract, tenant=tenant_a, description=description, quantity=Decimal(79),
                                unit_price=Money("123456.78", "USD"))
        UsageEventFactory(customer=customers[0], tenant=tenant_a)
        for n in range(12):
            OpportunityFactory(customer=customers[n], tenant=tenant_a, owner=manager, probability=10 + 5 * n,
                               title=f"Expansion to the logistics division, phase {n}",
                               amount=Money("1234567.89", "USD"), expected_close_on=date(2026, 12, 1 + n))
    invoice = build_invoice(customers[0], lines=[("Platform fee", "1", "250000.00")])
    build_credit_note(invoice)
    build_invoice(customers[1], finalize=False)
    return {"owner": owner, "manager": manager}


@pytest.mark.slow
def test_every_staff_list_and_form_fits_1280_px(live_server, busy_tenant, tenant_a):
    urls = tenant_admin_urls(tenant_a)
    assert len(urls) > 40  # every tenant admin: lists, add forms and change forms
    too_wide, statuses, pipeline = {}, {}, None
    with chromium_page() as page:
        admin_login(page, live_server, "owner", PASSWORD)
        for kind, url in urls:
            response = page.goto(live_server.url + url)
            statuses[url] = response.status
            if response.status != 200:
                continue
            found = page.evaluate(OVERFLOW_JS)
            if found:
                too_wide[url] = found
            if url == "/admin/revenue/opportunity/":
                # The inline-edited columns are on screen, inside the list's own box.
                box = page.locator("#changelist-form").bounding_box()
                pipeline = [
                    (name, page.locator(f"#id_form-0-{name}").bounding_box())
                    for name in ("probability", "stage", "expected_close_on")
                ] + [("owner", page.locator("#result_list th.column-owner").bounding_box())]
    assert too_wide == {}
    # Read-only rows (invoices, runs, deliveries…) have no add form for anyone: 403 is their answer.
    assert {url for url, status in statuses.items() if status not in (200, 403)} == set()
    assert all(statuses[url] == 200 for kind, url in urls if kind in ("list", "change"))
    right_edge = box["x"] + box["width"]
    for name, field in pipeline:
        assert field is not None and field["x"] + field["width"] <= right_edge <= STAFF_VIEWPORT["width"], name


def test_moving_a_card_on_the_pipeline_board(live_server, member_factory, tenant_a, tenant_b):
    member_factory(tenant_a, Role.ACCOUNT_MANAGER, username="account-manager-with-a-long-name")
    with platform_scope():
        deal = OpportunityFactory(tenant=tenant_a, customer=CustomerFactory(tenant=tenant_a, name="Gamma Ltd"),
                                  title="Gamma rollout", stage=Opportunity.Stage.LEAD, probability=20,
                                  amount=Money("4800.00", "USD"), expected_close_on=date(2026, 12, 31),
                                  last_touched_at=timezone.now() - timedelta(days=3))
    with chromium_page() as page:
        admin_login(page, live_server, "account-manager-with-a-long-name", PASSWORD)
        page.goto(f"{live_server.url}/admin/revenue/opportunity/")
        page.click("text=Board by stage")
        card = page.locator(f"#opportunity-{deal.pk}")
        card_text = card.inner_text()
        card.drag_to(page.locator(".board-column[data-stage=qualified] h2"))
        # A selector, not wait_for_function: that evaluates a string in the page, which the CSP forbids ('unsafe-eval').
        page.wait_for_selector(f"#pipeline-board[data-last-moved='{deal.pk}']", state="attached")
        column = card.evaluate("card => card.closest('.board-column').dataset.stage")
        width = page.evaluate("document.documentElement.scrollWidth")
        page.reload()
        column_after_reload = page.locator(f"#opportunity-{deal.pk}").evaluate(
            "card => card.closest('.board-column').dataset.stage")
    assert "Gamma rollout" in card_text and "$4,800.00" in card_text and "20 %" in card_text
    assert "2026-12-31" in card_text
    assert (column, column_after_reload, width) == ("qualified", "qualified", STAFF_VIEWPORT["width"])
    deal.refresh_from_db()
    assert deal.stage == Opportunity.Stage.QUALIFIED
    with platform_scope():
        record = deal.history.order_by("-history_date", "-history_id").first()
    assert (record.stage, record.history_user.username) == ("qualified", "account-manager-with-a-long-name")
