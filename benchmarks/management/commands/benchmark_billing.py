"""``manage.py benchmark_billing``: month-end draft invoicing at scale (see benchmarks.invoicing)."""

import json

from django.core.management.base import BaseCommand, CommandError

from benchmarks.invoicing import RESULTS_PATH, run_billing_benchmark


class Command(BaseCommand):
    help = "Time invoice_compute_drafts (and its re-run) for N customers and M usage events of one month."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=10_000)
        parser.add_argument("--events", type=int, default=2_000_000)
        parser.add_argument("--skip-ingest", action="store_true", help="Load events with usage_ingest, not over HTTP.")
        parser.add_argument("--ingest-client", choices=["gunicorn", "django"], default="gunicorn")
        parser.add_argument("--keep", action="store_true", help="Keep the benchmark tenant and its data.")

    def handle(self, *args, **options):
        if options["customers"] < 1 or options["events"] < 0:
            raise CommandError("--customers must be at least 1 and --events not negative.")
        figures = run_billing_benchmark(
            customers=options["customers"],
            events=options["events"],
            ingest=not options["skip_ingest"],
            ingest_client=options["ingest_client"],
            keep=options["keep"],
        )
        self.stdout.write(json.dumps(figures, indent=2, default=str))
        self.stdout.write(f"\nWritten to {RESULTS_PATH}")
