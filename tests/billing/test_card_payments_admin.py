"""Card payment keys in the admin: owners and finance set them, nobody ever sees a secret again."""

import pytest
from django.urls import reverse

from billing.models import PaymentProviderAccount
from customers.models import Role
from customers.tenancy import platform_scope
from tests.billing.factories import PaymentProviderAccountFactory

ADD = reverse("admin:billing_paymentprovideraccount_add")
SECRET = "sk_test_51Secret0123456789"
SIGNING = "whsec_Signing0123456789"


def change_url(account):
    return reverse("admin:billing_paymentprovideraccount_change", args=[account.pk])


def form(**extra):
    return {"provider": "stripe", "enabled": "on", "publishable_key": "pk_test_51Pub", "secret_key": SECRET,
            "webhook_secret": SIGNING, **extra}


def stored(tenant):
    return PaymentProviderAccount.objects.for_tenant(tenant).get()


def test_finance_sets_the_keys_and_the_page_never_shows_the_secrets_back(client, member_factory, tenant_a, tenant_b):
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    response = client.post(ADD, form())

    assert response.status_code == 302
    account = stored(tenant_a)
    assert (account.secret_key, account.webhook_secret, account.publishable_key) == (SECRET, SIGNING, "pk_test_51Pub")
    page = client.get(change_url(account)).content.decode()
    listing = client.get(reverse("admin:billing_paymentprovideraccount_changelist")).content.decode()
    assert SECRET not in page + listing and SIGNING not in page + listing
    assert "http://127.0.0.1:8000/webhooks/stripe/acme/" in page
    assert PaymentProviderAccount.objects.for_tenant(tenant_b).count() == 0


def test_saving_with_the_secret_fields_empty_keeps_them_and_remove_clears_them(client, member_factory, tenant_a):
    with platform_scope():
        account = PaymentProviderAccountFactory(tenant=tenant_a)
    client.force_login(member_factory(tenant_a, Role.OWNER))

    client.post(change_url(account), form(secret_key="", webhook_secret="", publishable_key="pk_test_new"))
    kept = stored(tenant_a)
    client.post(change_url(account), form(secret_key="", webhook_secret="", clear_secrets="on"))
    cleared = stored(tenant_a)

    assert (kept.secret_key, kept.webhook_secret, kept.publishable_key) == (
        "sk_test_acme_SECRETKEY", "whsec_acme_SIGNINGSECRET", "pk_test_new")
    assert (cleared.secret_key, cleared.webhook_secret, cleared.is_ready) == ("", "", False)


def test_a_wrong_key_is_refused_without_repeating_it(client, member_factory, tenant_a):
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    response = client.post(ADD, form(secret_key="pk_live_Oops0123", webhook_secret="secret-Oops"))

    body = response.content.decode()
    assert response.status_code == 200
    assert "A Stripe secret key starts with sk_ (or rk_ for a restricted key)." in body
    assert "A Stripe webhook signing secret starts with whsec_." in body
    assert "Oops" not in body
    assert PaymentProviderAccount.objects.for_tenant(tenant_a).count() == 0


def test_a_viewer_reads_whether_secrets_are_set_and_changes_nothing(client, member_factory, tenant_a):
    with platform_scope():
        account = PaymentProviderAccountFactory(tenant=tenant_a)
    client.force_login(member_factory(tenant_a, Role.VIEWER))

    page = client.get(change_url(account))
    refused = client.post(change_url(account), form(secret_key="sk_test_viewer"))

    body = page.content.decode()
    assert page.status_code == 200 and "sk_test_acme" not in body and "whsec_acme" not in body and ">set<" in body
    assert refused.status_code == 403 and stored(tenant_a).secret_key == "sk_test_acme_SECRETKEY"


def test_another_tenants_account_is_not_found(client, member_factory, tenant_a, tenant_b):
    with platform_scope():
        theirs = PaymentProviderAccountFactory(tenant=tenant_b)
    client.force_login(member_factory(tenant_a, Role.OWNER))

    response = client.get(change_url(theirs))

    assert response.status_code == 404 and "bergstrom" not in response.content.decode()
