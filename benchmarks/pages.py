"""Page-speed benchmark: every staff page, as each staff role, on the demo data.

``run(slugs=, runs=, objects=)`` crawls, for each demo tenant in ``slugs`` and each of its staff
logins (owner, account manager, finance, viewer: ``<slug>-owner`` …), every page that role may see:

- every admin changelist and add page, and the change and history pages of the first ``objects``
  rows of each model (in the changelist's own order);
- the /staff/ dashboards and the /staff/economics/ pages (the ROI page of the first customer), and
  the customer 360 page of the customer with the most invoices;
- the API docs and the OpenAPI schema.

Each page is requested in process with Django's test client (the whole middleware stack, templates
included; no network, no static files): once cold (``first``: the first request of that page for
that role, caches empty for the schema and the admin's first load) and ``runs`` more times. Each
page's p50 / p95 wall time over all its requests, the cold time and the query count of the last
request go to ``benchmarks/results/pages.json``; pages over the 500 ms p95 target are flagged.

``growth(slug=, scale=, factor=)`` measures what a bigger tenant costs in queries: it builds the demo
tenant ``slug`` at ``scale`` and at ``scale × factor`` in a scratch database (the demo database is
left alone; ``<database>_pages_growth``, dropped afterwards), crawls both as each role once, and lists each page's query count at both sizes,
flagging every page whose count grew. Figures go to ``benchmarks/results/pages_growth.json``.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from benchmarks.harness import results_file, results_write
from customers.models import Customer, Membership, Tenant
from customers.tenancy import platform_scope, tenant_scope
from portal.demo import SLUGS, demo_load
from portal.demo.logins import ROLE_SUFFIXES
from portal.views.dashboards import url_patterns as dashboard_patterns
from portal.views.economics import url_patterns as economics_patterns

RESULTS = results_file("pages")
GROWTH_RESULTS = results_file("pages_growth")
TARGET_SECONDS = 0.5
# The crawl runs with production settings except what an in-process client needs: its host, plain
# http, and static URLs that need no collected manifest.
CRAWL_SETTINGS = {
    "ALLOWED_HOSTS": ["testserver"],
    "SECURE_SSL_REDIRECT": False,
    "SESSION_COOKIE_SECURE": False,
    "CSRF_COOKIE_SECURE": False,
    "STORAGES": {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    },
}


@dataclass(frozen=True)
class Page:
    """One staff page: ``key`` names it the same way whatever the data (for comparing sizes)."""

    key: str
    url: str


@dataclass
class Measured:
    tenant: str
    role: str
    key: str
    url: str
    status: int
    queries: int
    first_ms: float
    p50_ms: float
    p95_ms: float
    times_ms: list[float] = field(default_factory=list)

    @property
    def slow(self) -> bool:
        return self.p95_ms > TARGET_SECONDS * 1000


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank; the maximum of fewer than 20 values)."""
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def staff_request(user, tenant: Tenant):
    """A request as the tenant middleware leaves it for ``user`` acting for ``tenant``."""
    request = RequestFactory().get("/admin/")
    request.user = user
    request.tenant = tenant
    request.membership = Membership.objects.for_tenant(tenant).get(user=user)
    request.memberships = [request.membership]
    request.is_platform_admin = False
    request.customer = None
    request.api_key = None
    return request


def admin_pages(user, tenant: Tenant, *, objects: int) -> list[Page]:
    """The admin pages ``user`` may open in ``tenant``: changelists, add pages, and the change and
    history pages of the first ``objects`` rows of each model."""
    request = staff_request(user, tenant)
    pages = []
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label_lower):
        if not model_admin.has_view_or_change_permission(request):
            continue
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        pages.append(Page(f"{info}_changelist", reverse(f"{info}_changelist")))
        if model_admin.has_add_permission(request):
            pages.append(Page(f"{info}_add", reverse(f"{info}_add")))
        rows = model_admin.get_queryset(request).values_list("pk", flat=True)[:objects]
        for n, pk in enumerate(rows, start=1):
            for view in ("change", "history"):
                try:
                    url = reverse(f"{info}_{view}", args=[pk])
                except NoReverseMatch:
                    continue
                pages.append(Page(f"{info}_{view}[{n}]", url))
    return pages


