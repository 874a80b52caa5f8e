"""Invoicing writes: draft runs, finalizing and numbering, voiding, payment, credit notes and credits.

Every service runs in one transaction and validates before it writes, so a refused call leaves
nothing behind. Money rules (DOMAIN.md): lines are priced by ``billing.pricing`` and each is
rounded to the currency's minor unit with ROUND_HALF_UP; invoice totals are sums of rounded lines;
VAT is rounded once on the net total. Decisions worth knowing:

- One invoice per customer and period, in the customer's currency; a customer whose contracts
  are in another currency is skipped and reported.
- Monthly lines are prorated by days. Lines of longer billing intervals are billed whole, in
  advance, in the period holding the interval's first day (contract start + k × interval).
- Usage is measured over the whole period. If several versions of a line price the same metric
  in one period (an upgrade), the usage goes to the latest version; each version keeps its
  prorated base fee. Included quotas are not prorated.
- Failed-job credits are the price difference with and without the failed units, so they are
  100 % of what those units cost (zero inside an included quota).
"""

import hashlib
import json
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import partial

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing import pricing
from billing.metering import usage_totals
from billing.models import (
    BillableMetric,
    BillingSettings,
    ChargeModel,
    CreditApplication,
    CreditAuditEntry,
    CreditNote,
    CreditNoteLine,
    CreditRequest,
    Invoice,
    InvoiceLine,
    NumberSequence,
    PriceTerms,
)
from billing.models.invoicing import PER_EVENT_KEYS
from billing.selectors import balance_credit_remaining, invoice_creditable_amount, metric_event_amounts, metric_totals
from billing.tasks import invoice_deliver
from customers.models import Contract, ContractLine, Customer, Membership, Role, Tenant
from customers.tenancy import tenant_scope

ZERO = Decimal(0)
BILLED_CONTRACT_STATUSES = [Contract.Status.ACTIVE, Contract.Status.CANCELLED, Contract.Status.ENDED]
RECURRING_KINDS = {ContractLine.Kind.RECURRING, ContractLine.Kind.PER_SEAT}
POSITIVE_KINDS = {pricing.LineKind.CHARGE, pricing.LineKind.ONE_TIME, pricing.LineKind.TRUE_UP}
EU_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)
REVERSE_CHARGE_NOTE = "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)."


def _save(obj):
    # Model validation looks up related rows and unique constraints through the scoped managers.
    with tenant_scope(obj.tenant):
        obj.full_clean()
    obj.save()
    return obj


def billing_settings_for(*, tenant: Tenant, lock: bool = False) -> BillingSettings:
    """The tenant's BillingSettings, created with defaults on first use; ``lock`` takes a row lock."""
    BillingSettings.objects.for_tenant(tenant).bulk_create([BillingSettings(tenant=tenant)], ignore_conflicts=True)
    rows = BillingSettings.objects.for_tenant(tenant)
    return (rows.select_for_update() if lock else rows).get()


# --- pricing one customer --------------------------------------------------------------------


@dataclass(frozen=True)
class PricedLine:
    line: pricing.Line
    contract_line_id: int | None


@dataclass
class Period:
    start: date
    end: date


def _active_range(line: ContractLine, contract: Contract) -> tuple[date, date | None]:
    start = max(line.starts_on, contract.start_date)
    ends = [d for d in (line.ends_on, contract.end_date) if d is not None]
    return start, (min(ends) if ends else None)


