"""The usage-priced job API (seed 003): plans with included jobs and an overage price per job.

Every self-serve customer has one subscription with two lines, the plan fee and the price per job
over the included quota; a plan change is a dated new version of both. Enterprise accounts come from
won deals: an annual agreement with unlimited jobs, hence no overage line.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils.text import slugify

from customers.models import BillingInterval, ContractLine
from customers.periods import add_months, month_start
from customers.services import LineSpec
from portal.demo.billing import Credits, active_days_share, lines_active_in, usage_factor
from portal.demo.common import DemoContext, customer_add, domain_for, money, round_to, us_address, us_company
from portal.demo.contracts import Subscription, subscribe
from portal.demo.pipeline import Deal, lost_deal, open_pipeline, won_deal
from revenue.economics.simulator import MODELS as SIMULATED_MODELS
from revenue.economics.simulator import TASKS as SIMULATED_TASKS

TENANT = {
    "slug": "jobapi",
    "name": "Jobstream API",
    "legal_name": "Jobstream API, Inc.",
    "reporting_currency": "USD",
    "time_zone": "America/New_York",
    "locale": "en",
    "invoice_number_prefix": "JS-",
    "vat_rate": Decimal("0"),
    "country": "US",
    "address": "200 Varick St, Suite 610\nNew York, NY 10014",
    "peppol_id": "0060:081466849",
    "payment_terms_days": 14,
}


@dataclass(frozen=True)
class Plan:
    fee: Decimal  # per month
    overage: Decimal  # per job over the included quota
    segment: str
    cac: tuple[int, int]


PLANS = {
    "Free": Plan(Decimal("0"), Decimal("0.00"), "self-serve", (20, 80)),
    "Starter": Plan(Decimal("29"), Decimal("0.50"), "SMB", (150, 400)),
    "Professional": Plan(Decimal("99"), Decimal("0.30"), "SMB", (400, 1200)),
    "Business": Plan(Decimal("299"), Decimal("0.20"), "mid-market", (1500, 4000)),
}
# Off the plan fee for customers who used 80–100 % of their quota (DOMAIN.md, job API rules).
UTILISATION_DISCOUNT_PERCENT = {"Starter": 2, "Professional": 3, "Business": 4}
SUBSCRIPTION_TITLE = "Job API subscription"
ENTERPRISE_DEAL = "Enterprise agreement, unlimited jobs"
CHURN = "churn"
# Monthly chances of each move; annual subscribers decide at the anniversary with six times the odds.
MOVES = {
    "Free": [("Starter", 0.06), ("Professional", 0.015), (CHURN, 0.04)],
    "Starter": [("Professional", 0.04), ("Free", 0.015), (CHURN, 0.03)],
    "Professional": [("Business", 0.03), ("Starter", 0.02), (CHURN, 0.02)],
    "Business": [("Professional", 0.015), (CHURN, 0.01)],
}
# Customers leave most in their first months, and many who leave step down a plan first.
EARLY_LIFE_MONTHS, EARLY_LIFE_CHURN = 6, 2  # churn is twice as likely in a contract's first six months
STEP_DOWN_BEFORE_CHURN = 0.5  # of monthly paying customers about to churn, the share who step down first
LOWER_PLAN = {"Business": "Professional", "Professional": "Starter"}
RANDOM_CUSTOMERS = {"Free": 38, "Starter": 34, "Professional": 24, "Business": 14}
ENTERPRISE_CUSTOMERS = 6
ANNUAL_SHARE = 0.2  # of Professional and Business sign-ups
REACTIVATION_CHANCE = 0.3
SUFFIXES = ["Recruiting", "Logistics", "Payroll", "Labs", "Health", "Commerce", "Software", "Media", "Systems",
            "Robotics", "Freight", "Studio", "Cloud", "Data", "Insurance"]
CONTACT_TITLES = ["CTO", "Head of Engineering", "Finance Manager", "Developer"]
LOST_REASONS = [
    "Chose to build the queue in-house",
    "Went with a competitor on price",
    "Budget frozen for the year",
    "No decision: our champion left the company",
]

# name, reference, month of sign-up (0 = first month of the history), plan, then (month, move) events
SHOWCASE = [
    ("Fernhill Recruiting", "fernhill-recruiting", 1, "Free", [(3, "Starter"), (8, "Professional"), (15, "Business")]),
    ("Tidewater Logistics", "tidewater-logistics", 2, "Business", [(13, "Professional")]),
    ("Quillon Payroll", "quillon-payroll", 4, "Starter", [(7, "Professional"), (12, CHURN), (16, "Starter")]),
]
PORTAL_CUSTOMERS = [ref for _, ref, *_ in SHOWCASE]


def planned_customers(scale: float) -> int:
    return len(SHOWCASE) + sum(max(1, round(n * scale)) for n in RANDOM_CUSTOMERS.values()) + max(
        1, round(ENTERPRISE_CUSTOMERS * scale)
    )


def _plan_lines(plan: str, interval: int, currency: str) -> dict[str, LineSpec]:
    return {
        "plan": LineSpec(
            description="Plan fee", kind=ContractLine.Kind.RECURRING, unit_price=_fee(plan, interval, currency)
        ),
        "overage": LineSpec(
            description="Processed jobs",
            kind=ContractLine.Kind.USAGE,
            unit_price=money(PLANS[plan].overage, currency),
        ),
    }


def _fee(plan: str, interval: int, currency: str):
    # Paying a year up front buys twelve months for the price of ten.
    return money(PLANS[plan].fee * (10 if interval == BillingInterval.ANNUAL else 1), currency)


def _customer(ctx: DemoContext, name: str, ref: str, first_contact_on, plan: str, segment: str, cac: tuple[int, int]):
    return customer_add(
        ctx,
        name=name,
        ref=ref,
        first_contact_on=first_contact_on,
        acquisition_cost=Decimal(ctx.rng.randint(*cac)),
        domain=domain_for(name, "com"),
        contacts=ctx.rng.randint(1, 3),
        titles=CONTACT_TITLES,
        tier=plan,
        segment=segment,
        **us_address(ctx),
    )


def _signed_up(ctx: DemoContext, start):
    """Self-serve: the first contact is the sign-up for the docs, at most a month before paying."""
    return start - timedelta(days=ctx.rng.randint(0, 30))


def _random_events(ctx: DemoContext, start, plan: str, interval: int) -> list[tuple]:
    """Dated moves: ("plan", first day, plan), ("churn", last day) and ("return", start, plan)."""
    events, current, active, returns_on = [], plan, True, None
    contract_month = month_start(start)
    month = add_months(start, 1)
    while month <= ctx.today:
        if active:
            months_in = (month.year - contract_month.year) * 12 + month.month - contract_month.month
            annual = interval == BillingInterval.ANNUAL
            if not annual or months_in % 12 == 0:
                roll = ctx.rng.random()
                for target, chance in MOVES[current]:
                    chance *= 6 if annual else 1
                    if target == CHURN and months_in < EARLY_LIFE_MONTHS:
                        chance *= EARLY_LIFE_CHURN
                    if roll < chance:
                        if target == CHURN:
                            if not annual and current in LOWER_PLAN and ctx.rng.random() < STEP_DOWN_BEFORE_CHURN:
                                step_down = add_months(month, -ctx.rng.randint(1, 2))
                                if step_down > contract_month and (not events or events[-1][1] < step_down):
                                    events.append(("plan", step_down, LOWER_PLAN[current]))
                            events.append(("churn", month - timedelta(days=1)))
                            active = False
                            if ctx.rng.random() < REACTIVATION_CHANCE:
                                returns_on = add_months(month, ctx.rng.randint(2, 8))
                        else:
                            events.append(("plan", month, target))
                            current = target
                        break
                    roll -= chance
        elif returns_on is not None and month >= returns_on:
            current = ctx.rng.choice(["Starter", "Starter", "Professional"])
            contract_month = month
            events.append(("return", ctx.day_in_month(month), current))
            active, returns_on = True, None
        month = add_months(month, 1)
    return events


def _live(ctx: DemoContext, customer, start, plan: str, interval: int, events: list[tuple]) -> str:
    """Replay the customer's subscription history through the services; return the last plan."""
    lines = _plan_lines(plan, interval, ctx.currency)
    sub = subscribe(customer, title=SUBSCRIPTION_TITLE, start=start, lines=lines, billing_interval=interval)
    for event in events:
        if event[0] == "plan":
            _, effective_on, plan = event
            sub.change("plan", effective_on=effective_on, unit_price=_fee(plan, interval, ctx.currency))
            sub.change("overage", effective_on=effective_on, unit_price=money(PLANS[plan].overage, ctx.currency))
        elif event[0] == "churn":
            sub.cancel(last_day=event[1])
        else:
            _, start, plan = event
            interval = BillingInterval.MONTHLY
            lines = _plan_lines(plan, interval, ctx.currency)
            sub = subscribe(customer, title=SUBSCRIPTION_TITLE, start=start, lines=lines)
    return plan


