"""Login lockout (django-axes): wrong passwords lock one username at one address, on both logins."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessAttemptExpiration
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from customers.models import Role, TenantAPIKey
from customers.tenancy import platform_scope
from tests.customers.factories import PortalAccessFactory, UserFactory
from tests.two_factor import verified_login

PASSWORD = "pass-word-123"  # the factories' password
LIMIT = 5  # settings.AXES_FAILURE_LIMIT's default


@pytest.fixture
def portal_user(tenant_a):
    with platform_scope():
        return PortalAccessFactory(tenant=tenant_a, customer__tenant=tenant_a, user=UserFactory(username="pat")).user


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def log_in(client, path, username, password, address="10.0.0.1"):
    """The login form posted as a browser posts it: form-encoded, also from DRF's client (JSON by default)."""
    form = {"format": "multipart"} if isinstance(client, APIClient) else {}
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address, **form)


def fail(client, path, username, times, address="10.0.0.1"):
    """``times`` wrong passwords; the one that reaches the limit already answers with the lockout."""
    for attempt in range(1, times + 1):
        expected = 429 if attempt >= LIMIT else 200
        assert log_in(client, path, username, "wrong-guess", address).status_code == expected


def test_portal_login_locks_after_the_limit_even_with_the_right_password(client, portal_user):
    fail(client, "/accounts/login/", "pat", LIMIT - 1)

    locking = log_in(client, "/accounts/login/", "pat", "wrong-guess")
    right_too_late = log_in(client, "/accounts/login/", "pat", PASSWORD)

    assert (locking.status_code, locking["Retry-After"]) == (429, "900")
    body = locking.content.decode()
    assert "Too many wrong passwords for “pat” from your address (5 in a row)." in body
    assert "Try again in 15 minutes. Every attempt before then doubles the wait (up to 24 hours)." in body
    assert "/accounts/password-reset/" in body
    # The right password while locked is refused, and counts as one more attempt.
    assert (right_too_late.status_code, right_too_late["Retry-After"]) == (429, "1800")
    assert "Try again in 30 minutes." in right_too_late.content.decode()
    assert "_auth_user_id" not in client.session


def test_one_failure_short_of_the_limit_still_logs_in_and_clears_the_count(client, portal_user):
    fail(client, "/accounts/login/", "pat", LIMIT - 1)

    assert log_in(client, "/accounts/login/", "pat", PASSWORD).status_code == 302
    assert not AccessAttempt.objects.filter(username="pat").exists()


def test_admin_login_locks_the_superuser(client, superuser):
    fail(client, "/admin/login/", "root", LIMIT)

    response = log_in(client, "/admin/login/", "root", PASSWORD)

    assert response.status_code == 429
    body = response.content.decode()
    assert "Too many wrong passwords for “root”" in body
    assert "A platform administrator can lift the lock sooner." in body
    assert "_auth_user_id" not in client.session


def test_lock_is_per_username_and_address(client, portal_user, superuser):
    fail(client, "/admin/login/", "root", LIMIT)

    # Another user from the same address, and the same user from another address, are not locked.
    assert log_in(client, "/accounts/login/", "pat", PASSWORD, address="10.0.0.1").status_code == 302
    client.logout()
    assert log_in(client, "/admin/login/", "root", PASSWORD, address="10.0.0.2").status_code == 302


def age(username, minutes):
    """Move a lock's failures and expiry ``minutes`` into the past, as if that time had passed."""
    attempt = AccessAttempt.objects.get(username=username)
    AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - timedelta(minutes=minutes))
    AccessAttemptExpiration.objects.filter(access_attempt=attempt).update(
        expires_at=attempt.expiration.expires_at - timedelta(minutes=minutes)
    )


def test_the_lock_ends_after_the_cool_off(client, portal_user):
    fail(client, "/accounts/login/", "pat", LIMIT)
    age("pat", 14)
    assert log_in(client, "/accounts/login/", "pat", PASSWORD).status_code == 429

    age("pat", 31)  # the refused attempt doubled the wait to 30 minutes

    assert log_in(client, "/accounts/login/", "pat", PASSWORD).status_code == 302
    assert not AccessAttempt.objects.filter(username="pat").exists()


def test_every_attempt_while_locked_doubles_the_wait(client, portal_user):
    fail(client, "/accounts/login/", "pat", LIMIT)

    waits = [log_in(client, "/accounts/login/", "pat", "wrong-guess")["Retry-After"] for _ in range(2)]

    assert waits == ["1800", "3600"]
    age("pat", 40)  # a fixed 15-minute lock would be over by now
    response = log_in(client, "/accounts/login/", "pat", PASSWORD)
    assert response.status_code == 429
    assert "Try again in 2 hours." in response.content.decode()


def test_the_wait_stops_growing_at_a_day(client, portal_user):
    fail(client, "/accounts/login/", "pat", LIMIT)
    AccessAttempt.objects.filter(username="pat").update(failures_since_start=400)

    response = log_in(client, "/accounts/login/", "pat", PASSWORD)

    assert (response.status_code, response["Retry-After"]) == (429, str(24 * 3600))
    assert "Try again in 24 hours." in response.content.decode()


def test_locked_entries_are_listed_for_the_platform_superuser_only(client, tenant_a, member_factory, superuser):
    fail(client, "/accounts/login/", "victim", LIMIT)
    owner = member_factory(tenant_a, Role.OWNER)

    client.force_login(owner)
    assert client.get("/admin/axes/accessattempt/").status_code == 403
    assert "accessattempt" not in client.get("/admin/").content.decode()

    verified_login(client, superuser)
    listing = client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert "victim" in listing.content.decode() and "Locked Out" in listing.content.decode()
    assert "/admin/axes/accessattempt/" in client.get("/admin/").content.decode()


def test_deleting_the_entry_unlocks_at_once(client, portal_user, superuser):
    fail(client, "/accounts/login/", "pat", LIMIT)
    attempt = AccessAttempt.objects.get(username="pat")
    verified_login(client, superuser)

    response = client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    client.logout()
    assert log_in(client, "/accounts/login/", "pat", PASSWORD).status_code == 302
    assert get_user_model().objects.get(username="pat").last_login is not None


def test_api_keys_and_api_sessions_pass_by_the_lockout(client, tenant_a, member_factory):
    """Neither an API key nor DRF's session authentication calls authenticate(): a lock never blocks them."""
    member_factory(tenant_a, Role.VIEWER, username="vic")
    assert log_in(client, "/admin/login/", "vic", PASSWORD).status_code == 302
    fail(APIClient(), "/admin/login/", "vic", LIMIT)  # someone else guesses vic's password from the same address
    _, raw_key = TenantAPIKey.objects.create_key(tenant=tenant_a, name="ci")
    machine = APIClient()
    machine.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")

    assert client.get("/api/v1/customers/").status_code == 200
    assert machine.get("/api/v1/customers/").status_code == 200
