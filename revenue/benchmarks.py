"""Benchmark of the revenue metrics on one generated tenant: selectors beside bare SQL, and the forecast.

``run(contracts=, months=)`` bulk-creates a tenant with ``contracts`` contracts (two per customer on
average) whose lines change over ``months`` months (upgrades, downgrades, discounts, cancellations,
returns), then times each selector beside a bare SQL statement computing the same numbers, and the
forecast (10 000 runs over 2 000 open opportunities). Figures go to benchmarks/results/revenue.json.
"""

from __future__ import annotations

import json
import random
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from djmoney.money import Money

from customers.models import Contract, ContractLine, Customer, Tenant
from customers.tenancy import platform_scope
from revenue.models import Opportunity
from revenue.selectors.common import add_months, month_start
from revenue.selectors.concentration import revenue_concentration
from revenue.selectors.forecast import revenue_forecast
from revenue.selectors.movements import mrr_movements
from revenue.selectors.mrr import mrr_series
from revenue.selectors.sql import SESSION_SETTINGS

RESULTS = Path(settings.BASE_DIR) / "benchmarks" / "results" / "revenue.json"
SLUG = "bench-revenue"
TIERS = ["Free", "Starter", "Professional", "Business"]

BARE_MRR = """
WITH months AS (
    SELECT (g + interval '1 month - 1 day')::date AS d, g::date AS m
    FROM generate_series(%(first)s::timestamp, %(last)s::timestamp, interval '1 month') g
), per_contract AS (
    SELECT mo.m, c.customer_id, c.id,
           SUM(CASE WHEN l.kind IN ('recurring','per_seat') THEN l.quantity * l.unit_price / c.billing_interval ELSE 0 END)
           * (1 - LEAST(SUM(CASE WHEN l.kind = 'discount' THEN l.discount_percent ELSE 0 END), 100) / 100) AS mrr
    FROM months mo
    JOIN customers_contractline l ON l.starts_on <= mo.d AND (l.ends_on IS NULL OR l.ends_on >= mo.d)
    JOIN customers_contract c ON c.id = l.contract_id
    WHERE l.tenant_id = %(tenant)s AND c.tenant_id = %(tenant)s AND c.status <> 'draft'
      AND (c.end_date IS NULL OR mo.d <= c.end_date) AND l.kind IN ('recurring','per_seat','discount')
    GROUP BY mo.m, c.customer_id, c.id
), per_customer AS (
    SELECT m, customer_id, SUM(mrr) AS mrr FROM per_contract GROUP BY m, customer_id HAVING SUM(mrr) > 0
)
"""
BARE_MRR_SERIES = BARE_MRR + "SELECT m, SUM(mrr), COUNT(*) FROM per_customer GROUP BY m ORDER BY m"
BARE_MOVEMENTS = BARE_MRR + """,
grid AS (
    SELECT mo.m, cu.customer_id, COALESCE(p.mrr, 0) AS mrr
    FROM months mo CROSS JOIN (SELECT DISTINCT customer_id FROM per_customer) cu
    LEFT JOIN per_customer p ON p.m = mo.m AND p.customer_id = cu.customer_id
), lagged AS (
    SELECT m, mrr, LAG(mrr, 1, 0::numeric) OVER w AS prev,
           MAX(mrr) OVER (PARTITION BY customer_id ORDER BY m ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS had
    FROM grid WINDOW w AS (PARTITION BY customer_id ORDER BY m)
)
SELECT m, SUM(CASE WHEN prev = 0 AND mrr > 0 AND COALESCE(had, 0) = 0 THEN mrr ELSE 0 END),
       SUM(CASE WHEN prev = 0 AND mrr > 0 AND had > 0 THEN mrr ELSE 0 END),
       SUM(CASE WHEN prev > 0 AND mrr > prev THEN mrr - prev ELSE 0 END),
       SUM(CASE WHEN prev > 0 AND mrr > 0 AND mrr < prev THEN prev - mrr ELSE 0 END),
       SUM(CASE WHEN prev > 0 AND mrr = 0 THEN prev ELSE 0 END), SUM(mrr)
FROM lagged GROUP BY m ORDER BY m
"""
BARE_CONCENTRATION = BARE_MRR + """,
revenue AS (SELECT customer_id, SUM(mrr) AS r FROM per_customer WHERE m >= %(window_first)s GROUP BY customer_id),
total AS (SELECT SUM(r) AS t, COUNT(*) AS n FROM revenue)
SELECT (SELECT t FROM total), (SELECT SUM((100 * r / t) ^ 2) FROM revenue, total),
       (SELECT SUM(r) FROM (SELECT r FROM revenue ORDER BY r DESC LIMIT 5) top) / (SELECT t FROM total)
"""


def _timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def _bare(query, values):
    # Same session settings as the selectors, so the comparison is of the statements alone.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SESSION_SETTINGS)
        cursor.execute(query, values)
        return cursor.fetchall()


