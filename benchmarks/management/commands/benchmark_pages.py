"""manage.py benchmark_pages [--tenant SLUG …] [--runs 5] [--objects 2] [--growth [--scale 0.2 --factor 10]]: see benchmarks.pages."""

from django.core.management.base import BaseCommand, CommandError

from benchmarks import pages as benchmark
from portal.demo import SLUGS


class Command(BaseCommand):
    help = (
        "Crawl every staff page as each staff role on the demo data and print p50/p95 time and query count "
        "per page (benchmarks/results/pages.json); --growth compares query counts at two tenant sizes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", action="append", choices=SLUGS, dest="slugs",
                            help="Only this demo tenant (repeat for more); all three by default.")
        parser.add_argument("--runs", type=int, default=5, help="timed requests of each page after the cold one")
        parser.add_argument("--objects", type=int, default=2, help="rows per model whose change and history pages are crawled")
        parser.add_argument("--growth", action="store_true",
                            help="instead: build one demo tenant at --scale and at --scale × --factor in a scratch "
                                 "database and compare each page's query count")
        parser.add_argument("--scale", type=float, default=0.2)
        parser.add_argument("--factor", type=float, default=10.0)

    def handle(self, *args, slugs, runs, objects, growth, scale, factor, **options):
        if runs < 0 or objects < 0:
            raise CommandError("--runs and --objects must be at least 0.")
        if growth:
            if not 0 < scale <= 100 or not 0 < scale * factor <= 100 or factor <= 1:
                raise CommandError("--scale and --scale × --factor must be above 0 and at most 100; --factor above 1.")
            slug = (slugs or ["jobapi"])[0]
            benchmark.growth(slug=slug, scale=scale, factor=factor, write=self.stdout.write)
            return
        benchmark.run(slugs=slugs or SLUGS, runs=runs, objects=objects, write=self.stdout.write)
