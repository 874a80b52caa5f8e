"""The consultancy (seed 002), in SEK and Swedish: projects, retainers, support and seats.

A customer's life follows the seed's model: an 8-week start package (or a pre-study billed by the
hour), a monthly or yearly advisory retainer that starts as the project ends, often a support
agreement and chat seats later, extra workshops now and then; some leave and a few come back.
"""

from datetime import timedelta
from decimal import Decimal

from django.utils.text import slugify

from billing.models import Invoice
from customers.models import BillingInterval, Contract, ContractLine
from customers.periods import add_months, month_end
from customers.services import LineSpec
from portal.demo.billing import INVOICED_MONTHS, Credits, Month, active_days_share, lines_active_in
from portal.demo.common import DemoContext, customer_add, domain_for, money, round_to
from portal.demo.contracts import Subscription, project_delivered, subscribe
from portal.demo.pipeline import Deal, lost_deal, open_pipeline, won_deal
from revenue.models import Opportunity

TENANT = {
    "slug": "konsult",
    "name": "Satori Konsult",
    "legal_name": "Satori Konsult AB",
    "reporting_currency": "SEK",
    "time_zone": "Europe/Stockholm",
    "locale": "sv",
    "invoice_number_prefix": "SK-",
    "vat_rate": Decimal("25"),
    "vat_number": "SE559123456701",
    "country": "SE",
    "address": "Drottninggatan 55\n111 21 Stockholm",
    "peppol_id": "0007:5591234567",
    "payment_terms_days": 30,
}

START_PACKAGE = "satori-uppstart, 8 veckor"
START_PACKAGE_PRICE = Decimal("300000")
HOURLY_RATE = Decimal("1450")
SEAT_PRICE = Decimal("150")
MONTHLY_RETAINERS = [Decimal("6250"), Decimal("8333"), Decimal("8333"), Decimal("10000"), Decimal("12500")]
WORKSHOPS = [("Workshop: AI-strategi för ledningsgruppen", 35000), ("Workshop: AI i kundservice", 42000),
             ("Workshop: datagrund och informationssäkerhet", 38000)]
RANDOM_CUSTOMERS = 30
WORDS = ["Norrsken", "Fjällvind", "Skärgårds", "Älvdals", "Granskogs", "Havsbris", "Kustlinje", "Stenbro", "Ljungby",
         "Björkvik", "Solberga", "Östanvind", "Vinterviks", "Ekhagens", "Sjöstjärne", "Tallbackens", "Lövnäs",
         "Bergslagens", "Mälardalens", "Vätterns"]
TRADES = ["Logistik AB", "Fastigheter AB", "Bygg AB", "Media AB", "Vård AB", "Energi AB", "Teknik AB",
          "Redovisning AB", "Advokatbyrå AB", "Livsmedel AB", "Försäkring AB", "Handel AB", "Industri AB"]
CITIES = [("Stockholm", "111 22"), ("Göteborg", "411 05"), ("Malmö", "211 20"), ("Uppsala", "753 20"),
          ("Västerås", "722 11"), ("Örebro", "702 10"), ("Linköping", "582 24"), ("Umeå", "903 26"),
          ("Jönköping", "553 16"), ("Lund", "222 21")]
STREETS = ["Storgatan", "Drottninggatan", "Kungsgatan", "Vasagatan", "Sveavägen", "Hamngatan", "Järnvägsgatan",
           "Industrivägen"]
CONTACT_TITLES = ["VD", "CFO", "IT-chef", "Ekonomiansvarig", "Kundtjänstchef"]
SEGMENTS = ["Småföretag", "Medelstora företag", "Medelstora företag", "Storföretag"]
NEXT_STEPS = ["Skicka offert", "Boka uppföljningsmöte", "Demo för ledningsgruppen", "Vänta på budgetbeslut"]
LOST_REASONS = [
    "Ny beslutsfattare ändrade prioriteringarna",
    "Budgeten drogs in",
    "Ett konkurrerande internt initiativ fick företräde",
    "Valde en annan leverantör",
    "Tekniskt för komplext just nu",
]

SHOWCASE_REFS = ["norrsken-logistik", "fjallvind-fastigheter", "havsbris-media"]
PORTAL_CUSTOMERS = SHOWCASE_REFS


def planned_customers(scale: float) -> int:
    return len(SHOWCASE_REFS) + max(1, round(RANDOM_CUSTOMERS * scale))


