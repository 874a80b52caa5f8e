"""The performance-priced AI-spend optimizer (seed 000): a platform fee by tier plus a share of savings.

Each customer has one contract with two lines, the platform fee (recurring) and the share of
verified savings (usage; its unit price is the rate, 0.20 = 20%, until billing models exist). A tier
change is a dated new version of the line whose price differs. Enterprise contracts are annual and
negotiated; their platform fee grows at some renewals.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils.text import slugify

from billing.metering import usage_totals
from billing.pricing import savings as savings_of
from customers.models import BillingInterval, ContractLine
from customers.periods import add_months, month_start
from customers.services import LineSpec
from portal.demo.billing import Credits, active_days_share, lines_active_in, usage_factor
from portal.demo.common import DemoContext, customer_add, domain_for, money, round_to, us_address, us_company
from portal.demo.contracts import project_delivered, subscribe
from portal.demo.pipeline import Deal, lost_deal, open_pipeline, won_deal
from revenue.models import Opportunity

TENANT = {
    "slug": "optimizer",
    "name": "Netra Apex",
    "legal_name": "Netra Apex, Inc.",
    "reporting_currency": "USD",
    "time_zone": "America/Los_Angeles",
    "locale": "en",
    "invoice_number_prefix": "NA-",
    "vat_rate": Decimal("0"),
    "country": "US",
    "address": "548 Market St, Suite 300\nSan Francisco, CA 94104",
    "peppol_id": "0060:117409255",
    "payment_terms_days": 30,
}


@dataclass(frozen=True)
class Tier:
    platform_fee: Decimal  # per month
    savings_rate: Decimal  # share of verified savings
    segment: str
    cac: tuple[int, int]


TIERS = {
    "Free": Tier(Decimal("0"), Decimal("0.00"), "startup", (50, 200)),
    "Early": Tier(Decimal("0"), Decimal("0.20"), "SMB", (800, 2500)),
    "Mid": Tier(Decimal("500"), Decimal("0.20"), "mid-market", (3000, 9000)),
}
CHURN = "churn"
MOVES = {  # monthly chances
    "Free": [("Early", 0.08), (CHURN, 0.04)],
    "Early": [("Mid", 0.04), (CHURN, 0.025)],
    "Mid": [("Early", 0.02), (CHURN, 0.015)],
}
RANDOM_CUSTOMERS = {"Free": 14, "Early": 13, "Mid": 10}
ENTERPRISE_CUSTOMERS = 6
ENTERPRISE_RATES = [Decimal("0.15"), Decimal("0.16"), Decimal("0.18")]
EARLY_LIFE_MONTHS, EARLY_LIFE_CHURN = 6, 2  # churn is twice as likely in a contract's first six months
REACTIVATION_CHANCE = 0.25
ENTERPRISE_DEAL = "Enterprise tier: negotiated rate and SLA"
INTEGRATION_DEAL = "Custom integration project"
SUFFIXES = ["AI", "Labs", "Analytics", "Health", "Commerce", "Legal", "Learning", "Insights", "Security",
            "Finance", "Bio", "Media", "Robotics"]
CONTACT_TITLES = ["VP Engineering", "Head of ML Platform", "FinOps Lead", "Controller"]
LOST_REASONS = [
    "Savings in the pilot were below expectations",
    "Negotiated a discount directly with their model provider",
    "Security review: needed an on-prem deployment",
    "Budget moved to an in-house platform team",
]

# name, reference, month of sign-up, tier, then (month, move) events
SHOWCASE = [
    ("Kestrel Commerce", "kestrel-commerce", 0, "Free", [(3, "Early"), (9, "Mid")]),
    ("Parallax Legal", "parallax-legal", 1, "Early", [(12, CHURN), (17, "Mid")]),
    ("Cobalt Media", "cobalt-media", 2, "Mid", [(11, "Early")]),
]
# name, reference, month it starts, yearly platform fee, share of savings, (month, new yearly fee) renewals
ENTERPRISE_SHOWCASE = (
    "Brightline Health", "brightline-health", 2, Decimal("48000"), Decimal("0.18"), [(14, Decimal("60000"))]
)
PORTAL_CUSTOMERS = ["brightline-health", "kestrel-commerce", "parallax-legal"]


def planned_customers(scale: float) -> int:
    return 1 + len(SHOWCASE) + sum(max(1, round(n * scale)) for n in RANDOM_CUSTOMERS.values()) + max(
        1, round(ENTERPRISE_CUSTOMERS * scale)
    )


def _lines(tier: str, currency: str) -> dict[str, LineSpec]:
    return {
        "platform": LineSpec(description="Platform fee", kind=ContractLine.Kind.RECURRING,
                             unit_price=money(TIERS[tier].platform_fee, currency)),
        "savings": LineSpec(description="Share of verified savings", kind=ContractLine.Kind.USAGE,
                            unit_price=money(TIERS[tier].savings_rate, currency)),
    }


def _customer(ctx: DemoContext, name: str, ref: str, start, tier: str, segment: str, cac: tuple[int, int]):
    return customer_add(
        ctx,
        name=name,
        ref=ref,
        first_contact_on=start - timedelta(days=ctx.rng.randint(7, 90)),
        acquisition_cost=Decimal(ctx.rng.randint(*cac)),
        domain=domain_for(name, "ai" if name.endswith(" AI") else "com"),
        contacts=ctx.rng.randint(1, 3),
        titles=CONTACT_TITLES,
        tier=tier,
        segment=segment,
        **us_address(ctx),
    )


def _random_events(ctx: DemoContext, start, tier: str) -> list[tuple]:
    """Dated moves: ("tier", first day, tier), ("churn", last day), ("return", start, tier)."""
    events, current, active, returns_on = [], tier, True, None
    contract_month = month_start(start)
    month = add_months(start, 1)
    while month <= ctx.today:
        if active:
            roll = ctx.rng.random()
            months_in = (month.year - contract_month.year) * 12 + month.month - contract_month.month
            for target, chance in MOVES[current]:
                if target == CHURN and months_in < EARLY_LIFE_MONTHS:
                    chance *= EARLY_LIFE_CHURN
                if roll < chance:
                    if target == CHURN:
                        events.append(("churn", month - timedelta(days=1)))
                        active = False
                        if ctx.rng.random() < REACTIVATION_CHANCE:
                            returns_on = add_months(month, ctx.rng.randint(3, 8))
                    else:
                        events.append(("tier", month, target))
                        current = target
                    break
                roll -= chance
        elif returns_on is not None and month >= returns_on:
            current = ctx.rng.choice(["Early", "Mid"])
            events.append(("return", ctx.day_in_month(month), current))
            contract_month = month
            active, returns_on = True, None
        month = add_months(month, 1)
    return events


def _live(ctx: DemoContext, customer, start, tier: str, events: list[tuple]) -> str:
    """Replay the customer's contract history through the services; return the last tier."""
    sub = subscribe(customer, title="AI spend optimization", start=start, lines=_lines(tier, ctx.currency))
    for event in events:
        if event[0] == "tier":
            _, effective_on, new_tier = event
            for key, spec in _lines(new_tier, ctx.currency).items():
                if spec.unit_price != sub.lines[key].unit_price:
                    sub.change(key, effective_on=effective_on, unit_price=spec.unit_price)
            tier = new_tier
        elif event[0] == "churn":
            sub.cancel(last_day=event[1])
        else:
            _, start, tier = event
            sub = subscribe(customer, title="AI spend optimization", start=start, lines=_lines(tier, ctx.currency))
    return tier


