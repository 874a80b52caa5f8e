"""``manage.py benchmark_usage_store``: usage events in PostgreSQL against ClickHouse (see benchmarks.usage_store)."""

import json

from django.core.management.base import BaseCommand, CommandError

from benchmarks.usage_store import RESULTS_PATH, run_usage_store_benchmark


class Command(BaseCommand):
    help = "Ingest N usage events into PostgreSQL and into ClickHouse (chdb; keys in PostgreSQL, or ReplacingMergeTree) and time a month's totals."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=2_000)
        parser.add_argument("--events", type=int, default=1_000_000)
        parser.add_argument("--runs", type=int, default=3, help="Totals are the median of this many runs.")
        parser.add_argument("--keep", action="store_true", help="Keep the benchmark tenant and the chdb directory.")

    def handle(self, *args, **options):
        if options["customers"] < 1 or options["events"] < 1 or options["runs"] < 1:
            raise CommandError("--customers, --events and --runs must be at least 1.")
        figures = run_usage_store_benchmark(
            customers=options["customers"], events=options["events"], runs=options["runs"], keep=options["keep"]
        )
        self.stdout.write(json.dumps(figures, indent=2, default=str))
        rows = [
            ("store", "ingest events/s", "resent batch: duplicates reported", "month's totals (s)"),
            ("PostgreSQL", figures["postgres"]["ingest"]["events_per_second"],
             figures["postgres"]["ingest"]["resent_batch"]["reported_duplicate"],
             figures["postgres"]["month_totals_seconds"]),
            ("ClickHouse, keys in PostgreSQL (a)", figures["clickhouse_keys"]["ingest"]["events_per_second"],
             figures["clickhouse_keys"]["ingest"]["resent_batch"]["reported_duplicate"],
             figures["clickhouse_keys"]["month_totals_seconds"]),
            ("ClickHouse, ReplacingMergeTree + FINAL (b)", figures["clickhouse_replacing"]["ingest"]["events_per_second"],
             figures["clickhouse_replacing"]["ingest"]["resent_batch"]["reported_duplicate"],
             figures["clickhouse_replacing"]["month_totals_seconds_final"]),
            ("  (b) read without FINAL", "", "", figures["clickhouse_replacing"]["month_totals_seconds_without_final"]),
        ]
        self.stdout.write("")
        for row in rows:
            self.stdout.write(f"{row[0]:<44} {row[1]!s:>16} {row[2]!s:>34} {row[3]!s:>20}")
        self.stdout.write(f"\nWritten to {RESULTS_PATH}")
