"""Pricing what-ifs: the last N closed months of every customer's real usage, re-priced under other plans.

**Actual**: each month is priced by ``billing.services.price_period``, the pricing behind the
month-end draft run, so for months whose contracts and usage have not changed since they were
invoiced it equals the finalized invoices to the cent (``billed``, the net of the finalized or paid
invoices whose period starts in the month, beside it).

**Alternatives**: every ``PricePlan`` of the tenant's catalog (or those asked for) is priced for
each customer billed in the month, as one contract line of the plan, by the same line pricing the
draft run applies to a contract line (``billing.services.price_line``: base fee prorated to the
days the customer's fee or usage lines ran in the period, the plan's charge model on the customer's usage of its
metric from ``usage_totals``, failed-unit credits, utilisation discounts, minimum commitment),
then the tenant's minimum invoice amount. A plan applies to the customers invoiced in its
currency; the others are counted as ``not_applicable``.

Figures are net (before VAT), per customer and month in the customer's currency, rounded as
invoiced, then converted to the reporting currency at the month's last day and summed.
``margin`` = revenue − cost to serve (``revenue.economics.costs``). A customer *pays more* under a
plan when its revenue from them exceeds the actual re-pricing. ``pricing_whatif`` writes nothing;
the staff page's what-ifs run on a worker and keep the figures the page shows in ``WhatIfRun``
(``whatif_run_request``, ``whatif_run_compute``).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from billing import pricing
from billing import services as billing_services
from billing.metering import usage_totals
from billing.models import BillableMetric, BillingSettings, ChargeModel, Invoice, PriceTerms
from billing.models.invoicing import PER_EVENT_KEYS
from billing.selectors import metric_event_amounts
from customers.models import Contract, ContractLine, Customer, Tenant
from customers.money import Money
from customers.periods import add_months, last_closed_month, month_end, months_between
from revenue.economics.costs import BILLED, ZERO, cost_to_serve
from revenue.models import PricePlan, WhatIfRun
from revenue.selectors.common import MetricError, MissingExchangeRate, RateBook

ACTUAL = "actual"
MAX_MONTHS = 24


@dataclass
class _PlanPricer:
    """One plan as an in-memory contract line with price terms, priced like a real one."""

    plan: PricePlan
    parsed: dict
    contracts: dict  # (start, end) -> unsaved Contract

    def line_for(self, start: date, end: date | None) -> tuple[ContractLine, Contract]:
        key = (start, end)
        if key not in self.contracts:
            plan = self.plan
            contract = Contract(tenant_id=plan.tenant_id, currency=plan.currency, start_date=start, end_date=end,
                                billing_interval=1, status=Contract.Status.ACTIVE)
            line = ContractLine(tenant_id=plan.tenant_id, description=plan.name, kind=ContractLine.Kind.RECURRING,
                                quantity=Decimal(1), unit_price=Money(plan.base_fee, plan.currency), starts_on=start)
            line.contract = contract
            terms = PriceTerms(tenant_id=plan.tenant_id, charge_model=plan.charge_model, metric=plan.metric,
                               terms=plan.terms)
            terms.pk = -plan.pk  # a key for the parsed terms only; never saved
            line.price_terms = terms
            self.contracts[key] = (line, contract)
        return self.contracts[key]


def _parsed(plan: PricePlan) -> dict:
    parsed = plan.parsed_terms()
    # The plan's own unit price is the default per-unit / per-package price, as a usage line's is.
    if plan.charge_model == ChargeModel.PER_UNIT:
        parsed.setdefault("unit_price", plan.unit_price)
    if plan.charge_model == ChargeModel.PACKAGE:
        parsed.setdefault("package_price", plan.unit_price)
    return parsed


def _settings(tenant: Tenant) -> BillingSettings:
    return BillingSettings.objects.for_tenant(tenant).first() or BillingSettings(tenant=tenant)


def _spans(tenant: Tenant, first: date, last: date, customer_ids) -> dict[int, tuple[date, date | None]]:
    """Each customer's billed span: the earliest day and the latest (None: open) on which one of their
    fee or usage lines runs inside its contract, over the lines that touch ``first``..``last``."""
    rows = ContractLine.objects.for_tenant(tenant).filter(
        contract__status__in=billing_services.BILLED_CONTRACT_STATUSES, starts_on__lte=last,
        kind__in=[ContractLine.Kind.RECURRING, ContractLine.Kind.PER_SEAT, ContractLine.Kind.USAGE],
    ).filter(Q(ends_on__isnull=True) | Q(ends_on__gte=first))
    if customer_ids is not None:
        rows = rows.filter(contract__customer_id__in=customer_ids)
    spans: dict[int, tuple[date, date | None]] = {}
    for customer_id, starts_on, ends_on, contract_start, contract_end in rows.values_list(
        "contract__customer_id", "starts_on", "ends_on", "contract__start_date", "contract__end_date"
    ):
        start = max(starts_on, contract_start)
        ends = [d for d in (ends_on, contract_end) if d is not None]
        end = min(ends) if ends else None
        if customer_id in spans:
            known_start, known_end = spans[customer_id]
            start = min(start, known_start)
            end = None if end is None or known_end is None else max(end, known_end)
        spans[customer_id] = (start, end)
    return spans


def _billed(tenant: Tenant, first: date, last: date, customer_ids) -> dict[tuple[int, date], tuple[str, Decimal]]:
    rows = Invoice.objects.for_tenant(tenant).filter(
        status__in=BILLED, period_start__gte=first, period_start__lte=month_end(last)
    )
    if customer_ids is not None:
        rows = rows.filter(customer_id__in=customer_ids)
    billed = {}
    for customer_id, start, currency, net in rows.values_list("customer_id", "period_start", "currency").annotate(
        net=Sum(F("total") - F("vat_amount"))
    ):
        billed[(customer_id, start.replace(day=1))] = (currency, net)
    return billed


def price_plan_month(
    *, pricer: _PlanPricer, customer_id: int, ctx, span: tuple[date, date | None], minimum: Decimal
) -> list[pricing.Line]:
    """The lines the plan gives one customer in ``ctx``'s period, as the draft run would price them."""
    currency = pricer.plan.currency
    line, contract = pricer.line_for(*span)
    base, rest = billing_services.price_line(line, contract, customer_id, True, ctx, currency)
    lines = base + rest
    if minimum > 0:
        lines += pricing.minimum_charge(lines, minimum=minimum, currency=currency, description="Minimum charge")
    return lines


