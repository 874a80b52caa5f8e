"""``manage.py usage_archive --tenant SLUG [--month YYYY-MM [--restore]]``: see billing.usage_archive.

Without ``--month`` it archives every month due under the tenant's ``usage_archive_after_months``
(months not fully invoiced are reported and left); with it, that month, or restores it with
``--restore``.
"""

import re
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from billing.usage_archive import ArchiveRefused, usage_archive_due, usage_archive_month, usage_archive_restore
from customers.models import Tenant
from customers.tenancy import platform_scope, tenant_scope

_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])\Z")


class Command(BaseCommand):
    help = "Archive a tenant's usage events of invoiced months to gzipped CSV files, or restore a month."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--month", help="YYYY-MM (UTC month). Default: every month due under the tenant's setting.")
        parser.add_argument("--restore", action="store_true", help="Load the month's archived events back.")

    def handle(self, *args, tenant, month, restore, **options):
        with platform_scope(reason="usage_archive finds the tenant named on the command line"):
            found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No tenant with slug {tenant!r}.")
        if month is not None:
            match = _MONTH.match(month)
            if not match:
                raise CommandError("--month must be YYYY-MM, e.g. 2026-09.")
            months = [date(int(match.group(1)), int(match.group(2)), 1)]
        elif restore:
            raise CommandError("--restore needs --month.")
        else:
            with tenant_scope(found):
                months = usage_archive_due(tenant=found)
        if not months:
            self.stdout.write("Nothing to archive.")
        refused = 0
        for first_day in months:
            try:
                with tenant_scope(found):
                    if restore:
                        rows = usage_archive_restore(tenant=found, month=first_day)
                        self.stdout.write(f"{first_day:%Y-%m}: restored {rows} events.")
                    else:
                        archive = usage_archive_month(tenant=found, month=first_day)
                        self.stdout.write(f"{first_day:%Y-%m}: archived {archive.rows} events to {archive.path}")
            except ArchiveRefused as refusal:
                refused += 1
                self.stderr.write(f"{first_day:%Y-%m}: {refusal}")
        if refused and month is not None:
            raise CommandError("Nothing was changed.")
