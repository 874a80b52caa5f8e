"""Benchmark of the revenue metrics on one generated tenant: selectors beside bare SQL, and the forecast.

``run(contracts=, months=)`` bulk-creates a tenant with ``contracts`` contracts (two per customer on
average) whose lines change over ``months`` months (upgrades, downgrades, discounts, cancellations,
returns), then times each selector beside a hand-written bare SQL statement computing the same numbers
(medians of ``repeat`` runs, after one warm-up; the numbers are compared), and the forecast (10 000
runs over 2 000 open opportunities). Figures go to benchmarks/results/revenue.json.

Then the MRR facts (``revenue.facts``), in the same run: the selectors, their API calls (MRR,
movements, retention, concentration) and the staff pages showing them (revenue, retention and
concentration dashboards, through the test client as a logged-in owner) from scratch (the tenant's facts switched off: the reference
SQL over every line) and from the facts after a rebuild, with their query counts and whether both
give the same numbers, the rebuild's time, and the cost of a contract change through the service
(``contract_change``, a line added) with and without keeping the facts current.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client, override_settings

from benchmarks.harness import results_file, results_write, tenant_drop, timed_median
from benchmarks.pages import CRAWL_SETTINGS
from customers.models import Contract, ContractLine, Customer, Membership, Role, Tenant, TenantAPIKey
from customers.money import Money
from customers.periods import add_months, month_start
from customers.services import ChangeAction, LineSpec, contract_change
from customers.tenancy import database_tenant, platform_scope
from revenue.facts import revenue_facts_rebuild, revenue_facts_refresh
from revenue.models import CustomerTrailingRevenueFact, Opportunity, RevenueFactsState
from revenue.selectors.concentration import revenue_concentration
from revenue.selectors.forecast import revenue_forecast
from revenue.selectors.movements import mrr_movements
from revenue.selectors.mrr import mrr_series
from revenue.selectors.retention import retention_series
from revenue.selectors.sql import SESSION_SETTINGS

RESULTS = results_file("revenue")
SLUG = "bench-revenue"
TIERS = ["Free", "Starter", "Professional", "Business"]

# Hand-written statements computing the same numbers as the selectors for this tenant, whose
# contracts are all in its reporting currency (so there is nothing to convert), with the same
# method: change points per line (per contract where a discount makes the value non-additive), a
# running sum per customer over its change months, LAG for movements. No segments, no renewal, no
# missing-rate bookkeeping: what a person would write for this one question.
BARE_CHANGES = """
WITH lines AS MATERIALIZED (
    SELECT c.id AS contract_id, c.customer_id, l.starts_on, LEAST(l.ends_on, c.end_date) AS last_day,
           CASE WHEN l.kind = 'discount' THEN 0 ELSE l.quantity * l.unit_price / c.billing_interval END AS rec,
           CASE WHEN l.kind = 'discount' THEN l.discount_percent ELSE 0 END AS disc,
           c.id IN (SELECT contract_id FROM customers_contractline WHERE tenant_id = %(tenant)s AND kind = 'discount')
               AS discounted
    FROM customers_contractline l JOIN customers_contract c ON c.id = l.contract_id
    WHERE l.tenant_id = %(tenant)s AND c.status <> 'draft' AND l.kind IN ('recurring', 'per_seat', 'discount')
      AND l.starts_on <= COALESCE(LEAST(l.ends_on, c.end_date), l.starts_on) AND l.starts_on < %(after_last)s
),
events AS NOT MATERIALIZED (
    SELECT contract_id, customer_id, discounted,
           GREATEST(date_trunc('month', starts_on::timestamp)::date, %(since)s) AS m, rec, disc
    FROM lines
    UNION ALL
    SELECT contract_id, customer_id, discounted,
           GREATEST(date_trunc('month', (last_day + 1)::timestamp)::date, %(since)s), -rec, -disc
    FROM lines WHERE last_day + 1 < %(after_last)s
),
deltas AS (
    SELECT customer_id, m, rec AS delta FROM events WHERE NOT discounted
    UNION ALL
    SELECT customer_id, m, v - LAG(v, 1, 0::numeric) OVER (PARTITION BY contract_id ORDER BY m)
    FROM (
        SELECT contract_id, customer_id, m,
               SUM(SUM(rec)) OVER w * (100 - LEAST(SUM(SUM(disc)) OVER w, 100)) * 0.01 AS v
        FROM events WHERE discounted GROUP BY contract_id, customer_id, m
        WINDOW w AS (PARTITION BY contract_id ORDER BY m)
    ) x
),
customer_mrr AS (
    -- One sort: each customer's MRR after each change month and before it (a month's rows are peers).
    SELECT customer_id, m, GREATEST(total, 0) AS mrr, GREATEST(total - month_delta, 0) AS prev
    FROM (
        SELECT customer_id, m, SUM(delta) OVER w AS total,
               SUM(delta) OVER (w RANGE BETWEEN CURRENT ROW AND CURRENT ROW) AS month_delta,
               LAG(m) OVER w IS DISTINCT FROM m AS first_row
        FROM deltas WINDOW w AS (PARTITION BY customer_id ORDER BY m)
    ) x
    WHERE first_row
)
"""
BARE_MRR_SERIES = BARE_CHANGES + """
SELECT mo.m::date, SUM(COALESCE(SUM(s.mrr - s.prev), 0)) OVER w,
       SUM(COALESCE(SUM((s.mrr > 0)::int - (s.prev > 0)::int), 0)) OVER w
