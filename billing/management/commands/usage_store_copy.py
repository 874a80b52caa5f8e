"""``manage.py usage_store_copy --tenant SLUG --from STORE --to STORE [--month YYYY-MM]``: see billing.usage_copy.

Copies the tenant's usage events month by month (every month with events, or the one named),
idempotently, verifies each month's event count and quantity sum in both stores and prints one line
per month. Exits non-zero when a month does not verify, and refuses (nothing copied) an unknown
tenant, a malformed month, the same store twice or a store that is not configured.
"""

import re
from datetime import date

from clickhouse_connect.driver.exceptions import ClickHouseError
from django.core.management.base import BaseCommand, CommandError

from billing.metering import usage_store_of
from billing.usage_copy import usage_copy_months, usage_month_copy
from billing.usage_store import CLICKHOUSE, POSTGRES
from customers.models import Tenant
from customers.tenancy import platform_scope, tenant_scope

_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])\Z")
STORES = [POSTGRES, CLICKHOUSE]


class Command(BaseCommand):
    help = "Copy a tenant's usage events from one usage-event store to the other, month by month, and verify them."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--from", dest="source", required=True, help=f"The store to copy from: {' or '.join(STORES)}.")
        parser.add_argument("--to", dest="target", required=True, help=f"The store to copy to: {' or '.join(STORES)}.")
        parser.add_argument("--month", help="YYYY-MM (UTC month). Default: every month with events in the source.")

    def handle(self, *args, tenant, source, target, month, **options):
        for label, kind in (("--from", source), ("--to", target)):
            if kind not in STORES:
                raise CommandError(f"{label} must be {' or '.join(STORES)}, not {kind!r}.")
        if source == target:
            raise CommandError("--from and --to name the same store; nothing to copy.")
        months = None
        if month is not None:
            match = _MONTH.match(month)
            if not match:
                raise CommandError("--month must be YYYY-MM, e.g. 2026-09.")
            months = [date(int(match.group(1)), int(match.group(2)), 1)]
        with platform_scope(reason="usage_store_copy finds the tenant named on the command line"):
            found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No tenant with slug {tenant!r}.")
        try:
            source_store, target_store = usage_store_of(source), usage_store_of(target)
        except ValueError as refusal:
            raise CommandError(str(refusal)) from None
        except ClickHouseError as error:
            raise CommandError(f"The ClickHouse server did not answer: {error}") from None
        try:
            self._copy(found, source, target, source_store, target_store, months)
        except ClickHouseError as error:
            raise CommandError(
                f"The ClickHouse server failed during the copy: {error}. The months printed above are copied and"
                " verified; run the command again to copy the rest (nothing is copied twice)."
            ) from None

    def _copy(self, found, source, target, source_store, target_store, months):
        unverified = 0
        with tenant_scope(found):
            # Batches a crash left unwritten are events of the source too.
            source_store.pending_flush(tenant=found)
            if months is None:
                months = usage_copy_months(tenant=found, source=source_store)
            if not months:
                self.stdout.write(f"{found.slug}: no usage events in {source}; nothing to copy.")
            for first_day in months:
                result = usage_month_copy(tenant=found, source=source_store, target=target_store, month=first_day)
                verdict = "verified" if result.verified else "MISMATCH"
                line = (
                    f"{first_day:%Y-%m}: copied {result.copied} events; {source} {result.source_events} events,"
                    f" Σ quantity {result.source_quantity}; {target} {result.target_events} events,"
                    f" Σ quantity {result.target_quantity}: {verdict}"
                )
                if result.verified:
                    self.stdout.write(line)
                else:
                    unverified += 1
                    self.stderr.write(line)
        if unverified:
            raise CommandError(
                f"{unverified} month(s) differ between {source} and {target}; events ingested into {target} "
                "since the switch are never deleted by a copy."
            )
