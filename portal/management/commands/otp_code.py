"""``manage.py otp_code USERNAME``: the current two-factor code of a demo login, for newcomers trying the
demo without an authenticator app. It prints codes only of the devices the demo loader made
(``portal.demo.logins.DEMO_TOTP_DEVICE``), never of a device a person set up."""

from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.demo.logins import DEMO_TOTP_DEVICE


class Command(BaseCommand):
    help = "Print the current two-factor code of a demo login (the demo's admin), valid for about 30 seconds."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        device = TOTPDevice.objects.filter(user__username=username, name=DEMO_TOTP_DEVICE, confirmed=True).first()
        if device is None:
            raise CommandError(
                f"{username!r} has no demo two-factor device: this command is only for the demo's devices "
                "(manage.py demo_load gives the demo's admin one)."
            )
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        self.stdout.write(f"{totp.token():0{device.digits}d}")
