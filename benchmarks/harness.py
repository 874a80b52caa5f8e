"""What every benchmark repeats: timing, its results file, the benchmark tenant's end, worker processes' database.

A benchmark tenant is deleted whole with ``customers.purge.tenant_purge`` (one DELETE per table,
so millions of usage events go in one statement), the same purge the demo's reset uses.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from customers.models import Contract, ContractLine, Customer, Tenant
from customers.money import Money
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


def plan_subscriptions_create(
    *, tenant: Tenant, count: int, plans: list[tuple], name: str, ref_prefix: str, reference_prefix: str,
    start_date: date, starts_on: Callable[[int], date] | None = None, customer_fields: Callable[[int], dict] | None = None,
) -> tuple[list[Customer], list[ContractLine]]:
    """``count`` USD customers of ``tenant``, each on a plan with one active contract and its plan fee.

    Customer ``n`` is on ``plans[n % len(plans)]``, a tuple starting (tier, monthly fee as a string);
    it is named ``f"{name} {n:06d}"`` with external ref ``f"{ref_prefix}-{n:06d}"`` and the extra
    fields ``customer_fields(n)``. Its contract (reference ``f"{reference_prefix}-{n:06d}"``) starts on
    ``start_date``; its one recurring line on ``starts_on(n)`` (default ``start_date``). All
    bulk-created, in the caller's transaction and scope; returns (customers, lines) in order.
    """
    customers = Customer.objects.bulk_create(
        Customer(
            tenant=tenant, name=f"{name} {n:06d}", external_ref=f"{ref_prefix}-{n:06d}", currency="USD", country="US",
            tier=plans[n % len(plans)][0], **(customer_fields(n) if customer_fields else {}),
        )
        for n in range(count)
    )
    contracts = Contract.objects.bulk_create(
        Contract(
            tenant=tenant, customer=customer, reference=f"{reference_prefix}-{n:06d}", title=f"{customer.tier} plan",
            status=Contract.Status.ACTIVE, currency="USD", start_date=start_date,
        )
        for n, customer in enumerate(customers)
    )
    lines = ContractLine.objects.bulk_create(
        ContractLine(
            tenant=tenant, contract=contract, description=contract.title, kind=ContractLine.Kind.RECURRING,
            quantity=Decimal(1), unit_price=Money(plans[n % len(plans)][1], "USD"),
            starts_on=starts_on(n) if starts_on else start_date,
        )
        for n, contract in enumerate(contracts)
    )
    return customers, lines


def database_url(settings_dict: dict) -> str:
    """A ``postgres://`` URL naming the database of ``settings_dict`` (a connection's settings)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    credentials = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or ""
    port = settings_dict.get("PORT") or ""
    host_part = quote(host, safe="") + (f":{port}" if port else "")
    return f"postgres://{credentials}{host_part}/{quote(settings_dict['NAME'], safe='')}"


def as_owner(statement: str) -> str:
    """Run ``statement`` as the tables' owner (``settings.DATABASE_OWNER``: the application role may not
    VACUUM, ANALYZE or CHECKPOINT), in the database the default connection uses (under the tests, the
    test database); what happened, for the figures, or why it was not run."""
    import psycopg

    target = {**settings.DATABASE_OWNER, "NAME": connection.settings_dict["NAME"]}
    try:
        with psycopg.connect(database_url(target), autocommit=True) as owner:
            owner.execute(statement)
        return f"{statement} (as the owner)"
    except psycopg.Error as error:
        return f"not run: {statement}: {error}".strip()