@dataclass
class _MonthJob:
    """Prices one month: the actual contracts through ``price_period`` and every plan per customer.

    Returns (actual net per customer, {plan code: net per customer}, currency per customer,
    problems), in each customer's currency. Plan prices are memoized on what they depend on (the
    proration, i.e. the month and contract span unless the contract covers the whole month, and
    the quantities of the plan's metrics), so the same usage is priced once; per-event percentage
    plans depend on each event and are memoized per customer and month only.
    """

    tenant: Tenant
    pricers: list
    settings: BillingSettings
    spans: dict
    metrics: dict
    per_event: set
    customer_ids: list | None
    memo: dict = field(default_factory=dict)

    def __call__(self, month: date):
        tenant, end = self.tenant, month_end(month)
        priced = billing_services.price_period(
            tenant=tenant, period_start=month, period_end=end, settings=self.settings, customer_ids=self.customer_ids
        )
        problems = [f"{month:%Y-%m}: {p}" for p in priced.problems]
        actual, currencies = {}, {}
        by_plan: dict[str, dict[int, Decimal]] = {pr.plan.code: {} for pr in self.pricers}
        if not priced.drafts:
            return actual, by_plan, currencies, problems
        usage = usage_totals(tenant=tenant, period_start=month, period_end=end, customer_ids=self.customer_ids)
        ctx = billing_services.PricingContext(
            tenant=tenant, period=billing_services.Period(month, end), usage=usage,
            event_amounts={code: metric_event_amounts(tenant=tenant, metric=self.metrics[code], period_start=month,
                                                      period_end=end) for code in self.per_event},
            metrics=self.metrics, terms={-pr.plan.pk: pr.parsed for pr in self.pricers},
        )
        minimum = self.settings.minimum_invoice_amount
        memo = self.memo
        for customer_id, draft in priced.drafts.items():
            currency = draft.customer.currency
            currencies[customer_id] = currency
            actual[customer_id] = draft.subtotal - draft.discount_total
            span = self.spans.get(customer_id, (month, None))
            # A contract covering the whole month is priced alike in every month: one memo entry for all.
            whole = span[0] <= month and (span[1] is None or span[1] >= end)
            when = "whole month" if whole else (month, span)
            for pricer in self.pricers:
                plan = pricer.plan
                if plan.currency != currency:
                    continue
                failed = pricer.parsed.get("failed_metric")
                key = (plan.code, when, usage.get((customer_id, plan.metric)), usage.get((customer_id, failed)),
                       (customer_id, month) if plan.metric in self.per_event else None)
                if key not in memo:
                    try:
                        memo[key] = pricing.total(price_plan_month(
                            pricer=pricer, customer_id=customer_id, ctx=ctx, span=span, minimum=minimum))
                    except pricing.PricingError as exc:
                        problems.append(f"{month:%Y-%m} {plan.code} for customer {customer_id}: {exc}")
                        continue
                by_plan[plan.code][customer_id] = memo[key]
        return actual, by_plan, currencies, problems


