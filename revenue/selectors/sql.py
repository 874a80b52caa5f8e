"""The one SQL pipeline every contract-based metric starts from: each customer's MRR at its change months.

A customer's MRR only changes at a few month ends: where one of its lines starts or stops counting,
or where the exchange rate of one of its currencies changes. So instead of expanding every line into
every month end it covers, each line contributes a *change*: its monthly amount at the first month
end on or after ``starts_on`` and minus that amount at the first month end after it stops (the day
after ``ends_on`` or the contract's end). A running sum over a customer's change months gives its MRR
from each change month until the next one; series, movements and trailing revenue are read from
those rows with window functions (running sums), never from a customer-by-month grid.

Rules (see revenue.selectors.mrr for the full contract):
- a line counts on day d when starts_on ≤ d ≤ ends_on (open = ∞), its contract is not a draft and
  d ≤ contract.end_date (when set);
- a line's monthly amount is quantity × unit_price / contract.billing_interval (months);
- discount lines on a contract add up their percentages (capped at 100) and take them off that
  contract's recurring + per-seat total. That is not additive per line, so contracts with a discount
  line first get a running total per contract over their change days; the others add their lines'
  changes directly (the same numbers, without a sort per contract);
- amounts in another currency than the reporting one are converted per customer and currency at
  the month end's rate (the latest on or before the month's last day): the converted value changes
  where the amount changes or the rate changes, so a rate change is a change month too;
- a customer whose month-end total is ≤ 0 has no MRR that month.

The CTE ``changes(customer_id, month_start, mrr, before, next_month, missing, unpriced)`` holds one
row per customer and change month: ``mrr`` ≥ 0 from that month until ``next_month`` (exclusive) or
the end of the series, ``before`` its MRR at the previous month's end. ``missing`` names
``CUR YYYY-MM-DD`` when the customer has an active non-zero line in a currency without a rate at a
month end from ``check_from`` on (callers raise MissingExchangeRate); ``unpriced`` says the same for
any month (before ``check_from`` such a month still counts as "had MRR"). ``POSITIVE_CTE`` adds
``positive(customer_id, month_start, mrr, missing)``, one row per customer and month with MRR, for
the callers that want that grid. ``months(month_start)`` is the series, ``bounds(first_month,
last_month)`` its ends. Parameters: tenant, reporting, first, last (month starts; ``first`` may be
replaced by the tenant's earliest line when ``from_history``), check_from (month start), renew (bool).
"""

from __future__ import annotations

from datetime import date

from django.db import connection, transaction

from customers.models import Tenant
from customers.tenancy import database_tenant, tenant_cursor
from revenue.selectors.common import MissingExchangeRate, Segment