def _company(ctx: DemoContext) -> str:
    return ctx.unique_name(lambda: f"{ctx.rng.choice(WORDS)} {ctx.rng.choice(TRADES)}")


def _customer(ctx: DemoContext, name: str, ref: str, first_contact_on):
    city, postal_code = ctx.rng.choice(CITIES)
    org = f"556{ctx.rng.randint(100, 999)}{ctx.rng.randint(1000, 9999)}"  # ten digits, 556… for an AB
    return customer_add(
        ctx,
        name=name,
        ref=ref,
        first_contact_on=first_contact_on,
        acquisition_cost=round_to(Decimal(ctx.rng.uniform(15000, 90000)), 500),
        domain=domain_for(name, "se"),
        contacts=ctx.rng.randint(1, 3),
        titles=CONTACT_TITLES,
        org_number=f"{org[:6]}-{org[6:]}",
        vat_number=f"SE{org}01",
        address_line1=f"{ctx.rng.choice(STREETS)} {ctx.rng.randint(1, 80)}",
        postal_code=postal_code,
        city=city,
        country="SE",
        segment=ctx.rng.choice(SEGMENTS),
        tier="Projekt",
    )


def _one_off(ctx: DemoContext, customer, title: str, start, end, lines: dict[str, LineSpec]) -> Subscription:
    status = Contract.Status.ENDED if end < ctx.today else Contract.Status.ACTIVE
    return subscribe(customer, title=title, start=start, end=end, lines=lines, status=status)


def _start_project(ctx: DemoContext, customer, start, *, won: bool, pre_study: bool):
    """The first project: the start package (won from a deal or signed directly) or an hourly pre-study."""
    if pre_study:
        hours = Decimal(ctx.rng.choice([40, 60, 80, 120]))
        line = LineSpec(description="Konsulttimmar, förstudie", kind=ContractLine.Kind.ONE_TIME,
                        unit_price=money(HOURLY_RATE, ctx.currency), quantity=hours)
        return _one_off(ctx, customer, "Förstudie AI-användning", start, start + timedelta(days=55), {"hours": line})
    if won:
        deal = Deal(START_PACKAGE, money(START_PACKAGE_PRICE, ctx.currency), kind=Opportunity.Kind.ONE_OFF,
                    customer=customer)
        closed_on = start - timedelta(days=ctx.rng.randint(10, 30))
        contract = won_deal(ctx, deal, closed_on=closed_on, start=start, sales_days=ctx.rng.randint(30, 120))
        return project_delivered(contract, last_day=start + timedelta(days=55), today=ctx.today)
    line = LineSpec(description=START_PACKAGE, kind=ContractLine.Kind.ONE_TIME,
                    unit_price=money(START_PACKAGE_PRICE, ctx.currency))
    return _one_off(ctx, customer, START_PACKAGE, start, start + timedelta(days=55), {"package": line})


def _retainer(ctx: DemoContext, customer, start, *, annual: bool, fee: Decimal) -> Subscription:
    line = LineSpec(description="Rådgivningsretainer", kind=ContractLine.Kind.RECURRING,
                    unit_price=money(fee, ctx.currency))
    return subscribe(customer, title="Rådgivningsretainer", start=start, lines={"retainer": line},
                     billing_interval=BillingInterval.ANNUAL if annual else BillingInterval.MONTHLY)


def _support(ctx: DemoContext, customer, start, fee: Decimal) -> Subscription:
    line = LineSpec(description="Supportavtal", kind=ContractLine.Kind.RECURRING, unit_price=money(fee, ctx.currency))
    return subscribe(customer, title="Supportavtal satori-chat", start=start, lines={"support": line})


def _seats(ctx: DemoContext, customer, start, seats: int) -> Subscription:
    line = LineSpec(description="satori-chat, licens per användare", kind=ContractLine.Kind.PER_SEAT,
                    unit_price=money(SEAT_PRICE, ctx.currency), quantity=Decimal(seats))
    return subscribe(customer, title="satori-chat", start=start, lines={"seats": line})


def _workshop(ctx: DemoContext, customer, day) -> None:
    title, price = ctx.rng.choice(WORKSHOPS)
    line = LineSpec(description=title, kind=ContractLine.Kind.ONE_TIME, unit_price=money(price, ctx.currency))
    _one_off(ctx, customer, title, day, day, {"workshop": line})


