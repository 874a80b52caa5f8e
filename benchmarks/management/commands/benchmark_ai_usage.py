"""``manage.py benchmark_ai_usage [--customers 400] [--days 30] [--keep]``: see benchmarks.ai_usage."""

import json

from django.core.management.base import BaseCommand, CommandError

from benchmarks.ai_usage import RESULTS_PATH, run_ai_usage_benchmark


class Command(BaseCommand):
    help = "Time AI-call ingestion with and without the roll-up, and cost to serve from the roll-up and from the events."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=400)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--keep", action="store_true", help="Keep the benchmark tenant afterwards.")

    def handle(self, *args, customers, days, keep, **options):
        if customers < 2 or not 1 <= days <= 31:
            raise CommandError("--customers must be at least 2 and --days from 1 to 31 (one month).")
        figures = run_ai_usage_benchmark(customers=customers, days=days, keep=keep)
        self.stdout.write(json.dumps(figures, indent=2, default=str))
        self.stdout.write(f"\nWritten to {RESULTS_PATH}")