def _set_tier(customer, tier: str) -> None:
    if customer.tier != tier:
        customer.tier = tier
        customer.segment = TIERS[tier].segment
        customer.save(update_fields=["tier", "segment", "updated_at"])


def _showcase(ctx: DemoContext) -> list:
    customers = [_enterprise_customer(ctx, *ENTERPRISE_SHOWCASE)]
    for name, ref, month, tier, moves in SHOWCASE:
        ctx.used_names.add(name)
        start = add_months(ctx.history_start, month) + timedelta(days=5)
        customer = _customer(ctx, name, ref, start, tier, TIERS[tier].segment, TIERS[tier].cac)
        events = []
        for move_month, target in moves:
            first = add_months(ctx.history_start, move_month)
            if target == CHURN:
                events.append(("churn", first - timedelta(days=1)))
            elif events and events[-1][0] == "churn":
                events.append(("return", first + timedelta(days=9), target))
            else:
                events.append(("tier", first, target))
        _set_tier(customer, _live(ctx, customer, start, tier, events))
        customers.append(customer)
        ctx.tick()
    return customers


def _enterprise_customer(ctx: DemoContext, name, ref, month, yearly_fee, rate, renewals):
    """An annual negotiated contract; ``renewals`` are (month, new yearly platform fee)."""
    ctx.used_names.add(name)
    start = add_months(ctx.history_start, month)
    customer = _customer(ctx, name, ref, start - timedelta(days=60), "Enterprise", "enterprise", (15000, 45000))
    lines = {
        "platform": LineSpec(description="Platform fee and SLA", kind=ContractLine.Kind.RECURRING,
                             unit_price=money(yearly_fee, ctx.currency)),
        "savings": LineSpec(description="Share of verified savings (negotiated)", kind=ContractLine.Kind.USAGE,
                            unit_price=money(rate, ctx.currency)),
    }
    sub = subscribe(customer, title="Enterprise optimization agreement", start=start, lines=lines,
                    billing_interval=BillingInterval.ANNUAL)
    for renewal_month, fee in renewals:
        sub.change("platform", effective_on=add_months(ctx.history_start, renewal_month),
                   unit_price=money(fee, ctx.currency))
    ctx.tick()
    return customer


