"""``manage.py benchmark_webhooks [--events 500] [--deliveries 200] [--runs 3]``: see benchmarks.webhooks."""

import json

from django.core.management.base import BaseCommand, CommandError

from benchmarks.webhooks import RESULTS_PATH, run_webhooks_benchmark


class Command(BaseCommand):
    help = "Time emitting webhook events in a transaction and delivery attempts to a loopback receiver."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=500)
        parser.add_argument("--deliveries", type=int, default=200)
        parser.add_argument("--runs", type=int, default=3)

    def handle(self, *args, events, deliveries, runs, **options):
        if min(events, deliveries, runs) < 1:
            raise CommandError("--events, --deliveries and --runs must be at least 1.")
        figures = run_webhooks_benchmark(events=events, deliveries=deliveries, runs=runs)
        self.stdout.write(json.dumps(figures, indent=2))
        self.stdout.write(f"\nWritten to {RESULTS_PATH}")
