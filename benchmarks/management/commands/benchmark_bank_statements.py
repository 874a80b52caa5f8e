"""``manage.py benchmark_bank_statements [--entries 1000] [--runs 3] [--keep]``: see benchmarks.bank_statements."""

import json

from django.core.management.base import BaseCommand, CommandError

from benchmarks.bank_statements import RESULTS_PATH, run_bank_statement_benchmark


class Command(BaseCommand):
    help = "Time the preview and confirm of one bank statement of N payments, CSV (baseline) against camt.053."

    def add_arguments(self, parser):
        parser.add_argument("--entries", type=int, default=1000)
        parser.add_argument("--runs", type=int, default=3, help="Timed previews per format (the median is kept).")
        parser.add_argument("--keep", action="store_true", help="Keep the benchmark tenant to look at afterwards.")

    def handle(self, *args, entries, runs, keep, **options):
        if runs < 1:
            raise CommandError("--runs must be at least 1.")
        try:
            figures = run_bank_statement_benchmark(entries=entries, runs=runs, keep=keep)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(figures, indent=2, default=str))
        self.stdout.write(f"\nWritten to {RESULTS_PATH}")
