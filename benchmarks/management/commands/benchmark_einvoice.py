"""``manage.py benchmark_einvoice [--tenant konsult] [--invoices 20] [--runs 3]``: see benchmarks.einvoice."""

import json

from django.core.management.base import BaseCommand, CommandError

from benchmarks.einvoice import RESULTS_PATH, run_einvoice_benchmark
from customers.models import Tenant
from customers.tenancy import platform_scope


class Command(BaseCommand):
    help = "Time the UBL XML, the CII XML and the Factur-X PDF of a tenant's invoices against its plain PDF."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="konsult", help="Slug of a loaded tenant (the demo's konsult by default).")
        parser.add_argument("--invoices", type=int, default=20)
        parser.add_argument("--runs", type=int, default=3)

    def handle(self, *args, tenant, invoices, runs, **options):
        if invoices < 1 or runs < 1:
            raise CommandError("--invoices and --runs must be at least 1.")
        with platform_scope():
            if not Tenant.objects.filter(slug=tenant).exists():
                raise CommandError(f"No tenant {tenant!r}: load the demo first (manage.py demo_load --tenant {tenant}).")
        try:
            figures = run_einvoice_benchmark(slug=tenant, invoices=invoices, runs=runs)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(figures, indent=2))
        self.stdout.write(f"\nWritten to {RESULTS_PATH}")
