"""The portal's password reset: portal users only, limited per account and per address, one neutral page."""

import logging

import pytest
from django.core import mail

from customers.models import Role
from customers.tenancy import platform_scope
from tests.customers.factories import PortalAccessFactory, UserFactory

SENT_PAGE = "/accounts/password-reset/sent/"


@pytest.fixture
def portal_user(tenant_a):
    with platform_scope():
        return PortalAccessFactory(
            tenant=tenant_a, customer__tenant=tenant_a, user=UserFactory(username="pat", email="pat@customer.example")
        ).user


def ask(client, email, address="10.0.0.1"):
    response = client.post("/accounts/password-reset/", {"email": email}, REMOTE_ADDR=address)
    assert (response.status_code, response["Location"]) == (302, SENT_PAGE)
    return response


def test_a_portal_user_gets_exactly_one_email(client, portal_user):
    ask(client, "PAT@customer.example")

    (message,) = mail.outbox
    assert message.to == ["pat@customer.example"]
    assert "/accounts/reset/" in message.body


def test_staff_superusers_and_unknown_addresses_get_nothing_and_the_same_page(client, tenant_a, member_factory, portal_user):
    staff = member_factory(tenant_a, Role.OWNER)
    superuser = UserFactory(username="root", email="root@platform.example", is_staff=True, is_superuser=True)

    for email in (staff.email, superuser.email, "nobody@nowhere.example"):
        ask(client, email)

    assert mail.outbox == []
    assert client.get(SENT_PAGE).status_code == 200


def test_a_portal_user_who_is_also_staff_gets_nothing(client, portal_user):
    portal_user.is_staff = True
    portal_user.save()

    ask(client, portal_user.email)

    assert mail.outbox == []


def test_the_fourth_email_to_one_account_in_an_hour_is_not_sent(client, portal_user, caplog):
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        ask(client, portal_user.email, address)
    assert len(mail.outbox) == 3

    with caplog.at_level(logging.WARNING, logger="portal.password_reset"):
        ask(client, portal_user.email, "10.0.0.4")

    assert len(mail.outbox) == 3
    assert f"Password reset email not sent: user {portal_user.pk} already had 3 this hour" in caplog.messages


def test_one_address_asking_too_often_gets_no_more_emails(client, tenant_a, settings, caplog):
    settings.PASSWORD_RESET_REQUESTS_PER_ADDRESS_PER_HOUR = 2
    with platform_scope():
        users = [
            PortalAccessFactory(tenant=tenant_a, customer__tenant=tenant_a, user=UserFactory(username=f"p{n}")).user
            for n in range(3)
        ]

    for user in users[:2]:
        ask(client, user.email)
    with caplog.at_level(logging.WARNING, logger="portal.password_reset"):
        ask(client, users[2].email)
    ask(client, users[2].email, address="10.0.0.9")

    assert [message.to for message in mail.outbox] == [[users[0].email], [users[1].email], [users[2].email]]
    assert "Password reset request ignored: address 10.0.0.1 made more than 2 this hour" in caplog.messages