FROM generate_series(%(first)s::date, %(last)s::date, interval '1 month') mo(m) LEFT JOIN customer_mrr s ON s.m = mo.m
GROUP BY mo.m WINDOW w AS (ORDER BY mo.m) ORDER BY 1
"""
BARE_MOVEMENTS = BARE_CHANGES + """,
flows AS (
    SELECT m, mrr, prev,
           COALESCE(bool_or(mrr > 0) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false) AS had
    FROM customer_mrr WINDOW w AS (PARTITION BY customer_id ORDER BY m)
),
monthly AS (
    SELECT mo.m::date AS m, COALESCE(SUM(f.mrr - f.prev), 0) AS change,
           COALESCE(SUM((f.mrr > 0)::int - (f.prev > 0)::int), 0) AS joined,
           COALESCE(SUM(f.mrr) FILTER (WHERE f.prev = 0 AND f.mrr > 0 AND NOT f.had), 0) AS new,
           COALESCE(SUM(f.mrr) FILTER (WHERE f.prev = 0 AND f.mrr > 0 AND f.had), 0) AS reactivation,
           COALESCE(SUM(f.mrr - f.prev) FILTER (WHERE f.prev > 0 AND f.mrr > f.prev), 0) AS expansion,
           COALESCE(SUM(f.prev - f.mrr) FILTER (WHERE f.mrr > 0 AND f.mrr < f.prev), 0) AS contraction,
           COALESCE(SUM(f.prev) FILTER (WHERE f.prev > 0 AND f.mrr = 0), 0) AS churn,
           COUNT(f.m) FILTER (WHERE f.prev = 0 AND f.mrr > 0 AND NOT f.had) AS new_customers,
           COUNT(f.m) FILTER (WHERE f.prev = 0 AND f.mrr > 0 AND f.had) AS reactivated_customers,
           COUNT(f.m) FILTER (WHERE f.prev > 0 AND f.mrr = 0) AS churned_customers
    FROM generate_series((SELECT MIN(m) FROM customer_mrr), %(last)s::date, interval '1 month') mo(m)
    LEFT JOIN flows f ON f.m = mo.m GROUP BY mo.m
),
levels AS (
    SELECT *, SUM(change) OVER (ORDER BY m) AS mrr_end, SUM(joined) OVER (ORDER BY m) AS customers_end FROM monthly
)
SELECT m, mrr_end - change, new, reactivation, expansion, contraction, churn, mrr_end,
       customers_end - joined, new_customers, reactivated_customers, churned_customers, customers_end