def _recurring_proration(line: ContractLine, contract: Contract, period: Period) -> Fraction:
    active_from, active_to = _active_range(line, contract)
    if active_to is not None and active_to < active_from:
        return Fraction(0)
    interval = contract.billing_interval
    if interval == 1:
        return pricing.proration_factor(
            period_start=period.start, period_end=period.end, active_from=active_from, active_to=active_to
        )
    months = (period.start.year - contract.start_date.year) * 12 + period.start.month - contract.start_date.month
    for k in range(max(0, months // interval - 1), months // interval + 2):
        first_day = contract.start_date + relativedelta(months=k * interval)
        if period.start <= first_day <= period.end and active_from <= first_day and (
            active_to is None or first_day <= active_to
        ):
            return Fraction(1)
    return Fraction(0)


def _product(a: Decimal, b: Decimal) -> Decimal:
    """a × b without the trailing zeros of both columns' scales (1.0000 × 3000.000000 → 3000)."""
    product = a * b
    return product.quantize(Decimal(1)) if product == product.to_integral_value() else product.normalize()


def _base_fee(line: ContractLine, proration: Fraction, currency: str) -> list[pricing.Line]:
    if proration == 0:
        return []
    price = line.unit_price.amount
    if line.kind == ContractLine.Kind.PER_SEAT or line.quantity != 1:
        return pricing.per_seat(
            line.quantity, unit_price=price, currency=currency, description=line.description, proration=proration
        )
    return pricing.flat_fee(amount=price, currency=currency, description=line.description, proration=proration)


class PricingContext:
    """Everything the draft run loaded once, shared by every customer it prices."""

    def __init__(self, *, tenant, period, usage, event_amounts, metrics, terms):
        self.tenant = tenant
        self.period = period
        self.usage = usage
        self.event_amounts = event_amounts
        self.metrics = metrics
        self.terms = terms  # PriceTerms id -> parsed terms


def _metered(terms: PriceTerms, parsed: dict, line: ContractLine, customer_id: int, ctx: PricingContext, currency: str):
    """A function quantity -> usage lines for one metered contract line."""
    description = line.description
    model = terms.charge_model
    default_price = line.unit_price.amount if line.kind == ContractLine.Kind.USAGE else None
    unit = ctx.metrics[terms.metric].unit if terms.metric in ctx.metrics else ""

    def price(quantity: Decimal) -> list[pricing.Line]:
        if model == ChargeModel.PER_UNIT:
            return pricing.per_unit(
                quantity, unit_price=parsed.get("unit_price", default_price), currency=currency, description=description
            )
        if model == ChargeModel.GRADUATED:
            return pricing.graduated(quantity, tiers=parsed["tiers"], currency=currency, description=description)
        if model == ChargeModel.VOLUME:
            return pricing.volume(quantity, tiers=parsed["tiers"], currency=currency, description=description)
        if model == ChargeModel.PACKAGE:
            return pricing.package(
                quantity,
                package_size=parsed["package_size"],
                package_price=parsed.get("package_price", default_price),
                free_units=parsed.get("free_units", 0),
                currency=currency,
                description=description,
            )
        if model == ChargeModel.PERCENTAGE:
            per_event = PER_EVENT_KEYS & parsed.keys()
            amounts = ctx.event_amounts[terms.metric].get(customer_id, []) if per_event else [quantity]
            return pricing.percentage(
                amounts,
                rate_percent=parsed["rate_percent"],
                fixed_fee_per_event=parsed.get("fixed_fee_per_event", 0),
                free_events=parsed.get("free_events", 0),
                free_amount=parsed.get("free_amount", 0),
                min_per_event=parsed.get("min_per_event"),
                max_per_event=parsed.get("max_per_event"),
                currency=currency,
                description=description,
            )
        if model == ChargeModel.INCLUDED_QUOTA:
            return pricing.included_quota(
                quantity,
                included=parsed["included"],
                overage_unit_price=parsed["overage_unit_price"],
                grace_percent=parsed.get("grace_percent", 0),
                currency=currency,
                description=f"{description}: {unit or 'units'} above {parsed['included']:f} included",
            )
        return []

    return price


def price_line(line, contract, customer_id, usage_owner, ctx: PricingContext, currency, contract_base=()):
    """(base fee lines, every other line) of one contract line for the period.

    ``contract_base`` is the contract's recurring fees this period: a quota utilisation discount
    on a usage line without a fee of its own is taken off them (the job-API plans: the plan fee is
    a recurring line, the included jobs and overage are terms on the usage line).
    """
    period = ctx.period
    if line.kind == ContractLine.Kind.ONE_TIME:
        if not period.start <= line.starts_on <= period.end:
            return [], []
        amount = _product(line.quantity, line.unit_price.amount)
        return [], pricing.one_time(amount=amount, currency=currency, description=line.description)
    terms = getattr(line, "price_terms", None)
    if terms is None and line.kind == ContractLine.Kind.USAGE:
        raise pricing.PricingError(f"usage line {line.description!r} has no price terms naming its metric")
    parsed = ctx.terms[terms.pk] if terms is not None else {}
    flat = terms is None or terms.charge_model in (ChargeModel.FLAT, ChargeModel.PER_SEAT)
    base = []
    if line.kind in RECURRING_KINDS or flat:
        base = _base_fee(line, _recurring_proration(line, contract, period), currency)
    if flat:
        return base, _commitment(base, parsed, line, currency)
    price = _metered(terms, parsed, line, customer_id, ctx, currency)
    used = ctx.usage.get((customer_id, terms.metric), ZERO) if usage_owner else ZERO
    metered = price(used)
    rest = list(metered)
    discount_percent = parsed.get("utilisation_discount_percent")
    fee = base or list(contract_base)
    if terms.charge_model == ChargeModel.INCLUDED_QUOTA and discount_percent and fee:
        rest += pricing.quota_utilisation_discount(
            base_fee=pricing.total(fee),
            used=used,
            included=parsed["included"],
            percent=discount_percent,
            from_utilisation_percent=parsed.get("utilisation_from_percent", 80),
            to_utilisation_percent=parsed.get("utilisation_to_percent", 100),
            currency=currency,
            description=f"{line.description}: quota utilisation discount {discount_percent:f}%",
        )
    failed_metric = parsed.get("failed_metric")
    failed = ctx.usage.get((customer_id, failed_metric), ZERO) if failed_metric and usage_owner else ZERO
    if failed:
        credited = pricing.total(metered) - pricing.total(price(max(ZERO, used - failed)))
        if credited > 0:
            unit = ctx.metrics[terms.metric].unit if terms.metric in ctx.metrics else ""
            rest += pricing.credit(
                1,
                unit_price=credited,
                currency=currency,
                description=f"{line.description}: {failed:f} failed {unit or 'units'} credited",
            )
    return base, rest + _commitment(base + metered, parsed, line, currency)


def _commitment(lines, parsed, line, currency):
    if "minimum_commitment" not in parsed:
        return []
    return pricing.minimum_commitment(
        lines, minimum=parsed["minimum_commitment"], currency=currency, description=f"{line.description}: minimum commitment"
    )


def _price_contract(contract, lines, customer_id, usage_owners, ctx, currency) -> list[PricedLine]:
    recurring_base: list[pricing.Line] = []
    discounts = [line for line in lines if line.kind == ContractLine.Kind.DISCOUNT]
    by_position: dict[int, list[pricing.Line]] = {}
    # Recurring lines first, so usage lines can discount the contract's fees; the invoice keeps
    # the contract's line order.
    for recurring in (True, False):
        for position, line in enumerate(lines):
            if line.kind == ContractLine.Kind.DISCOUNT or (line.kind in RECURRING_KINDS) != recurring:
                continue
            metric = getattr(getattr(line, "price_terms", None), "metric", None)
            owner = usage_owners.get((customer_id, metric)) == line.pk
            base, rest = price_line(line, contract, customer_id, owner, ctx, currency, contract_base=recurring_base)
            if recurring:
                recurring_base += base
            by_position[position] = base + rest
    priced = [PricedLine(priced_line, lines[p].pk) for p in sorted(by_position) for priced_line in by_position[p]]
    for line in discounts:
        active_from, active_to = _active_range(line, contract)
        share = pricing.proration_factor(
            period_start=ctx.period.start, period_end=ctx.period.end, active_from=active_from, active_to=active_to
        )
        base = pricing.round_money(Fraction(pricing.total(recurring_base)) * share, currency)
        if base <= 0:
            continue
        discounted = pricing.Line(description="recurring fees", quantity=Decimal(1), unit_price=base, amount=base)
        for priced_line in pricing.discount_percent(
            [discounted], percent=line.discount_percent, currency=currency, description=line.description
        ):
            priced.append(PricedLine(priced_line, line.pk))
    return priced


def _reverse_charge(tenant: Tenant, customer: Customer) -> bool:
    tenant_country, customer_country = str(tenant.country or ""), str(customer.country or "")
    return (
        tenant_country in EU_COUNTRIES
        and customer_country in EU_COUNTRIES
        and customer_country != tenant_country
        and bool(customer.vat_number.strip())
        and customer.is_business
    )


@dataclass
class PricedInvoice:
    """One customer's invoice for a period as pricing computed it, before anything is written."""

    customer: Customer
    contract_id: int | None
    lines: list[PricedLine]
    subtotal: Decimal
    discount_total: Decimal
    vat_rate: Decimal
    vat_amount: Decimal
    total: Decimal
    credit_applied: Decimal
    amount_due: Decimal
    reverse_charge: bool
    credits: list[tuple[int, Decimal]]
    inputs_hash: str = ""


def _build_draft(customer, priced, contract_ids, settings, remaining_credits, ctx, currency) -> PricedInvoice:
    tenant = ctx.tenant
    if settings.minimum_invoice_amount > 0:
        minimum = pricing.minimum_charge(
            [p.line for p in priced], minimum=settings.minimum_invoice_amount, currency=currency, description="Minimum charge"
        )
        priced = priced + [PricedLine(line, None) for line in minimum]
    reverse = _reverse_charge(tenant, customer)
    vat_rate = ZERO if reverse else tenant.vat_rate
    net = pricing.total(p.line for p in priced)
    subtotal = sum((p.line.amount for p in priced if p.line.kind in POSITIVE_KINDS), ZERO)
    vat_amount = pricing.round_money(Fraction(net) * Fraction(vat_rate) / 100, currency)
    grand_total = net + vat_amount
    credits, left = [], max(ZERO, grand_total)
    for request_id, request_currency, available in remaining_credits.get(customer.pk, []):
        if left <= 0 or request_currency != currency:
            continue
        applied = min(available, left)
        credits.append((request_id, applied))
        left -= applied
    credit_applied = sum((amount for _, amount in credits), ZERO)
    draft = PricedInvoice(
        customer=customer,
        contract_id=next(iter(contract_ids)) if len(contract_ids) == 1 else None,
        lines=priced,
        subtotal=subtotal,
        discount_total=subtotal - net,
        vat_rate=vat_rate,
        vat_amount=vat_amount,
        total=grand_total,
        credit_applied=credit_applied,
        amount_due=max(ZERO, grand_total - credit_applied),
        reverse_charge=reverse,
        credits=credits,
    )
    draft.inputs_hash = _fingerprint(draft, ctx.period, currency)
    return draft


def _canonical(value) -> str:
    # 25 and 25.00 are the same input: an in-memory tenant and one read back must fingerprint alike.
    return format(Decimal(value).normalize(), "f")


def _fingerprint(draft: PricedInvoice, period: Period, currency: str) -> str:
    payload = [
        str(period.end),
        currency,
        draft.contract_id,
        _canonical(draft.vat_rate),
        draft.reverse_charge,
        [[request_id, _canonical(amount)] for request_id, amount in draft.credits],
        [
            [p.line.description, str(p.line.kind), _canonical(p.line.quantity), _canonical(p.line.unit_price),
             _canonical(p.line.amount), str(p.line.proration), p.contract_line_id]
            for p in draft.lines
        ],
    ]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


# --- the draft run ---------------------------------------------------------------------------


def _load_context(tenant, period, contract_lines, customer_ids=None):
    terms = {}
    metric_codes = set()
    for line in contract_lines:
        line_terms = getattr(line, "price_terms", None)
        if line_terms is None:
            continue
        terms[line_terms.pk] = line_terms.parsed_terms()
        if line_terms.metric:
            metric_codes.add(line_terms.metric)
        if terms[line_terms.pk].get("failed_metric"):
            metric_codes.add(terms[line_terms.pk]["failed_metric"])
    metrics = {m.code: m for m in BillableMetric.objects.for_tenant(tenant).filter(code__in=metric_codes)}
    if customer_ids is None:
        usage = metric_totals(
            tenant=tenant, metrics=list(metrics.values()), period_start=period.start, period_end=period.end
        )
    else:
        # A few customers (a projection): aggregate only their events, not the whole tenant's.
        totals = usage_totals(
            tenant=tenant, period_start=period.start, period_end=period.end, customer_ids=customer_ids
        )
        usage = {key: value for key, value in totals.items() if key[1] in metrics and value}
    per_event_metrics = {
        line.price_terms.metric
        for line in contract_lines
        if getattr(line, "price_terms", None) is not None
        and line.price_terms.charge_model == ChargeModel.PERCENTAGE
        and PER_EVENT_KEYS & terms[line.price_terms.pk].keys()
    }
    event_amounts = {
        code: metric_event_amounts(tenant=tenant, metric=metrics[code], period_start=period.start, period_end=period.end)
        for code in per_event_metrics
        if code in metrics
    }
    return PricingContext(tenant=tenant, period=period, usage=usage, event_amounts=event_amounts, metrics=metrics, terms=terms)


@dataclass
class PricedPeriod:
    """What pricing one period produced: a PricedInvoice per customer it could price, and why the
    others were skipped. ``billed_customer_ids`` holds every customer with a billed line (skipped too)."""

    drafts: dict[int, PricedInvoice]
    billed_customer_ids: set[int]
    skipped: int
    problems: list[str]


def price_period(
    *,
    tenant: Tenant,
    period_start: date,
    period_end: date,
    settings: BillingSettings,
    customer_ids: Sequence[int] | None = None,
) -> PricedPeriod:
    """Price the invoices of a period (dates inclusive) for every customer, or only ``customer_ids``.

    The one pricing path behind ``invoice_compute_drafts`` (which writes what this returns) and
    ``billing.projection.invoice_project`` (which only shows it). Reads, never writes: contract
    lines active in the period with their price terms, usage totals, unused balance credits
    (leaving out the drafts of this period, which the result replaces) and ``settings``
    (the minimum invoice amount). A customer whose contracts are in another currency than theirs,
    or whose terms the pricing engine refuses, is skipped and reported in ``problems``.
    """
    period = Period(period_start, period_end)
    rows = (
        ContractLine.objects.for_tenant(tenant)
        .filter(contract__status__in=BILLED_CONTRACT_STATUSES, starts_on__lte=period_end, contract__start_date__lte=period_end)
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=period_start))
        .filter(Q(contract__end_date__isnull=True) | Q(contract__end_date__gte=period_start))
    )
    if customer_ids is not None:
        rows = rows.filter(contract__customer_id__in=list(customer_ids))
    contract_lines = list(
        rows.select_related("contract", "contract__customer", "price_terms")
        .only(*_PRICED_LINE_COLUMNS)
        .order_by("contract__customer_id", "contract__start_date", "contract_id", "starts_on", "id")
    )
    ctx = _load_context(tenant, period, contract_lines, None if customer_ids is None else list(customer_ids))

    by_customer: dict[int, list[ContractLine]] = defaultdict(list)
    usage_owners: dict[tuple[int, str], int] = {}
    latest_start: dict[tuple[int, str], date] = {}
    for line in contract_lines:
        customer_id = line.contract.customer_id
        by_customer[customer_id].append(line)
        metric = getattr(getattr(line, "price_terms", None), "metric", "")
        if metric and line.starts_on >= latest_start.get((customer_id, metric), date.min):
            latest_start[(customer_id, metric)] = line.starts_on
            usage_owners[(customer_id, metric)] = line.pk

    remaining = balance_credit_remaining(tenant=tenant, exclude_draft_period_start=period_start)
    remaining_credits: dict[int, list] = defaultdict(list)
    if remaining:
        for request_id, customer_id, currency in (
            CreditRequest.objects.for_tenant(tenant)
            .filter(pk__in=remaining)
            .order_by("created_at", "id")
            .values_list("id", "customer_id", "currency")
        ):
            remaining_credits[customer_id].append((request_id, currency, remaining[request_id]))

    skipped = 0
    problems: list[str] = []
    drafts: dict[int, PricedInvoice] = {}
    for customer_id, lines in by_customer.items():
        customer = lines[0].contract.customer
        currency = customer.currency
        foreign = {line.contract.currency for line in lines} - {currency}
        if foreign:
            skipped += 1
            problems.append(f"{customer}: contracts in {', '.join(sorted(foreign))}, invoices in {currency}.")
            continue
        try:
            priced: list[PricedLine] = []
            contract_ids = []
            for contract_id, contract_lines_of in _group_by_contract(lines):
                contract_ids.append(contract_id)
                priced += _price_contract(contract_lines_of[0].contract, contract_lines_of, customer_id, usage_owners, ctx, currency)
        except pricing.PricingError as exc:
            skipped += 1
            problems.append(f"{customer}: {exc}")
            continue
        drafts[customer_id] = _build_draft(customer, priced, set(contract_ids), settings, remaining_credits, ctx, currency)
    return PricedPeriod(drafts=drafts, billed_customer_ids=set(by_customer), skipped=skipped, problems=problems)


