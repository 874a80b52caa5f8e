from datetime import date

import factory
from djmoney.money import Money

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
