"""``manage.py benchmark_month_end``: PDF overhead, a month-end on two workers, their memory (benchmarks.month_end)."""

import json

from django.core.management.base import BaseCommand, CommandError

from benchmarks.month_end import DEFAULT_BROKER, RESULTS_PATH, run_month_end_benchmark


class Command(BaseCommand):
    help = "Time invoice PDFs against bare WeasyPrint, and a whole month-end for N customers on two Celery workers."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=2000)
        parser.add_argument("--pdf-invoices", type=int, default=50, help="Invoices for the PDF overhead part.")
        parser.add_argument("--broker", default=DEFAULT_BROKER, help="A Redis database of the benchmark's own.")
        parser.add_argument("--pdf-only", action="store_true", help="Only the PDF overhead part (no workers).")

    def handle(self, *args, **options):
        if options["customers"] < 1 or options["pdf_invoices"] < 1:
            raise CommandError("--customers and --pdf-invoices must be at least 1.")
        figures = run_month_end_benchmark(
            customers=options["customers"], pdf_invoices=options["pdf_invoices"], broker_url=options["broker"],
            skip_run=options["pdf_only"],
        )
        self.stdout.write(json.dumps(figures, indent=2, default=str))
        self.stdout.write(f"\nWritten to {RESULTS_PATH}")
