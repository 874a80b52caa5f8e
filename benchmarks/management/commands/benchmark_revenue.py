"""manage.py benchmark_revenue [--contracts 100000] [--months 36] [--runs 10000] [--repeat 3] [--reuse]: see benchmarks.revenue."""

from django.core.management.base import BaseCommand, CommandError

from benchmarks import revenue as benchmark


class Command(BaseCommand):
    help = "Time the revenue metrics beside bare SQL on a generated tenant, and the forecast."

    def add_arguments(self, parser):
        parser.add_argument("--contracts", type=int, default=100_000)
        parser.add_argument("--months", type=int, default=36)
        parser.add_argument("--runs", type=int, default=10_000)
        parser.add_argument("--repeat", type=int, default=3, help="timed runs of each statement (the median is reported)")
        parser.add_argument("--reuse", action="store_true", help="keep the tenant built before with the same arguments")

    def handle(self, *args, contracts, months, runs, repeat, reuse, **options):
        if contracts < 1 or months < 1 or runs < 1 or repeat < 1:
            raise CommandError("--contracts, --months, --runs and --repeat must be at least 1.")
        benchmark.run(contracts=contracts, months=months, runs=runs, repeat=repeat, reuse=reuse, write=self.stdout.write)
