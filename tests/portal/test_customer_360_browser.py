"""The customer 360 page in a real headless Chromium (Debian's): an account manager opens it from the
admin customer list and reads every section, the MRR chart drawn, at 1 280 × 800 without a
horizontal scroll."""

import pytest

from customers.models import ContractChange, Role
from customers.tenancy import tenant_scope
from tests.browser import BROWSER_MARKS, admin_login, chromium_page
from tests.customers.factories import CustomerFactory
from tests.portal.test_customer_360 import _book

# 7 s on the shared 2-core machine (Chromium's start, the customer's history): slow.
pytestmark = [*BROWSER_MARKS, pytest.mark.slow]

SECTIONS = ["contracts", "invoices", "credit-notes", "usage", "projected-invoice", "churn-risk", "economics",
            "opportunities", "contacts", "audit"]


def test_account_manager_opens_the_360_page_from_the_customer_list(live_server, tenant_a, tenant_b, member_factory):
    manager = member_factory(tenant_a, Role.ACCOUNT_MANAGER, username="acme-manager")
    customer = _book(tenant_a, "Kestrel Analytics", manager=manager)
    CustomerFactory(tenant=tenant_b, name="Hemlig Kund AB")

    with chromium_page() as page:
        admin_login(page, live_server, "acme-manager", "pass-word-123")
        page.goto(f"{live_server.url}/admin/customers/customer/")
        row = page.locator("#result_list tr", has_text="Kestrel Analytics")
        row.locator("a.customer-360-link").click()
        page.wait_for_load_state("networkidle")
        url = page.url
        heading = page.locator("h1").first.inner_text()
        visible = {section: page.locator(f"#{section}").is_visible() for section in SECTIONS}
        chart_drawn = page.evaluate(
            """() => ["chart-mrr-0", "chart-mrr-1"].map(id => {
                   const canvas = document.querySelector(`canvas[data-chart="${id}"]`);
                   return !!(canvas && window.Chart && Chart.getChart(canvas) && canvas.width > 0);
               })"""
        )
        invoice_rows = page.locator("#invoices table").first.locator("tbody tr").count()
        timeline = page.locator("#contracts ol.timeline li").all_inner_texts()
        scroll_width = page.evaluate("document.documentElement.scrollWidth")

    assert url == f"{live_server.url}/staff/customers/{customer.pk}/"
    assert heading.startswith("Kestrel Analytics")
    assert visible == {section: True for section in SECTIONS}
    assert chart_drawn == [True, True]
    assert scroll_width <= 1280
    with tenant_scope(tenant_a):
        assert invoice_rows == customer.invoices.count() == 2
        kinds = list(ContractChange.objects.for_tenant(tenant_a).filter(contract__customer=customer)
                     .order_by("effective_on", "id").values_list("kind", flat=True))
    assert kinds == ["new", "upgrade", "upgrade"]
    assert len(timeline) == 3 and any("Seats: quantity 12 → 15" in item for item in timeline)