@transaction.atomic
def invoice_compute_drafts(*, tenant: Tenant, period_start: date, period_end: date) -> dict:
    """Build or refresh the DRAFT invoice of every customer with a billed contract line in the period.

    Dates are inclusive. Set-wise: one query for the period's contract lines (with contracts,
    customers and price terms), one per metric for usage, then bulk writes. A draft whose inputs
    are unchanged is left alone (so a second run writes nothing); a changed one gets new lines and
    totals; a finalized or paid invoice is never touched; a draft whose customer no longer has
    anything to bill is deleted. Concurrent runs of one tenant are serialized. Pricing is
    ``price_period``'s, shared with the customer portal's projection.

    Returns counts: ``created``, ``updated``, ``unchanged``, ``final`` (left as issued), ``removed``,
    ``lines`` (written), ``skipped`` and ``problems`` (why customers were skipped).
    Raises ValidationError for a period that ends before it starts.
    """
    if period_end < period_start:
        raise ValidationError({"period_end": "The period cannot end before it starts."})
    settings = billing_settings_for(tenant=tenant, lock=True)
    priced_period = price_period(tenant=tenant, period_start=period_start, period_end=period_end, settings=settings)
    drafts = priced_period.drafts
    counts = {"created": 0, "updated": 0, "unchanged": 0, "final": 0, "removed": 0, "lines": 0,
              "skipped": priced_period.skipped}
    problems = priced_period.problems

    existing = {
        invoice.customer_id: invoice
        for invoice in Invoice.objects.for_tenant(tenant)
        .filter(period_start=period_start)
        .exclude(status=Invoice.Status.VOID)
        .only("id", "tenant_id", "customer_id", "status", "inputs_hash")
        .select_for_update()
    }
    to_create, to_update, stale_ids = [], [], []
    for customer_id, draft in drafts.items():
        invoice = existing.get(customer_id)
        if invoice is not None and invoice.status != Invoice.Status.DRAFT:
            counts["final"] += 1
            continue
        if invoice is not None and invoice.inputs_hash == draft.inputs_hash:
            counts["unchanged"] += 1
            continue
        if invoice is None:
            invoice = Invoice(tenant=tenant, customer=draft.customer, period_start=period_start)
            _fill(invoice, draft, period_end)
            to_create.append(invoice)
        else:
            stale_ids.append(invoice.pk)
    # Only the changed drafts are read whole (the lookup above reads four columns of every invoice).
    for invoice in Invoice.objects.for_tenant(tenant).filter(pk__in=stale_ids).select_related("customer"):
        _fill(invoice, drafts[invoice.customer_id], period_end)
        to_update.append(invoice)
    for invoice in to_create + to_update:
        invoice.full_clean(exclude=["tenant", "customer", "contract"], validate_unique=False, validate_constraints=False)

    removed_ids = [
        invoice.pk
        for customer_id, invoice in existing.items()
        if customer_id not in priced_period.billed_customer_ids and invoice.status == Invoice.Status.DRAFT
    ]
    if stale_ids or removed_ids:
        InvoiceLine.objects.for_tenant(tenant).filter(invoice_id__in=stale_ids + removed_ids).delete()
        CreditApplication.objects.for_tenant(tenant).filter(invoice_id__in=stale_ids + removed_ids).delete()
    if removed_ids:
        Invoice.objects.for_tenant(tenant).filter(pk__in=removed_ids, status=Invoice.Status.DRAFT).delete()
    Invoice.objects.for_tenant(tenant).bulk_create(to_create, batch_size=2000)
    Invoice.objects.for_tenant(tenant).bulk_update(to_update, fields=_DRAFT_FIELDS, batch_size=1000)

    new_lines, applications = [], []
    for invoice in to_create + to_update:
        draft = drafts[invoice.customer_id]
        for position, priced_line in enumerate(draft.lines, start=1):
            new_lines.append(_invoice_line(tenant, invoice, position, priced_line))
        for request_id, amount in draft.credits:
            applications.append(CreditApplication(tenant=tenant, credit_request_id=request_id, invoice=invoice, amount=amount))
    for line in new_lines:
        line.clean_fields(exclude=["tenant", "invoice", "contract_line"])
    InvoiceLine.objects.for_tenant(tenant).bulk_create(new_lines, batch_size=5000)
    CreditApplication.objects.for_tenant(tenant).bulk_create(applications)

    counts.update(created=len(to_create), updated=len(to_update), removed=len(removed_ids), lines=len(new_lines))
    counts["problems"] = problems
    return counts


