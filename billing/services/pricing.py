"""Pricing one customer and a period, before anything is written (``price_period``, ``price_line``).

Money rules (DOMAIN.md): lines are priced by ``billing.pricing`` and each is
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
- A tiered charge's first flat fee is billed even without usage, once: on the version of the line
  that owns the period's usage.
- Percentage charges follow one rule (``pricing.percentage``): with per-event settings they are
  priced on the metric's events in time order, without them on the period's total, which gives the
  same lines. Their metric must sum an amount; one that does not is a pricing problem (customer
  skipped and reported). Graduated percentage is priced on the total (its tiers depend on nothing
  else). See docs/pricing.md.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction

from dateutil.relativedelta import relativedelta
from django.db.models import Q

from billing import pricing
from billing.metering import usage_totals
from billing.models import BillableMetric, BillingSettings, ChargeModel, CreditRequest, PriceTerms
from billing.models.invoicing import PER_EVENT_KEYS, PERCENTAGE_MODELS
from billing.selectors import balance_credit_remaining, metric_event_amounts, metric_totals, pending_charges_open
from billing.services._common import ZERO
from customers.models import Contract, ContractLine, Customer, Tenant

BILLED_CONTRACT_STATUSES = [Contract.Status.ACTIVE, Contract.Status.CANCELLED, Contract.Status.ENDED]
RECURRING_KINDS = {ContractLine.Kind.RECURRING, ContractLine.Kind.PER_SEAT}
POSITIVE_KINDS = {pricing.LineKind.CHARGE, pricing.LineKind.ONE_TIME, pricing.LineKind.TRUE_UP}
EU_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)


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
        if model in PERCENTAGE_MODELS:
            metric = ctx.metrics.get(terms.metric)
            if metric is not None and metric.aggregation != BillableMetric.Aggregation.SUM:
                raise pricing.PricingError(
                    f"{description!r} takes a percentage of metric {metric.code!r}, which does not sum an amount "
                    f"(aggregation {metric.aggregation!r}); give the metric the aggregation 'sum'"
                )
        if model == ChargeModel.GRADUATED_PERCENTAGE:
            # Tiers depend only on the running total: the events' sum is priced as they would be.
            return pricing.graduated_percentage([quantity], tiers=parsed["tiers"], currency=currency, description=description)
        if model == ChargeModel.PERCENTAGE:
            # One rule (pricing.percentage): the per-event settings need the events one by one;
            # without them the charge depends only on the sum, which is the metric's total.
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
    # Usage (and a first tier's flat fee at zero) is priced once, on the version that owns the usage.
    metered = price(used) if usage_owner else []
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
    # Ids of the PendingCharge rows (late fees) billed as one-time lines of this draft.
    charges: list[int] = field(default_factory=list)


def _build_draft(customer, priced, contract_ids, settings, remaining_credits, ctx, currency, charges=()) -> PricedInvoice:
    tenant = ctx.tenant
    if settings.minimum_invoice_amount > 0:
        minimum = pricing.minimum_charge(
            [p.line for p in priced], minimum=settings.minimum_invoice_amount, currency=currency, description="Minimum charge"
        )
        priced = priced + [PricedLine(line, None) for line in minimum]
    # Pending one-off charges (late fees) after the minimum: a fee does not count towards the
    # minimum for the service. Only those in the invoice's currency; the others wait.
    charge_ids = []
    for charge in charges:
        if charge.currency == currency:
            priced = priced + [
                PricedLine(line, None)
                for line in pricing.one_time(amount=charge.amount, currency=currency, description=charge.description)
            ]
            charge_ids.append(charge.pk)
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
        charges=charge_ids,
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
    if draft.charges:  # only then, so drafts without charges keep the fingerprints they had
        payload.append(draft.charges)
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


# --- pricing a period -----------------------------------------------------------------------


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
        code: metric_event_amounts(
            tenant=tenant, metric=metrics[code], period_start=period.start, period_end=period.end, customer_ids=customer_ids
        )
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
    and open pending charges (late fees, billed as one-time lines; both leaving out the drafts of
    this period, which the result replaces) and ``settings`` (the minimum invoice amount). A customer whose contracts are in another currency than theirs,
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

    charges = pending_charges_open(tenant=tenant, period_start=period_start, customer_ids=customer_ids)

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
        drafts[customer_id] = _build_draft(
            customer, priced, set(contract_ids), settings, remaining_credits, ctx, currency, charges.get(customer_id, ())
        )
    return PricedPeriod(drafts=drafts, billed_customer_ids=set(by_customer), skipped=skipped, problems=problems)


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


def _group_by_contract(lines):
    groups: dict[int, list[ContractLine]] = {}
    for line in lines:
        groups.setdefault(line.contract_id, []).append(line)
    return groups.items()
