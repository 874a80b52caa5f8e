"""The portal in a real headless Chromium (Debian's, never a downloaded one) against the live server."""

import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from customers.tenancy import platform_scope
from tests.billing.document_builders import build_invoice
from tests.browser import BROWSER_MARKS, chromium_page
from tests.customers.factories import CustomerFactory, PortalAccessFactory, UserFactory

pytestmark = BROWSER_MARKS


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_customer_logs_in_downloads_a_pdf_and_cannot_open_anothers_invoice(live_server, media_root, tenant_a, tenant_b):
    with platform_scope():
        mine = CustomerFactory(tenant=tenant_a, name="Northwind Analytics LLC", language="en")
        PortalAccessFactory(customer=mine, tenant=tenant_a, user=UserFactory(username="northwind"))
        theirs = CustomerFactory(tenant=tenant_b, name="Sjöberg AB", language="sv", currency="SEK")
    invoice = build_invoice(mine, lines=[("Platform fee", "1", "500.00")])
    other = build_invoice(theirs)

    with chromium_page() as page:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "northwind")
        page.fill("#id_password", "pass-word-123")
        page.click("button[type=submit]")
        page.click("text=Invoices")
        page.click(f"text={invoice.number}")
        with page.expect_download() as download_info:
            page.click("text=Download PDF")
        data = Path(download_info.value.path()).read_bytes()
        response = page.goto(f"{live_server.url}/invoices/{other.pk}/")
        other_page = page.content()

    assert data.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert invoice.number in text and "Northwind Analytics LLC" in text and "$500.00" in text
    assert response.status == 404
    assert other.number not in other_page
