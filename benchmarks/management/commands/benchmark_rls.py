"""``manage.py benchmark_rls [--statements 2000] [--runs 5]``: see benchmarks.rls."""

import json

from django.core.management.base import BaseCommand, CommandError

from benchmarks.rls import RESULTS_PATH, run_rls_benchmark


class Command(BaseCommand):
    help = "Time a primary-key read with and without the tenant's per-transaction set_config."

    def add_arguments(self, parser):
        parser.add_argument("--statements", type=int, default=2000)
        parser.add_argument("--runs", type=int, default=5)

    def handle(self, *args, statements, runs, **options):
        if statements < 1 or runs < 1:
            raise CommandError("--statements and --runs must be at least 1.")
        figures = run_rls_benchmark(statements=statements, runs=runs)
        self.stdout.write(json.dumps(figures, indent=2))
        self.stdout.write(f"\nWritten to {RESULTS_PATH}")