def build_tenant(*, contracts: int, months: int, first: date, seed: int = 42) -> Tenant:
    """The generated tenant (replaced if it exists): contracts with dated line changes, 2 000 opportunities."""
    rng = random.Random(seed)
    with platform_scope(), transaction.atomic():
        old = Tenant.objects.filter(slug=SLUG).first()
        if old:
            # Raw deletes: only rows this benchmark made, without the ORM's cascade into other apps.
            with connection.cursor() as cursor:
                for table in ("revenue_opportunity", "customers_contractline", "customers_contract", "customers_customer"):
                    cursor.execute(f"DELETE FROM {table} WHERE tenant_id = %s", [old.pk])
                cursor.execute("DELETE FROM customers_tenant WHERE id = %s", [old.pk])
        tenant = Tenant.objects.create(name="Benchmark", slug=SLUG, reporting_currency="USD", invoice_number_prefix="B-")
        customers = Customer.objects.bulk_create(
            [
                Customer(tenant=tenant, name=f"Customer {i}", external_ref=f"c-{i}", currency="USD",
                         tier=rng.choice(TIERS), country="SE")
                for i in range(max(1, contracts // 2))
            ],
            batch_size=5000,
        )
        span = months * 30
        contract_rows = []
        for i in range(contracts):
            start = first + timedelta(days=rng.randrange(span))
            end = start + timedelta(days=rng.randrange(60, span)) if rng.random() < 0.3 else None
            contract_rows.append(Contract(
                tenant=tenant, customer=rng.choice(customers), reference=f"B-{i:07d}", title="Plan",
                status=Contract.Status.ACTIVE, currency="USD", billing_interval=rng.choice([1, 1, 1, 3, 12]),
                start_date=start, end_date=end,
            ))
        Contract.objects.bulk_create(contract_rows, batch_size=5000)
        lines = []
        for contract in contract_rows:
            day, price = contract.start_date, Decimal(rng.choice([29, 99, 299, 1200]))
            last = contract.end_date or first + timedelta(days=span)
            while day <= last:
                change = day + timedelta(days=rng.randrange(90, 400))
                ends_on = change - timedelta(days=1) if change <= last else None
                lines.append(ContractLine(
                    tenant=tenant, contract=contract, description="Plan", kind=ContractLine.Kind.RECURRING,
                    quantity=Decimal(1), unit_price=Money(price, "USD"), starts_on=day, ends_on=ends_on,
                ))
                if rng.random() < 0.1:
                    lines.append(ContractLine(
                        tenant=tenant, contract=contract, description="Intro", kind=ContractLine.Kind.DISCOUNT,
                        quantity=Decimal(1), unit_price=Money(0, "USD"), discount_percent=Decimal(10),
                        starts_on=day, ends_on=day + timedelta(days=90),
                    ))
                day, price = change, max(Decimal(9), price * Decimal(rng.choice(["0.5", "1.5", "2"])))
        ContractLine.objects.bulk_create(lines, batch_size=10000)
        Opportunity.objects.bulk_create(
            [
                Opportunity(
                    tenant=tenant, customer=rng.choice(customers), title=f"Deal {i}",
                    kind=rng.choice([Opportunity.Kind.RECURRING, Opportunity.Kind.ONE_OFF]),
                    amount=Money(rng.randrange(1000, 100000), "USD"), probability=rng.choice([10, 20, 30, 50, 70, 90]),
                    stage=Opportunity.Stage.PROPOSAL,
                    expected_close_on=date.today() + timedelta(days=rng.randrange(-30, 400)),
                )
                for i in range(2000)
            ],
            batch_size=2000,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_contract; ANALYZE customers_contractline; ANALYZE customers_customer")
    return tenant


def run(*, contracts: int, months: int, runs: int = 10_000, write=print) -> dict:
    last = add_months(month_start(date.today()), -1)
    first = add_months(last, -(months - 1))
    started = time.perf_counter()
    tenant = build_tenant(contracts=contracts, months=months, first=first)
    lines = ContractLine.objects.for_tenant(tenant).count()
    figures = {"contracts": contracts, "lines": lines, "months": months, "setup_seconds": round(time.perf_counter() - started, 2)}
    write(f"built {contracts} contracts, {lines} lines over {months} months in {figures['setup_seconds']} s")
    values = {"tenant": tenant.pk, "first": first, "last": last, "window_first": add_months(last, -11)}
    checks = [
        ("mrr_series", lambda: mrr_series(tenant=tenant, first=first, last=last), BARE_MRR_SERIES,
         lambda mine, bare: [r["mrr"] for r in mine] == [r[1] for r in bare]),
        ("movements", lambda: mrr_movements(tenant=tenant, first=first, last=last), BARE_MOVEMENTS,
         lambda mine, bare: [(r["new"], r["reactivation"], r["expansion"], r["contraction"], r["churn"], r["mrr_end"])
                             for r in mine] == [tuple(r[1:]) for r in bare]),
        ("concentration", lambda: revenue_concentration(tenant=tenant, month=last), BARE_CONCENTRATION,
         lambda mine, bare: abs(mine["hhi"] - Decimal(bare[0][1])) < Decimal("1e-6")
         and mine["total_revenue"] == bare[0][0]),
    ]
    for name, selector, bare_sql, same in checks:
        mine, mine_seconds = _timed(selector)
        bare, bare_seconds = _timed(lambda q=bare_sql: _bare(q, values))
        figures[name] = {
            "selector_seconds": round(mine_seconds, 3),
            "bare_sql_seconds": round(bare_seconds, 3),
            "ratio": round(mine_seconds / bare_seconds, 2) if bare_seconds else None,
            "same_numbers": bool(same(mine, bare)),
        }
        write(f"{name}: selector {mine_seconds:.3f} s, bare SQL {bare_seconds:.3f} s, "
              f"ratio {figures[name]['ratio']}, same numbers {figures[name]['same_numbers']}")
    result, seconds = _timed(lambda: revenue_forecast(tenant=tenant, runs=runs, seed=1))
    figures["forecast"] = {"runs": runs, "opportunities": 2000, "seconds": round(seconds, 3), "target_seconds": 2}
    write(f"forecast: {runs} runs × 2000 opportunities in {seconds:.3f} s (target < 2 s)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    write(f"wrote {RESULTS}")
    return figures
