"""Factories for tenants, people, customers and contracts: tests, the demo and the benchmarks use them."""

from datetime import date
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from customers.models import (
    Contact,
    Contract,
    ContractLine,
    Customer,
    Membership,
    PortalAccess,
    Role,
    Tenant,
)
from customers.money import Money


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    reporting_currency = "USD"
    time_zone = "UTC"
    locale = "en"
    invoice_number_prefix = factory.Sequence(lambda n: f"T{n}-")
    vat_rate = Decimal("0")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def _save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffUserFactory(UserFactory):
    is_staff = True


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(StaffUserFactory)
    role = Role.ACCOUNT_MANAGER


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Customer {n} AB")
    external_ref = factory.Sequence(lambda n: f"cust-{n}")
    currency = factory.LazyAttribute(lambda c: c.tenant.reporting_currency)
    language = factory.LazyAttribute(lambda c: c.tenant.locale)
    billing_emails = factory.LazyAttribute(lambda c: [f"billing@{c.external_ref}.example.com"])
    country = "US"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.LazyAttribute(lambda c: f"contact@{c.customer.external_ref}.example.com")


class PortalAccessFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PortalAccess

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    user = factory.SubFactory(UserFactory)


class ContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contract

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    reference = factory.Sequence(lambda n: f"C-{n:05d}")
    title = "Subscription"
    status = Contract.Status.ACTIVE
    currency = factory.LazyAttribute(lambda c: c.customer.currency)
    billing_interval = 1
    start_date = date(2025, 1, 1)


class ContractLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContractLine

    contract = factory.SubFactory(ContractFactory)
    tenant = factory.SelfAttribute("contract.tenant")
    description = "Platform fee"
    kind = ContractLine.Kind.RECURRING
    quantity = Decimal(1)
    unit_price = factory.LazyAttribute(lambda l: Money("100.00", l.contract.currency))
    starts_on = factory.LazyAttribute(lambda l: l.contract.start_date)