def pricing_whatif(
    *,
    tenant: Tenant,
    months: int = 3,
    plan_codes: list[str] | None = None,
    last: date | None = None,
    customer_ids: list[int] | None = None,
) -> dict:
    """Re-price the last ``months`` closed months (ending with ``last``) under the actual contracts
    and the catalog's plans (``plan_codes``: only those), per customer and in total.

    Returns ``{"currency", "from", "to", "months", "plans": [{"code", "name", "currency", ...}],
    "totals": {code: {...}}, "billed", "customers": [...], "reconciliation", "problems"}``: per plan the revenue, cost,
    margin and margin rate over the customers it applies to, the actual re-pricing and what was
    billed for those same customers, the difference, and how many customers pay more, less or
    the same. ``customers`` holds per customer ``billed``, ``actual``, ``cost`` and per plan
    ``revenue``, ``margin`` and ``delta`` (plan − actual), reporting currency. ``reconciliation``
    compares the actual re-pricing with each billed customer-month (``matching`` of
    ``invoiced_months``; the first differences listed). Writes nothing.
    Raises MetricError for a bad ``months`` or an unknown plan code, MissingExchangeRate when a
    foreign-currency amount cannot be converted.
    """
    if not 1 <= months <= MAX_MONTHS:
        raise MetricError(f"months must be from 1 to {MAX_MONTHS}.")
    last = last or last_closed_month(tenant)
    first = add_months(last, -(months - 1))
    window = months_between(first, last)
    plans = list(PricePlan.objects.for_tenant(tenant).order_by("code"))
    if plan_codes is not None:
        unknown = sorted(set(plan_codes) - {p.code for p in plans})
        if unknown:
            raise MetricError(f"No price plan {', '.join(unknown)} in the catalog.")
        plans = [p for p in plans if p.code in plan_codes]
    pricers = [_PlanPricer(plan=p, parsed=_parsed(p), contracts={}) for p in plans]
    settings = _settings(tenant)
    book = RateBook(tenant)
    spans = _spans(tenant, first, month_end(last), customer_ids)
    metric_codes = {p.metric for p in plans if p.metric} | {
        pr.parsed["failed_metric"] for pr in pricers if pr.parsed.get("failed_metric")
    }
    metrics = {m.code: m for m in BillableMetric.objects.for_tenant(tenant).filter(code__in=metric_codes)}
    per_event = {pr.plan.metric for pr in pricers if pr.plan.charge_model == ChargeModel.PERCENTAGE
                 and PER_EVENT_KEYS & pr.parsed.keys() and pr.plan.metric in metrics}

    job = _MonthJob(tenant=tenant, pricers=pricers, settings=settings, spans=spans, metrics=metrics,
                    per_event=per_event, customer_ids=customer_ids)
    months_priced = [job(month) for month in window]

    actual: dict[tuple[int, date], Decimal] = {}
    by_plan: dict[str, dict[tuple[int, date], Decimal]] = {p.code: {} for p in plans}
    currencies: dict[int, str] = {}
    problems: list[str] = []
    for month, (month_actual, month_plans, month_currencies, month_problems) in zip(window, months_priced, strict=True):
        end = month_end(month)
        problems += month_problems
        currencies.update(month_currencies)
        for customer_id, amount in month_actual.items():
            actual[(customer_id, month)] = amount * book.rate(month_currencies[customer_id], end)
        for code, amounts in month_plans.items():
            for customer_id, amount in amounts.items():
                by_plan[code][(customer_id, month)] = amount * book.rate(month_currencies[customer_id], end)

    billed = {key: net * book.rate(currency, month_end(key[1]))
              for key, (currency, net) in _billed(tenant, first, last, customer_ids).items()}
    costs = {key: row.total for key, row in cost_to_serve(tenant=tenant, first=first, last=last,
                                                           customer_ids=customer_ids).items()}
    result = _summarize(tenant, first, last, window, plans, actual, by_plan, billed, costs, currencies, problems)
    differences = [
        {"customer_id": customer_id, "month": month, "billed": amount, "actual": actual.get((customer_id, month))}
        for (customer_id, month), amount in sorted(billed.items()) if actual.get((customer_id, month)) != amount
    ]
    result["reconciliation"] = {"invoiced_months": len(billed), "matching": len(billed) - len(differences),
                                "differences": differences[:20]}
    return result


