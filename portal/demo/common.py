"""What every demo tenant is built from: the calendar, the random source, people and contacts.

Everything random comes from one ``random.Random`` per tenant, seeded from the command's seed and
the tenant's slug, so a tenant looks the same whether or not the others were built in the same run.
"""

import random
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser
from faker import Faker

from customers.models import Contact, Customer, EInvoiceFormat, Tenant
from customers.money import Money
from customers.periods import add_months, month_end, month_start
from customers.services import customer_create
from tests.customers.factories import ContactFactory

HISTORY_MONTHS = 24


def money(amount, currency: str) -> Money:
    return Money(Decimal(str(amount)), currency)


def round_to(amount: Decimal, step: int) -> Decimal:
    """``amount`` rounded half up to a multiple of ``step`` (prices people actually quote)."""
    return (Decimal(amount) / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step


@dataclass
class DemoContext:
    """One tenant's build: its calendar, random source, account managers and progress bar."""

    tenant: Tenant
    today: date
    rng: random.Random
    scale: float
    account_managers: list[AbstractBaseUser]
    faker: Faker
    progress: object = None
    used_names: set = field(default_factory=set)
    memo: dict = field(default_factory=dict)  # what a later step of the build needs to remember

    @property
    def history_start(self) -> date:
        return add_months(self.today, -(HISTORY_MONTHS - 1))

    @property
    def currency(self) -> str:
        return self.tenant.reporting_currency

    def price(self, low: int, high: int, step: int) -> Money:
        """A random amount between ``low`` and ``high`` in the tenant's currency, rounded to ``step``."""
        return money(round_to(Decimal(self.rng.uniform(low, high)), step), self.currency)

    def count(self, base: int) -> int:
        """How many of a randomly generated kind of customer to make at this scale (at least one)."""
        return max(1, round(base * self.scale))

    def months(self, since: date):
        """First days of the months from the month of ``since`` up to and including the current one."""
        current = month_start(since)
        while current <= self.today:
            yield current
            current = add_months(current, 1)

    def day_in_month(self, first: date) -> date:
        """A random day of the month starting ``first``, never after today."""
        return min(first + timedelta(days=self.rng.randint(0, month_end(first).day - 1)), self.today)

    def start_in_history(self, skew: float = 1.0) -> date:
        """A random start date in the history; ``skew`` > 1 favours recent months (a growing business)."""
        offset = int((HISTORY_MONTHS - 1) * self.rng.random() ** (1 / skew))
        return self.day_in_month(add_months(self.history_start, offset))

    def moment(self, day: date, hour: int = 10) -> datetime:
        """A timestamp on ``day`` in the tenant's time zone."""
        return datetime.combine(day, time(hour, self.rng.randint(0, 59)), tzinfo=ZoneInfo(self.tenant.time_zone))

    def unique_name(self, make) -> str:
        for _ in range(200):
            name = make()
            if name not in self.used_names:
                self.used_names.add(name)
                return name
        raise RuntimeError("The name lists are too short for this scale.")

    def manager(self) -> AbstractBaseUser:
        return self.rng.choice(self.account_managers)

    def tick(self) -> None:
        if self.progress is not None:
            self.progress.update(1)


def einvoice_ids(name: str, fields: dict) -> dict:
    """A demo customer's Peppol id, VAT number where its country has one, and invoice format, derived from
    its name or organisation number: no random draw, so the demo's random sequence is what it was.

    Swedish companies are addressed by organisation number (0007) and every third takes its invoices as
    PDF and UBL; German and Dutch ones by VAT number (9930, 9944), every fourth German one as Factur-X;
    US and Canadian ones by a DUNS-shaped number (0060); British ones get a VAT number.
    """
    country, digits = fields.get("country", ""), f"{zlib.crc32(name.encode()):010d}"
    ids: dict = {}
    if fields.get("org_number") and country == "SE":
        ids["peppol_id"] = "0007:" + fields["org_number"].replace("-", "")
        if int(digits) % 3 == 0:
            ids["einvoice_format"] = EInvoiceFormat.PDF_UBL
    elif country == "DE":
        ids["vat_number"] = f"DE{digits[-9:]}"
        ids["peppol_id"] = f"9930:{ids['vat_number']}"
        if int(digits) % 4 == 0:
            ids["einvoice_format"] = EInvoiceFormat.FACTURX
    elif country == "NL":
        ids["vat_number"] = f"NL{digits[-9:]}B01"
        ids["peppol_id"] = f"9944:{ids['vat_number']}"
    elif country == "GB":
        ids["vat_number"] = f"GB{digits[-9:]}"
    elif country in ("US", "CA"):
        ids["peppol_id"] = f"0060:{digits[-9:]}"
    return ids


def customer_add(
    ctx: DemoContext,
    *,
    name: str,
    ref: str,
    first_contact_on: date,
    acquisition_cost: Decimal,
    domain: str,
    contacts: int,
    titles: list[str],
    **fields,
) -> Customer:
    """Create a customer through the service, then its contacts in bulk (they carry no history)."""
    customer = customer_create(
        tenant=ctx.tenant,
        name=name,
        external_ref=ref,
        currency=ctx.currency,
        language=ctx.tenant.locale,
        billing_emails=[f"invoices@{domain}"],
        account_manager=ctx.manager(),
        first_contact_on=first_contact_on,
        acquisition_cost=money(acquisition_cost, ctx.currency),
        **{**einvoice_ids(name, fields), **fields},
    )
    people = []
    for index in range(contacts):
        first, last = ctx.faker.first_name(), ctx.faker.last_name()
        people.append(
            ContactFactory.build(
                tenant=ctx.tenant,
                customer=customer,
                name=f"{first} {last}",
                email=f"{_ascii(first)}.{_ascii(last)}@{domain}",
                phone=ctx.faker.phone_number(),
                title=titles[index % len(titles)],
                is_billing_contact=index == 0,
            )
        )
    Contact.objects.bulk_create(people)
    return customer


def _ascii(text: str) -> str:
    table = str.maketrans({"å": "a", "ä": "a", "ö": "o", "é": "e", "ü": "u", "Å": "a", "Ä": "a", "Ö": "o"})
    return "".join(ch for ch in text.translate(table).lower() if ch.isalnum())


def domain_for(name: str, tld: str) -> str:
    words = [w for w in name.split() if w not in {"AB", "Inc.", "LLC", "Ltd", "HB", "&"}]
    return f"{_ascii(''.join(words[:2]))}.{tld}"


US_CITIES = [  # city, postal code, country, a street there
    ("San Francisco", "94107", "US", "Townsend St"),
    ("Austin", "78701", "US", "Congress Ave"),
    ("New York", "10013", "US", "Hudson St"),
    ("Seattle", "98104", "US", "1st Ave"),
    ("Boston", "02110", "US", "Summer St"),
    ("Denver", "80202", "US", "Blake St"),
    ("Chicago", "60607", "US", "W Fulton Market"),
    ("Atlanta", "30308", "US", "Peachtree St NE"),
    ("Toronto", "M5V 2T6", "CA", "King St W"),
    ("London", "EC2A 4NE", "GB", "Great Eastern St"),
    ("Berlin", "10115", "DE", "Invalidenstraße"),
    ("Amsterdam", "1015 CJ", "NL", "Herengracht"),
]
US_WORDS = [
    "Brightline", "Northwind", "Lumen", "Vector", "Quanta", "Helix", "Cobalt", "Driftwood", "Summit", "Arcadia",
    "Pinecrest", "Bluefin", "Redwood", "Kestrel", "Meridian", "Orbital", "Tandem", "Fathom", "Juniper", "Halcyon",
    "Ironclad", "Skylark", "Parallax", "Evergreen", "Copperline", "Nimbus", "Atlas", "Sable", "Lattice", "Beacon",
    "Fernhill", "Tidewater", "Quillon", "Harbor", "Granite", "Saffron", "Wildflower", "Riverbend", "Silverpine",
]


def us_company(ctx: DemoContext, suffixes: list[str]) -> str:
    return ctx.unique_name(lambda: f"{ctx.rng.choice(US_WORDS)} {ctx.rng.choice(suffixes)}")


def us_address(ctx: DemoContext) -> dict:
    city, postal_code, country, street = ctx.rng.choice(US_CITIES)
    number = ctx.rng.randint(10, 2400)
    return {
        "address_line1": f"{street} {number}" if country in ("DE", "NL") else f"{number} {street}",
        "city": city,
        "postal_code": postal_code,
        "country": country,
    }