CHANGES_CTE = """
bounds AS (
    SELECT {first_expr}::date AS first_month, %(last)s::date AS last_month
),
months AS (
    SELECT g::date AS month_start
    FROM bounds, generate_series(bounds.first_month, bounds.last_month, interval '1 month') g
),
lines AS MATERIALIZED (
    SELECT * FROM (
        SELECT c.id AS contract_id, c.customer_id, c.currency, l.kind, l.starts_on,
               CASE WHEN %(renew)s AND c.auto_renew AND c.status = 'active'
                    THEN CASE WHEN c.end_date IS NULL OR l.ends_on < c.end_date THEN l.ends_on END
                    ELSE LEAST(l.ends_on, c.end_date) END AS last_day,
               CASE WHEN l.kind = 'discount' THEN 0 ELSE l.quantity * l.unit_price / c.billing_interval END AS rec,
               CASE WHEN l.kind = 'discount' THEN COALESCE(l.discount_percent, 0) ELSE 0 END AS disc,
               c.id IN (SELECT d.contract_id FROM customers_contractline d
                        WHERE d.tenant_id = %(tenant)s AND d.kind = 'discount' {discount_where}) AS discounted
        FROM customers_contractline l
        JOIN customers_contract c ON c.id = l.contract_id AND c.tenant_id = %(tenant)s
        {segment_join}
        WHERE l.tenant_id = %(tenant)s AND c.status <> 'draft' AND l.kind IN ('recurring', 'per_seat', 'discount')
          {segment_where}
    ) l
    WHERE (l.last_day IS NULL OR l.starts_on <= l.last_day) AND l.starts_on < %(last)s::date + interval '1 month'
),
line_events AS NOT MATERIALIZED (
    -- Each line starts counting at the first month end on or after starts_on and stops at the first
    -- one after its last day; history before the series folds into its first month. ``active``
    -- counts non-zero recurring lines, for the missing-rate check of other currencies.
    SELECT e.*
    FROM (
        SELECT contract_id, customer_id, currency, discounted, kind,
               GREATEST(date_trunc('month', starts_on::timestamp)::date, b.first_month) AS month_start,
               rec, disc, (rec <> 0)::int AS active
        FROM lines, bounds b
        UNION ALL
        SELECT contract_id, customer_id, currency, discounted, kind,
               GREATEST(date_trunc('month', (last_day + 1)::timestamp)::date, b.first_month),
               -rec, -disc, -(rec <> 0)::int
        FROM lines, bounds b WHERE last_day < b.last_month + interval '1 month - 1 day'
    ) e
),
contract_changes AS NOT MATERIALIZED (
    -- Contracts with a discount line: their value at a month end is their recurring total less the
    -- discount percent then (not additive per line), so it changes by value − previous value.
    -- ``currency`` leads the partition so a filter on it reaches the lines.
    SELECT customer_id, currency, month_start, value - LAG(value, 1, 0::numeric) OVER w AS delta
    FROM (
        SELECT contract_id, customer_id, currency, month_start,
               SUM(SUM(rec)) OVER w * (100 - LEAST(SUM(SUM(disc)) OVER w, 100)) * 0.01 AS value
        FROM line_events WHERE discounted
        GROUP BY currency, contract_id, customer_id, month_start
        WINDOW w AS (PARTITION BY currency, contract_id ORDER BY month_start)
    ) v
    WINDOW w AS (PARTITION BY currency, contract_id ORDER BY month_start)
),
{foreign}customer_totals AS (
    -- One sort per customer and month: the running total after the month (all of a month's rows are
    -- peers and see it), the month's own change, and the next month with a change.
    SELECT customer_id, month_start, SUM(delta) OVER w AS total, SUM(delta) OVER month AS month_delta,
           LAG(month_start) OVER w IS DISTINCT FROM month_start AS first_row,
           FIRST_VALUE(month_start) OVER (w RANGE BETWEEN '1 day' FOLLOWING AND UNBOUNDED FOLLOWING) AS next_month,
           {peers}
    FROM (
        SELECT customer_id, month_start, delta, NULL::text AS missing, false AS unpriced
        FROM contract_changes WHERE currency = %(reporting)s AND delta <> 0
        UNION ALL
        SELECT customer_id, month_start, rec, NULL, false
        FROM line_events WHERE currency = %(reporting)s AND NOT discounted
        UNION ALL
        SELECT customer_id, month_start, delta, missing, unpriced FROM foreign_events
    ) e
    WINDOW w AS (PARTITION BY customer_id ORDER BY month_start), month AS (w RANGE BETWEEN CURRENT ROW AND CURRENT ROW)
),
changes AS (
    SELECT customer_id, month_start, CASE WHEN total > 0 THEN total ELSE 0 END AS mrr,
           CASE WHEN total - month_delta > 0 THEN total - month_delta ELSE 0 END AS before,
           next_month, missing, unpriced
    FROM customer_totals WHERE first_row
)
"""