# What pricing reads of a contract line and its contract, customer and terms (rows are wide).
_PRICED_LINE_COLUMNS = [
    "id", "tenant_id", "contract_id", "description", "kind", "quantity", "unit_price", "unit_price_currency",
    "discount_percent", "starts_on", "ends_on",
    "contract__id", "contract__customer_id", "contract__currency", "contract__billing_interval",
    "contract__start_date", "contract__end_date",
    "contract__customer__id", "contract__customer__tenant_id", "contract__customer__name",
    "contract__customer__currency", "contract__customer__country", "contract__customer__vat_number",
    "contract__customer__is_business",
    "price_terms__id", "price_terms__charge_model", "price_terms__metric", "price_terms__terms",
]

_DRAFT_FIELDS = [
    "period_end", "currency", "contract", "subtotal", "discount_total", "vat_rate", "vat_amount", "total",
    "credit_applied", "amount_due", "reverse_charge", "vat_note", "inputs_hash",
]


def _group_by_contract(lines):
    groups: dict[int, list[ContractLine]] = {}
    for line in lines:
        groups.setdefault(line.contract_id, []).append(line)
    return groups.items()


def _fill(invoice: Invoice, draft: PricedInvoice, period_end: date) -> None:
    invoice.period_end = period_end
    invoice.currency = draft.customer.currency
    invoice.contract_id = draft.contract_id
    invoice.subtotal = draft.subtotal
    invoice.discount_total = draft.discount_total
    invoice.vat_rate = draft.vat_rate
    invoice.vat_amount = draft.vat_amount
    invoice.total = draft.total
    invoice.credit_applied = draft.credit_applied
    invoice.amount_due = draft.amount_due
    invoice.reverse_charge = draft.reverse_charge
    invoice.vat_note = REVERSE_CHARGE_NOTE if draft.reverse_charge else ""
    invoice.inputs_hash = draft.inputs_hash


