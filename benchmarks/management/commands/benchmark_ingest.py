"""``manage.py benchmark_ingest [--stored N]``: usage ingestion against raw COPY, at 0 and N stored events,
and a month's draft with and without the other months (see benchmarks.ingest_stored)."""

import json

from django.core.management.base import BaseCommand, CommandError

from benchmarks.ingest_stored import RESULTS_PATH, run_stored_benchmark


class Command(BaseCommand):
    help = "Ingest over HTTP against raw COPY with 0 and N stored events; time a month's draft with both."

    def add_arguments(self, parser):
        parser.add_argument("--stored", type=int, default=1_000_000, help="Events of other months to load first.")
        parser.add_argument("--events", type=int, default=200_000, help="Events posted per ingestion run.")
        parser.add_argument("--customers", type=int, default=2_000)
        parser.add_argument("--months-back", type=int, default=12)
        parser.add_argument("--client", choices=["gunicorn", "django"], default="gunicorn")
        parser.add_argument("--keep", action="store_true", help="Keep the benchmark tenant and its events.")

    def handle(self, *args, **options):
        if options["stored"] < 0 or options["events"] < 1 or options["customers"] < 1 or options["months_back"] < 1:
            raise CommandError("--stored must not be negative; --events, --customers, --months-back at least 1.")
        figures = run_stored_benchmark(
            stored=options["stored"], customers=options["customers"], events=options["events"],
            client=options["client"], months_back=options["months_back"], keep=options["keep"],
        )
        shown = {name: value for name, value in figures.items() if name != "ingest_details"}
        self.stdout.write(json.dumps(shown, indent=2, default=str))
        self.stdout.write(f"\nWritten to {RESULTS_PATH}")