def staff_pages(tenant: Tenant) -> list[Page]:
    """The /staff/ dashboards and economics pages (no CSV exports), and the API docs and schema."""
    pages = []
    for namespace, patterns in (("dashboards", dashboard_patterns()), ("economics", economics_patterns())):
        for pattern in patterns:
            converters = set(pattern.pattern.converters)
            if not converters:
                pages.append(Page(f"{namespace}:{pattern.name}", reverse(f"{namespace}:{pattern.name}")))
            elif converters == {"customer_id"}:
                customer = Customer.objects.for_tenant(tenant).order_by("pk").first()
                if customer is not None:
                    url = reverse(f"{namespace}:{pattern.name}", kwargs={"customer_id": customer.pk})
                    pages.append(Page(f"{namespace}:{pattern.name}[1]", url))
    busiest = (
        Customer.objects.for_tenant(tenant).annotate(documents=Count("invoices")).order_by("-documents", "pk").first()
    )
    if busiest is not None:
        pages.append(Page("customer_360[busiest]", reverse("customer_360", args=[busiest.pk])))
    pages += [Page("api-docs", reverse("api-docs")), Page("api-schema", reverse("api-schema"))]
    return pages


def role_users(tenant: Tenant) -> list[tuple[str, object]]:
    """(role suffix, user) of the tenant's demo staff logins that exist."""
    users = get_user_model().objects.filter(username__in=[f"{tenant.slug}-{s}" for s in ROLE_SUFFIXES])
    by_name = {user.username: user for user in users}
    return [(s, by_name[f"{tenant.slug}-{s}"]) for s in ROLE_SUFFIXES if f"{tenant.slug}-{s}" in by_name]


def page_measure(client: Client, page: Page, *, runs: int) -> tuple[int, int, list[float]]:
    """(status, queries of the last request, each request's milliseconds) of 1 + ``runs`` requests."""
    times, status, queries = [], 0, 0
    for _ in range(1 + runs):
        connection.queries_log.clear()  # the log keeps 9 000 queries: a full one would count none
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(page.url)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
            times.append((time.perf_counter() - started) * 1000)
        status, queries = response.status_code, len(captured.captured_queries)
    return status, queries, times


def crawl(slug: str, *, runs: int, objects: int, write: Callable[[str], None] = print) -> list[Measured]:
    """Every staff page of tenant ``slug`` as each of its staff roles; see the module docstring."""
    with platform_scope():
        tenant = Tenant.objects.get(slug=slug)
    measured = []
    with override_settings(**CRAWL_SETTINGS), warnings.catch_warnings():
        # WhiteNoise warns that no static files were collected: the crawl serves none.
        warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
        for role, user in role_users(tenant):
            client = Client(raise_request_exception=False)
            client.force_login(user)
            with tenant_scope(tenant):
                pages = admin_pages(user, tenant, objects=objects) + staff_pages(tenant)
            write(f"{slug} as {role}: {len(pages)} pages × {1 + runs} requests")
            for page in pages:
                status, queries, times = page_measure(client, page, runs=runs)
                measured.append(Measured(
                    tenant=slug, role=role, key=page.key, url=page.url, status=status, queries=queries,
                    first_ms=round(times[0], 1), p50_ms=round(statistics.median(times), 1), p95_ms=round(p95(times), 1),
                    times_ms=[round(t, 1) for t in times],
                ))
    return measured


def table(rows: list[Measured]) -> list[str]:
    """A readable table, slowest p95 first; pages over the target are marked ``SLOW``."""
    header = f"{'tenant':<10} {'role':<8} {'page':<58} {'status':>6} {'queries':>7} {'first ms':>9} {'p50 ms':>8} {'p95 ms':>8}"
    lines = [header, "-" * len(header)]
    for m in sorted(rows, key=lambda m: -m.p95_ms):
        flag = "  SLOW" if m.slow else ""
        lines.append(
            f"{m.tenant:<10} {m.role:<8} {m.key[:58]:<58} {m.status:>6} {m.queries:>7} "
            f"{m.first_ms:>9.1f} {m.p50_ms:>8.1f} {m.p95_ms:>8.1f}{flag}"
        )
    return lines


