"""Staff sessions end after hours of inactivity; portal users keep the two-week session."""

import time

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from customers.models import Role
from customers.tenancy import platform_scope
from portal.staff_sessions import REFRESH_SECONDS, SEEN_KEY
from tests.customers.factories import PortalAccessFactory, UserFactory

FOUR_HOURS = 4 * 3600
TWO_WEEKS = 14 * 24 * 3600


def stored_expiry_seconds(client) -> float:
    session = Session.objects.get(session_key=client.session.session_key)
    return (session.expire_date - timezone.now()).total_seconds()


def test_a_staff_login_gets_a_four_hour_idle_session(client, tenant_a, member_factory):
    member_factory(tenant_a, Role.FINANCE, username="fin")

    response = client.post("/admin/login/", {"username": "fin", "password": "pass-word-123"})

    assert response.status_code == 302
    assert client.session.get_expiry_age() == FOUR_HOURS
    assert response.cookies["sessionid"]["max-age"] == FOUR_HOURS
    assert FOUR_HOURS - 60 < stored_expiry_seconds(client) <= FOUR_HOURS


def test_a_portal_login_keeps_the_two_week_session(client, tenant_a):
    with platform_scope():
        PortalAccessFactory(tenant=tenant_a, customer__tenant=tenant_a, user=UserFactory(username="pat"))

    response = client.post("/accounts/login/", {"username": "pat", "password": "pass-word-123"})

    assert response.status_code == 302
    assert client.session.get_expiry_age() == TWO_WEEKS
    assert TWO_WEEKS - 60 < stored_expiry_seconds(client) <= TWO_WEEKS


@pytest.mark.parametrize("idle_seconds, extended", [(REFRESH_SECONDS + 5, True), (10, False)])
def test_a_staff_request_extends_the_session_at_most_every_few_minutes(client, tenant_a, member_factory, idle_seconds, extended):
    client.force_login(member_factory(tenant_a, Role.VIEWER))
    session = client.session
    seen = int(time.time()) - idle_seconds
    session[SEEN_KEY] = seen
    session.save()

    assert client.get("/admin/").status_code == 200

    assert (client.session[SEEN_KEY] > seen) is extended
    assert client.session.get_expiry_age() == FOUR_HOURS


def test_an_idle_staff_session_is_logged_out(client, tenant_a, member_factory):
    client.force_login(member_factory(tenant_a, Role.VIEWER))
    Session.objects.filter(session_key=client.session.session_key).update(expire_date=timezone.now())

    response = client.get("/admin/")

    assert (response.status_code, response["Location"]) == (302, "/admin/login/?next=/admin/")
