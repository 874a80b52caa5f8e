"""Cost to serve and revenue per customer and month, set-wise in SQL.

Token usage: any usage event of the tenant whose ``properties`` carry ``model`` is an AI call:
``provider``, ``model``, ``input_tokens``, ``output_tokens`` and optionally ``task_type`` (or
``feature``, which wins) name the product feature. Its cost is
``input_tokens × input price + output_tokens × output price`` per million, at the tenant's
``ModelPrice`` for that provider and model with the latest ``effective_on`` on or before the
event's day (tenant time zone). The calls are read from ``AiUsageDay``, the database's running
sum of them per customer, day, provider, model and feature (token counts that are not whole
numbers count 0), so the price lookup runs once per group and no event is read. Calls without a price are counted as
``unpriced_calls`` and cost nothing: the dashboards show them rather than guess.

Entered costs: ``CustomerCost`` rows (entered or imported) add to the month's cost.

Revenue: the net (before VAT) of the customer's finalized or paid invoices whose period starts in
the month, less the net of credit notes issued against them, converted to the reporting currency
at the rate of the month's last day. A recurring fee billed for several months at once (a contract
billed quarterly, semi-annually or annually) is earned over those months: its line is spread evenly
over them in the invoice currency's minor units, the first month taking the remainder, so a year paid up front in March counts a
twelfth in each month from March to February. Exact Decimals throughout; token cost is rounded once per
customer and month to the reporting currency's minor unit (half up; ``customers.money``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_DOWN, Decimal

from django.db.models import F, Sum

from billing.models import AiUsageDay, CreditNote, Invoice, InvoiceLine
from customers.models import BillingInterval, ContractLine, Tenant
from customers.money import money_round
from customers.periods import add_months, month_end, month_start
from customers.tenancy import tenant_cursor
from revenue.models import CustomerCost, ModelPrice
from revenue.selectors.common import RateBook

ZERO = Decimal(0)
MILLION = Decimal(1_000_000)
BILLED = [Invoice.Status.FINALIZED, Invoice.Status.PAID]
MAX_INTERVAL = max(BillingInterval.values)  # months a recurring fee can be billed for at once
RECURRING_KINDS = [ContractLine.Kind.RECURRING, ContractLine.Kind.PER_SEAT]


@dataclass
class CostRow:
    """One customer's cost to serve in one month (reporting currency)."""

    token_cost: Decimal = ZERO
    other_cost: Decimal = ZERO
    calls: int = 0
    unpriced_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    features: dict = field(default_factory=dict)  # feature -> {"calls", "cost"}

    @property
    def total(self) -> Decimal:
        return self.token_cost + self.other_cost


TOKEN_COST_SQL = f"""
WITH grouped AS (
    SELECT e.customer_id, e.day, e.provider, e.model, e.feature, e.calls, e.input_tokens, e.output_tokens
    FROM {AiUsageDay._meta.db_table} e
    WHERE e.tenant_id = %(tenant)s AND e.day >= %(first_day)s AND e.day <= %(last_day)s CUSTOMER_FILTER
)
SELECT g.customer_id, date_trunc('month', g.day)::date AS month, g.feature,
       SUM(g.calls), SUM(g.input_tokens), SUM(g.output_tokens),
       SUM(CASE WHEN p.input_price_per_million IS NULL THEN 0
                ELSE g.input_tokens * p.input_price_per_million + g.output_tokens * p.output_price_per_million END),
       SUM(CASE WHEN p.input_price_per_million IS NULL THEN g.calls ELSE 0 END)
FROM grouped g
LEFT JOIN LATERAL (
    SELECT mp.input_price_per_million, mp.output_price_per_million
    FROM {ModelPrice._meta.db_table} mp
    WHERE mp.tenant_id = %(tenant)s AND mp.provider = g.provider AND mp.model = g.model AND mp.effective_on <= g.day
    ORDER BY mp.effective_on DESC LIMIT 1
) p ON true
GROUP BY 1, 2, 3
"""


