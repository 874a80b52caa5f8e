"""What row-level security costs a statement: the per-transaction ``set_config`` of the tenant.

``run_rls_benchmark`` builds one tenant with a customer and times ``statements`` primary-key reads
of that customer through Django's cursor (median of ``runs``), four ways:

- ``bare``: no scope, autocommit: one round trip, what every statement cost before RLS (it sees no
  row now, which does not change its cost);
- ``own_transaction``: the same statement wrapped in its own transaction by hand, no settings: the
  price of BEGIN/COMMIT alone;
- ``scoped_autocommit``: inside ``tenant_scope`` outside any transaction: the execute wrapper opens a
  transaction, writes ``set_config(..., true)``, runs the statement and commits;
- ``scoped_atomic``: inside ``tenant_scope`` and one ``transaction.atomic()``: the settings are written
  once, then every statement is one round trip.
"""

from __future__ import annotations

import uuid

from django.db import connection, transaction

from benchmarks.harness import results_file, results_write, tenant_drop, timed_median
from customers.models import Customer, Tenant
from customers.tenancy import platform_scope, tenant_scope

RESULTS_PATH = results_file("rls")
SQL = "SELECT id, name FROM customers_customer WHERE id = %s"


def run_rls_benchmark(*, statements: int = 2000, runs: int = 5) -> dict:
    run_id = uuid.uuid4().hex[:8]
    with platform_scope():
        tenant = Tenant.objects.create(name=f"RLS benchmark {run_id}", slug=f"bench-rls-{run_id}")
    try:
        with tenant_scope(tenant):
            customer = Customer.objects.create(tenant=tenant, name="Bench", external_ref="bench")
        connection.ensure_connection()

        def reads():
            with connection.cursor() as cursor:
                for _ in range(statements):
                    cursor.execute(SQL, [customer.pk])
                    cursor.fetchall()

        def reads_each_in_a_transaction():
            with connection.cursor() as cursor:
                for _ in range(statements):
                    with transaction.atomic():
                        cursor.execute(SQL, [customer.pk])
                        cursor.fetchall()

        def scoped(function):
            def run():
                with tenant_scope(tenant):
                    function()

            return run

        def scoped_atomic():
            with tenant_scope(tenant), transaction.atomic():
                reads()

        timings = {
            "bare": timed_median(reads, runs)[1],
            "own_transaction": timed_median(reads_each_in_a_transaction, runs)[1],
            "scoped_autocommit": timed_median(scoped(reads), runs)[1],
            "scoped_atomic": timed_median(scoped_atomic, runs)[1],
        }
    finally:
        tenant_drop(tenant)
    figures = {
        "statements": statements,
        "runs": runs,
        "microseconds_per_statement": {name: round(seconds / statements * 1e6, 1) for name, seconds in timings.items()},
    }
    results_write(RESULTS_PATH, figures)
    return figures