FOREIGN_CTE = """
foreign_changes AS (
    SELECT customer_id, currency, month_start, SUM(delta) AS delta, SUM(active) AS active
    FROM (
        SELECT customer_id, currency, month_start, delta, 0 AS active
        FROM contract_changes WHERE currency <> %(reporting)s
        UNION ALL
        SELECT customer_id, currency, month_start, CASE WHEN discounted THEN 0 ELSE rec END, active
        FROM line_events WHERE currency <> %(reporting)s AND kind <> 'discount'
    ) e
    GROUP BY customer_id, currency, month_start
),
rate_months AS (
    -- The rate of each other currency at each month end, and the months where it changes.
    SELECT cur.currency, m.month_start, r.rate,
           m.month_start IN (%(check_from)s::date, %(first)s::date)
           OR r.rate IS DISTINCT FROM LAG(r.rate) OVER (PARTITION BY cur.currency ORDER BY m.month_start) AS changed
    FROM (SELECT DISTINCT currency FROM foreign_changes) cur
    CROSS JOIN months m
    LEFT JOIN LATERAL (
        SELECT x.rate FROM revenue_exchangerate x
        WHERE x.tenant_id = %(tenant)s AND x.currency = cur.currency
          AND x.effective_on <= (m.month_start + interval '1 month - 1 day')::date
        ORDER BY x.effective_on DESC LIMIT 1
    ) r ON true
),
foreign_runs AS (
    SELECT customer_id, currency, month_start, SUM(delta) OVER w AS amount, SUM(active) OVER w AS active,
           LEAD(month_start) OVER w AS next_month
    FROM foreign_changes WINDOW w AS (PARTITION BY customer_id, currency ORDER BY month_start)
),
foreign_points AS (
    -- A converted amount changes where the amount changes or where its currency's rate does.
    SELECT customer_id, currency, month_start, amount, active FROM foreign_runs
    UNION ALL
    SELECT f.customer_id, f.currency, r.month_start, f.amount, f.active
    FROM foreign_runs f
    JOIN rate_months r ON r.currency = f.currency AND r.changed AND r.month_start > f.month_start
         AND (f.next_month IS NULL OR r.month_start < f.next_month)
    WHERE f.amount <> 0 OR f.active <> 0
),
foreign_events AS (
    SELECT p.customer_id, p.month_start,
           COALESCE(p.amount * r.rate, 0)
           - LAG(COALESCE(p.amount * r.rate, 0), 1, 0::numeric)
             OVER (PARTITION BY p.customer_id, p.currency ORDER BY p.month_start) AS delta,
           CASE WHEN r.rate IS NULL AND p.active > 0 AND p.month_start >= %(check_from)s::date
                THEN p.currency || ' ' || (p.month_start + interval '1 month - 1 day')::date END AS missing,
           r.rate IS NULL AND p.active > 0 AS unpriced
    FROM foreign_points p JOIN rate_months r ON r.currency = p.currency AND r.month_start = p.month_start
),
"""

# A tenant whose contracts are all in its reporting currency converts nothing.
NO_FOREIGN_CTE = """
foreign_events AS (
    SELECT NULL::bigint AS customer_id, NULL::date AS month_start, NULL::numeric AS delta, NULL::text AS missing,
           NULL::boolean AS unpriced
    WHERE false
),
"""

POSITIVE_CTE = """
positive AS (
    SELECT c.customer_id, m::date AS month_start, CASE WHEN c.missing IS NULL THEN c.mrr END AS mrr, c.missing
    FROM changes c CROSS JOIN bounds b
    CROSS JOIN LATERAL generate_series(
        c.month_start::timestamp, COALESCE(c.next_month - interval '1 month', b.last_month), interval '1 month') m
    WHERE c.mrr > 0 OR c.missing IS NOT NULL
)
"""

EARLIEST_LINE = (
    "LEAST(%(first)s::date, COALESCE((SELECT date_trunc('month', MIN(starts_on)::timestamp)::date "
    "FROM customers_contractline WHERE tenant_id = %(tenant)s), %(first)s::date))"
)

# The customers ``%(customer_ids)s`` (a list), or every customer when it is None; the statement is
# planned with the value in it, so the test that does not apply folds away.
CUSTOMER_IDS = "(%(customer_ids)s IS NULL OR {column} = ANY(%(customer_ids)s))"

# The earliest line of those customers (``customers=True``), or the last month when they have none (an
# empty series); unlike EARLIEST_LINE not bounded by ``%(first)s``.
EARLIEST_CUSTOMER_LINE = (
    "COALESCE((SELECT date_trunc('month', MIN(l.starts_on)::timestamp)::date "
    "FROM customers_contractline l JOIN customers_contract c ON c.id = l.contract_id "
    "WHERE l.tenant_id = %(tenant)s AND c.tenant_id = %(tenant)s AND "
    + CUSTOMER_IDS.format(column="c.customer_id") + "), %(last)s::date)"
)

# A one-time line ``l`` of a contract ``c`` is converted at the rate of its month's end (its currency's
# latest rate on or before that day; none needed in the reporting currency): ONE_TIME_RATE_JOIN joins
# that rate as ``r``, ONE_TIME_COLUMNS are the line's ``amount`` in the reporting currency (NULL without
# a rate) and the rate it lacks as ``missing`` (``CUR YYYY-MM-DD``, as ``changes`` names it).
# Shared by the concentration's reference and the trailing revenue facts, which must agree.
ONE_TIME_RATE_JOIN = """LEFT JOIN LATERAL (
        SELECT x.rate FROM revenue_exchangerate x
        WHERE x.tenant_id = %(tenant)s AND x.currency = c.currency
          AND x.effective_on <= (date_trunc('month', l.starts_on) + interval '1 month - 1 day')::date
        ORDER BY x.effective_on DESC LIMIT 1
    ) r ON c.currency <> %(reporting)s"""