def _set_tier(customer, tier: str) -> None:
    customer.tier = tier
    customer.save(update_fields=["tier", "updated_at"])


def _random_customer(ctx: DemoContext) -> tuple:
    """One customer's whole life; returns (customer, has retainer now, has seats now)."""
    name = _company(ctx)
    start = ctx.start_in_history(skew=1.2)
    customer = _customer(ctx, name, slugify(name.removesuffix(" AB")), start - timedelta(days=ctx.rng.randint(30, 240)))
    pre_study = ctx.rng.random() < 0.25
    _start_project(ctx, customer, start, won=not pre_study and ctx.rng.random() < 0.6, pre_study=pre_study)
    retainer_on = start + timedelta(days=ctx.rng.randint(42, 55))
    if retainer_on > ctx.today or ctx.rng.random() > 0.75:
        return customer, False, False
    leaves_after = ctx.rng.randint(8, 18) if ctx.rng.random() < 0.2 else None
    last_day = month_end(add_months(retainer_on, leaves_after)) if leaves_after else None
    if last_day and last_day >= ctx.today:
        last_day = None
    until = last_day or ctx.today
    annual = ctx.rng.random() < 0.25
    fee = Decimal(ctx.rng.choice([100000, 100000, 120000])) if annual else ctx.rng.choice(MONTHLY_RETAINERS)
    running = [_retainer(ctx, customer, retainer_on, annual=annual, fee=fee)]
    if annual:
        renewal = add_months(retainer_on, 12)
        while renewal <= until:
            if ctx.rng.random() < 0.5:
                fee = round_to(fee * Decimal(ctx.rng.uniform(1.05, 1.12)), 1000)
                running[0].change("retainer", effective_on=renewal, unit_price=money(fee, ctx.currency))
            renewal = add_months(renewal, 12)
    support_on = retainer_on + timedelta(days=ctx.rng.randint(30, 120))
    if support_on <= until and ctx.rng.random() < 0.45:
        running.append(_support(ctx, customer, support_on, Decimal(ctx.rng.choice([2500, 3500, 5000]))))
    seats_on = retainer_on + timedelta(days=ctx.rng.randint(60, 240))
    has_seats = seats_on <= until and ctx.rng.random() < 0.5
    if has_seats:
        seats = ctx.rng.randint(5, 60)
        running.append(_seats(ctx, customer, seats_on, seats))
        for month in ctx.months(add_months(seats_on, 1)):
            if month > until:
                break
            if ctx.rng.random() < 0.15:
                seats = max(3, seats + ctx.rng.choice([-1, 1, 1, 1]) * ctx.rng.randint(2, 10))
                if seats != running[-1].lines["seats"].quantity:
                    running[-1].change("seats", effective_on=month, quantity=Decimal(seats))
    for _ in range(ctx.rng.randint(0, 2)):
        day = retainer_on + timedelta(days=ctx.rng.randint(20, max(21, (until - retainer_on).days)))
        if day <= until:
            _workshop(ctx, customer, day)
    if last_day is None:
        return customer, True, has_seats
    for sub in running:
        sub.cancel(last_day=last_day)
    back_on = add_months(last_day, ctx.rng.randint(3, 8))
    if ctx.rng.random() < 0.35 and back_on <= ctx.today:
        _retainer(ctx, customer, back_on, annual=False, fee=ctx.rng.choice(MONTHLY_RETAINERS))
        return customer, True, False
    return customer, False, False