def cost_to_serve(
    *, tenant: Tenant, first: date, last: date, customer_ids: list[int] | None = None
) -> dict[tuple[int, date], CostRow]:
    """Each customer's cost to serve per month from ``first`` to ``last`` (month starts, inclusive).

    ``{(customer_id, month): CostRow}`` in the reporting currency: token cost (rounded half up to the currency's minor unit per
    customer and month) with calls, tokens, unpriced calls and a per-feature split, plus entered or
    imported ``CustomerCost``. Pairs without usage or entered cost are absent. One query for tokens,
    one for entered costs.
    """
    params = {"tenant": tenant.pk, "first_day": month_start(first), "last_day": month_end(last)}
    customer_filter = ""
    if customer_ids is not None:
        customer_filter = "AND e.customer_id = ANY(%(customers)s)"
        params["customers"] = list(customer_ids)
    rows: dict[tuple[int, date], CostRow] = defaultdict(CostRow)
    exact: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    with tenant_cursor(tenant) as cursor:
        cursor.execute(TOKEN_COST_SQL.replace("CUSTOMER_FILTER", customer_filter), params)
        for customer_id, month, feature, calls, tokens_in, tokens_out, cost, unpriced in cursor.fetchall():
            row = rows[(customer_id, month)]
            cost = cost / MILLION
            exact[(customer_id, month)] += cost
            row.calls += int(calls)
            row.unpriced_calls += int(unpriced)
            row.input_tokens += int(tokens_in)
            row.output_tokens += int(tokens_out)
            row.features[feature] = {"calls": int(calls), "cost": cost}
    for key, cost in exact.items():
        rows[key].token_cost = money_round(cost, tenant.reporting_currency)
    entered = CustomerCost.objects.for_tenant(tenant).filter(month__gte=month_start(first), month__lte=month_start(last))
    if customer_ids is not None:
        entered = entered.filter(customer_id__in=customer_ids)
    for customer_id, month, amount in entered.values_list("customer_id", "month").annotate(s=Sum("amount")):
        rows[(customer_id, month)].other_cost += amount
    return dict(rows)


def revenue_by_customer_month(
    *, tenant: Tenant, first: date, last: date, customer_ids: list[int] | None = None
) -> dict[tuple[int, date], Decimal]:
    """Net revenue earned per customer and month from billed invoices, in the reporting currency;
    fees billed for several months spread over them (see the module docstring).

    Raises MissingExchangeRate when a foreign-currency invoice has no rate on its month's last day.
    """
    invoices = Invoice.objects.for_tenant(tenant).filter(
        status__in=BILLED, period_start__gte=month_start(first), period_start__lte=month_end(last)
    )
    credits = CreditNote.objects.for_tenant(tenant).filter(
        invoice__status__in=BILLED,
        invoice__period_start__gte=month_start(first),
        invoice__period_start__lte=month_end(last),
    )
    if customer_ids is not None:
        invoices = invoices.filter(customer_id__in=customer_ids)
        credits = credits.filter(customer_id__in=customer_ids)
    book = RateBook(tenant)
    revenue: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    first, last = month_start(first), month_start(last)

    def earn(customer_id: int, month: date, currency: str, amount: Decimal) -> None:
        if first <= month <= last:
            revenue[(customer_id, month)] += book.convert(amount, currency, month_end(month))

    for customer_id, period_start, currency, net in (
        invoices.values_list("customer_id", "period_start", "currency").annotate(net=Sum(F("total") - F("vat_amount")))
    ):
        earn(customer_id, month_start(period_start), currency, net)
    spread = InvoiceLine.objects.for_tenant(tenant).filter(
        invoice__status__in=BILLED, invoice__period_start__gte=add_months(first, 1 - MAX_INTERVAL),
        invoice__period_start__lte=month_end(last), contract_line__contract__billing_interval__gt=1,
        contract_line__kind__in=RECURRING_KINDS,
    )
    if customer_ids is not None:
        spread = spread.filter(invoice__customer_id__in=customer_ids)
    for customer_id, period_start, currency, months, amount in spread.values_list(
        "invoice__customer_id", "invoice__period_start", "invoice__currency", "contract_line__contract__billing_interval",
        "amount",
    ):
        month = month_start(period_start)
        share = money_round(amount / months, currency, ROUND_DOWN)  # toward zero, discounts too
        earn(customer_id, month, currency, -share * (months - 1))  # the invoice month keeps one share and the rest
        for later in range(1, months):
            earn(customer_id, add_months(month, later), currency, share)
    for customer_id, period_start, currency, net in (
        credits.values_list("customer_id", "invoice__period_start", "currency").annotate(net=Sum("subtotal"))
    ):
        month = month_start(period_start)
        revenue[(customer_id, month)] -= book.convert(net, currency, month_end(month))
    return dict(revenue)
