"""Shared plumbing for browser tests: Debian's headless Chromium (never a downloaded one) driven by Playwright.

Use ``pytestmark = BROWSER_MARKS`` in a browser test module, write the test data first, then open
``chromium_page()``: ORM calls made while Playwright's sync API runs use another database connection
(its greenlet has its own context), which would then outlive the test.
"""

import os
from contextlib import contextmanager

import pytest

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls there otherwise.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STAFF_VIEWPORT = {"width": 1280, "height": 800}

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (bin/setup installs it)"),
]


@contextmanager
def chromium_page(viewport=None):
    """A fresh browser context's page (1 280 × 800 unless told), closed with its browser afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(accept_downloads=True, viewport=viewport or STAFF_VIEWPORT)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def admin_login(page, live_server, username, password, otp_code=None):
    """Log a staff user in through the admin's login form; returns after the admin home has loaded.

    A user with two-factor on (every platform superuser) passes ``otp_code``, entered on the code page
    that follows the password: ``tests.two_factor.current_code(device)``, which reads no database."""
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state()
    if otp_code is not None:
        page.fill("#id_code", otp_code)
        page.click("#two-factor-verify button[type=submit]")
        page.wait_for_load_state()