FROM levels WHERE m >= %(first)s ORDER BY m
"""
BARE_CONCENTRATION = BARE_CHANGES + """,
revenue AS (
    SELECT customer_id, SUM(amount) AS amount FROM (
        SELECT customer_id, mrr * ((date_part('year', stops) - date_part('year', m)) * 12
                                    + date_part('month', stops) - date_part('month', m))::int AS amount
        FROM (SELECT customer_id, m, mrr,
                     COALESCE(LEAD(m) OVER (PARTITION BY customer_id ORDER BY m), %(after_last)s) AS stops
              FROM customer_mrr) spans
        UNION ALL
        SELECT c.customer_id, l.quantity * l.unit_price
        FROM customers_contractline l JOIN customers_contract c ON c.id = l.contract_id
        WHERE l.tenant_id = %(tenant)s AND l.kind = 'one_time' AND c.status <> 'draft'
          AND l.starts_on >= %(since)s AND l.starts_on < %(after_last)s
          AND l.starts_on <= COALESCE(c.end_date, l.starts_on)
    ) r GROUP BY customer_id HAVING SUM(amount) > 0
),
ranked AS (
    SELECT customer_id, amount, ROW_NUMBER() OVER w AS i, SUM(amount) OVER w AS running,
           COUNT(*) OVER () AS n, SUM(amount) OVER () AS total
    FROM revenue WINDOW w AS (ORDER BY amount, customer_id DESC)
)
SELECT MAX(total), MAX(n), 10000 * SUM(amount * amount) / (MAX(total) * MAX(total)),
       (2 * SUM(i * amount) - (MAX(n) + 1) * MAX(total)) / (MAX(n) * MAX(total)),
       SUM(amount) FILTER (WHERE i > n - 5) / MAX(total),
       array_agg(customer_id ORDER BY amount DESC, customer_id) FILTER (WHERE amount / total > 0.1),
       array_agg(running / total ORDER BY i) FILTER (WHERE i %% GREATEST(1, n / 100) = 0 OR i = n)
