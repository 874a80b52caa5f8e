"""The staff two-factor pages (rules in ``portal.two_factor``): the account's two-factor page, setting
up an authenticator app (QR code as inline SVG, no script), entering a code after the password, and
turning it off. Only staff and platform superusers reach them; anyone else gets a 403.
"""

from functools import wraps

import qrcode
import qrcode.image.svg
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from portal.two_factor import (
    backup_codes_left,
    has_two_factor,
    is_staff_user,
    staff_two_factor_required,
    totp_device_confirm,
    totp_device_pending,
    totp_key_text,
    two_factor_check,
    two_factor_disable,
    two_factor_reasons,
)


def staff_only(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_staff_user(request.user):
            return HttpResponseForbidden(_("Two-factor authentication here is for staff; customers log in at the portal."))
        return view(request, *args, **kwargs)

    return wrapped


def _next(request) -> str:
    """Where to go once done: the page the user was sent from, if it is on this site; else the admin home."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("admin:index")


def _render(request, template, context, status=200):
    context = {**admin.site.each_context(request), "next": _next(request), **context}
    return render(request, template, context, status=status)


def _qr_svg(uri: str) -> str:
    # Rendered from our own otpauth URI: path data only, no script, so CSP needs nothing for it.
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return mark_safe(image.to_string(encoding="unicode"))


@staff_only
def two_factor_account(request):
    """The account's two-factor page: on or off, why it is required, backup codes left, turn off."""
    user = request.user
    enabled = has_two_factor(user)
    return _render(request, "portal/two_factor/account.html", {
        "title": _("Two-factor authentication"),
        "enabled": enabled,
        "reasons": two_factor_reasons(user, request.memberships or None),
        "backup_codes_left": backup_codes_left(user) if enabled else 0,
    })


@staff_only
def two_factor_setup(request):
    """Set up an authenticator app: scan the QR code (or type the key), enter the first code. Answers
    the backup codes once, on success. Someone with a device already is sent to their account page."""
    user = request.user
    try:
        device = totp_device_pending(user=user)
    except ValidationError:
        return redirect("portal:two_factor")
    status = 200
    if request.method == "POST":
        try:
            device, backup_codes = totp_device_confirm(user=user, code=request.POST.get("code", ""))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            status = 400
        else:
            otp_login(request, device)
            request.session.cycle_key()
            return _render(request, "portal/two_factor/backup_codes.html", {
                "title": _("Two-factor authentication is on"), "backup_codes": backup_codes,
            })
    uri = device.config_url
    return _render(request, "portal/two_factor/setup.html", {
        "title": _("Set up two-factor authentication"),
        "reasons": two_factor_reasons(user, request.memberships or None),
        "otpauth_uri": uri,
        "secret": totp_key_text(device),
        "qr_svg": _qr_svg(uri),
    }, status=status)


@staff_only
def two_factor_verify(request):
    """After the password: enter the app's code (or a backup code) to reach the staff pages."""
    user = request.user
    if user.is_verified():
        return redirect(_next(request))
    if not has_two_factor(user):
        return redirect(f"{reverse('portal:two_factor_setup')}?{urlencode({'next': _next(request)})}")
    status = 200
    if request.method == "POST":
        try:
            device = two_factor_check(user=user, code=request.POST.get("code", ""))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            status = 400
        else:
            otp_login(request, device)
            request.session.cycle_key()
            if isinstance(device, StaticDevice):
                messages.warning(request, _("You used a backup code; %(left)s are left.") % {"left": backup_codes_left(user)})
            return redirect(_next(request))
    return _render(request, "portal/two_factor/verify.html", {"title": _("Enter your two-factor code")}, status=status)


@staff_only
@require_POST
def two_factor_turn_off(request):
    """Turn two-factor off with a current code. Whoever must use it is sent to set up a new device."""
    user = request.user
    try:
        two_factor_disable(user=user, code=request.POST.get("code", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("portal:two_factor")
    if staff_two_factor_required(user, request.memberships or None):
        messages.warning(request, _("Two-factor authentication is off. It is required for you: set up your new device now."))
        return redirect("portal:two_factor_setup")
    messages.success(request, _("Two-factor authentication is off."))
    return redirect("portal:two_factor")