ONE_TIME_COLUMNS = """l.quantity * l.unit_price * CASE WHEN c.currency = %(reporting)s THEN 1 ELSE r.rate END AS amount,
           CASE WHEN c.currency <> %(reporting)s AND r.rate IS NULL
                THEN c.currency || ' ' || (date_trunc('month', l.starts_on) + interval '1 month - 1 day')::date
           END AS missing"""

# Months between two month starts, as an integer (``b`` later than ``a``).
MONTHS_BETWEEN = (
    "((date_part('year', {b}) - date_part('year', {a})) * 12 + date_part('month', {b}) - date_part('month', {a}))::int"
)


def segment_sql(segment: Segment | None) -> tuple[str, str]:
    """The join and condition limiting contract lines to one segment's customers."""
    if not segment:
        return "", ""
    return "JOIN customers_customer cu ON cu.id = c.customer_id", f"AND {segment.column} = %(segment_value)s"


def customer_month_cte(
    *, segment: Segment | None, from_history: bool, convert: bool = True, customers: bool = False
) -> str:
    """The CTE text (without ``WITH``) for the rules above, optionally limited to one segment.

    ``from_history`` starts the series at the tenant's earliest line, so "first time ever" and
    "had MRR before" are judged over the customer's whole history, not just the asked window.
    ``convert=False`` leaves out the conversion of other currencies (see ``converts``).
    ``customers=True`` limits the lines to the customers ``%(customer_ids)s`` (a list, or None for
    all) and, with ``from_history``, starts at their earliest line: a customer's rows depend on its
    own lines and the rates only, so this is the tenant-wide result for them (``revenue.facts``).
    """
    segment_join, segment_where = segment_sql(segment)
    earliest = EARLIEST_LINE
    discount_where = ""
    if customers:
        segment_where += f" AND {CUSTOMER_IDS.format(column='c.customer_id')}"
        # Only these customers' contracts: the tenant's other discount lines need not be read.
        discount_where = (
            "AND d.contract_id IN (SELECT k.id FROM customers_contract k "
            f"WHERE k.tenant_id = %(tenant)s AND {CUSTOMER_IDS.format(column='k.customer_id')})"
        )
        earliest = EARLIEST_CUSTOMER_LINE
    return CHANGES_CTE.format(
        first_expr=earliest if from_history else "%(first)s::date",
        segment_join=segment_join,
        segment_where=segment_where,
        discount_where=discount_where,
        foreign=FOREIGN_CTE if convert else NO_FOREIGN_CTE,
        # Every row of a customer's month carries the month's missing rate, as they carry its total.
        peers="MIN(missing) OVER month AS missing, bool_or(unpriced) OVER month AS unpriced"
        if convert else "NULL::text AS missing, false AS unpriced",
    )


def converts(tenant: Tenant) -> bool:
    """Whether any non-draft contract of the tenant is in another currency than its reporting one."""
    with tenant_cursor(tenant) as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM customers_contract "
            "WHERE tenant_id = %s AND currency <> %s AND status <> 'draft')",
            [tenant.pk, tenant.reporting_currency],
        )
        return cursor.fetchone()[0]


def params(
    *, tenant: Tenant, first: date, last: date, segment: Segment | None, renew: bool = False,
    check_from: date | None = None,
) -> dict:
    """Statement parameters; ``check_from`` (default ``first``) is the first month whose missing rates raise."""
    result = {
        "tenant": tenant.pk,
        "reporting": tenant.reporting_currency,
        "first": first,
        "last": last,
        "check_from": check_from or first,
        "renew": renew,
    }
    if segment:
        result["segment_value"] = segment.value
    return result


# The planner overestimates these statements, which switches on JIT compilation that costs about a
# second and buys nothing here; the sorts and hashes of a large tenant fit in memory with more.
SESSION_SETTINGS = "SET LOCAL jit = off; SET LOCAL work_mem = '128MB'"


def fetch(sql: str, values: dict) -> list[tuple]:
    """Run a statement of this module; ``values["tenant"]`` (an id) is also the tenant set for row-level security."""
    with transaction.atomic(), database_tenant(values["tenant"]), connection.cursor() as cursor:
        cursor.execute(SESSION_SETTINGS)
        cursor.execute(sql, values)
        return cursor.fetchall()


def raise_if_missing(tenant: Tenant, missing: str | None) -> None:
    """``missing`` is ``"SEK 2025-01-31"`` from the ``missing`` column, or None."""
    if missing:
        currency, on = missing.split(" ")
        raise MissingExchangeRate(currency, date.fromisoformat(on), tenant.reporting_currency)
