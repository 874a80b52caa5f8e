"""``manage.py benchmark_usage_copy``: moving a tenant's events between stores against replaying them (see benchmarks.usage_copy)."""

import json

from django.core.management.base import BaseCommand, CommandError

from benchmarks.usage_copy import RESULTS_PATH, run_usage_copy_benchmark


class Command(BaseCommand):
    help = "Copy a tenant's N usage events PostgreSQL → ClickHouse (chdb) and back, against re-ingesting them into ClickHouse."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=2_000)
        parser.add_argument("--events", type=int, default=200_000)
        parser.add_argument("--keep", action="store_true", help="Keep the benchmark tenants and the chdb directory.")

    def handle(self, *args, **options):
        if options["customers"] < 1 or options["events"] < 1:
            raise CommandError("--customers and --events must be at least 1.")
        figures = run_usage_copy_benchmark(customers=options["customers"], events=options["events"], keep=options["keep"])
        self.stdout.write(json.dumps(figures, indent=2, default=str))
        self.stdout.write("")
        for label, key in [
            ("ingest into PostgreSQL (setup)", "ingest_into_postgres"),
            ("copy PostgreSQL → ClickHouse", "copy_to_clickhouse"),
            ("copy again (nothing to copy)", "copy_again"),
            ("copy ClickHouse → PostgreSQL", "copy_back"),
            ("baseline: replay into ClickHouse", "replay_into_clickhouse"),
        ]:
            phase = figures[key]
            self.stdout.write(f"{label:<36} {phase['seconds']:>8} s {phase['events_per_second'] or '':>12} events/s")
        self.stdout.write(f"\nWritten to {RESULTS_PATH}")
