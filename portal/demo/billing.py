"""Billing data for a demo tenant: metrics, price terms, usage, six closed months of invoices, credits.

Everything goes through the billing services as production does: metrics and price terms are
validated, usage arrives through ``usage_ingest`` (in batches, idempotency keys and all), each
closed month is a real month-end ``BillingRun`` started by the tenant's finance login (drafted,
finalized and numbered by ``billing.month_end`` in-process, dated the day after the month); the
last ``DELIVERED_MONTHS`` runs also render every PDF and email every invoice as the worker does
(the older ones went out before the demo existed: their PDFs are rendered on first download, which
keeps ``demo_load`` fast) and the current month is left as drafts that move with the usage. A contract billed a year (or a quarter)
at a time whose current term began before those months has that term's invoice issued too, so
what it paid for is on record. Credits are requested and approved by
the tenant's own staff logins.

Customers about to leave behave like it (``months_to_churn``): in their last two months with MRR
they use less (``usage_factor``) and their last invoices are paid late, which is what the churn-risk
score (``revenue.economics.churn_risk``) reads and what its back-test on the demo checks.

What differs per tenant (its metrics, how a usage line is priced, what its customers use, the
words of its credits) lives in the tenant's module as ``METRICS``, ``MINIMUM_INVOICE_AMOUNT``,
``PAYMENT_DETAILS`` (bankgiro + OCR, or IBAN: printed on the invoices), ``usage_terms(line)``, ``usage_events(ctx, month)`` and ``CREDITS``; a module may also add
contracts first with ``billing_contracts(ctx)``.
"""

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing.metering import MAX_BATCH_EVENTS, usage_ingest, usage_store
from billing.models import BillableMetric, BillingRun, BillingRunItem, Invoice
from billing.month_end import billing_run_process_items, billing_run_start
from billing.services import (
    billing_payment_details_set,
    billing_settings_for,
    credit_approver_roles,
    credit_request_approve,
    credit_request_create,
    invoice_compute_drafts,
    invoice_finalize,
    invoice_mark_paid,
    price_terms_set,
)
from customers.models import Contract, ContractLine, Customer, Membership, Role
from customers.periods import add_months, month_end, month_start
from portal.demo.common import DemoContext
from revenue.selectors.mrr import customer_mrr_range

INVOICED_MONTHS = 6  # closed months with issued invoices; the current month stays a draft
DELIVERED_MONTHS = 1  # of those, the latest ones whose month-end run renders PDFs and emails them
CENT = Decimal("0.01")
# Share of its usual usage a customer still uses in its last month with MRR (1) and the one before (2).
PRE_CHURN_USAGE = {1: (0.2, 0.45), 2: (0.5, 0.75)}
LATE_BEFORE_CHURN = 3  # invoices of the last three months before a churn are paid 20 to 75 days late
LATE_DAYS = (20, 75)


@dataclass(frozen=True)
class Month:
    """A billing month of the demo: its first day and the last day with usage (today, this month)."""

    first: date
    last: date

    @property
    def closed(self) -> bool:
        return self.last == month_end(self.first)

    @property
    def elapsed(self) -> Decimal:
        """The share of the month that has happened (1 for a closed month)."""
        return Decimal(self.last.day) / Decimal(month_end(self.first).day)

    def key(self) -> str:
        return f"{self.first:%Y-%m}"


def billing_months(today: date) -> list[Month]:
    """The closed months to invoice, oldest first, then the current month up to ``today``."""
    months = [Month(add_months(today, -n), month_end(add_months(today, -n))) for n in range(INVOICED_MONTHS, 0, -1)]
    return months + [Month(month_start(today), today)]


@dataclass(frozen=True)
class Credits:
    """A tenant's credit stories, in its customers' language: (reason, amount) each."""

    credit_note: str  # on an issued invoice: approved at once, becomes the tenant's credit note
    credit_note_share: Decimal  # of that invoice's net amount
    balance: tuple[str, Decimal]  # approved, taken off the customer's next invoice
    pending: tuple[str, Decimal]  # waiting for a manager's or director's approval


