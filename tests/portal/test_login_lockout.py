"""Login lockout (django-axes): wrong passwords lock one username at one address, on both logins."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model

from customers.models import Role
from customers.tenancy import platform_scope
from tests.customers.factories import PortalAccessFactory, UserFactory

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
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def fail(client, path, username, times, address="10.0.0.1"):
    """``times`` wrong passwords; the one that reaches the limit already answers with the lockout."""
    for attempt in range(1, times + 1):
        expected = 429 if attempt >= LIMIT else 200
        assert log_in(client, path, username, "wrong-guess", address).status_code == expected


def test_portal_login_locks_after_the_limit_even_with_the_right_password(client, portal_user):
    fail(client, "/accounts/login/", "pat", LIMIT)

    response = log_in(client, "/accounts/login/", "pat", PASSWORD)

    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    body = response.content.decode()
    assert "Too many wrong passwords for “pat” from your address (5 in a row)." in body
    assert "Try again in 15 minutes. Every attempt before then starts the wait again." in body
    assert "/accounts/password-reset/" in body
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


def test_every_attempt_while_locked_restarts_the_cool_off(client, portal_user):
    fail(client, "/accounts/login/", "pat", LIMIT)
    attempt = AccessAttempt.objects.get(username="pat")
    AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - timedelta(minutes=10))

    assert log_in(client, "/accounts/login/", "pat", "wrong-guess").status_code == 429

    attempt.refresh_from_db()
    assert attempt.failures_since_start == LIMIT + 1
    AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - timedelta(minutes=10))
    assert log_in(client, "/accounts/login/", "pat", PASSWORD).status_code == 429


def test_the_lock_ends_after_the_cool_off(client, portal_user):
    fail(client, "/accounts/login/", "pat", LIMIT)
    AccessAttempt.objects.filter(username="pat").update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))

    assert log_in(client, "/accounts/login/", "pat", PASSWORD).status_code == 302


def test_locked_entries_are_listed_for_the_platform_superuser_only(client, tenant_a, member_factory, superuser):
    fail(client, "/accounts/login/", "victim", LIMIT)
    owner = member_factory(tenant_a, Role.OWNER)

    client.force_login(owner)
    assert client.get("/admin/axes/accessattempt/").status_code == 403
    assert "accessattempt" not in client.get("/admin/").content.decode()

    client.force_login(superuser)
    listing = client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert "victim" in listing.content.decode() and "Locked Out" in listing.content.decode()
    assert "/admin/axes/accessattempt/" in client.get("/admin/").content.decode()


def test_deleting_the_entry_unlocks_at_once(client, portal_user, superuser):
    fail(client, "/accounts/login/", "pat", LIMIT)
    attempt = AccessAttempt.objects.get(username="pat")
    client.force_login(superuser)

    response = client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    client.logout()
    assert log_in(client, "/accounts/login/", "pat", PASSWORD).status_code == 302
    assert get_user_model().objects.get(username="pat").last_login is not None
