"""Staff two-factor authentication (TOTP with django-otp): who must use it, enrolling and removing an
authenticator app, checking a code, and the middleware that holds staff at the door until they have.

Who must:
- A platform superuser, always.
- A tenant's staff member when their tenant requires it (``Tenant.staff_two_factor_required``, which
  only the tenant's owner or a platform superuser changes). A member of several tenants must when any
  of them requires it: one login opens every tenant they work for.
- Anyone else on staff may turn it on for themselves. Whoever has a confirmed device enters a code after
  the password in every new session, required or not.

Until then every request of theirs is sent to the code page (device) or the setup page (no device,
required): admin, staff pages, and the API with their session (a 403 in JSON there). API keys are their
own credential and are not concerned; neither are customers' own people on the portal.

Setting up gives ten one-time backup codes (django-otp's static device), each accepted once instead of
an app's code. A lost phone without backup codes: a platform superuser deletes the person's devices in
the admin (Django OTP → TOTP devices), and the person sets up again.
"""

import math
from base64 import b32encode

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.tenancy import user_memberships

APP_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"
BACKUP_CODE_COUNT = 10
# A TOTP code has 6 digits; a backup code 8 letters and digits (django-otp's StaticToken.random_token).
MAX_CODE_LENGTH = 16


def is_staff_user(user) -> bool:
    """True for a logged-in member of staff or platform superuser: the people two-factor concerns."""
    return bool(user.is_authenticated and (user.is_staff or user.is_superuser))


def staff_two_factor_required(user, memberships=None) -> bool:
    """Whether ``user`` must use two-factor: always for a platform superuser; for tenant staff when any
    tenant they are a member of requires it. ``memberships`` (with their tenants loaded) saves the query
    when the caller has them, as the tenancy middleware does."""
    if not is_staff_user(user):
        return False
    if user.is_superuser:
        return True
    if memberships is None:
        memberships = user_memberships(user)
    return any(m.tenant.staff_two_factor_required for m in memberships)


def two_factor_reasons(user, memberships=None) -> list[str]:
    """Why ``user`` must use two-factor, one sentence per reason (empty when they need not)."""
    if not is_staff_user(user):
        return []
    if user.is_superuser:
        return [_("Two-factor authentication is required for every platform superuser.")]
    if memberships is None:
        memberships = user_memberships(user)
    return [
        _("%(tenant)s requires two-factor authentication for its staff.") % {"tenant": m.tenant.name}
        for m in memberships
        if m.tenant.staff_two_factor_required
    ]


def has_two_factor(user) -> bool:
    """True when ``user`` has a confirmed authenticator app: two-factor is on for them. (Backup codes
    come with an app and go with it; alone they do not count.) One query."""
    return user.is_authenticated and TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def totp_key_text(device: TOTPDevice) -> str:
    """The device's key as people type it into an app: base32, in groups of four."""
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _clean_code(code) -> str:
    code = "".join(str(code or "").split())
    if not code or len(code) > MAX_CODE_LENGTH or not code.isalnum():
        raise ValidationError(
            _("Enter the 6-digit code your authenticator app shows, or one of your backup codes."), code="invalid"
        )
    return code.lower()


def totp_device_pending(*, user) -> TOTPDevice:
    """The authenticator-app device ``user`` is setting up: unconfirmed until they enter its first code.
    The same secret is shown again until then, so a reload does not invalidate a scanned QR code.

    Raises ValidationError when ``user`` already has a confirmed device (a second one could be added
    by anyone holding the password alone)."""
    if has_two_factor(user):
        raise ValidationError(_("Two-factor authentication is already on for your account."), code="enrolled")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)