def _random_enterprise(ctx: DemoContext) -> list:
    customers = []
    for _ in range(ctx.count(ENTERPRISE_CUSTOMERS)):
        name = us_company(ctx, SUFFIXES)
        month = ctx.rng.randint(0, 20)
        first_yearly = yearly = round_to(Decimal(ctx.rng.uniform(2000, 8000)), 250) * 12
        renewals = []
        for renewal_month in range(month + 12, 24, 12):
            if ctx.rng.random() < 0.5:
                yearly = round_to(yearly * Decimal(ctx.rng.uniform(1.1, 1.3)), 1200)
                renewals.append((renewal_month, yearly))
        rate = ctx.rng.choice(ENTERPRISE_RATES)
        customers.append(_enterprise_customer(ctx, name, slugify(name), month, first_yearly, rate, renewals))
    return customers


def build(ctx: DemoContext) -> list:
    """Build the optimizer's customers, contracts and pipeline. Returns the portal customers."""
    showcase = _showcase(ctx)
    by_tier = {"Free": [], "Early": [], "Mid": []}
    for tier, base in RANDOM_CUSTOMERS.items():
        for _ in range(ctx.count(base)):
            name = us_company(ctx, SUFFIXES)
            start = ctx.start_in_history(skew=1.5)
            customer = _customer(ctx, name, slugify(name), start, tier, TIERS[tier].segment, TIERS[tier].cac)
            final = _live(ctx, customer, start, tier, _random_events(ctx, start, tier))
            _set_tier(customer, final)
            by_tier[final].append(customer)
            ctx.tick()
    enterprise = _random_enterprise(ctx) + [showcase[0]]
    _won_and_lost(ctx, by_tier["Mid"] + enterprise)
    _pipeline(ctx, by_tier, enterprise)
    return [c for c in showcase if c.external_ref in PORTAL_CUSTOMERS]