def _showcase(ctx: DemoContext) -> list:
    def at(month: int, day: int = 1):
        return add_months(ctx.history_start, month) + timedelta(days=day - 1)

    names = ["Norrsken Logistik AB", "Fjällvind Fastigheter AB", "Havsbris Media AB"]
    ctx.used_names.update(names)
    customers = [_customer(ctx, name, ref, at(0) - timedelta(days=75)) for name, ref in zip(names, SHOWCASE_REFS)]
    norrsken, fjallvind, havsbris = customers

    _start_project(ctx, norrsken, at(1, 6), won=True, pre_study=False)
    _retainer(ctx, norrsken, at(2, 20), annual=False, fee=Decimal("8333"))
    _support(ctx, norrsken, at(5), Decimal("3500"))
    seats = _seats(ctx, norrsken, at(6), 25)
    seats.change("seats", effective_on=at(12), quantity=Decimal(40))
    seats.change("seats", effective_on=at(18), quantity=Decimal(35))
    _workshop(ctx, norrsken, at(10, 14))
    _set_tier(norrsken, "Partner")

    _start_project(ctx, fjallvind, at(3, 3), won=False, pre_study=False)
    retainer = _retainer(ctx, fjallvind, at(4, 20), annual=True, fee=Decimal("100000"))
    retainer.change("retainer", effective_on=at(16, 20), unit_price=money("110000", ctx.currency))
    _workshop(ctx, fjallvind, at(9, 8))
    _set_tier(fjallvind, "Retainer")

    _start_project(ctx, havsbris, at(0, 10), won=True, pre_study=False)
    retainer = _retainer(ctx, havsbris, at(1, 28), annual=False, fee=Decimal("8333"))
    retainer.cancel(last_day=at(11) - timedelta(days=1))
    _retainer(ctx, havsbris, at(16), annual=False, fee=Decimal("6250"))
    _set_tier(havsbris, "Retainer")
    for _ in customers:
        ctx.tick()
    return customers


def build(ctx: DemoContext) -> list:
    """Build the consultancy's customers, contracts and pipeline. Returns the portal customers."""
    showcase = _showcase(ctx)
    without_seats, with_retainer = [showcase[1], showcase[2]], [showcase[1]]
    for _ in range(ctx.count(RANDOM_CUSTOMERS)):
        customer, retainer, seats = _random_customer(ctx)
        if retainer:
            _set_tier(customer, "Partner" if seats else "Retainer")
            with_retainer.append(customer)
        if not seats:
            without_seats.append(customer)
        ctx.tick()
    _pipeline(ctx, without_seats, with_retainer)
    return showcase


def _pipeline(ctx: DemoContext, without_seats: list, with_retainer: list) -> None:
    deals = []
    for customer in ctx.rng.sample(without_seats, k=min(len(without_seats), max(2, ctx.count(8)))):
        users = ctx.rng.choice([10, 20, 25, 40, 60])
        deals.append(Deal(f"satori-chat för {users} användare", money(SEAT_PRICE * 12 * users, ctx.currency),
                          customer=customer, next_step=ctx.rng.choice(NEXT_STEPS)))
    for customer in ctx.rng.sample(with_retainer, k=min(len(with_retainer), max(1, ctx.count(4)))):
        deals.append(Deal("Utökad rådgivning, fler enheter",
                          money(round_to(Decimal(ctx.rng.uniform(50000, 100000)), 5000), ctx.currency),
                          customer=customer, next_step=ctx.rng.choice(NEXT_STEPS)))
    wanted = max(len(deals) + 3, 9, ctx.count(24))
    while len(deals) < wanted:
        if ctx.rng.random() < 0.75:
            deals.append(Deal(START_PACKAGE, money(START_PACKAGE_PRICE, ctx.currency), kind=Opportunity.Kind.ONE_OFF,
                              prospect_name=_company(ctx), next_step=ctx.rng.choice(NEXT_STEPS)))
        else:
            title, price = ctx.rng.choice(WORKSHOPS)
            deals.append(Deal(title, money(price, ctx.currency), kind=Opportunity.Kind.ONE_OFF,
                              prospect_name=_company(ctx), next_step=ctx.rng.choice(NEXT_STEPS)))
    ctx.rng.shuffle(deals)
    open_pipeline(ctx, deals)
    for index in range(max(3, ctx.count(8))):
        lost_deal(ctx, Deal(START_PACKAGE, money(START_PACKAGE_PRICE, ctx.currency), kind=Opportunity.Kind.ONE_OFF,
                            prospect_name=_company(ctx)),
                  closed_on=ctx.start_in_history(), reason=LOST_REASONS[index % len(LOST_REASONS)])


# --- billing data (see portal.demo.billing) --------------------------------------------------