def _sum_by_customer(figures: dict[tuple[int, date], Decimal]) -> dict[int, Decimal]:
    result: dict[int, Decimal] = defaultdict(Decimal)
    for (customer_id, _), amount in figures.items():
        result[customer_id] += amount
    return result


def _summarize(tenant, first, last, window, plans, actual, by_plan, billed, costs, currencies, problems) -> dict:
    actual_c, billed_c = _sum_by_customer(actual), _sum_by_customer(billed)
    # Cost counts in the months the customer was billed: a plan changes revenue, not the cost to serve.
    cost_c = _sum_by_customer({k: v for k, v in costs.items() if k in actual})
    plan_c = {code: _sum_by_customer(figures) for code, figures in by_plan.items()}
    ids = sorted(actual_c)
    names = dict(Customer.objects.for_tenant(tenant).filter(pk__in=ids).values_list("pk", "name"))
    customers = []
    for customer_id in ids:
        row = {"customer_id": customer_id, "customer": names.get(customer_id, str(customer_id)),
               "currency": currencies[customer_id], "billed": billed_c.get(customer_id, ZERO),
               "actual": actual_c[customer_id], "cost": cost_c.get(customer_id, ZERO), "plans": {}}
        for code, revenue in plan_c.items():
            if customer_id in revenue:
                row["plans"][code] = {"revenue": revenue[customer_id], "margin": revenue[customer_id] - row["cost"],
                                      "delta": revenue[customer_id] - row["actual"]}
        customers.append(row)

    def totals(revenue_by_customer: dict[int, Decimal], code: str) -> dict:
        applies = set(revenue_by_customer)
        revenue = sum(revenue_by_customer.values(), ZERO)
        cost = sum((cost_c.get(c, ZERO) for c in applies), ZERO)
        same_actual = sum((actual_c[c] for c in applies), ZERO)
        deltas = [revenue_by_customer[c] - actual_c[c] for c in applies]
        return {
            "revenue": revenue, "cost": cost, "margin": revenue - cost,
            "margin_rate": (revenue - cost) / revenue if revenue > 0 else None,
            "actual": same_actual, "billed": sum((billed_c.get(c, ZERO) for c in applies), ZERO),
            "delta": revenue - same_actual, "customers": len(applies), "not_applicable": len(ids) - len(applies),
            "pay_more": sum(1 for d in deltas if d > 0), "pay_less": sum(1 for d in deltas if d < 0),
            "pay_same": sum(1 for d in deltas if d == 0),
        }

    summary = {ACTUAL: totals(actual_c, ACTUAL)}
    for code, revenue in plan_c.items():
        summary[code] = totals(revenue, code)
    return {
        "currency": tenant.reporting_currency, "from": first, "to": last, "months": len(window),
        "plans": [{"code": ACTUAL, "name": "Actual contracts", "currency": "", "charge_model": "", "base_fee": None}]
        + [{"code": p.code, "name": p.name, "currency": p.currency, "charge_model": p.charge_model,
            "base_fee": p.base_fee} for p in plans],
        "totals": summary,
        "billed": sum(billed_c.get(c, ZERO) for c in ids) if ids else ZERO,
        "customers": customers,
        "problems": problems,
    }