def _invoice_line(tenant, invoice, position, priced: PricedLine) -> InvoiceLine:
    line = priced.line
    return InvoiceLine(
        tenant=tenant,
        invoice=invoice,
        position=position,
        description=line.description[:300],
        kind=str(line.kind),
        quantity=line.quantity,
        unit_price=line.unit_price,
        proration=str(line.proration),
        amount=line.amount,
        contract_line_id=priced.contract_line_id,
    )


# --- numbering, finalizing, status -----------------------------------------------------------


def _next_number(*, tenant: Tenant, kind: str) -> int:
    """The next value of the tenant's ``kind`` sequence. The row stays locked until commit, so
    concurrent callers queue and a rolled-back caller leaves no gap."""
    NumberSequence.objects.for_tenant(tenant).bulk_create([NumberSequence(tenant=tenant, kind=kind)], ignore_conflicts=True)
    sequence = NumberSequence.objects.for_tenant(tenant).select_for_update().get(kind=kind)
    sequence.last_value += 1
    sequence.save(update_fields=["last_value"])
    return sequence.last_value


def _today(tenant: Tenant) -> date:
    return timezone.localdate(timezone=zoneinfo.ZoneInfo(tenant.time_zone))


def _locked(invoice: Invoice) -> Invoice:
    return Invoice.objects.for_tenant(invoice.tenant).select_for_update().select_related("tenant").get(pk=invoice.pk)