def _showcase(ctx: DemoContext) -> list:
    customers = []
    for name, ref, month, plan, moves in SHOWCASE:
        ctx.used_names.add(name)
        start = add_months(ctx.history_start, month) + timedelta(days=8)
        customer = _customer(ctx, name, ref, _signed_up(ctx, start), plan, PLANS[plan].segment, PLANS[plan].cac)
        events = []
        for move_month, target in moves:
            first = add_months(ctx.history_start, move_month)
            if target == CHURN:
                events.append(("churn", first - timedelta(days=1)))
            elif events and events[-1][0] == "churn":
                events.append(("return", first + timedelta(days=4), target))
            else:
                events.append(("plan", first, target))
        final = _live(ctx, customer, start, plan, BillingInterval.MONTHLY, events)
        _set_tier(customer, final)
        customers.append(customer)
        ctx.tick()
    return customers


def _set_tier(customer, plan: str) -> None:
    if customer.tier != plan:
        customer.tier = plan
        customer.segment = PLANS[plan].segment if plan in PLANS else customer.segment
        customer.save(update_fields=["tier", "segment", "updated_at"])


def _enterprise(ctx: DemoContext) -> list:
    """Enterprise accounts, each from a won deal: an annual agreement, some expanded at renewal."""
    customers = []
    for _ in range(ctx.count(ENTERPRISE_CUSTOMERS)):
        name = us_company(ctx, SUFFIXES)
        closed_on = ctx.start_in_history(skew=1.3)
        start = add_months(closed_on, 1)
        if start > ctx.today:
            start = closed_on
        first_contact_on = closed_on - timedelta(days=ctx.rng.randint(60, 180))
        customer = _customer(ctx, name, slugify(name), first_contact_on, "Enterprise", "enterprise", (10000, 30000))
        yearly = round_to(Decimal(ctx.rng.uniform(18000, 60000)), 1000)
        deal = Deal(ENTERPRISE_DEAL, money(yearly, ctx.currency), customer=customer)
        contract = won_deal(ctx, deal, closed_on=closed_on, start=start, sales_days=90)
        sub = Subscription(contract=contract, lines={"plan": contract.lines.get()})
        renewal = add_months(start, 12)
        while renewal <= ctx.today:
            if ctx.rng.random() < 0.5:
                yearly = round_to(yearly * Decimal(ctx.rng.uniform(1.1, 1.25)), 1000)
                sub.change("plan", effective_on=renewal, unit_price=money(yearly, ctx.currency))
            renewal = add_months(renewal, 12)
        customers.append(customer)
        ctx.tick()
    return customers