def _won_and_lost(ctx: DemoContext, accounts: list) -> None:
    """Services deals won in the past (integration projects, premium support) and some lost ones."""
    for customer in ctx.rng.sample(accounts, k=min(len(accounts), max(2, ctx.count(5)))):
        closed_on = ctx.start_in_history()
        if ctx.rng.random() < 0.5:
            deal = Deal(INTEGRATION_DEAL, ctx.price(15000, 40000, 1000), kind=Opportunity.Kind.ONE_OFF,
                        customer=customer)
        else:
            deal = Deal("Premium support and SLA", ctx.price(6000, 18000, 500), customer=customer)
        start = min(closed_on + timedelta(days=14), ctx.today)
        contract = won_deal(ctx, deal, closed_on=closed_on, start=start)
        if deal.kind == Opportunity.Kind.ONE_OFF:
            project_delivered(contract, last_day=start + timedelta(days=ctx.rng.randint(30, 75)), today=ctx.today)
    for index in range(max(2, ctx.count(5))):
        deal = Deal(ENTERPRISE_DEAL, ctx.price(24000, 96000, 1000), prospect_name=us_company(ctx, SUFFIXES))
        lost_deal(ctx, deal, closed_on=ctx.start_in_history(), reason=LOST_REASONS[index % len(LOST_REASONS)])


