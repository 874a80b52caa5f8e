"""``manage.py simulate_usage --tenant SLUG --days N --seed S [--customers K] [--end YYYY-MM-DD]``.

Realistic AI-call usage through the real ingestion path (see ``revenue.economics.simulator``).
"""

import time
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from customers.models import Tenant
from customers.periods import tenant_today
from customers.tenancy import tenant_scope
from revenue.economics.simulator import simulate_usage


class Command(BaseCommand):
    help = "Generate reproducible AI-call usage (light, power and heavy customers) and ingest it."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--days", type=int, required=True)
        parser.add_argument("--seed", type=int, required=True)
        parser.add_argument("--customers", type=int, default=None,
                            help="How many customers (the first by reference; simulated ones are added if needed).")
        parser.add_argument("--end", default=None, help="Last day simulated (default: yesterday in the tenant's zone).")

    def handle(self, *args, tenant, days, seed, customers, end, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No tenant with slug {tenant!r}.")
        if days < 1 or days > 3660:
            raise CommandError("--days must be from 1 to 3660.")
        if customers is not None and customers < 1:
            raise CommandError("--customers must be at least 1.")
        try:
            last = date.fromisoformat(end) if end else tenant_today(found) - timedelta(days=1)
        except ValueError:
            raise CommandError(f"--end must be a date as YYYY-MM-DD (got {end!r}).") from None
        started = time.perf_counter()
        with tenant_scope(found):
            result = simulate_usage(tenant=found, days=days, seed=seed, end=last, customers=customers)
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"{result.customers} customers ({dict(sorted(result.archetypes.items()))}), {result.days} days to {last}: "
            f"{result.events} events, {result.accepted} accepted, {result.duplicates} duplicates, "
            f"{result.rejected} rejected {dict(result.rejected_reasons) or ''} in {seconds:.1f} s "
            f"({result.events / seconds if seconds else 0:.0f} events/s); "
            f"{result.prices_created} model prices and {result.customers_created} customers created."
        )