def build(ctx: DemoContext) -> list:
    """Build the job API's customers, subscriptions and pipeline. Returns the portal customers."""
    showcase = _showcase(ctx)
    business = []
    for plan, base in RANDOM_CUSTOMERS.items():
        for _ in range(ctx.count(base)):
            name = us_company(ctx, SUFFIXES)
            start = ctx.start_in_history(skew=1.6)
            interval = BillingInterval.MONTHLY
            if plan in ("Professional", "Business") and ctx.rng.random() < ANNUAL_SHARE:
                interval = BillingInterval.ANNUAL
            customer = _customer(ctx, name, slugify(name), _signed_up(ctx, start), plan, PLANS[plan].segment,
                                 PLANS[plan].cac)
            final = _live(ctx, customer, start, plan, interval, _random_events(ctx, start, plan, interval))
            _set_tier(customer, final)
            if final == "Business":
                business.append(customer)
            ctx.tick()
    enterprise = _enterprise(ctx)
    _pipeline(ctx, business + [showcase[0]], enterprise)
    return showcase


def _pipeline(ctx: DemoContext, business: list, enterprise: list) -> None:
    deals = [
        Deal("Move to Enterprise agreement", ctx.price(15000, 40000, 1000), customer=customer,
             next_step="Security review with their CTO")
        for customer in business
    ]
    deals += [
        Deal("Second region and 99.95% SLA", ctx.price(6000, 15000, 500), customer=customer,
             next_step="Send the SLA draft")
        for customer in enterprise
    ]
    while len(deals) < max(9, ctx.count(16)):
        deals.append(Deal(ENTERPRISE_DEAL, ctx.price(18000, 72000, 1000), prospect_name=us_company(ctx, SUFFIXES),
                          next_step="Book a technical deep-dive"))
    ctx.rng.shuffle(deals)
    open_pipeline(ctx, deals)
    for index in range(max(2, ctx.count(6))):
        deal = Deal(ENTERPRISE_DEAL, ctx.price(18000, 60000, 1000), prospect_name=us_company(ctx, SUFFIXES))
        lost_deal(ctx, deal, closed_on=ctx.start_in_history(), reason=LOST_REASONS[index % len(LOST_REASONS)])