def movers(result: dict, code: str, limit: int = 10) -> dict:
    """The customers who would pay the most more and the most less under plan ``code``."""
    rows = [
        {"customer_id": r["customer_id"], "customer": r["customer"], "actual": r["actual"], **r["plans"][code]}
        for r in result["customers"] if code in r["plans"]
    ]
    rows.sort(key=lambda r: (-r["delta"], r["customer"]))
    return {"pay_more": [r for r in rows if r["delta"] > 0][:limit],
            "pay_less": [r for r in reversed(rows) if r["delta"] < 0][:limit]}


# --- the staff page's what-ifs, computed by a worker -------------------------------------------

logger = logging.getLogger(__name__)
PAGE_MOVERS = 5
STALE_AFTER = timedelta(minutes=15)  # a run queued or computing longer than this has lost its worker


def whatif_page_figures(result: dict, limit: int = PAGE_MOVERS) -> dict:
    """What the staff page shows of a what-if: all but the per-customer rows, and per plan its
    totals and the ``limit`` customers who would pay the most more and the most less."""
    rows = [{"plan": plan, "totals": result["totals"][plan["code"]],
             "movers": movers(result, plan["code"], limit) if plan["code"] != ACTUAL else None}
            for plan in result["plans"]]
    return {"whatif": {k: v for k, v in result.items() if k != "customers"}, "rows": rows}


def whatif_run_request(*, tenant: Tenant, months: int, user=None) -> WhatIfRun:
    """Ask a worker for the what-if of the last ``months`` closed months (queued on commit; run
    in-process when no broker is configured). Raises MetricError for a bad ``months``."""
    from revenue import tasks

    if not 1 <= months <= MAX_MONTHS:
        raise MetricError(f"months must be from 1 to {MAX_MONTHS}.")
    run = WhatIfRun.objects.for_tenant(tenant).create(tenant=tenant, months=months, requested_by=user)
    transaction.on_commit(lambda: tasks.whatif_compute.delay(tenant.pk, run.pk))
    return run


def whatif_run_compute(*, run: WhatIfRun) -> WhatIfRun:
    """Compute ``run`` (``pricing_whatif`` of its months, ending with the last closed month) and keep
    the page's figures, or why it could not be computed. Never raises for a bad run: it fails."""
    started = time.perf_counter()
    WhatIfRun.objects.for_tenant(run.tenant).filter(pk=run.pk).update(status=WhatIfRun.Status.RUNNING)
    try:
        run.figures = whatif_page_figures(pricing_whatif(tenant=run.tenant, months=run.months))
        run.status = WhatIfRun.Status.DONE
    except (MetricError, MissingExchangeRate) as exc:
        run.status, run.error = WhatIfRun.Status.FAILED, str(exc)
    except Exception:
        logger.exception("what-if run %s failed", run.pk)
        run.status, run.error = WhatIfRun.Status.FAILED, "An unexpected error stopped the computation; it is logged."
    run.finished_at = timezone.now()
    run.seconds = Decimal(f"{time.perf_counter() - started:.2f}")
    run.save(update_fields=["status", "figures", "error", "finished_at", "seconds"])
    return run


def whatif_latest(*, tenant: Tenant, months: int) -> WhatIfRun | None:
    """The tenant's newest what-if over ``months`` months, whatever its state."""
    return WhatIfRun.objects.for_tenant(tenant).filter(months=months).order_by("-created_at", "-id").first()


def whatif_is_stale(run: WhatIfRun, now=None) -> bool:
    """Queued or computing for longer than ``STALE_AFTER``: its worker is gone; ask again."""
    return run.is_working and run.created_at < (now or timezone.now()) - STALE_AFTER