@transaction.atomic
def invoice_finalize(*, invoice: Invoice, issue_date: date | None = None, deliver: bool = True) -> Invoice:
    """Freeze a draft: number it, date it, and mark its fully used balance credits applied.

    The number is ``{prefix}{year}-{n:05d}`` with ``n`` the next value of the tenant's gapless
    invoice sequence (taken under a row lock in this transaction). ``issue_date`` defaults to
    today in the tenant's time zone; the due date adds the tenant's payment terms. Returns the
    finalized invoice. Once the transaction commits, ``billing.tasks.invoice_deliver`` renders
    its PDF and emails it; ``deliver=False`` queues nothing (an invoice delivered outside the
    portal, e.g. historical ones loaded later: its PDF is rendered when first downloaded).
    Raises ValidationError if the invoice is not a draft.
    """
    invoice = _locked(invoice)
    if invoice.status != Invoice.Status.DRAFT:
        raise ValidationError(f"Invoice {invoice} is {invoice.status}; only a draft can be finalized.")
    tenant = invoice.tenant
    issue_date = issue_date or _today(tenant)
    sequence_number = _next_number(tenant=tenant, kind=NumberSequence.Kind.INVOICE)
    invoice.sequence_number = sequence_number
    invoice.number = f"{tenant.invoice_number_prefix}{issue_date.year}-{sequence_number:05d}"
    invoice.status = Invoice.Status.FINALIZED
    invoice.issue_date = issue_date
    invoice.due_date = issue_date + timedelta(days=tenant.payment_terms_days)
    invoice.finalized_at = timezone.now()
    _save(invoice)
    _mark_used_credits_applied(invoice)
    if deliver:
        transaction.on_commit(partial(invoice_deliver.delay, tenant.pk, invoice.pk))
    return invoice


def _mark_used_credits_applied(invoice: Invoice) -> None:
    tenant = invoice.tenant
    request_ids = CreditApplication.objects.for_tenant(tenant).filter(invoice=invoice).values_list("credit_request_id")
    requests = list(
        CreditRequest.objects.for_tenant(tenant)
        .filter(pk__in=request_ids, status=CreditRequest.Status.APPROVED)
        .select_for_update()
    )
    if not requests:
        return
    used = dict(
        CreditApplication.objects.for_tenant(tenant)
        .filter(credit_request__in=requests, invoice__status__in=[Invoice.Status.FINALIZED, Invoice.Status.PAID])
        .values("credit_request_id")
        .annotate(used=Sum("amount"))
        .values_list("credit_request_id", "used")
    )
    for request in requests:
        if used.get(request.pk, ZERO) >= request.amount:
            request.status = CreditRequest.Status.APPLIED
            _save(request)
            _audit(request, CreditAuditEntry.Action.APPLIED, actor=None, note=f"Taken off invoice {invoice.number}")


@transaction.atomic
def invoice_void(*, invoice: Invoice, reason: str = "") -> Invoice:
    """Void a draft or finalized invoice (a status; nothing is deleted).

    Its number stays used; balance credits taken off it return to the customer's balance.
    Raises ValidationError for a paid or already void invoice.
    """
    invoice = _locked(invoice)
    if invoice.status not in (Invoice.Status.DRAFT, Invoice.Status.FINALIZED):
        raise ValidationError(f"Invoice {invoice} is {invoice.status} and cannot be voided.")
    invoice.status = Invoice.Status.VOID
    invoice.voided_at = timezone.now()
    _save(invoice)
    requests = CreditRequest.objects.for_tenant(invoice.tenant).filter(
        applications__invoice=invoice, status=CreditRequest.Status.APPLIED
    )
    for request in requests:
        request.status = CreditRequest.Status.APPROVED
        _save(request)
        _audit(request, CreditAuditEntry.Action.REOPENED, actor=None, note=f"Invoice {invoice.number} voided. {reason}".strip())
    return invoice