@transaction.atomic
def totp_device_confirm(*, user, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the device ``user`` is setting up with the first code their app shows; give them
    ``BACKUP_CODE_COUNT`` one-time backup codes. Returns the device (to mark the session verified) and
    the backup codes, which are shown once.

    Raises ValidationError for a malformed or wrong code, or when there is no device being set up, or
    a confirmed one already exists."""
    code = _clean_code(code)
    if has_two_factor(user):
        raise ValidationError(_("Two-factor authentication is already on for your account."), code="enrolled")
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        raise ValidationError(_("Start again: open the set-up page and scan its QR code."), code="no_device")
    if not device.verify_token(code):
        raise ValidationError(
            _("That code is not right. Check that your phone's clock is correct and enter the code the app shows now."),
            code="wrong",
        )
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return device, _backup_codes_replace(user)


def _backup_codes_replace(user) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    backup = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=backup, token=code) for code in codes)
    return codes


def backup_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def two_factor_check(*, user, code: str):
    """The confirmed device of ``user`` that accepts ``code`` (an app's current code or an unused backup
    code, which is then used up).

    Raises ValidationError for a malformed or wrong code, when every device is still refusing codes
    after recent wrong ones (waits of 1, 2, 4 … seconds), or when ``user`` has no device."""
    code = _clean_code(code)
    matched, wait_until = None, None
    with transaction.atomic():  # locks the devices, so one code cannot be used twice at once
        devices = list(devices_for_user(user, for_verify=True))
        if not devices:
            raise ValidationError(_("Two-factor authentication is not on for your account."), code="no_device")
        refusals = [info for allowed, info in (d.verify_is_allowed() for d in devices) if not allowed]
        if len(refusals) == len(devices):
            wait_until = min(info.get("locked_until") or timezone.now() for info in refusals)
        else:
            matched = next((d for d in devices if d.verify_token(code)), None)
    # Outside the transaction, so the wrong attempt's throttling count is kept.
    if wait_until is not None:
        seconds = max(1, math.ceil((wait_until - timezone.now()).total_seconds()))
        raise ValidationError(
            ngettext(
                "Too many wrong codes. Wait %(seconds)s second, then enter the code your app shows then.",
                "Too many wrong codes. Wait %(seconds)s seconds, then enter the code your app shows then.",
                seconds,
            )
            % {"seconds": seconds},
            code="throttled",
        )
    if matched is None:
        raise ValidationError(
            _("That code is not right. Enter the code your authenticator app shows now, or one of your backup codes."),
            code="wrong",
        )
    return matched


def two_factor_disable(*, user, code: str) -> None:
    """Turn two-factor off for ``user``: every device and backup code is deleted, once ``code`` proves
    they hold the device. A user who must use two-factor is sent to set it up again at once, so this is
    also how they move to a new phone.

    Raises ValidationError as ``two_factor_check`` does."""
    two_factor_check(user=user, code=code)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()


def _open_paths() -> set[str]:
    """Where a staff user who still owes a code may go: the two-factor pages themselves, and out."""
    names = ["portal:two_factor_verify", "portal:two_factor_setup", "portal:logout", "portal:login"]
    return {reverse(name) for name in names} | {reverse("admin:logout"), reverse("admin:login")}


class StaffTwoFactorMiddleware:
    """Holds a staff user who has not entered a code this session at the code page (they have a
    device) or the set-up page (they have none, and must have one). Runs after the tenancy middleware,
    whose ``request.memberships`` it reads (so the rule costs one query: whether a device exists)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            not is_staff_user(user)
            or getattr(request, "api_key", None) is not None
            or user.is_verified()
            or request.path in _open_paths()
        ):
            return self.get_response(request)
        if has_two_factor(user):
            target, detail = "portal:two_factor_verify", _("Enter your two-factor code first.")
        elif staff_two_factor_required(user, getattr(request, "memberships", None)):
            target, detail = "portal:two_factor_setup", _("Set up two-factor authentication first.")
        else:
            return self.get_response(request)
        url = reverse(target)
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": f"{detail} {request.build_absolute_uri(url)}"}, status=403)
        return redirect(f"{url}?{urlencode({'next': request.get_full_path()})}")
