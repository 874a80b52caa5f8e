"""Staff two-factor authentication (portal.two_factor): always for platform superusers, for a tenant's
staff when its owner requires it, for anyone who turned it on; codes computed here as an app would."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from customers.models import Role, Tenant
from customers.tenancy import platform_scope
from tests.customers.factories import CustomerFactory, MembershipFactory, PortalAccessFactory
from tests.two_factor import current_code, verified_login

SETUP, VERIFY, ACCOUNT, TURN_OFF = "/staff/two-factor/setup/", "/staff/two-factor/verify/", "/staff/two-factor/", "/staff/two-factor/turn-off/"
CUSTOMERS = "/admin/customers/customer/"


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("platform", "platform@example.com", "pass-word-123")


def confirmed_device(user):
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def test_the_urls_are_where_the_readme_says():
    assert (reverse("portal:two_factor_setup"), reverse("portal:two_factor_verify")) == (SETUP, VERIFY)


def test_a_superuser_without_a_device_is_sent_to_set_one_up_from_every_staff_page(client, superuser, tenant_a):
    client.force_login(superuser)

    response = client.get(CUSTOMERS)
    assert (response.status_code, response["Location"]) == (302, f"{SETUP}?next=%2Fadmin%2Fcustomers%2Fcustomer%2F")
    for path in ["/admin/", f"/admin/customers/tenant/{tenant_a.pk}/change/", "/staff/", ACCOUNT]:
        assert client.get(path)["Location"].startswith(f"{SETUP}?next="), path
    api = client.get("/api/v1/customers/")
    assert api.status_code == 403
    assert api.json()["detail"] == "Set up two-factor authentication first. http://testserver/staff/two-factor/setup/"


def test_a_superuser_sets_up_with_the_apps_first_code_and_gets_in(client, superuser, tenant_a):
    CustomerFactory(tenant=tenant_a, name="Northwind")
    client.force_login(superuser)

    page = client.get(f"{SETUP}?next={CUSTOMERS}")
    device = TOTPDevice.objects.get(user=superuser)
    body = page.content.decode()
    assert page.status_code == 200 and device.confirmed is False
    assert "Two-factor authentication is required for every platform superuser." in body
    assert "otpauth://totp/Customer%20economics%20portal%3Aplatform?secret=" in body and "<svg" in body
    assert "<script" not in body.split('id="two-factor-setup"')[1]  # the QR code is plain SVG

    response = client.post(SETUP, {"code": current_code(device), "next": CUSTOMERS})
    device.refresh_from_db()
    assert response.status_code == 200 and device.confirmed is True
    codes = response.context["backup_codes"]
    assert len(codes) == 10 and sorted(StaticToken.objects.filter(device__user=superuser).values_list("token", flat=True)) == sorted(codes)
    assert f'href="{CUSTOMERS}"' in response.content.decode()
    listing = client.get(CUSTOMERS)
    assert listing.status_code == 200 and "Northwind" in listing.content.decode()


def test_a_wrong_code_at_set_up_is_refused_with_a_message_and_nothing_turns_on(client, superuser):
    client.force_login(superuser)
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=superuser)
    wrong = f"{(int(current_code(device)) + 1) % 1_000_000:06d}"

    response = client.post(SETUP, {"code": wrong})
    assert response.status_code == 400
    assert messages_of(response) == [
        "That code is not right. Check that your phone's clock is correct and enter the code the app shows now."
    ]
    assert client.post(SETUP, {"code": "12ab!"}).status_code == 400
    device.refresh_from_db()
    assert device.confirmed is False and not StaticDevice.objects.filter(user=superuser).exists()
    assert client.get(CUSTOMERS)["Location"].startswith(SETUP)
    # The same key is offered again, so the QR code already scanned keeps working.
    assert client.get(SETUP).context["otpauth_uri"] == device.config_url


def test_with_a_device_a_new_session_must_enter_a_code_and_a_wrong_one_is_refused(client, superuser):
    device = confirmed_device(superuser)
    client.force_login(superuser)

    assert client.get(CUSTOMERS)["Location"] == f"{VERIFY}?next=%2Fadmin%2Fcustomers%2Fcustomer%2F"
    wrong = client.post(VERIFY, {"code": "000000" if current_code(device) != "000000" else "111111", "next": CUSTOMERS})
    assert wrong.status_code == 400
    assert messages_of(wrong) == [
        "That code is not right. Enter the code your authenticator app shows now, or one of your backup codes."
    ]
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    # After wrong codes the device waits 1, 2, 4, 8 … s before it checks another: the fourth wrong one just now.
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=timezone.now(), throttling_failure_count=4)
    throttled = client.post(VERIFY, {"code": current_code(device), "next": CUSTOMERS})
    assert throttled.status_code == 400
    assert re.fullmatch(r"Too many wrong codes\. Wait [78] seconds, then enter the code your app shows then\.", messages_of(throttled)[0])

    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None, throttling_failure_count=0)
    code = current_code(device)
    right = client.post(VERIFY, {"code": code, "next": CUSTOMERS})
    assert (right.status_code, right["Location"]) == (302, CUSTOMERS)
    assert client.get(CUSTOMERS).status_code == 200
    # The same code never works twice.
    client.logout()
    client.force_login(superuser)
    assert client.post(VERIFY, {"code": code}).status_code == 400


def test_a_backup_code_works_once(client, superuser):
    confirmed_device(superuser)
    backup = StaticDevice.objects.create(user=superuser, name="Backup codes", confirmed=True)
    backup.token_set.create(token="abcd2345")
    client.force_login(superuser)

    response = client.post(VERIFY, {"code": "ABCD 2345"}, follow=True)
    assert response.redirect_chain[0] == ("/admin/", 302)
    assert "You used a backup code; 0 are left." in messages_of(response)
    client.logout()
    client.force_login(superuser)
    assert client.post(VERIFY, {"code": "abcd2345"}).status_code == 400


def test_the_password_alone_cannot_add_a_second_device(client, superuser):
    confirmed_device(superuser)
    client.force_login(superuser)

    assert client.get(SETUP)["Location"] == ACCOUNT
    assert client.post(SETUP, {"code": "123456"})["Location"] == ACCOUNT
    assert client.get(ACCOUNT)["Location"].startswith(VERIFY)
    assert TOTPDevice.objects.filter(user=superuser).count() == 1


def test_the_code_page_only_goes_on_to_this_site(client, superuser):
    device = confirmed_device(superuser)
    client.force_login(superuser)
    response = client.post(VERIFY, {"code": current_code(device), "next": "https://evil.example.com/"})
    assert response["Location"] == "/admin/"


@pytest.mark.parametrize("required", [True, False])
def test_a_tenant_that_requires_it_sends_its_staff_without_a_device_to_set_up(client, member_factory, tenant_a, required):
    Tenant.objects.filter(pk=tenant_a.pk).update(staff_two_factor_required=required)
    client.force_login(member_factory(tenant_a, Role.ACCOUNT_MANAGER))

    response = client.get(CUSTOMERS)
    if required:
        assert response["Location"] == f"{SETUP}?next=%2Fadmin%2Fcustomers%2Fcustomer%2F"
        assert "Acme Optimizer requires two-factor authentication for its staff." in client.get(SETUP).content.decode()
    else:
        assert response.status_code == 200
        assert client.get(ACCOUNT).context["reasons"] == []


def test_a_member_of_two_tenants_must_when_either_requires_it(client, member_factory, tenant_a, tenant_b):
    Tenant.objects.filter(pk=tenant_b.pk).update(staff_two_factor_required=True)
    user = member_factory(tenant_a, Role.ACCOUNT_MANAGER)
    with platform_scope():
        MembershipFactory(tenant=tenant_b, user=user, role=Role.VIEWER)
    client.force_login(user)
    client.post("/tenant/switch/", {"tenant": tenant_a.pk})  # acting for the tenant that does not require it

    assert client.get(CUSTOMERS)["Location"].startswith(SETUP)


def test_staff_who_turned_it_on_themselves_enter_a_code_though_no_one_requires_it(client, member_factory, tenant_a):
    user = member_factory(tenant_a, Role.FINANCE)
    device = confirmed_device(user)
    client.force_login(user)

    assert client.get(CUSTOMERS)["Location"].startswith(VERIFY)
    assert client.post(VERIFY, {"code": current_code(device)})["Location"] == "/admin/"
    assert client.get(CUSTOMERS).status_code == 200


def test_turning_it_off_takes_a_code_and_removes_every_device(client, member_factory, tenant_a):
    user = member_factory(tenant_a, Role.FINANCE)
    device = verified_login(client, user)
    StaticDevice.objects.create(user=user, name="Backup codes", confirmed=True).token_set.create(token="zzzz2222")

    refused = client.post(TURN_OFF, {"code": ""}, follow=True)
    assert messages_of(refused) == ["Enter the 6-digit code your authenticator app shows, or one of your backup codes."]
    assert TOTPDevice.objects.filter(user=user).count() == 1

    response = client.post(TURN_OFF, {"code": current_code(device, steps=1)}, follow=True)
    assert response.redirect_chain == [(ACCOUNT, 302)]
    assert messages_of(response) == ["Two-factor authentication is off."]
    assert not TOTPDevice.objects.filter(user=user).exists() and not StaticDevice.objects.filter(user=user).exists()
    assert client.get(CUSTOMERS).status_code == 200


def test_a_superuser_who_turns_it_off_is_sent_to_set_up_a_new_device(client, superuser):
    device = verified_login(client, superuser)
    response = client.post(TURN_OFF, {"code": current_code(device, steps=1)})
    assert response["Location"] == SETUP
    assert client.get(CUSTOMERS)["Location"].startswith(SETUP)


def test_customers_people_and_api_keys_are_not_concerned(client, tenant_a):
    with platform_scope():
        access = PortalAccessFactory(tenant=tenant_a, customer=CustomerFactory(tenant=tenant_a))
    client.force_login(access.user)
    assert client.get(ACCOUNT).status_code == 403
    assert client.get("/").status_code == 200


def tenant_form_data(response, **overrides):
    form = response.context["adminform"].form
    data = {name: ("" if form[name].value() is None else form[name].value()) for name in form.fields if name != "logo"}
    data = {name: value for name, value in data.items() if value is not False}  # unticked boxes are not sent
    data.update(overrides)
    return data


def test_only_the_owner_turns_the_requirement_on(client, member_factory, tenant_a):
    url = f"/admin/customers/tenant/{tenant_a.pk}/change/"
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    assert client.post(url, {"staff_two_factor_required": "on"}).status_code == 404
    tenant_a.refresh_from_db()
    assert tenant_a.staff_two_factor_required is False

    client.force_login(member_factory(tenant_a, Role.OWNER))
    response = client.post(url, tenant_form_data(client.get(url), staff_two_factor_required="on"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant_a.refresh_from_db()
    assert tenant_a.staff_two_factor_required is True
    # From the owner's next request on, they too set up first.
    assert client.get("/admin/")["Location"] == f"{SETUP}?next=%2Fadmin%2F"


def test_the_demo_superuser_has_a_device_whose_code_the_command_prints(db, capsys):
    from portal.demo.logins import ADMIN_USERNAME, Logins

    logins = Logins()
    logins.admin()
    logins.admin()  # ensured, never duplicated: a phone that scanned the key keeps working
    device = TOTPDevice.objects.get(user__username=ADMIN_USERNAME, confirmed=True)

    call_command("otp_code", ADMIN_USERNAME)
    assert capsys.readouterr().out.strip() == current_code(device)


def test_the_command_prints_no_code_of_a_real_device(db, superuser):
    from django.core.management.base import CommandError

    confirmed_device(superuser)
    with pytest.raises(CommandError, match="only for the demo's devices"):
        call_command("otp_code", "platform")


def test_only_platform_superusers_reach_the_devices_in_the_admin(client, superuser, member_factory, tenant_a):
    confirmed_device(member_factory(tenant_a, Role.OWNER, username="acme-owner"))
    client.force_login(member_factory(tenant_a, Role.OWNER))
    assert client.get("/admin/otp_totp/totpdevice/").status_code == 403
    assert client.get("/admin/otp_static/staticdevice/").status_code == 403

    verified_login(client, superuser)
    listing = client.get("/admin/otp_totp/totpdevice/")
    assert listing.status_code == 200 and "acme-owner" in listing.content.decode()


def test_the_pages_speak_the_members_language(client, member_factory, tenant_b):
    Tenant.objects.filter(pk=tenant_b.pk).update(staff_two_factor_required=True)
    client.force_login(member_factory(tenant_b, Role.VIEWER))

    body = client.get(SETUP).content.decode()
    assert "Bergström Konsult kräver tvåstegsverifiering för sin personal." in body
    assert "Ange den sexsiffriga koden som appen visar" in body
