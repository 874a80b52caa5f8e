"""``manage.py revenue_facts_rebuild [--tenant SLUG]``: rebuild the revenue facts from scratch.

Every tenant, or the one named. Turns the facts on for a tenant that had none, moves its horizon
``revenue.facts.HORIZON_MONTHS`` after the current month, and takes the current reporting currency
(see ``revenue.facts``). One transaction per tenant.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from customers.models import Tenant
from revenue.facts import revenue_facts_rebuild


class Command(BaseCommand):
    help = "Rebuild each tenant's MRR facts (or one tenant's) from the contract lines and exchange rates."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default=None, help="The tenant's slug (default: every tenant).")

    def handle(self, *args, tenant=None, **options):
        tenants = Tenant.objects.order_by("slug")
        if tenant is not None:
            tenants = tenants.filter(slug=tenant)
        tenants = list(tenants)
        if tenant is not None and not tenants:
            raise CommandError(f"No tenant with slug {tenant!r}.")
        for found in tenants:
            started = time.perf_counter()
            rows = revenue_facts_rebuild(tenant=found)
            self.stdout.write(f"{found.slug}: {rows} fact rows in {time.perf_counter() - started:.2f} s")
