"""``manage.py benchmark_whatif [--customers 10000] [--months 12] [--keep]``: see benchmarks.whatif."""

import json

from django.core.management.base import BaseCommand, CommandError

from benchmarks.whatif import RESULTS_PATH, run_whatif_benchmark


class Command(BaseCommand):
    help = "Time pricing what-ifs (five catalog plans) for N customers over M closed months of usage."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=10_000)
        parser.add_argument("--months", type=int, default=12)
        parser.add_argument("--events-per-month", type=int, default=4, help="Usage events per customer and month.")
        parser.add_argument("--keep", action="store_true", help="Keep the benchmark tenant for the next run.")

    def handle(self, *args, customers, months, events_per_month, keep, **options):
        if customers < 1 or not 1 <= months <= 24 or events_per_month < 1:
            raise CommandError("--customers and --events-per-month must be at least 1, --months from 1 to 24.")
        figures = run_whatif_benchmark(customers=customers, months=months, events_per_month=events_per_month, keep=keep)
        self.stdout.write(json.dumps(figures, indent=2, default=str))
        self.stdout.write(f"\nWritten to {RESULTS_PATH}")