def metrics_ensure(tenant, specs: list[dict]) -> list[BillableMetric]:
    """Create the tenant's billable metrics that do not exist yet (validated); return all of ``specs``'."""
    existing = {m.code: m for m in BillableMetric.objects.for_tenant(tenant)}
    metrics = []
    for spec in specs:
        metric = existing.get(spec["code"])
        if metric is None:
            metric = BillableMetric(tenant=tenant, **spec)
            metric.full_clean()
            metric.save()
        metrics.append(metric)
    return metrics


def price_terms_attach(tenant, usage_terms) -> int:
    """Price every usage line of the tenant that has no terms yet; ``usage_terms(line)`` gives
    ``{"charge_model", "metric", "terms"}``. Returns how many lines got terms."""
    lines = (
        ContractLine.objects.for_tenant(tenant)
        .filter(kind=ContractLine.Kind.USAGE, price_terms__isnull=True)
        .select_related("contract")
        .order_by("id")
    )
    count = 0
    for line in lines:
        price_terms_set(contract_line=line, **usage_terms(line))
        count += 1
    return count


def usage_send(tenant, events: list[dict]) -> int:
    """Ingest ``events`` in API-sized batches; returns how many were accepted. A rejected event is a
    bug in the demo, so it raises.

    The demo bills what it loads within one transaction per tenant, so a store that writes after
    the commit (ClickHouse) is told to write now (``pending_flush``; PostgreSQL: nothing to do)."""
    accepted = 0
    for offset in range(0, len(events), MAX_BATCH_EVENTS):
        result = usage_ingest(tenant=tenant, events=events[offset : offset + MAX_BATCH_EVENTS])
        if result.rejected:
            reasons = {r.reason for r in result.results if r.status == "rejected"}
            raise RuntimeError(f"The demo's usage was refused for {tenant.slug}: {sorted(reasons)}")
        accepted += result.accepted
    usage_store().pending_flush(tenant=tenant)
    return accepted


def lines_active_in(tenant, month: Month, *, kinds) -> dict[int, list[ContractLine]]:
    """Each customer's contract lines of ``kinds`` billed in ``month``, oldest version first."""
    rows = (
        ContractLine.objects.for_tenant(tenant)
        .filter(kind__in=kinds, starts_on__lte=month.last, contract__start_date__lte=month.last)
        .exclude(ends_on__lt=month.first)
        .exclude(contract__end_date__lt=month.first)
        .exclude(contract__status__in=["draft"])
        .select_related("contract", "contract__customer")
        .order_by("contract__customer_id", "starts_on", "id")
    )
    by_customer: dict[int, list[ContractLine]] = {}
    for line in rows:
        by_customer.setdefault(line.contract.customer_id, []).append(line)
    return by_customer


def active_days_share(line: ContractLine, month: Month) -> Decimal:
    """The share of ``month`` (up to its last usage day) that the line was billed."""
    first = max(month.first, line.starts_on, line.contract.start_date)
    ends = [d for d in (line.ends_on, line.contract.end_date, month.last) if d is not None]
    days = (min(ends) - first).days + 1
    return max(Decimal(0), Decimal(days) / Decimal(month_end(month.first).day))


def months_to_churn(ctx: DemoContext, customer_id: int, month: date) -> int | None:
    """In how many months the customer churns after ``month`` (1: ``month`` is its last with MRR),
    if it has MRR at the end of ``month`` and loses it within ``LATE_BEFORE_CHURN`` months; else None.
    Read from the contracts as the revenue metrics read them (``customer_mrr_range``), once per build."""
    first = add_months(ctx.today, -INVOICED_MONTHS)
    if "mrr_by_month" not in ctx.memo:
        ctx.memo["mrr_by_month"] = customer_mrr_range(
            tenant=ctx.tenant, first=first, last=add_months(ctx.today, LATE_BEFORE_CHURN)
        )
    mrr = ctx.memo["mrr_by_month"]
    if customer_id not in mrr.get(month_start(month), {}):
        return None
    for ahead in range(1, LATE_BEFORE_CHURN + 1):
        if customer_id not in mrr[add_months(month, ahead)]:
            return ahead
    return None