FROM ranked
"""

# Divisions: the selector divides in Python (28 digits), PostgreSQL to about 20; sums are exact.
CLOSE = Decimal("1e-15")


def _close(a: Decimal | None, b: Decimal | None) -> bool:
    return a == b if a is None or b is None else abs(a - b) <= CLOSE * max(1, abs(a))


def same_series(mine: list[dict], bare: list[tuple]) -> bool:
    return [(r["month"], r["mrr"], r["customers"]) for r in mine] == [tuple(row) for row in bare]


MOVEMENT_FIELDS = ["mrr_start", "new", "reactivation", "expansion", "contraction", "churn", "mrr_end",
                   "customers_start", "new_customers", "reactivated_customers", "churned_customers", "customers_end"]


def same_movements(mine: list[dict], bare: list[tuple]) -> bool:
    return [(r["month"], *(r[name] for name in MOVEMENT_FIELDS)) for r in mine] == [tuple(row) for row in bare]


def same_concentration(mine: dict, bare: list[tuple]) -> bool:
    total, n, hhi, gini, top5, flagged, lorenz = bare[0]
    return (
        mine["total_revenue"] == total and mine["customers"] == n
        and all(_close(mine[key], value) for key, value in (("hhi", hhi), ("gini", gini), ("top5_share", top5)))
        and [f["customer_id"] for f in mine["flagged"]] == (flagged or [])
        and len(mine["lorenz"]) == len(lorenz) + 1
        and all(_close(share, value) for (_, share), value in zip(mine["lorenz"][1:], lorenz))
    )


def _bare(query, values):
    # Same session settings and tenant (row-level security) as the selectors, so the comparison is
    # of the statements alone.
    with transaction.atomic(), database_tenant(values["tenant"]), connection.cursor() as cursor:
        cursor.execute(SESSION_SETTINGS)
        cursor.execute(query, values)
        return cursor.fetchall()


def build_tenant(*, contracts: int, months: int, first: date, seed: int = 42, reuse: bool = False) -> Tenant:
    """The generated tenant: contracts with dated line changes, 2 000 opportunities.

    It replaces the one built before, unless ``reuse`` and that one was built with the same arguments.
    """
    rng = random.Random(seed)
    name = f"Benchmark {contracts} contracts, {months} months from {first:%Y-%m}, seed {seed}"
    with platform_scope(), transaction.atomic():
        old = Tenant.objects.filter(slug=SLUG).first()
        if old and reuse and old.name == name:
            return old
        tenant_drop(old)
        tenant = Tenant.objects.create(name=name, slug=SLUG, reporting_currency="USD", invoice_number_prefix="B-")
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
        # Only the tables' owner may ANALYZE; as the application role, run `ANALYZE` as the owner
        # before measuring with --reuse (README, "Performance").
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'customers_contract' AND tableowner = current_user")
        if cursor.fetchone()[0]:
            cursor.execute("ANALYZE customers_contract; ANALYZE customers_contractline; ANALYZE customers_customer")
    return tenant


def measure(*, tenant: Tenant, first: date, last: date, repeat: int = 3, write=print) -> dict:
    """Time each selector and its bare SQL over months ``first``..``last`` (medians of ``repeat`` runs
    after a warm-up) and check that both give the same numbers."""
    after_last = add_months(last, 1)
    checks = [
        ("mrr_series", lambda: mrr_series(tenant=tenant, first=first, last=last), BARE_MRR_SERIES,
         {"first": first, "since": first}, same_series),
        ("movements", lambda: mrr_movements(tenant=tenant, first=first, last=last), BARE_MOVEMENTS,
         {"first": first, "since": None}, same_movements),
        ("concentration", lambda: revenue_concentration(tenant=tenant, month=last), BARE_CONCENTRATION,
         {"since": add_months(last, -11)}, same_concentration),
    ]
    figures = {}
    for name, selector, bare_sql, values, same in checks:
        values = {"tenant": tenant.pk, "last": last, "after_last": after_last, **values}
        selector()
        mine, mine_seconds = timed_median(selector, repeat)
        bare, bare_seconds = timed_median(lambda q=bare_sql, v=values: _bare(q, v), repeat)
        figures[name] = {
            "selector_seconds": round(mine_seconds, 3),
            "bare_sql_seconds": round(bare_seconds, 3),
            "ratio": round(mine_seconds / bare_seconds, 2) if bare_seconds else None,
            "same_numbers": bool(same(mine, bare)),
        }
        write(f"{name}: selector {mine_seconds:.3f} s, bare SQL {bare_seconds:.3f} s, "
              f"ratio {figures[name]['ratio']}, same numbers {figures[name]['same_numbers']}")
    return figures


class Rollback(Exception):
    pass


def _timed_with_queries(function, repeat: int) -> tuple[object, float, int]:
    """(result, median seconds of ``repeat`` calls after a warm-up, statements of the warm-up call).

    Statements are counted by an execute wrapper: the query log misses a test-client request's
    statements once the connection was used (``request_started`` resets it)."""
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        function()
    result, seconds = timed_median(function, repeat)
    return result, seconds, len(statements)


# A page's CSRF tokens differ per request; the rest of the HTML is its figures.
CSRF_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"|"csrfToken": "[^"]*"')


def _owner_client(tenant: Tenant) -> Client:
    """A test client logged in as an owner of ``tenant`` (a staff user made for the benchmark)."""
    with platform_scope():
        user, _ = get_user_model().objects.get_or_create(
            username=f"{SLUG}-owner", defaults={"is_staff": True, "email": f"{SLUG}-owner@example.invalid"}
        )
        Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": Role.OWNER})
    client = Client()
    client.force_login(user)
    return client


def _reads(tenant: Tenant, first: date, last: date) -> list[tuple[str, object]]:
    """The selectors, API calls and staff pages the facts serve, each as (name, callable)."""
    _, raw_key = TenantAPIKey.objects.create_key(tenant=tenant, name="benchmark")
    client = Client(headers={"authorization": f"Api-Key {raw_key}"})
    owner = _owner_client(tenant)
    window = f"from={first:%Y-%m}&to={last:%Y-%m}"

    def page(path):
        def call():
            response = owner.get(path)
            assert response.status_code == 200, (path, response.status_code, response.content[:300])
            return CSRF_TOKEN.sub(b"", response.content)
        return call

    def api(path):
        def call():
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code, response.content[:300])
            return response.json()
        return call

    return [
        ("mrr_series", lambda: mrr_series(tenant=tenant, first=first, last=last)),
        ("movements", lambda: mrr_movements(tenant=tenant, first=first, last=last)),
        ("retention", lambda: retention_series(tenant=tenant, first=first, last=last)),
        ("concentration", lambda: revenue_concentration(tenant=tenant, month=last)),
        ("api_mrr", api(f"/api/v1/metrics/mrr/?{window}")),
        ("api_movements", api(f"/api/v1/metrics/movements/?{window}")),
        ("api_retention", api(f"/api/v1/metrics/retention/?{window}")),
        ("api_concentration", api(f"/api/v1/metrics/concentration/?month={last:%Y-%m}")),
        ("page_revenue", page(f"/staff/?{window}")),
        ("page_retention", page(f"/staff/retention/?{window}")),
        ("page_concentration", page(f"/staff/concentration/?month={last:%Y-%m}")),
    ]


def _contract_changes(tenant: Tenant, *, writes: int) -> tuple[list[float], list[float]]:
    """Seconds of ``writes`` contract changes through the service (a per-seat line added last month to
    an open contract) with the facts kept, and of the same changes with them switched off, alternating
    so that the machine's load weighs on both alike. Each change runs in its own transaction, as a
    request's would, and is rolled back."""
    effective = add_months(month_start(date.today()), -1)
    ids = list(
        Contract.objects.for_tenant(tenant).filter(end_date__isnull=True, start_date__lt=effective)
        .order_by("pk").values_list("pk", flat=True)[:writes]
    )
    seconds = {True: [], False: []}
    for pk in ids:
        for facts in (True, False):
            try:
                with transaction.atomic():
                    if not facts:
                        RevenueFactsState.objects.for_tenant(tenant).delete()
                    contract = Contract.objects.for_tenant(tenant).get(pk=pk)
                    started = time.perf_counter()
                    contract_change(
                        contract=contract, action=ChangeAction.ADD_LINE, effective_on=effective,
                        new_line=LineSpec("Seats", ContractLine.Kind.PER_SEAT, Money("10.00", "USD"), Decimal(2)),
                    )
                    seconds[facts].append(time.perf_counter() - started)
                    raise Rollback
            except Rollback:
                pass
    return seconds[True], seconds[False]