# --- billing data (see portal.demo.billing) --------------------------------------------------

MINIMUM_INVOICE_AMOUNT = Decimal("1.00")
# How its customers pay, printed on every invoice: a bank transfer quoting the invoice number.
PAYMENT_DETAILS = {
    "payment_method": "iban", "iban": "GB82 WEST 1234 5698 7654 32", "bic": "WESTGB2L", "bank_name": "Westminster Bank",
    "payment_reference_text": "Questions about an invoice: billing@jobapi.example.com",
}
# One `processed_jobs` event per job carries its status, compute time and data; created and
# confirmed jobs arrive as daily counts. Failed jobs, compute and data are read from the job events.
METRICS = [
    {"code": "created_jobs", "name": "Created jobs", "aggregation": "sum", "field": "quantity", "unit": "jobs"},
    {"code": "processed_jobs", "name": "Processed jobs", "aggregation": "count", "unit": "jobs"},
    {"code": "confirmed_jobs", "name": "Confirmed jobs", "aggregation": "sum", "field": "quantity", "unit": "jobs"},
    {"code": "failed_jobs", "name": "Failed jobs", "event_code": "processed_jobs", "aggregation": "count",
     "filters": {"status": ["failed"]}, "unit": "jobs"},
    {"code": "compute_ms", "name": "Compute time", "event_code": "processed_jobs", "aggregation": "sum",
     "field": "compute_ms", "unit": "ms"},
    {"code": "data_gb", "name": "Data processed", "event_code": "processed_jobs", "aggregation": "sum",
     "field": "data_gb", "unit": "GB"},
]
INCLUDED_JOBS = {"Free": 10, "Starter": 100, "Professional": 500, "Business": 2000}
PLAN_BY_OVERAGE = {plan.overage: name for name, plan in PLANS.items()}
GRACE_PERCENT = 1
# How much of its quota a customer uses in a month: (profile, share of customers, low, high).
USAGE_PROFILES = [("light", 0.5, 0.2, 0.6), ("power", 0.3, 0.8, 1.0), ("heavy", 0.2, 1.0, 1.3)]
SHOWCASE_PROFILES = {"fernhill-recruiting": "heavy", "tidewater-logistics": "power", "quillon-payroll": "light"}
ENTERPRISE_JOBS = (1500, 4000)
FAILURE_RATES = (0.002, 0.015)  # share of jobs that fail for system reasons, per customer
# Every job runs a short pipeline of model calls, so its event carries the provider, model, task
# type and tokens of the pipeline, which the tenant's ModelPrice table prices (cost to serve).
# Most customers get the usual model mix; premium ones insist on the largest models.
CALLS_PER_JOB = 4
PREMIUM_SHARE = 0.2
STANDARD_MODELS = [(provider, model, share) for provider, model, _, _, share in SIMULATED_MODELS]
PREMIUM_MODELS = [("openai", "gpt-4", 0.45), ("anthropic", "claude-opus-4", 0.45), ("openai", "gpt-4-turbo", 0.10)]
MODEL_PRICES = [(provider, model, price_in, price_out) for provider, model, price_in, price_out, _ in SIMULATED_MODELS]
PRICE_CUT = ("openai", "gpt-4-turbo", "5", "15", 2)  # new list prices from the first of the month two months ago
SPIKE = ("fernhill-recruiting", 5, 6)  # this customer ran six days' jobs on one day, five days ago
CREDITS = Credits(
    credit_note="Queue outage on the 12th: jobs delayed more than four hours",
    credit_note_share=Decimal("0.10"),
    balance=("Goodwill for the webhook delivery delays", Decimal("25.00")),
    pending=("Onboarding credit promised at the plan upgrade", Decimal("150.00")),
)


