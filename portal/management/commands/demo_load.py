"""``manage.py demo_load``: the three demo tenants with 24 months of history, and their logins."""

import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice
from django.db import connection

from portal.demo import SLUGS, demo_load
from portal.demo.logins import ADMIN_USERNAME, DEMO_PASSWORD, DEMO_TOTP_DEVICE


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--today must be a date as YYYY-MM-DD, got {value!r}.") from None


class Command(BaseCommand):
    help = (
        "Create the demo tenants (optimizer, jobapi, konsult) with 24 months of history ending this month, "
        "and one login per role. Tenants that exist are left as they are; logins are ensured."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scale", type=float, default=1.0, help="Multiply the number of generated customers.")
        parser.add_argument("--seed", type=int, default=2026, help="Random seed; the same seed gives the same data.")
        parser.add_argument("--today", type=str, default=None, help="The day the history ends (YYYY-MM-DD).")
        parser.add_argument("--reset", action="store_true", help="Delete the demo tenants and build them again.")
        parser.add_argument("--analyze-only", action="store_true",
                            help="Only refresh the planner's statistics (as the tables' owner: DATABASE_ROLE=owner).")
        parser.add_argument("--tenant", action="append", choices=SLUGS, dest="only",
                            help="Only this demo tenant (repeat for more); all three by default.")

    def handle(self, *args, scale, seed, today, reset, only, verbosity, analyze_only=False, **options):
        if analyze_only:
            self._analyze()
            return
        if not 0 < scale <= 100:
            raise CommandError(f"--scale must be above 0 and at most 100, got {scale}.")
        today = _date(today) if today else None  # None: each tenant's own today
        started = time.monotonic()
        report = demo_load(today=today, seed=seed, scale=scale, reset=reset, progress=verbosity > 0, only=only)
        if any(tenant.status == "built" for tenant in report.tenants):
            # Fresh bulk-loaded tables have no planner statistics and no visibility map until
            # autovacuum comes round: the first pages after a load would be planned as if every
            # table were empty, and could not read the usage events from their index alone.
            self._analyze()
        elapsed = time.monotonic() - started
        if verbosity == 0:
            return
        for tenant in report.tenants:
            counts = ", ".join(f"{n} {name}" for name, n in tenant.counts.items())
            style = self.style.SUCCESS if tenant.status == "built" else self.style.WARNING
            self.stdout.write(style(f"{tenant.name} ({tenant.slug}): {tenant.status}") + f" — {counts}")
        ends = today or "today in each tenant's time zone"
        self.stdout.write(f"History ends {ends}; took {elapsed:.1f} s.\n")
        self._logins_table(report.logins)

    def _analyze(self):
        """VACUUM ANALYZE, which only the tables' owner may run; the application role leaves it to
        ``bin/demo`` (``--analyze-only`` as the owner) or autovacuum. VACUUM cannot run inside a
        transaction, as when a test calls the command."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user")
            if not cursor.fetchone()[0]:
                return
            cursor.execute("ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE")

    def _logins_table(self, logins):
        header = ("username", "password", "role", "tenant", "log in at")
        rows = [(login.username, DEMO_PASSWORD, login.role, login.tenant, login.where) for login in logins]
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        line = "  ".join("-" * w for w in widths)
        self.stdout.write(self.style.MIGRATE_HEADING("Demo logins"))
        self.stdout.write("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        self.stdout.write(line)
        for row in rows:
            self.stdout.write("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
        self._two_factor_note()

    def _two_factor_note(self):
        device = TOTPDevice.objects.filter(user__username=ADMIN_USERNAME, name=DEMO_TOTP_DEVICE).first()
        if device is not None:
            self.stdout.write(
                f"\n{ADMIN_USERNAME} must enter a two-factor code after the password (every platform superuser must).\n"
                f"  Print the current code:  .venv/bin/python manage.py otp_code {ADMIN_USERNAME}\n"
                f"  or add this to an authenticator app: {device.config_url}\n"
                "The tenants' staff have two-factor off: anyone turns it on under \"Two-factor authentication\"\n"
                "at the top of the admin; a tenant's owner requires it for all its staff in the tenant's settings."
            )