def run(*, slugs: list[str], runs: int, objects: int, write: Callable[[str], None] = print) -> dict:
    """Crawl each tenant of ``slugs`` (see ``crawl``); print the table and write pages.json."""
    rows = []
    load_before = os.getloadavg()
    for slug in slugs:
        rows += crawl(slug, runs=runs, objects=objects, write=write)
    load_after = os.getloadavg()
    for line in table(rows):
        write(line)
    slow = [m for m in rows if m.slow]
    errors = [m for m in rows if m.status >= 500]
    write(f"{len(rows)} pages measured; {len(slow)} over the {TARGET_SECONDS * 1000:.0f} ms p95 target; "
          f"{len(errors)} answered 5xx. Machine load (1-minute average) {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after, on {os.cpu_count()} CPUs.")
    figures = {
        "measured_at": timezone.now().isoformat(timespec="seconds"),
        "load_average": {"before": load_before[0], "after": load_after[0], "cpus": os.cpu_count()},
        "method": "in-process Django test client, production settings, one cold request then `runs` more",
        "runs": runs, "objects": objects, "target_p95_ms": TARGET_SECONDS * 1000,
        "slow": [f"{m.tenant} {m.role} {m.key}" for m in slow],
        "pages": [asdict(m) for m in rows],
    }
    results_write(RESULTS, figures)
    RESULTS.with_suffix(".txt").write_text("\n".join(table(rows)) + "\n")
    return figures


def growth(*, slug: str, scale: float, factor: float, write: Callable[[str], None] = print) -> dict:
    """Query counts of every staff page of demo tenant ``slug`` at ``scale`` and ``scale × factor``,
    built in a scratch database (``<database>_pages_growth``, dropped afterwards)."""
    if slug not in SLUGS:
        raise ValueError(f"No demo tenant {slug}; the demo tenants are {', '.join(SLUGS)}.")
    creation = connection.creation
    database = connection.settings_dict["NAME"]
    # Its own name, so a test run's database (test_<database>) is never the one clobbered.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{database}_pages_growth"
    creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    counts: dict[tuple[str, str], dict[float, int]] = {}
    sizes = {}
    try:
        for size in (scale, scale * factor):
            write(f"building {slug} at scale {size:g} in a scratch database…")
            report = demo_load(today=timezone.localdate(), scale=size, reset=True, progress=False, only=[slug])
            sizes[size] = report.tenants[0].counts
            for m in crawl(slug, runs=0, objects=1, write=write):
                counts.setdefault((m.role, m.key), {})[size] = m.queries
    finally:
        creation.destroy_test_db(database, verbosity=0)
    big = scale * factor
    rows = [
        {"role": role, "page": key, "queries_small": c.get(scale), "queries_big": c.get(big),
         "grows": c.get(scale) is not None and c.get(big) is not None and c[big] > c[scale]}
        for (role, key), c in sorted(counts.items())
    ]
    header = f"{'role':<8} {'page':<58} {f'q @{scale:g}':>9} {f'q @{big:g}':>9}"
    write(header)
    write("-" * len(header))
    for row in rows:
        write(f"{row['role']:<8} {row['page'][:58]:<58} {row['queries_small']!s:>9} {row['queries_big']!s:>9}"
              + ("  GROWS" if row["grows"] else ""))
    growing = [r for r in rows if r["grows"]]
    write(f"customers {sizes[scale].get('customers')} → {sizes[big].get('customers')}; "
          f"{len(rows)} pages, {len(growing)} whose query count grows.")
    figures = {
        "measured_at": timezone.now().isoformat(timespec="seconds"), "tenant": slug, "scale": scale, "factor": factor,
        "sizes": {str(k): v for k, v in sizes.items()}, "growing": [f"{r['role']} {r['page']}" for r in growing],
        "pages": rows,
    }
    results_write(GROWTH_RESULTS, figures)
    return figures
