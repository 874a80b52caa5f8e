"""Logging staff in past two-factor in tests: ``verified_login(client, user)`` is ``force_login`` plus a
session that has entered a code, as every platform superuser's must (portal.two_factor), and
``current_code(device)`` is the code an authenticator app shows for a device now (or ``steps`` later)."""

import time

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


def current_code(device: TOTPDevice, steps: int = 0) -> str:
    """The 6-digit code the app shows for ``device`` now, or ``steps`` time steps (of 30 s) later. The
    device accepts one step either side, and each step's code once only."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps * device.step
    return f"{totp.token():0{device.digits}d}"


def verified_login(client, user):
    """Log ``user`` in with ``client`` as having entered a two-factor code this session; a confirmed
    TOTP device is made if they have none. Returns the device."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="Test authenticator", confirmed=True
    )
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device
