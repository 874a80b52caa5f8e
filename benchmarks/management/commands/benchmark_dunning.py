"""``manage.py benchmark_dunning [--invoices 500]``: see benchmarks.dunning."""

import json

from django.core.management.base import BaseCommand, CommandError

from benchmarks.dunning import RESULTS_PATH, run_dunning_benchmark


class Command(BaseCommand):
    help = "Time the daily payment-reminder run over many overdue invoices, and its same-day rerun."

    def add_arguments(self, parser):
        parser.add_argument("--invoices", type=int, default=500)

    def handle(self, *args, invoices, **options):
        if invoices < 1:
            raise CommandError("--invoices must be at least 1.")
        figures = run_dunning_benchmark(invoices=invoices)
        self.stdout.write(json.dumps(figures, indent=2, default=str))
        self.stdout.write(f"\nWritten to {RESULTS_PATH}")
