"""Finance review in a real headless Chromium (Debian's): finalizing from the invoice page, and a credit note's
reduced amount due in the admin and the portal."""

import pytest

from billing.models import Invoice
from customers.models import Role
from customers.periods import month_end, month_start, tenant_today
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.browser import BROWSER_MARKS, admin_login, chromium_page
from tests.customers.factories import CustomerFactory, PortalAccessFactory, UserFactory

pytestmark = [*BROWSER_MARKS, pytest.mark.slow]  # 11–12 s each on the shared 2-core machine (load ~10)
PASSWORD = "pass-word-123"


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_finalize_from_the_invoice_page_with_its_early_close_confirmation(live_server, media_root, tenant_a, member_factory):
    member_factory(tenant_a, Role.FINANCE, username="fiona")
    customer = CustomerFactory(tenant=tenant_a, name="Early Bird Inc")
    today = tenant_today(tenant_a)
    draft = build_invoice(customer, period_start=month_start(today), period_end=month_end(today), finalize=False,
                          lines=[("Platform fee", "1", "90.00")])

    with chromium_page() as page:
        admin_login(page, live_server, "fiona", PASSWORD)
        page.goto(f"{live_server.url}/admin/billing/invoice/{draft.pk}/change/")
        has_preview = page.locator("#pdf-preview object[type='application/pdf']").count()
        page.click("a.invoice-move:text-is('Finalize')")
        warning = page.locator("#early-close").inner_text()
        page.click("#confirm-move input[type=submit]")  # without the choice: refused, still a draft
        refusal = page.locator("#move-error").inner_text()
        page.check("#id_close_early")
        page.click("#confirm-move input[type=submit]")
        page.wait_for_url(f"**/admin/billing/invoice/{draft.pk}/change/")
        message = page.locator("ul.messagelist").inner_text()
        buttons = page.locator("a.invoice-move").all_inner_texts()

    draft.refresh_from_db()
    number = f"ACME-{today.year}-00001"
    assert has_preview == 1
    assert "period already invoiced" in warning and month_end(today).isoformat() in warning
    assert "close this period early" in refusal
    assert f"Invoice {number} finalized." in message
    assert [label.lower() for label in buttons] == ["void", "mark paid"]  # the admin writes them in capitals
    assert (draft.status, draft.number, draft.issue_date) == (Invoice.Status.FINALIZED, number, today)


def test_a_credit_note_reduces_the_amount_due_in_the_admin_and_the_portal(live_server, media_root, tenant_a, member_factory):
    member_factory(tenant_a, Role.FINANCE, username="fiona")
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a, name="Northwind Analytics LLC", language="en")
        PortalAccessFactory(customer=customer, tenant=tenant_a, user=UserFactory(username="northwind"))
    invoice = build_invoice(customer, lines=[("Platform fee", "1", "424.00")])
    note = build_credit_note(invoice, amount="150.00")

    with chromium_page() as page:
        admin_login(page, live_server, "fiona", PASSWORD)
        page.goto(f"{live_server.url}/admin/billing/invoice/?q={invoice.number}")
        admin_row = page.locator("#result_list tbody tr").first.inner_text()
        page.goto(f"{live_server.url}/admin/billing/invoice/{invoice.pk}/change/")
        admin_due = page.locator(".field-amount_due_now .readonly").inner_text()
        admin_notes = page.locator(".field-credit_notes_total .readonly").inner_text()
        page.context.clear_cookies()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "northwind")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.click("text=Invoices")
        portal_row = page.locator(f"tr:has(a:text-is('{invoice.number}'))").inner_text()
        page.click(f"text={invoice.number}")
        portal_detail = page.locator("dl.facts").inner_text()

    assert "\t$424.00\t$274.00\t" in admin_row  # total, then the amount due
    assert (admin_due, admin_notes) == ("$274.00", "$150.00")
    assert "$274.00" in portal_row and "$274.00" in portal_detail
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due, note.total) == (Invoice.Status.FINALIZED, 424, 150)
    assert Invoice.objects.for_tenant(tenant_a).with_balance_due().get(pk=invoice.pk).balance_due == 274