@transaction.atomic
def invoice_mark_paid(*, invoice: Invoice, paid_at: datetime | None = None) -> Invoice:
    """Record that a finalized invoice was paid. Raises ValidationError for any other status."""
    invoice = _locked(invoice)
    if invoice.status != Invoice.Status.FINALIZED:
        raise ValidationError(f"Invoice {invoice} is {invoice.status}; only a finalized invoice can be paid.")
    invoice.status = Invoice.Status.PAID
    invoice.paid_at = paid_at or timezone.now()
    _save(invoice)
    return invoice


# --- credit notes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditNoteLineSpec:
    """One line of a credit note: ``quantity × unit_price`` excluding VAT, positive, in the invoice's currency."""

    description: str
    unit_price: Decimal
    quantity: Decimal = Decimal(1)
    invoice_line: InvoiceLine | None = None


@transaction.atomic
def credit_note_issue(
    *, invoice: Invoice, lines: Sequence[CreditNoteLineSpec], reason: str, created_by=None
) -> CreditNote:
    """Issue a numbered credit note against a finalized or paid invoice.

    Each line is rounded to the minor unit (ROUND_HALF_UP); VAT is the invoice's rate on their sum
    (0 under reverse charge), rounded once. The total (VAT included) may not exceed what the invoice
    still has creditable (its total less earlier credit notes). The number is
    ``{prefix}CN-{year}-{n:05d}`` from the tenant's own gapless credit-note sequence.
    Raises ValidationError for a draft/void invoice, no lines, non-positive amounts, lines of
    another invoice, a blank reason or a total above the creditable amount.
    """
    invoice = _locked(invoice)
    tenant, currency = invoice.tenant, invoice.currency
    if invoice.status not in (Invoice.Status.FINALIZED, Invoice.Status.PAID):
        raise ValidationError(f"Invoice {invoice} is {invoice.status}; only a finalized or paid invoice can be credited.")
    if not reason or not reason.strip():
        raise ValidationError({"reason": "A credit note needs a reason."})
    if not lines:
        raise ValidationError("A credit note needs at least one line.")
    priced = []
    for spec in lines:
        if spec.invoice_line is not None and spec.invoice_line.invoice_id != invoice.pk:
            raise ValidationError(f"Line {spec.invoice_line} belongs to another invoice.")
        try:
            line = pricing.per_unit(spec.quantity, unit_price=spec.unit_price, currency=currency, description=spec.description)
        except pricing.PricingError as exc:
            raise ValidationError(str(exc)) from None
        if not line or line[0].amount <= 0:
            raise ValidationError(f"Credit note line {spec.description!r} must credit a positive amount.")
        priced.append((spec, line[0]))
    subtotal = sum((line.amount for _, line in priced), ZERO)
    vat_amount = pricing.round_money(Fraction(subtotal) * Fraction(invoice.vat_rate) / 100, currency)
    total = subtotal + vat_amount
    creditable = invoice_creditable_amount(invoice=invoice)
    if total > creditable:
        raise ValidationError(
            f"This credit note ({total} {currency}) exceeds what invoice {invoice.number} still has creditable "
            f"({creditable} {currency})."
        )
    issue_date = _today(tenant)
    sequence_number = _next_number(tenant=tenant, kind=NumberSequence.Kind.CREDIT_NOTE)
    note = _save(
        CreditNote(
            tenant=tenant,
            invoice=invoice,
            customer_id=invoice.customer_id,
            number=f"{tenant.invoice_number_prefix}CN-{issue_date.year}-{sequence_number:05d}",
            sequence_number=sequence_number,
            currency=currency,
            reason=reason.strip(),
            issue_date=issue_date,
            subtotal=subtotal,
            vat_rate=invoice.vat_rate,
            vat_amount=vat_amount,
            total=total,
            created_by=created_by,
        )
    )
    for position, (spec, line) in enumerate(priced, start=1):
        _save(
            CreditNoteLine(
                tenant=tenant,
                credit_note=note,
                position=position,
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.amount,
                invoice_line=spec.invoice_line,
            )
        )
    return note


# --- credit requests -------------------------------------------------------------------------

MANAGER_ROLES = {Role.OWNER, Role.ACCOUNT_MANAGER, Role.FINANCE}
DIRECTOR_ROLES = {Role.OWNER}
ANY_STAFF_LIMIT = Decimal(100)
MANAGER_LIMIT = Decimal(1000)


def credit_approver_roles(*, tenant: Tenant, amount: Decimal, currency: str) -> set[str]:
    """Roles that may decide a manual credit of ``amount`` ``currency``.

    DOMAIN: a manager above 100 and a director above 1 000 in the tenant's currency. Up to 100 any
    other member may approve; above 100 an owner, account manager or finance; above 1 000 an owner.
    A credit in another currency than the tenant's needs an owner (no conversion is guessed).
    """
    if currency != tenant.reporting_currency or amount > MANAGER_LIMIT:
        return set(DIRECTOR_ROLES)
    if amount > ANY_STAFF_LIMIT:
        return set(MANAGER_ROLES)
    return set(Role.values)