def _pipeline(ctx: DemoContext, by_tier: dict, enterprise: list) -> None:
    deals = [
        Deal(ENTERPRISE_DEAL, ctx.price(24000, 96000, 1000), customer=c, next_step="ROI review with their CFO")
        for c in by_tier["Mid"]
    ]
    deals += [
        Deal("Upgrade to Mid tier", money("6000", ctx.currency), customer=c, next_step="Show the analytics dashboard")
        for c in by_tier["Early"][: max(1, len(by_tier["Early"]) // 2)]
    ]
    deals += [
        Deal(INTEGRATION_DEAL, ctx.price(15000, 40000, 1000), kind=Opportunity.Kind.ONE_OFF, customer=c,
             next_step="Scope the integration")
        for c in enterprise[:2]
    ]
    while len(deals) < max(9, ctx.count(20)):
        deals.append(Deal(ENTERPRISE_DEAL, ctx.price(24000, 120000, 1000), prospect_name=us_company(ctx, SUFFIXES),
                          next_step="Baseline their AI spend"))
    ctx.rng.shuffle(deals)
    open_pipeline(ctx, deals)


# --- billing data (see portal.demo.billing) --------------------------------------------------

MINIMUM_INVOICE_AMOUNT = Decimal("0")
# How its customers pay, printed on every invoice: a bank transfer quoting the invoice number.
PAYMENT_DETAILS = {
    "payment_method": "iban", "iban": "DE89 3704 0044 0532 0130 00", "bic": "COBADEFFXXX", "bank_name": "Commerzbank",
    "payment_reference_text": "",
}
# Each customer's optimizer sends one savings report a month: its AI spend at the old prices and
# routing (baseline) and what it actually paid (optimized). Savings = baseline − optimized, never < 0.
METRICS = [
    {"code": "savings", "name": "Verified savings", "event_code": "savings_report", "aggregation": "sum",
     "field": "savings", "unit": "USD"},
    {"code": "baseline_spend", "name": "AI spend before optimization", "event_code": "savings_report",
     "aggregation": "sum", "field": "baseline", "unit": "USD"},
    {"code": "optimized_spend", "name": "AI spend after optimization", "event_code": "savings_report",
     "aggregation": "sum", "field": "optimized", "unit": "USD"},
]
MONTHLY_AI_SPEND = {  # tier: (low, high) baseline spend per month, DOMAIN's tier bands
    "Free": (250, 950),
    "Early": (1500, 9500),
    "Mid": (12000, 90000),
    "Enterprise": (110000, 380000),
}
SAVINGS_SHARE = (0.12, 0.35)  # of the baseline that the optimizer saves
CREDITS = Credits(
    credit_note="Savings overstated after a provider price change mid-month",
    credit_note_share=Decimal("0.08"),
    balance=("Goodwill for the dashboard outage", Decimal("250.00")),
    pending=("Pilot extension agreed with their CFO", Decimal("400.00")),
)


def usage_terms(line) -> dict:
    """A percentage of verified savings: the line's unit price is the rate (0.20 = 20 %, Enterprise
    its negotiated rate)."""
    return {
        "charge_model": "percentage",
        "metric": "savings",
        "terms": {"rate_percent": f"{(line.unit_price.amount * 100).normalize():f}"},
    }


def _tier_of(line, platform_fee) -> str:
    if line.contract.billing_interval == BillingInterval.ANNUAL:
        return "Enterprise"
    if line.unit_price.amount == 0:
        return "Free"
    return "Mid" if platform_fee and platform_fee >= TIERS["Mid"].platform_fee else "Early"


def savings_report(ctx, ref: str, month, tier: str, share: Decimal) -> dict:
    """The month's savings report (the current month's is month-to-date, dated today)."""
    baseline = Decimal(round_to(Decimal(ctx.rng.uniform(*MONTHLY_AI_SPEND[tier])), 1)) * share
    baseline = baseline.quantize(Decimal("0.01"))
    optimized = (baseline * Decimal(1 - ctx.rng.uniform(*SAVINGS_SHARE))).quantize(Decimal("0.01"))
    suffix = "" if month.closed else "-to-date"
    return {
        "customer": ref,
        "metric": "savings_report",
        "timestamp": ctx.moment(month.last, hour=20 if month.closed else 8).isoformat(),
        "idempotency_key": f"{ref}:savings:{month.key()}{suffix}",
        "properties": {
            "baseline": f"{baseline}",
            "optimized": f"{optimized}",
            "savings": f"{savings_of(baseline=baseline, optimized=optimized)}",
        },
    }


def usage_events(ctx, month) -> list[dict]:
    """One savings report per customer whose share of savings is billed in ``month``."""
    kinds = [ContractLine.Kind.USAGE, ContractLine.Kind.RECURRING]
    events = []
    for lines in lines_active_in(ctx.tenant, month, kinds=kinds).values():
        usage = [line for line in lines if line.kind == ContractLine.Kind.USAGE]
        if not usage:
            continue
        line = usage[-1]
        fees = [ln.unit_price.amount for ln in lines if ln.kind == ContractLine.Kind.RECURRING
                and ln.contract_id == line.contract_id]
        share = active_days_share(line, month) * usage_factor(ctx, line.contract.customer_id, month.first)
        if share > 0:
            tier = _tier_of(line, fees[-1] if fees else None)
            events.append(savings_report(ctx, line.contract.customer.external_ref, month, tier, share))
    return events


# --- customer economics (see portal.demo.economics) ------------------------------------------

PRICE_PLANS = [
    {"code": "rate-15-plus-300", "name": "15 % of savings plus $300 a month", "base_fee": "300",
     "charge_model": "percentage", "metric": "savings", "terms": {"rate_percent": "15"}},
    {"code": "rate-25", "name": "25 % of savings, no platform fee", "base_fee": "0", "charge_model": "percentage",
     "metric": "savings", "terms": {"rate_percent": "25"}},
    {"code": "flat-1500", "name": "Flat $1,500 a month", "base_fee": "1500", "charge_model": "flat"},
]
ANOMALY_RULES = []
# Analysing a customer's AI spend costs compute: a fixed part and a share of the spend analysed,
# imported each month from the cloud bill.
ANALYSIS_COST = (Decimal("35"), Decimal("0.015"))
COST_SOURCE = "imported"
COST_NOTE = "Compute for the analysis, from the cloud bill"


def customer_costs(ctx, first, last) -> dict[int, Decimal]:
    """Each customer's cost to serve in the month ``first``..``last``: the fixed part plus the share
    of the AI spend its savings reports analysed (the metric ``baseline_spend``, read through the
    usage-event store in use)."""
    fixed, share = ANALYSIS_COST
    totals = usage_totals(tenant=ctx.tenant, period_start=first, period_end=last)
    return {
        customer_id: (fixed + analysed * share).quantize(Decimal("0.01"))
        for (customer_id, code), analysed in sorted(totals.items())
        if code == "baseline_spend"
    }
