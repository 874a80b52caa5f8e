"""Writes on the revenue facts: refresh some customers, rebuild a tenant.

A customer fact (``revenue.models.CustomerMrrFact``) is a row of the reference ``changes`` CTE
(``revenue.selectors.sql``) for one customer, computed over its whole history (from its earliest
line) to the tenant's horizon with the reference SQL itself, restricted to the customers refreshed:
a customer's rows depend only on its own lines and the tenant's exchange rates, so the restricted
result is the tenant-wide one for them, and the facts equal the reference by construction. ``had``
is the movements' "had MRR before" over the same rows. Rows where MRR is and was 0 (and nothing is
unpriced) move no figure and are not stored.

The month totals (``revenue.models.RevenueMonthFact``) are sums over the customer facts: a refresh
takes the old facts' contributions off as it deletes them (``DELETE … RETURNING``) and adds the new
ones' as it inserts them (``INSERT … RETURNING``), so the totals stay the exact sums of the rows
without ever summing the tenant again. Two statements per refresh, whatever the tenant's size.

When they are refreshed:
- every contract service in ``customers.services`` (and the contract admin's save) calls
  ``customers.contract_hooks.contract_changed`` inside its transaction, after its last write; revenue
  registers ``contract_hook`` there (``RevenueConfig.ready``), which refreshes that customer;
- a written, corrected or deleted exchange rate (``revenue.catalog``) refreshes the customers with
  started contracts in its currency: their rows in every month from the rate's on may change, and
  ``before``/``had``/``next_month`` tie a customer's rows together, so each is recomputed whole;
- ``revenue_facts_rebuild`` (``manage.py revenue_facts_rebuild``) recomputes a tenant from scratch and
  sets its horizon, ``HORIZON_MONTHS`` after the current month; run it after changing a tenant's
  reporting currency; beat rebuilds the tenants with facts monthly (``revenue.tasks``), so the horizon
  stays ahead (readers use the reference beyond it).

Frozen months: closed months shown from ``MetricSnapshot`` stay frozen (``revenue.selectors.frozen``
reads the snapshot first); the facts are the live figures, as the reference is, and the change
guards already refuse contract changes and rates dated into invoiced or frozen months.

A tenant without a ``RevenueFactsState`` row has no facts: the refresh does nothing and the readers
use the reference.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

from django.db import connection, transaction
from django.utils import timezone

from customers.models import Contract, Tenant
from customers.periods import add_months, tenant_today
from customers.tenancy import database_tenant
from revenue.models import CustomerMrrFact, CustomerTrailingRevenueFact, RevenueFactsState, RevenueMonthFact
from revenue.selectors import sql

HORIZON_MONTHS = 60
# The trailing revenue facts (a row per customer and month, unlike the change months) go this far
# after the current month; concentration further out reads the change-month facts.
TRAILING_AHEAD_MONTHS = 12

# What a set of fact rows ``{rows}(customer_id, month_start, mrr, before, had, next_month)`` adds to
# the month totals (``RevenueMonthFact``), ``{sign}`` "" to add them or "-" to take them off: the
# movements of ``revenue.selectors.movements`` and the edges of ``revenue.selectors.retention``'s NRR
# (a span shifted twelve months is the base; its overlap with a span now is retained, and capped).
MONTH_TOTALS = """
spans AS (
    SELECT customer_id, month_start AS starts, COALESCE(next_month, %(after_horizon)s::date) AS stops, mrr
    FROM {rows} WHERE mrr > 0
),
base AS (
    SELECT customer_id, (starts + interval '12 months')::date AS starts, (stops + interval '12 months')::date AS stops,
           mrr
    FROM spans
),
meetings AS (
    SELECT a.mrr AS base_mrr, GREATEST(a.starts, n.starts) AS starts, LEAST(a.stops, n.stops) AS stops, n.mrr
    FROM base a JOIN spans n ON n.customer_id = a.customer_id AND n.starts < a.stops AND n.stops > a.starts
),
contributions AS (
    SELECT month_start, mrr - before AS mrr_change, (mrr > 0)::int - (before > 0)::int AS customer_change,
           CASE WHEN before = 0 AND mrr > 0 AND NOT had THEN mrr ELSE 0 END AS new,
           CASE WHEN before = 0 AND mrr > 0 AND had THEN mrr ELSE 0 END AS reactivation,
           CASE WHEN before > 0 AND mrr > before THEN mrr - before ELSE 0 END AS expansion,
           CASE WHEN mrr > 0 AND mrr < before THEN before - mrr ELSE 0 END AS contraction,
           CASE WHEN before > 0 AND mrr = 0 THEN before ELSE 0 END AS churn,
           (before = 0 AND mrr > 0 AND NOT had)::int AS new_customers,
           (before = 0 AND mrr > 0 AND had)::int AS reactivated_customers,
           (before > 0 AND mrr = 0)::int AS churned_customers,
           0::numeric AS base_change, 0::numeric AS retained_change, 0::numeric AS capped_change,
           0 AS base_customer_change
    FROM {rows}
    UNION ALL
    SELECT starts, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, mrr, 0, 0, 1 FROM base
    UNION ALL
    SELECT stops, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -mrr, 0, 0, -1 FROM base
    UNION ALL
    SELECT starts, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, mrr, LEAST(mrr, base_mrr), 0 FROM meetings
    UNION ALL
    SELECT stops, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -mrr, -LEAST(mrr, base_mrr), 0 FROM meetings
)
INSERT INTO revenue_revenuemonthfact (tenant_id, {columns})
SELECT %(tenant)s, month_start, {sums}
FROM contributions WHERE month_start <= %(horizon)s GROUP BY month_start
ON CONFLICT (tenant_id, month_start) DO UPDATE SET {updates}
"""
TOTAL_COLUMNS = [
    "mrr_change", "customer_change", "new", "reactivation", "expansion", "contraction", "churn", "new_customers",
    "reactivated_customers", "churned_customers", "base_change", "retained_change", "capped_change",
    "base_customer_change",
]
FACT_COLUMNS = "customer_id, month_start, mrr, before, had, next_month"


def month_totals_sql(*, rows: str, sign: str) -> str:
    return MONTH_TOTALS.format(
        rows=rows,
        columns=", ".join(["month_start", *TOTAL_COLUMNS]),
        sums=", ".join(f"{sign}SUM({c})" for c in TOTAL_COLUMNS),
        updates=", ".join(f"{c} = revenue_revenuemonthfact.{c} + EXCLUDED.{c}" for c in TOTAL_COLUMNS),
    )


# Take the customers' facts off the month totals as they are deleted, and delete their trailing revenue.
DELETE_SQL = f"""
WITH old AS (
    DELETE FROM revenue_customermrrfact WHERE tenant_id = %(tenant)s AND customer_id = ANY(%(customer_ids)s)
    RETURNING {FACT_COLUMNS}
),
old_trailing AS (
    DELETE FROM revenue_customertrailingrevenuefact
    WHERE tenant_id = %(tenant)s AND customer_id = ANY(%(customer_ids)s)
),
""" + month_totals_sql(rows="old", sign="-")

# Each customer's revenue over the twelve months ending with each month up to %(trailing_last)s
# (``CustomerTrailingRevenueFact``), from its new facts ``flows`` and its one-time lines: what
# ``revenue.selectors.concentration`` sums per customer for one window, for every window at once. A
# fact's MRR counts in the months from its own to ten after its end (its span overlaps their window),
# times the months of the overlap; a one-time line in its month and the eleven after, converted at the
# rate of its month's end (the concentration's rule, ``sql.ONE_TIME_RATE_JOIN``).
TRAILING_SQL = """
trailing_parts AS (
    SELECT f.customer_id, m.m::date AS month_start,
           f.mrr * {overlap} AS amount, NULL::text AS missing
    FROM flows f
    CROSS JOIN LATERAL generate_series(
        f.month_start::timestamp,
        LEAST(COALESCE(f.next_month, %(after_horizon)s::date) + interval '10 months', %(trailing_last)s::timestamp),
        interval '1 month') m(m)
    WHERE f.mrr > 0 AND %(trailing_last)s::date IS NOT NULL
    UNION ALL
    SELECT o.customer_id, m.m::date, o.amount, o.missing
    FROM (
        SELECT c.customer_id, date_trunc('month', l.starts_on::timestamp) AS month_start,
           {one_time_columns}
        FROM customers_contractline l
        JOIN customers_contract c ON c.id = l.contract_id AND c.tenant_id = %(tenant)s
        {one_time_rate_join}
        WHERE l.tenant_id = %(tenant)s AND c.status <> 'draft' AND l.kind = 'one_time'
          AND (c.end_date IS NULL OR l.starts_on <= c.end_date) AND {customers}
    ) o
    CROSS JOIN LATERAL generate_series(
        o.month_start, LEAST(o.month_start + interval '11 months', %(trailing_last)s::timestamp), interval '1 month'
    ) m(m)
    WHERE %(trailing_last)s::date IS NOT NULL
),
new_trailing AS (
    INSERT INTO revenue_customertrailingrevenuefact (tenant_id, customer_id, month_start, revenue, missing)
    SELECT %(tenant)s, customer_id, month_start, COALESCE(SUM(amount), 0), MIN(missing)
    FROM trailing_parts GROUP BY customer_id, month_start
    HAVING SUM(amount) > 0 OR MIN(missing) IS NOT NULL
    -- A rebuild writes each month's rows together, in rank order: a month's concentration then reads a
    -- few hundred heap pages instead of a page per customer.
    ORDER BY month_start, 4, customer_id DESC
),
""".format(
    overlap=sql.MONTHS_BETWEEN.format(
        a="GREATEST(f.month_start, (m.m - interval '11 months')::date)",
        b="LEAST(COALESCE(f.next_month, %(after_horizon)s::date), (m.m + interval '1 month')::date)",
    ),
    customers=sql.CUSTOMER_IDS.format(column="c.customer_id"),
    one_time_columns=sql.ONE_TIME_COLUMNS,
    one_time_rate_join=sql.ONE_TIME_RATE_JOIN,
)

# Compute the facts with the reference, insert them, and add them to the month totals.
REFRESH_SQL = """
WITH {cte},
flows AS (
    SELECT customer_id, month_start, mrr, before, next_month, unpriced,
           COALESCE(bool_or(mrr > 0 OR unpriced) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false)
               AS had
    FROM changes WINDOW w AS (PARTITION BY customer_id ORDER BY month_start)
),
new AS (
    INSERT INTO revenue_customermrrfact (tenant_id, customer_id, month_start, mrr, before, had, next_month, unpriced)
    SELECT %(tenant)s, customer_id, month_start, mrr, before, had, next_month, unpriced
    FROM flows WHERE mrr > 0 OR before > 0 OR unpriced
    RETURNING {columns}
),
""" + (TRAILING_SQL + month_totals_sql(rows="new", sign="")).replace("{", "{{").replace("}", "}}")

# Long before any contract: the reference marks a rate "change" at ``first`` and ``check_from`` for
# history folded into the series' first month; the facts' series starts at the earliest line and folds
# nothing, so these parameters name a month no series reaches.
NO_MONTH = date(1900, 1, 1)


def _insert(
    *, tenant: Tenant, last, trailing_last, customer_ids: list[int] | None, converts: bool = True
) -> None:
    """Compute and insert the facts of ``customer_ids`` (None: every customer) up to month ``last``, and
    add them to the month totals, and their trailing revenue up to month ``trailing_last`` (None:
    none), in one statement.

    The series starts at their earliest line (``sql.EARLIEST_CUSTOMER_LINE``), so no history is folded into its first month and "had MRR" is judged over everything (the
    reference's ``from_history``, for these customers). ``converts=False`` (none of their contracts is
    in another currency) leaves the conversion out, as the reference does for such a tenant."""
    values = sql.params(tenant=tenant, first=NO_MONTH, last=last, segment=None)
    values.update(
        customer_ids=customer_ids, horizon=last, after_horizon=add_months(last, 1), trailing_last=trailing_last
    )
    query = REFRESH_SQL.format(
        cte=sql.customer_month_cte(segment=None, from_history=True, convert=converts, customers=True),
        columns=FACT_COLUMNS,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql.SESSION_SETTINGS)
        cursor.execute(query, values)


def revenue_facts_refresh(*, tenant: Tenant, customer_ids: Collection[int]) -> int:
    """Recompute the facts of ``customer_ids`` (every month of their history to the tenant's horizon)
    with the reference SQL restricted to them, and move the month totals by the difference, in one
    transaction; returns how many customers were refreshed.

    Does nothing (returns 0) when the tenant's facts are not built. Concurrent refreshes of the same
    customer wait for each other (the customers' rows are locked); a rebuild waits for them all.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    with transaction.atomic(), database_tenant(tenant.pk), connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_month, trailing_last_month FROM revenue_revenuefactsstate WHERE tenant_id = %s FOR SHARE",
            [tenant.pk],
        )
        state = cursor.fetchone()
        if state is None:
            return 0
        # Lock the customers, and learn whether any of their started contracts is in another currency.
        cursor.execute(
            "SELECT id, EXISTS (SELECT 1 FROM customers_contract k WHERE k.tenant_id = %(tenant)s "
            "AND k.customer_id = cu.id AND k.currency <> %(reporting)s AND k.status <> 'draft') "
            "FROM customers_customer cu WHERE cu.tenant_id = %(tenant)s AND cu.id = ANY(%(ids)s) "
            "ORDER BY id FOR NO KEY UPDATE OF cu",
            {"tenant": tenant.pk, "reporting": tenant.reporting_currency, "ids": ids},
        )
        converts = any(foreign for _, foreign in cursor.fetchall())
        cursor.execute(
            DELETE_SQL,
            {"tenant": tenant.pk, "customer_ids": ids, "horizon": state[0], "after_horizon": add_months(state[0], 1)},
        )
        _insert(tenant=tenant, last=state[0], trailing_last=state[1], customer_ids=ids, converts=converts)
        return len(ids)


def revenue_facts_refresh_currency(*, tenant: Tenant, currencies: Collection[str]) -> int:
    """Refresh the customers with a started contract in any of ``currencies`` (an exchange rate of
    them changed); the reporting currency converts at 1 and refreshes nobody. Returns how many."""
    others = set(currencies) - {tenant.reporting_currency}
    if not others or not RevenueFactsState.objects.for_tenant(tenant).exists():
        return 0
    customer_ids = (
        Contract.objects.for_tenant(tenant)
        .filter(currency__in=others)
        .exclude(status=Contract.Status.DRAFT)
        .values_list("customer_id", flat=True)
        .distinct()
    )
    return revenue_facts_refresh(tenant=tenant, customer_ids=list(customer_ids))


def revenue_facts_rebuild(*, tenant: Tenant, now: datetime | None = None) -> int:
    """Rebuild the tenant's facts from scratch up to ``HORIZON_MONTHS`` after its current month (at
    ``now``, default the present) in its current reporting currency, in one transaction; returns
    the customer fact rows written. Turns the facts on for a tenant that had none."""
    today = tenant_today(tenant, now)
    last = add_months(today, HORIZON_MONTHS)
    trailing_last = add_months(today, TRAILING_AHEAD_MONTHS)
    with transaction.atomic(), database_tenant(tenant.pk), connection.cursor() as cursor:
        state = RevenueFactsState.objects.for_tenant(tenant).select_for_update().first()
        if state is None:
            state = RevenueFactsState(tenant=tenant)
        state.reporting_currency = tenant.reporting_currency
        state.last_month = last
        state.trailing_last_month = trailing_last
        state.built_at = timezone.now()
        state.save()
        CustomerMrrFact.objects.for_tenant(tenant).delete()
        CustomerTrailingRevenueFact.objects.for_tenant(tenant).delete()
        RevenueMonthFact.objects.for_tenant(tenant).delete()
        _insert(tenant=tenant, last=last, trailing_last=trailing_last, customer_ids=None)
        return CustomerMrrFact.objects.for_tenant(tenant).count()


def contract_hook(*, tenant: Tenant, customer_ids: Collection[int]) -> None:
    """``customers.contract_hooks`` hook: the contracts of ``customer_ids`` changed."""
    revenue_facts_refresh(tenant=tenant, customer_ids=customer_ids)