def usage_terms(line) -> dict:
    """Included quota with overage: the plan's included jobs, its overage price, 1 % grace, failed
    jobs credited in full, and the plan's quota utilisation discount on the plan fee. The line's
    overage price names the plan."""
    plan = PLAN_BY_OVERAGE[line.unit_price.amount]
    return {
        "charge_model": "included_quota",
        "metric": "processed_jobs",
        "terms": {
            "included": INCLUDED_JOBS[plan],
            "overage_unit_price": f"{PLANS[plan].overage:.2f}",
            "grace_percent": GRACE_PERCENT,
            "failed_metric": "failed_jobs",
            **(
                {"utilisation_discount_percent": str(UTILISATION_DISCOUNT_PERCENT[plan])}
                if plan in UTILISATION_DISCOUNT_PERCENT
                else {}
            ),
        },
    }


def _profile(ctx, customer_id: int, ref: str, cache: dict) -> tuple[float, float, float, bool]:
    """(low, high) share of the quota used, failure rate, premium models or not."""
    if customer_id not in cache:
        roll, chosen = ctx.rng.random(), USAGE_PROFILES[-1]
        for profile in USAGE_PROFILES:
            if roll < profile[1]:
                chosen = profile
                break
            roll -= profile[1]
        if ref in SHOWCASE_PROFILES:
            chosen = next(p for p in USAGE_PROFILES if p[0] == SHOWCASE_PROFILES[ref])
        cache[customer_id] = (chosen[2], chosen[3], ctx.rng.uniform(*FAILURE_RATES), ctx.rng.random() < PREMIUM_SHARE)
    return cache[customer_id]


def _models_and_tokens(ctx, premium: bool, failed: bool) -> dict:
    """The model, task type and tokens of one job (a failed job returns no output)."""
    models = PREMIUM_MODELS if premium else STANDARD_MODELS
    provider, model, _ = ctx.rng.choices(models, weights=[m[2] for m in models])[0]
    task = ctx.rng.choices(list(SIMULATED_TASKS), weights=[t[2] for t in SIMULATED_TASKS.values()])[0]
    (in_low, in_high), (out_low, out_high), _ = SIMULATED_TASKS[task]
    return {
        "provider": provider, "model": model, "task_type": task,
        "input_tokens": CALLS_PER_JOB * ctx.rng.randint(in_low, in_high),
        "output_tokens": 0 if failed else CALLS_PER_JOB * ctx.rng.randint(out_low, out_high),
    }


def monthly_jobs(ctx, plan: str | None, low: float, high: float) -> int:
    """Jobs in a whole month: a share of the plan's quota, or an Enterprise volume (``plan`` None)."""
    if plan is None:
        return ctx.rng.randint(*ENTERPRISE_JOBS)
    jobs = round(INCLUDED_JOBS[plan] * ctx.rng.uniform(low, high))
    return min(jobs, INCLUDED_JOBS["Free"]) if plan == "Free" else jobs  # Free stops at its quota


def job_events(ctx, ref: str, month, jobs: int, failure_rate: float, premium: bool = False,
               burst: tuple[int, int] | None = None) -> list[dict]:
    """``jobs`` processed-job events spread over ``month`` up to its last usage day, plus the daily
    created and confirmed counts; ``burst`` (day of month, jobs) adds jobs on one day. Keys are
    stable: the same month gives the same keys."""
    days = month.last.day
    per_day: dict[int, list[bool]] = {}
    for _ in range(jobs):
        per_day.setdefault(ctx.rng.randint(1, days), []).append(ctx.rng.random() < failure_rate)
    if burst is not None:
        per_day.setdefault(burst[0], []).extend(ctx.rng.random() < failure_rate for _ in range(burst[1]))
    events = []
    for day in sorted(per_day):
        on = month.first.replace(day=day)
        failures = per_day[day]
        for number, failed in enumerate(failures):
            moment = ctx.moment(on, hour=ctx.rng.randint(0, 23))
            events.append({
                "customer": ref, "metric": "processed_jobs", "timestamp": moment.isoformat(),
                "idempotency_key": f"{ref}:job:{on}:{number}",
                "properties": {
                    "status": "failed" if failed else "succeeded",
                    "compute_ms": ctx.rng.randint(300, 1500) if failed else ctx.rng.randint(800, 9000),
                    "data_gb": f"{ctx.rng.uniform(0.002, 0.25):.3f}",
                    **_models_and_tokens(ctx, premium, failed),
                },
            })
        closing = ctx.moment(on, hour=23).isoformat()
        created = len(failures) + (ctx.rng.randint(0, 3) if on == ctx.today else 0)  # some still queued today
        events.append({"customer": ref, "metric": "created_jobs", "timestamp": closing, "quantity": created,
                       "idempotency_key": f"{ref}:created:{on}"})
        events.append({"customer": ref, "metric": "confirmed_jobs", "timestamp": closing,
                       "quantity": failures.count(False), "idempotency_key": f"{ref}:confirmed:{on}"})
    return events