def usage_factor(ctx: DemoContext, customer_id: int, month: date) -> Decimal:
    """How much of its usual usage the customer has in ``month``: less in its last two months."""
    low_high = PRE_CHURN_USAGE.get(months_to_churn(ctx, customer_id, month))
    return Decimal(f"{ctx.rng.uniform(*low_high):.2f}") if low_high else Decimal(1)


def _staff(tenant, role: str):
    membership = (
        Membership.objects.for_tenant(tenant)
        .filter(role=role, user__username__startswith=f"{tenant.slug}-")
        .select_related("user")
        .order_by("user_id")
        .first()
    )
    return membership.user


def _approver(tenant, amount: Decimal, currency: str):
    allowed = credit_approver_roles(tenant=tenant, amount=amount, currency=currency)
    return _staff(tenant, Role.FINANCE if Role.FINANCE in allowed else Role.OWNER)


def _invoice_month(ctx: DemoContext, month: Month, only: set[int] | None = None) -> None:
    """Draft, then number every draft of the customers in ``only`` (the others' drafts are dropped)
    on the first day after the month; payments as they came. For terms billed before the demo's
    closed months, which have no month-end run of their own."""
    tenant = ctx.tenant
    invoice_compute_drafts(tenant=tenant, period_start=month.first, period_end=month.last)
    issue_date = month.last + timedelta(days=1)
    drafts = Invoice.objects.for_tenant(tenant).filter(period_start=month.first, status=Invoice.Status.DRAFT)
    if only is not None:
        drafts.exclude(customer_id__in=only).delete()
    for invoice in drafts.order_by("customer__name", "id"):
        invoice_finalize(invoice=invoice, issue_date=issue_date, deliver=False)
    _payments(ctx, month)


def _run_month(ctx: DemoContext, month: Month, *, deliver: bool) -> BillingRun:
    """The closed month's month-end run, as finance starts it and the worker works it (in-process):
    drafts, numbers dated the day after the month, PDFs and emails when ``deliver``; then payments."""
    tenant = ctx.tenant
    issue_date = month.last + timedelta(days=1)
    run = billing_run_start(
        tenant=tenant, period_start=month.first, finalize=True, started_by=_staff(tenant, Role.FINANCE), dispatch=False
    )
    item_ids = list(
        BillingRunItem.objects.for_tenant(tenant).filter(run=run).order_by("customer__name", "id").values_list("pk", flat=True)
    )
    billing_run_process_items(run=run, item_ids=item_ids, issue_date=issue_date, deliver=deliver)
    # The run happened on the morning after the month, not while the demo was loaded.
    at = datetime.combine(issue_date, time(6), tzinfo=ZoneInfo(tenant.time_zone))
    BillingRun.objects.for_tenant(tenant).filter(pk=run.pk).update(
        created_at=at, started_at=at, drafted_at=at, finalizing_at=at, finished_at=at, finalize_on=issue_date
    )
    _payments(ctx, month)
    return run


def _payments(ctx: DemoContext, month: Month) -> None:
    """The month's invoices paid as they came: on time, or late before a churn."""
    tenant = ctx.tenant
    issue_date = month.last + timedelta(days=1)
    issued = Invoice.objects.for_tenant(tenant).filter(period_start=month.first, status=Invoice.Status.FINALIZED)
    for invoice in issued.order_by("customer__name", "id"):
        if invoice.total == 0:
            paid_on = issue_date
        elif months_to_churn(ctx, invoice.customer_id, month.first) is not None:
            paid_on = invoice.due_date + timedelta(days=ctx.rng.randint(*LATE_DAYS))
        else:
            paid_on = issue_date + timedelta(days=ctx.rng.randint(2, tenant.payment_terms_days + 12))
        if paid_on < ctx.today:
            invoice_mark_paid(invoice=invoice, paid_at=ctx.moment(paid_on, hour=14))