def measure_facts(*, tenant: Tenant, first: date, last: date, repeat: int = 3, writes: int = 30, write=print) -> dict:
    """The reads from scratch and from the facts (see the module), the rebuild and the write cost."""
    with override_settings(**CRAWL_SETTINGS):
        RevenueFactsState.objects.for_tenant(tenant).delete()
        reads = _reads(tenant, first, last)
        scratch = {}
        for name, call in reads:
            scratch[name] = _timed_with_queries(call, repeat)
        started = time.perf_counter()
        rows = revenue_facts_rebuild(tenant=tenant)
        rebuild_seconds = time.perf_counter() - started
        trailing_rows = CustomerTrailingRevenueFact.objects.for_tenant(tenant).count()
        write(f"facts rebuilt: {rows} rows ({trailing_rows} trailing revenue rows) in {rebuild_seconds:.2f} s")
        figures = {"rows": rows, "trailing_rows": trailing_rows, "rebuild_seconds": round(rebuild_seconds, 2),
                   "target_ms": 200, "reads": {}}
        for name, call in reads:
            result, seconds, queries = _timed_with_queries(call, repeat)
            before, before_seconds, before_queries = scratch[name]
            figures["reads"][name] = {
                "scratch_ms": round(before_seconds * 1000, 1), "facts_ms": round(seconds * 1000, 1),
                "scratch_queries": before_queries, "facts_queries": queries, "same_numbers": result == before,
            }
            write(f"{name}: from scratch {before_seconds * 1000:.1f} ms ({before_queries} queries), "
                  f"from facts {seconds * 1000:.1f} ms ({queries} queries), same numbers {result == before}")
    with_facts, without = _contract_changes(tenant, writes=writes)
    customers = list(Customer.objects.for_tenant(tenant).order_by("pk").values_list("pk", flat=True)[:writes])
    refresh = []
    for pk in customers:
        started = time.perf_counter()
        revenue_facts_refresh(tenant=tenant, customer_ids=[pk])
        refresh.append(time.perf_counter() - started)
    median = statistics.median
    figures["contract_change"] = {
        "writes": len(with_facts), "with_facts_ms": round(median(with_facts) * 1000, 1),
        "without_facts_ms": round(median(without) * 1000, 1),
        "extra_ms": round((median(with_facts) - median(without)) * 1000, 1),
        "refresh_one_customer_ms": round(median(refresh) * 1000, 1), "target_extra_ms": 20,
    }
    write(f"contract change (median of {len(with_facts)}): {figures['contract_change']['with_facts_ms']} ms with "
          f"facts, {figures['contract_change']['without_facts_ms']} ms without (extra "
          f"{figures['contract_change']['extra_ms']} ms; one customer's refresh alone "
          f"{figures['contract_change']['refresh_one_customer_ms']} ms; target < 20 ms extra)")
    return figures


