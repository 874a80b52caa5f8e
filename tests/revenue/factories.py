from datetime import date

import factory

from customers.money import Money
from revenue.models import Opportunity
from tests.customers.factories import CustomerFactory


class OpportunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Opportunity

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    title = factory.Sequence(lambda n: f"Deal {n}")
    amount = factory.LazyAttribute(lambda o: Money("12000.00", o.customer.currency))
    probability = 50
    stage = Opportunity.Stage.PROPOSAL
    expected_close_on = date(2026, 12, 15)


# --- metrics: exchange rates, quarter targets ----------------------------------------------

from decimal import Decimal  # noqa: E402

from revenue.models import ExchangeRate, QuarterTarget  # noqa: E402
from tests.customers.factories import TenantFactory  # noqa: E402


class ExchangeRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExchangeRate

    tenant = factory.SubFactory(TenantFactory)
    currency = "SEK"
    rate = Decimal("0.0950000000")
    effective_on = date(2025, 1, 1)


class QuarterTargetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = QuarterTarget

    tenant = factory.SubFactory(TenantFactory)
    year = 2026
    quarter = 4
    target = factory.LazyAttribute(lambda t: Money("100000.00", t.tenant.reporting_currency))
