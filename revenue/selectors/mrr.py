"""MRR, ARR and ARPA per month, per customer, and usage revenue reported beside MRR.

Definitions (DOMAIN.md "Metric definitions"; the choices made here are stated once):
- A month's MRR is measured on its last day. A line is active on day d when starts_on ≤ d ≤ ends_on
  (open = ∞), its contract is not a draft, and d ≤ contract.end_date when set: a contract ending
  mid-month counts 0 at that month's end (it churns in that month).
- MRR(customer, month) = Σ active recurring and per-seat lines of quantity × unit_price /
  billing_interval (months), less each active discount line's percent (summed per contract, capped
  at 100 %) of that contract's recurring + per-seat total; usage and one-time lines never count.
- Amounts convert to the tenant's reporting currency with the latest ExchangeRate on or before the
  month's last day (1 for the reporting currency). A missing rate raises MissingExchangeRate naming
  the currency and the date.
- A customer whose month-end total is ≤ 0 has no MRR that month (counts 0, not negative).
- ARR = 12 × MRR. ARPA = MRR / customers with MRR (None when there are none).
- Units: the reporting currency. Decimals are exact except the division by the billing interval,
  which PostgreSQL carries to at least 16 decimal places; round for display only (``display``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from customers.models import Tenant
from customers.periods import month_end, month_start, months_between
from revenue.selectors import facts, sql
from revenue.selectors.common import RateBook, Segment, group_column

ZERO = Decimal(0)


def mrr_series(
    *, tenant: Tenant, first: date, last: date, segment: Segment | None = None, group_by: str | None = None
) -> list[dict]:
    """MRR at the end of every month ``first``..``last`` (month starts), in one SQL statement.

    Returns one dict per month (and per value of ``group_by`` when given, a Customer dimension:
    tier, segment, country, account_manager) with ``month``, ``segment``, ``mrr``, ``arr``,
    ``customers`` and ``arpa`` as exact Decimals. Months without revenue are present with zeros;
    with ``group_by``, only the groups with customers that month are. Raises MissingExchangeRate.
    """
    first, last = month_start(first), month_start(last)
    group = group_column(group_by)
    source = facts.facts_source(tenant=tenant, last=last)
    if source.usable and segment is None and group is None:
        return [
            _figures(t["month"], "", t["mrr_end"], t["customers_end"])
            for t in facts.month_totals(tenant=tenant, first=first, last=last)
        ]
    changes = facts.changes_cte(source=source, segment=segment, from_history=False)
    query = f"""
        WITH {changes.cte},
        per_month AS MATERIALIZED (
            SELECT s.month_start, {group or "''"} AS seg, SUM(s.mrr - s.before) AS mrr_change,
                   SUM((s.mrr > 0)::int - (s.before > 0)::int) AS customer_change, MIN(s.missing) AS missing
            FROM changes s {"JOIN customers_customer cu ON cu.id = s.customer_id" if group else ""}
            GROUP BY 1, 2
        ),
        levels AS (
            SELECT m.month_start, g.seg, p.missing,
                   SUM(COALESCE(p.mrr_change, 0)) OVER w AS mrr,
                   (SUM(COALESCE(p.customer_change, 0)) OVER w)::bigint AS customers
            FROM months m
            CROSS JOIN (SELECT DISTINCT seg FROM per_month {"" if group else "UNION SELECT ''"}) g
            LEFT JOIN per_month p ON p.month_start = m.month_start AND p.seg IS NOT DISTINCT FROM g.seg
            WINDOW w AS (PARTITION BY g.seg ORDER BY m.month_start)
        )
        SELECT month_start, seg, mrr, customers, missing FROM levels
        WHERE {"customers > 0 OR missing IS NOT NULL" if group else "true"}
        ORDER BY 1, 2
    """
    rows = sql.fetch(query, sql.params(tenant=tenant, first=first, last=last, segment=segment))
    result = []
    for month, seg, mrr, customers, missing in rows:
        sql.raise_if_missing(tenant, missing)
        result.append(_figures(month, seg, mrr, customers))
    return result


def arr_from_mrr(mrr: Decimal) -> Decimal:
    """ARR = 12 × MRR, exact (no rounding), in the unit of ``mrr`` (the reporting currency)."""
    return 12 * mrr


def _figures(month: date, seg: str, mrr: Decimal, customers: int) -> dict:
    return {
        "month": month,
        "segment": seg,
        "mrr": mrr,
        "arr": arr_from_mrr(mrr),
        "customers": customers,
        "arpa": mrr / customers if customers else None,
    }


def customer_mrr(*, tenant: Tenant, month: date, segment: Segment | None = None) -> dict[int, Decimal]:
    """Each customer's MRR (> 0) at the end of ``month``: ``{customer_id: Decimal}``. Raises MissingExchangeRate."""
    return customer_mrr_range(tenant=tenant, first=month, last=month, segment=segment).get(month_start(month), {})


