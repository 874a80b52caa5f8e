"""What every benchmark repeats: timing, its results file, the benchmark tenant's end, worker processes' database.

A benchmark tenant is deleted whole with ``customers.purge.tenant_purge`` (one DELETE per table,
so millions of usage events go in one statement), the same purge the demo's reset uses.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from django.conf import settings

from customers.models import Tenant
from customers.purge import tenant_purge
from customers.tenancy import platform_scope

RESULTS_DIR = Path(settings.BASE_DIR) / "benchmarks" / "results"

T = TypeVar("T")


def results_file(name: str) -> Path:
    """Where the benchmark ``name`` writes its figures: ``benchmarks/results/<name>.json``."""
    return RESULTS_DIR / f"{name}.json"


def results_write(path: Path, figures: dict) -> Path:
    """Write ``figures`` as indented JSON (dates and decimals as strings) to ``path``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return path


def timed_runs(function: Callable[[], T], runs: int) -> tuple[T, list[float]]:
    """Call ``function`` ``runs`` times; the last result and each call's wall seconds."""
    seconds = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return result, seconds


def timed_median(function: Callable[[], T], runs: int) -> tuple[T, float]:
    """The last result and the median wall seconds of ``runs`` calls."""
    result, seconds = timed_runs(function, runs)
    return result, statistics.median(seconds)


def timed_best(function: Callable[[], T], runs: int) -> tuple[T, float]:
    """The last result and the fastest wall seconds of ``runs`` calls."""
    result, seconds = timed_runs(function, runs)
    return result, min(seconds)


def tenant_drop(tenant: Tenant | None) -> None:
    """Purge the benchmark ``tenant`` and everything it owns; None (nothing was built) is a no-op."""
    if tenant is not None:
        tenant_purge(tenant=tenant)


def tenant_drop_slug(slug: str) -> None:
    """Purge the tenant ``slug`` if it exists (what a run left behind with ``--keep``)."""
    with platform_scope():
        tenant = Tenant.objects.filter(slug=slug).first()
    tenant_drop(tenant)


def database_url(settings_dict: dict) -> str:
    """A ``postgres://`` URL naming the database of ``settings_dict`` (a connection's settings)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    credentials = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or ""
    port = settings_dict.get("PORT") or ""
    host_part = quote(host, safe="") + (f":{port}" if port else "")
    return f"postgres://{credentials}{host_part}/{quote(settings_dict['NAME'], safe='')}"