def _earlier_terms(ctx: DemoContext, first_invoiced: date) -> dict[date, set[int]]:
    """Contracts billed for several months at once whose term running into ``first_invoiced`` was
    billed before it: {month of that bill: customers}, so their paid-up year is on record too."""
    due: dict[date, set[int]] = {}
    contracts = (
        Contract.objects.for_tenant(ctx.tenant)
        .filter(billing_interval__gt=1, start_date__lt=first_invoiced)
        .exclude(status=Contract.Status.DRAFT).exclude(end_date__lt=first_invoiced)
    )
    for contract in contracts:
        start = contract.start_date
        months_in = (first_invoiced.year - start.year) * 12 + first_invoiced.month - start.month
        if months_in % contract.billing_interval:  # the term did not start in the first invoiced month itself
            billed_in = add_months(start, months_in - months_in % contract.billing_interval)
            due.setdefault(billed_in, set()).add(contract.customer_id)
    return due


def _credits(ctx: DemoContext, credits: Credits, portal_customers: list[Customer], month: Month) -> None:
    """An approved credit on an issued invoice (the tenant's credit note), an approved balance credit
    and one waiting for approval, all asked for by the account manager."""
    tenant = ctx.tenant
    requester = _staff(tenant, Role.ACCOUNT_MANAGER)
    issued = (
        Invoice.objects.for_tenant(tenant)
        .filter(customer__in=portal_customers, period_start=month.first, total__gt=0)
        .order_by("-total", "id")
        .first()
    )
    if issued is not None:
        net = issued.total - issued.vat_amount
        amount = max(CENT, (net * credits.credit_note_share).quantize(Decimal(1)))
        request = credit_request_create(
            customer=issued.customer, invoice=issued, amount=amount, reason=credits.credit_note, requested_by=requester
        )
        credit_request_approve(credit_request=request, approver=_approver(tenant, amount, issued.currency))
    reason, amount = credits.balance
    customer = portal_customers[0]
    request = credit_request_create(customer=customer, amount=amount, reason=reason, requested_by=requester)
    credit_request_approve(credit_request=request, approver=_approver(tenant, amount, customer.currency))
    reason, amount = credits.pending
    credit_request_create(customer=portal_customers[-1], amount=amount, reason=reason, requested_by=requester)


def has_billing(tenant) -> bool:
    return BillableMetric.objects.for_tenant(tenant).exists()


def build(ctx: DemoContext, module, portal_refs: list[str]) -> dict[str, int]:
    """Give ``ctx.tenant`` its billing data (see the module docstring). Returns what it made."""
    tenant = ctx.tenant
    settings = billing_settings_for(tenant=tenant)
    if settings.minimum_invoice_amount != module.MINIMUM_INVOICE_AMOUNT:
        settings.minimum_invoice_amount = module.MINIMUM_INVOICE_AMOUNT
        settings.full_clean()
        settings.save(update_fields=["minimum_invoice_amount"])
    # Before any invoice is finalized: a bankgiro tenant's invoices get their OCR numbers then.
    billing_payment_details_set(tenant=tenant, **module.PAYMENT_DETAILS)
    metrics_ensure(tenant, module.METRICS)
    if hasattr(module, "billing_contracts"):
        module.billing_contracts(ctx)
    terms = price_terms_attach(tenant, module.usage_terms)
    months = billing_months(ctx.today)
    events = 0
    for month in months:
        events += usage_send(tenant, module.usage_events(ctx, month))
    for first, customers in sorted(_earlier_terms(ctx, months[0].first).items()):
        _invoice_month(ctx, Month(first, month_end(first)), only=customers)
    closed = months[:-1]
    for n, month in enumerate(closed):
        _run_month(ctx, month, deliver=n >= len(closed) - DELIVERED_MONTHS)
    found = Customer.objects.for_tenant(tenant).filter(external_ref__in=portal_refs)
    customers = sorted(found, key=lambda customer: portal_refs.index(customer.external_ref))
    _credits(ctx, module.CREDITS, customers, months[-2])
    current = months[-1]
    invoice_compute_drafts(tenant=tenant, period_start=current.first, period_end=month_end(current.first))
    return {"price terms": terms, "usage events": events}


def billing_rng(seed: int, slug: str) -> random.Random:
    """The billing data's own random source, so adding it leaves the rest of the demo as it was."""
    return random.Random(f"{seed}:{slug}:billing")