def usage_events(ctx, month) -> list[dict]:
    """A month of jobs for every customer with a plan (or an Enterprise agreement) billed in it:
    light customers use a fifth to 60 % of their quota, power users 80–100 %, heavy ones go over."""
    profiles = ctx.memo.setdefault("job_profiles", {})
    kinds = [ContractLine.Kind.USAGE, ContractLine.Kind.RECURRING]
    events = []
    for customer_id, lines in lines_active_in(ctx.tenant, month, kinds=kinds).items():
        usage = [line for line in lines if line.kind == ContractLine.Kind.USAGE]
        enterprise = [line for line in lines if line.contract.title == ENTERPRISE_DEAL]
        if not usage and not enterprise:
            continue
        line = (usage or enterprise)[-1]
        plan = PLAN_BY_OVERAGE[line.unit_price.amount] if usage else None
        ref = line.contract.customer.external_ref
        low, high, failure_rate, premium = _profile(ctx, customer_id, ref, profiles)
        share = active_days_share(line, month) * usage_factor(ctx, customer_id, month.first)
        jobs = round(monthly_jobs(ctx, plan, low, high) * share)
        burst = None
        spike_ref, days_ago, days_of_jobs = SPIKE
        spike_day = ctx.today - timedelta(days=days_ago)
        if ref == spike_ref and month.first <= spike_day <= month.last and jobs:
            burst = (spike_day.day, round(jobs / month.last.day * days_of_jobs))
        events += job_events(ctx, ref, month, jobs, failure_rate, premium, burst)
    return events


# --- customer economics (see portal.demo.economics) ------------------------------------------

PRICE_PLANS = [
    {"code": "pure-usage", "name": "Pure usage: $0.25 a job", "base_fee": "0", "charge_model": "per_unit",
     "metric": "processed_jobs", "unit_price": "0.25", "terms": {}},
    {"code": "flat-149", "name": "Flat $149 a month", "base_fee": "149", "charge_model": "flat"},
    {"code": "graduated", "name": "Graduated: $0.30, $0.18 above 500, $0.10 above 5 000", "base_fee": "0",
     "charge_model": "graduated", "metric": "processed_jobs",
     "terms": {"tiers": [{"up_to": "500", "unit_price": "0.30"}, {"up_to": "5000", "unit_price": "0.18"},
                         {"up_to": None, "unit_price": "0.10"}]}},
    {"code": "hybrid", "name": "Hybrid: $49 with 300 jobs, then $0.22", "base_fee": "49",
     "charge_model": "included_quota", "metric": "processed_jobs",
     "terms": {"included": "300", "overage_unit_price": "0.22"}},
]
ANOMALY_RULES = [
    {"name": "AI spend above $40 a day", "metric": "spend", "threshold": "40", "window": "day"},
    {"name": "More than 900 jobs in a week", "metric": "processed_jobs", "threshold": "900", "window": "week"},
]


def model_prices(ctx) -> list[dict]:
    """The list prices of the models the jobs run on, from the start of the history, and one price cut."""
    rows = [{"provider": provider, "model": model, "input_price_per_million": price_in,
             "output_price_per_million": price_out, "effective_on": ctx.history_start}
            for provider, model, price_in, price_out in MODEL_PRICES]
    provider, model, price_in, price_out, months_ago = PRICE_CUT
    rows.append({"provider": provider, "model": model, "input_price_per_million": price_in,
                 "output_price_per_million": price_out, "effective_on": add_months(ctx.today, -months_ago)})
    return rows
