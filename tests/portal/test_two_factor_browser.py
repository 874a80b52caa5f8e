"""A platform superuser's first login in a real headless Chromium (Debian's): sent to set up two-factor,
types the key shown into "their app" (computed here), gets backup codes, reaches the admin; the next
login asks for the code."""

import pytest
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.browser import BROWSER_MARKS, admin_login, chromium_page
from tests.two_factor import current_code

pytestmark = [*BROWSER_MARKS, pytest.mark.slow]


def test_a_superusers_first_login_sets_up_two_factor_and_the_next_asks_for_the_code(live_server, tenant_a):
    user = get_user_model().objects.create_superuser("platform", "platform@example.com", "pass-word-123")
    # The device the set-up page offers (it offers an unconfirmed one if there is one), made before the
    # browser starts: the test reads no database while it runs, only computes codes as the app would.
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)

    with chromium_page() as page:
        admin_login(page, live_server, "platform", "pass-word-123")
        assert page.url == f"{live_server.url}/staff/two-factor/setup/?next=%2Fadmin%2F"
        assert page.locator(".qr-code svg").is_visible()
        page.click("summary")
        assert page.inner_text("#totp-secret").replace(" ", "") in device.config_url

        page.fill("#id_code", "000000" if current_code(device) != "000000" else "111111")
        page.click("#two-factor-setup button[type=submit]")
        assert "That code is not right." in page.inner_text(".messagelist")

        page.fill("#id_code", current_code(device))
        page.click("#two-factor-setup button[type=submit]")
        assert page.locator("#backup-codes li").count() == 10
        page.click("#two-factor-continue")
        assert page.url == f"{live_server.url}/admin/"
        assert "Acme Optimizer" in page.goto(f"{live_server.url}/admin/customers/tenant/").text()

        page.click("#logout-form button[type=submit]")
        page.wait_for_load_state()
        # The code of the next time step: each step's code is accepted once, and set-up used this one.
        admin_login(page, live_server, "platform", "pass-word-123", otp_code=current_code(device, steps=1))
        assert page.url == f"{live_server.url}/admin/"
