"""Writes on the revenue facts (``revenue.models.CustomerMrrFact``): refresh some customers, rebuild a tenant.

A fact row is a row of the reference ``changes`` CTE (``revenue.selectors.sql``) for one customer,
computed over its whole history (from its earliest line) to the tenant's horizon with the reference
SQL itself, restricted to the customers refreshed: a customer's rows depend only on its own lines
and the tenant's exchange rates, so the restricted result is the tenant-wide one for them, and the
facts equal the reference by construction. ``had`` is the movements' "had MRR before" over the same
rows. Rows where MRR is and was 0 (and nothing is unpriced) move no figure and are not stored.

When they are refreshed:
- every contract service in ``customers.services`` (and the contract admin's save) calls
  ``customers.contract_hooks.contract_changed`` inside its transaction, after its last write; revenue
  registers ``contract_hook`` there (``RevenueConfig.ready``), which refreshes that customer;
- a written, corrected or deleted exchange rate (``revenue.catalog``) refreshes the customers with
  started contracts in its currency: their rows in every month from the rate's on may change, and
  ``before``/``had``/``next_month`` tie a customer's rows together, so each is recomputed whole;
- ``revenue_facts_rebuild`` (``manage.py revenue_facts_rebuild``) recomputes a tenant from scratch and
  sets its horizon, ``HORIZON_MONTHS`` after the current month; run it after changing a tenant's
  reporting currency, and monthly so the horizon stays ahead (readers use the reference beyond it).

Frozen months: closed months shown from ``MetricSnapshot`` stay frozen (``revenue.selectors.frozen``
reads the snapshot first); the facts are the live figures, as the reference is, and the change
guards already refuse contract changes and rates dated into invoiced or frozen months.

A tenant without a ``RevenueFactsState`` row has no facts: the refresh does nothing and the readers
use the reference.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from customers.models import Contract, Tenant
from customers.periods import add_months, tenant_today
from customers.tenancy import database_tenant
from revenue.models import CustomerMrrFact, RevenueFactsState
from revenue.selectors import sql

HORIZON_MONTHS = 60

REFRESH_SQL = """
WITH {cte},
flows AS (
    SELECT customer_id, month_start, mrr, before, next_month, unpriced,
           COALESCE(bool_or(mrr > 0 OR unpriced) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false)
               AS had
    FROM changes WINDOW w AS (PARTITION BY customer_id ORDER BY month_start)
)
INSERT INTO revenue_customermrrfact (tenant_id, customer_id, month_start, mrr, before, had, next_month, unpriced)
SELECT %(tenant)s, customer_id, month_start, mrr, before, had, next_month, unpriced
FROM flows WHERE mrr > 0 OR before > 0 OR unpriced
"""


EARLIEST_SQL = """
SELECT date_trunc('month', MIN(l.starts_on)::timestamp)::date
FROM customers_contractline l JOIN customers_contract c ON c.id = l.contract_id AND c.tenant_id = %(tenant)s
WHERE l.tenant_id = %(tenant)s {customers}
"""


def _insert(*, tenant: Tenant, last, customer_ids: list[int] | None) -> int:
    """Compute and insert the facts of ``customer_ids`` (None: every customer) up to month ``last``.

    The series starts at their earliest line, so no history is folded into its first month and
    "had MRR" is judged over everything (the reference's ``from_history``, for these customers)."""
    values = {"tenant": tenant.pk, "customer_ids": customer_ids}
    with connection.cursor() as cursor:
        cursor.execute(sql.SESSION_SETTINGS)
        cursor.execute(
            EARLIEST_SQL.format(customers="AND c.customer_id = ANY(%(customer_ids)s)" if customer_ids else ""), values
        )
        first = cursor.fetchone()[0]
        if first is None or first > last:
            return 0
        values.update(sql.params(tenant=tenant, first=first, last=last, segment=None))
        query = REFRESH_SQL.format(
            cte=sql.customer_month_cte(
                segment=None, from_history=False, convert=True, customers=customer_ids is not None
            )
        )
        cursor.execute(query, values)
        return cursor.rowcount


def revenue_facts_refresh(*, tenant: Tenant, customer_ids: Collection[int]) -> int:
    """Recompute the facts of ``customer_ids`` (every month of their history to the tenant's horizon)
    with the reference SQL restricted to them, in one transaction; returns the rows written.

    Does nothing (returns 0) when the tenant's facts are not built. Concurrent refreshes of the same
    customer wait for each other (the customers' rows are locked); a rebuild waits for them all.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    with transaction.atomic(), database_tenant(tenant.pk), connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_month FROM revenue_revenuefactsstate WHERE tenant_id = %s FOR SHARE", [tenant.pk]
        )
        state = cursor.fetchone()
        if state is None:
            return 0
        cursor.execute(
            "SELECT id FROM customers_customer WHERE tenant_id = %s AND id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
            [tenant.pk, ids],
        )
        cursor.execute(
            "DELETE FROM revenue_customermrrfact WHERE tenant_id = %s AND customer_id = ANY(%s)", [tenant.pk, ids]
        )
        return _insert(tenant=tenant, last=state[0], customer_ids=ids)


def revenue_facts_refresh_currency(*, tenant: Tenant, currencies: Collection[str]) -> int:
    """Refresh the customers with a started contract in any of ``currencies`` (an exchange rate of
    them changed); the reporting currency converts at 1 and refreshes nobody. Returns the rows written."""
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
    the rows written. Turns the facts on for a tenant that had none."""
    last = add_months(tenant_today(tenant, now), HORIZON_MONTHS)
    with transaction.atomic(), database_tenant(tenant.pk), connection.cursor() as cursor:
        state = RevenueFactsState.objects.for_tenant(tenant).select_for_update().first()
        if state is None:
            state = RevenueFactsState(tenant=tenant)
        state.reporting_currency = tenant.reporting_currency
        state.last_month = last
        state.built_at = timezone.now()
        state.save()
        CustomerMrrFact.objects.for_tenant(tenant).delete()
        return _insert(tenant=tenant, last=last, customer_ids=None)


def contract_hook(*, tenant: Tenant, customer_ids: Collection[int]) -> None:
    """``customers.contract_hooks`` hook: the contracts of ``customer_ids`` changed."""
    revenue_facts_refresh(tenant=tenant, customer_ids=customer_ids)