def customer_mrr_range(
    *, tenant: Tenant, first: date, last: date, segment: Segment | None = None
) -> dict[date, dict[int, Decimal]]:
    """``{month: {customer_id: MRR}}`` for customers with MRR > 0 at each month end of ``first``..``last``."""
    source = facts.facts_source(tenant=tenant, last=month_start(last))
    changes = facts.changes_cte(source=source, segment=segment, from_history=False)
    query = f"""
        WITH {changes.cte},
        {sql.POSITIVE_CTE}
        SELECT month_start, customer_id, mrr, missing FROM positive ORDER BY 1, 2
    """
    values = sql.params(tenant=tenant, first=month_start(first), last=month_start(last), segment=segment)
    rows = sql.fetch(query, values)
    result: dict[date, dict[int, Decimal]] = {month: {} for month in months_between(first, last)}
    for month, customer_id, mrr, missing in rows:
        sql.raise_if_missing(tenant, missing)
        result[month][customer_id] = mrr
    return result


def usage_revenue(*, tenant: Tenant, month: date) -> dict:
    """Invoiced usage revenue of ``month``, reported beside MRR and never added to it.

    Source: lines of finalized or paid invoices (not drafts, not void) whose period starts in the
    month and whose contract line is usage-priced (``billing.models.InvoiceLine.contract_line.kind
    == usage``), net amounts before VAT, converted at the rate on the month's last day. Returns
    ``{"month", "usage_revenue", "invoices"}``; 0 when nothing was invoiced. Raises MissingExchangeRate.
    """
    return usage_revenue_range(tenant=tenant, first=month, last=month)[month_start(month)]


def usage_revenue_range(*, tenant: Tenant, first: date, last: date) -> dict[date, dict]:
    """``usage_revenue`` of each month from ``first`` to ``last`` (month starts), in one query:
    ``{month: {"month", "usage_revenue", "invoices"}}``."""
    from billing.models import Invoice, InvoiceLine
    from customers.models import ContractLine

    rows = (
        InvoiceLine.objects.for_tenant(tenant)
        .filter(
            invoice__status__in=[Invoice.Status.FINALIZED, Invoice.Status.PAID],
            invoice__period_start__gte=month_start(first),
            invoice__period_start__lte=month_end(last),
            contract_line__kind=ContractLine.Kind.USAGE,
        )
        .values_list("invoice__period_start", "invoice__currency", "amount", "invoice_id")
    )
    book = RateBook(tenant)
    totals = {month: ZERO for month in months_between(first, last)}
    invoices: dict[date, set] = {month: set() for month in totals}
    for period_start, currency, amount, invoice_id in rows:
        month = month_start(period_start)
        totals[month] += book.convert(amount, currency, month_end(month))
        invoices[month].add(invoice_id)
    return {
        month: {"month": month, "usage_revenue": total, "invoices": len(invoices[month])}
        for month, total in totals.items()
    }