def run(*, contracts: int, months: int, runs: int = 10_000, repeat: int = 3, reuse: bool = False, write=print) -> dict:
    """Build (or reuse) the tenant, ``measure`` the selectors over its ``months``, time the forecast,
    and write the figures to ``RESULTS``."""
    last = add_months(month_start(date.today()), -1)
    first = add_months(last, -(months - 1))
    started = time.perf_counter()
    tenant = build_tenant(contracts=contracts, months=months, first=first, reuse=reuse)
    lines = ContractLine.objects.for_tenant(tenant).count()
    figures = {
        "contracts": contracts, "lines": lines, "months": months,
        "setup_seconds": round(time.perf_counter() - started, 2),
    }
    write(f"built {contracts} contracts, {lines} lines over {months} months in {figures['setup_seconds']} s")
    RevenueFactsState.objects.for_tenant(tenant).delete()  # a reused tenant's facts: the baseline is from scratch
    figures.update(measure(tenant=tenant, first=first, last=last, repeat=repeat, write=write))
    figures["facts"] = measure_facts(tenant=tenant, first=first, last=last, repeat=repeat, write=write)
    result, seconds = timed_median(lambda: revenue_forecast(tenant=tenant, runs=runs, seed=1), 1)
    figures["forecast"] = {"runs": runs, "opportunities": 2000, "seconds": round(seconds, 3), "target_seconds": 2}
    write(f"forecast: {runs} runs × 2000 opportunities in {seconds:.3f} s (target < 2 s)")
    results_write(RESULTS, figures)
    write(f"wrote {RESULTS}")
    return figures