def _membership(tenant: Tenant, user) -> Membership | None:
    if user is None or not getattr(user, "pk", None):
        return None
    return Membership.objects.for_tenant(tenant).filter(user=user).first()


def _audit(request: CreditRequest, action: str, *, actor, role: str = "", note: str = "") -> CreditAuditEntry:
    return _save(
        CreditAuditEntry(
            tenant=request.tenant,
            credit_request=request,
            action=action,
            actor=actor,
            actor_role=role,
            amount=request.amount,
            currency=request.currency,
            note=note[:300],
        )
    )


@transaction.atomic
def credit_request_create(
    *, customer: Customer, amount: Decimal, reason: str, requested_by, invoice: Invoice | None = None
) -> CreditRequest:
    """Ask for a manual credit for ``customer``; it waits for approval (see credit_approver_roles).

    With ``invoice`` (finalized or paid, of this customer) the credit becomes a credit note on
    approval and ``amount`` excludes VAT; without, ``amount`` is a balance taken off the customer's
    next invoices. The requester must be a member of the customer's tenant. The request is audited.
    Raises ValidationError otherwise, or for an amount that is not positive.
    """
    tenant = customer.tenant
    membership = _membership(tenant, requested_by)
    if membership is None:
        raise ValidationError("Only a member of this tenant can request a credit.")
    if invoice is not None:
        if invoice.customer_id != customer.pk:
            raise ValidationError({"invoice": "The invoice belongs to another customer."})
        if invoice.status not in (Invoice.Status.FINALIZED, Invoice.Status.PAID):
            raise ValidationError({"invoice": "Only a finalized or paid invoice can be credited."})
    request = _save(
        CreditRequest(
            tenant=tenant,
            customer=customer,
            invoice=invoice,
            amount=amount,
            currency=invoice.currency if invoice is not None else customer.currency,
            reason=reason,
            requested_by=requested_by,
        )
    )
    _audit(request, CreditAuditEntry.Action.REQUESTED, actor=requested_by, role=membership.role, note=reason)
    return request


def _decide(request: CreditRequest, decider, verb: str) -> Membership:
    request = CreditRequest.objects.for_tenant(request.tenant).select_for_update().get(pk=request.pk)
    if request.status != CreditRequest.Status.REQUESTED:
        raise ValidationError(f"This credit request is already {request.status}.")
    if decider is None or decider.pk == request.requested_by_id:
        raise ValidationError(f"You cannot {verb} your own credit request; another member must.")
    membership = _membership(request.tenant, decider)
    allowed = credit_approver_roles(tenant=request.tenant, amount=request.amount, currency=request.currency)
    if membership is None or membership.role not in allowed:
        names = ", ".join(sorted(Role(role).label.lower() for role in allowed))
        raise ValidationError(
            f"A credit of {request.amount} {request.currency} must be decided by: {names}."
        )
    return membership


@transaction.atomic
def credit_request_approve(*, credit_request: CreditRequest, approver, note: str = "") -> CreditRequest:
    """Approve a requested credit, audited with the approver and their role.

    The approver must be another member than the requester, with a role allowed for the amount.
    An invoice credit is issued at once as a credit note (status ``applied``); a balance credit
    becomes ``approved`` and is taken off the customer's next draft invoices.
    Raises ValidationError when the rules refuse it (nothing is written then).
    """
    membership = _decide(credit_request, approver, "approve")
    request = CreditRequest.objects.for_tenant(credit_request.tenant).get(pk=credit_request.pk)
    request.status = CreditRequest.Status.APPROVED
    request.decided_by = approver
    request.decided_at = timezone.now()
    _save(request)
    _audit(request, CreditAuditEntry.Action.APPROVED, actor=approver, role=membership.role, note=note)
    if request.invoice_id is not None:
        credit_note = credit_note_issue(
            invoice=request.invoice,
            lines=[CreditNoteLineSpec(description=f"Credit: {request.reason}"[:300], unit_price=request.amount)],
            reason=request.reason,
            created_by=approver,
        )
        request.credit_note = credit_note
        request.status = CreditRequest.Status.APPLIED
        _save(request)
        _audit(request, CreditAuditEntry.Action.APPLIED, actor=approver, role=membership.role, note=credit_note.number)
    return request


@transaction.atomic
def credit_request_reject(*, credit_request: CreditRequest, approver, note: str = "") -> CreditRequest:
    """Reject a requested credit; the same people who may approve it may reject it. Audited."""
    membership = _decide(credit_request, approver, "reject")
    request = CreditRequest.objects.for_tenant(credit_request.tenant).get(pk=credit_request.pk)
    request.status = CreditRequest.Status.REJECTED
    request.decided_by = approver
    request.decided_at = timezone.now()
    _save(request)
    _audit(request, CreditAuditEntry.Action.REJECTED, actor=approver, role=membership.role, note=note)
    return request


@transaction.atomic
def price_terms_set(
    *, contract_line: ContractLine, charge_model: str, metric: str = "", terms: dict | None = None
) -> PriceTerms:
    """Attach (or replace) the price terms of a contract line. Raises ValidationError on bad terms."""
    existing = PriceTerms.objects.for_tenant(contract_line.tenant).filter(contract_line=contract_line).first()
    price_terms = existing or PriceTerms(tenant=contract_line.tenant, contract_line=contract_line)
    price_terms.charge_model = charge_model
    price_terms.metric = metric
    price_terms.terms = terms or {}
    return _save(price_terms)