MINIMUM_INVOICE_AMOUNT = Decimal("0")
# How its customers pay, printed on every invoice: bankgiro with an OCR number per invoice.
PAYMENT_DETAILS = {"payment_method": "bankgiro", "bankgiro": "123-4566"}
METRICS = [{"code": "hours", "name": "Konsulttimmar", "aggregation": "sum", "field": "quantity", "unit": "timmar"}]
HOURS_TITLE = "Konsulttimmar enligt avtal"
HOURS_SHARE = 0.4  # of the customers with a running agreement who also buy hours by the hour
HOURS_PER_ENTRY = [Decimal(h) for h in ("1", "1.5", "2", "3", "4", "4", "6", "8")]
ACTIVITIES = ["Rådgivning", "Workshopförberedelse", "Implementation", "Uppföljningsmöte", "Dokumentation"]
CREDITS = Credits(
    credit_note="Workshopen förkortades till en halvdag",
    credit_note_share=Decimal("0.10"),
    balance=("Rabatt enligt överenskommelse med VD", Decimal("900")),
    pending=("Kompensation för försenad leverans av förstudien", Decimal("4500")),
)


def billing_contracts(ctx: DemoContext) -> None:
    """Hours billed by the hour, from the first invoiced month, for the showcase's Norrsken and
    Havsbris and some other customers with a running agreement."""
    first = add_months(ctx.today, -INVOICED_MONTHS)
    running = lines_active_in(ctx.tenant, Month(first, month_end(first)), kinds=[ContractLine.Kind.RECURRING])
    customers = [lines[0].contract.customer for lines in running.values()]
    chosen = [c for c in customers if c.external_ref in ("norrsken-logistik", "havsbris-media")]
    chosen += [c for c in customers if c not in chosen and ctx.rng.random() < HOURS_SHARE]
    for customer in chosen:
        line = LineSpec(description="Konsulttimmar", kind=ContractLine.Kind.USAGE,
                        unit_price=money(HOURLY_RATE, ctx.currency))
        subscribe(customer, title=HOURS_TITLE, start=first, lines={"hours": line})


def usage_terms(line) -> dict:
    """Hours at the line's hourly rate."""
    return {"charge_model": "per_unit", "metric": "hours", "terms": {}}


def usage_events(ctx: DemoContext, month) -> list[dict]:
    """A few time reports a month, on weekdays, per customer buying hours."""
    events = []
    for lines in lines_active_in(ctx.tenant, month, kinds=[ContractLine.Kind.USAGE]).values():
        line = lines[-1]
        ref = line.contract.customer.external_ref
        entries = round(ctx.rng.randint(3, 9) * active_days_share(line, month))
        weekdays = [d for d in range(1, month.last.day + 1) if month.first.replace(day=d).weekday() < 5]
        for number in range(entries if weekdays else 0):
            day = month.first.replace(day=ctx.rng.choice(weekdays))
            events.append({
                "customer": ref, "metric": "hours", "timestamp": ctx.moment(day, hour=17).isoformat(),
                "idempotency_key": f"{ref}:hours:{month.key()}:{number}",
                "quantity": f"{ctx.rng.choice(HOURS_PER_ENTRY)}",
                "properties": {"activity": ctx.rng.choice(ACTIVITIES)},
            })
    return events


# --- customer economics (see portal.demo.economics) ------------------------------------------

PRICE_PLANS = [
    {"code": "timpris-1650", "name": "Löpande räkning 1 650 kr/h", "base_fee": "0", "charge_model": "per_unit",
     "metric": "hours", "unit_price": "1650", "terms": {}},
    {"code": "fast-15000", "name": "Fast månadsavgift 15 000 kr", "base_fee": "15000", "charge_model": "flat"},
]
ANOMALY_RULES = []
COST_SOURCE = "entered"
COST_NOTE = "Konsulttid till internpris, från tidrapporterna"
COST_SHARE = (0.55, 0.88)  # of the month's invoiced net: the consultants' time at internal cost


def customer_costs(ctx, first, last) -> dict[int, Decimal]:
    """Each invoiced customer's cost in the month: a share of what it was invoiced, rounded to 100 kr."""
    rows = (
        Invoice.objects.for_tenant(ctx.tenant)
        .filter(period_start=first, status__in=[Invoice.Status.FINALIZED, Invoice.Status.PAID], total__gt=0)
        .order_by("customer_id", "id").values_list("customer_id", "total", "vat_amount")
    )
    costs: dict[int, Decimal] = {}
    for customer_id, total, vat in rows:
        share = Decimal(f"{ctx.rng.uniform(*COST_SHARE):.2f}")
        costs[customer_id] = costs.get(customer_id, Decimal(0)) + round_to((total - vat) * share, 100)
    return costs
