"""Factories for billing: metering (metrics, usage events). Tests, the demo and the benchmarks use them."""

from datetime import datetime, timezone
from decimal import Decimal

import factory

from billing import metering
from billing.metering import usage_store
from billing.models import BillableMetric, UsageEvent
from tests.customers.factories import CustomerFactory, TenantFactory


class BillableMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BillableMetric

    tenant = factory.SubFactory(TenantFactory)
    code = "processed_jobs"
    name = factory.LazyAttribute(lambda m: m.code.replace("_", " ").capitalize())
    aggregation = BillableMetric.Aggregation.COUNT
    field = "quantity"
    filters = factory.LazyFunction(dict)
    unit = "jobs"


class UsageEventFactory(factory.django.DjangoModelFactory):
    """One stored event. Bulk data should go through ``usage_ingest``, as production does."""

    class Meta:
        model = UsageEvent

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    metric_code = "processed_jobs"
    timestamp = datetime(2026, 11, 5, 12, 0, tzinfo=timezone.utc)
    idempotency_key = factory.Sequence(lambda n: f"evt-{n:08d}")
    quantity = Decimal(1)
    properties = factory.LazyFunction(dict)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # Into whichever usage-event store is configured (tests parametrized with ``usage_store``).
        if usage_store().name == "postgres":
            return super()._create(model_class, *args, **kwargs)
        event = model_class(*args, **kwargs)
        usage_events_write([event])
        return event


def stored_events(tenant, **filters) -> list:
    """The tenant's events as the configured store keeps them (``UsageEventStore.event_list``: customer_id,
    metric_code, timestamp, idempotency_key, quantity, properties, received_at), newest first."""
    return usage_store().event_list(tenant=tenant, **filters)


def usage_events_write(events: list[UsageEvent]) -> set[str]:
    """Store unsaved ``UsageEvent`` instances (one tenant's) in the configured store, as
    ``usage_ingest`` would after validating them; the keys that were new."""
    if not events:
        return set()
    rows: dict[str, str] = {}
    for e in events:  # a repeated key keeps its first event, as ingestion does
        rows.setdefault(
            e.idempotency_key,
            f"{e.customer_id}\t{e.metric_code}\t{e.timestamp.isoformat()}\t{metering._copy_field(e.idempotency_key)}\t"
            f"{e.quantity}\t{metering._copy_field(metering._dump_properties(e.properties))}\n",
        )
    return usage_store().insert_new(tenant=events[0].tenant, rows=rows, received_at=events[0].received_at)


# --- invoicing: price terms, plans of the job API, settings ---------------------------------

from datetime import date  # noqa: E402

from billing.models import BillingSettings, ChargeModel, PriceTerms  # noqa: E402
from customers.models import ContractLine  # noqa: E402
from customers.money import Money  # noqa: E402
from tests.customers.factories import ContractFactory, ContractLineFactory  # noqa: E402


class BillingSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BillingSettings

    tenant = factory.SubFactory(TenantFactory)
    minimum_invoice_amount = Decimal("0")


class PriceTermsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PriceTerms

    contract_line = factory.SubFactory(
        ContractLineFactory,
        kind=ContractLine.Kind.USAGE,
        description="Jobs",
        unit_price=factory.LazyAttribute(lambda line: Money("0.10", line.contract.currency)),
    )
    tenant = factory.SelfAttribute("contract_line.tenant")
    charge_model = ChargeModel.PER_UNIT
    metric = "processed_jobs"
    terms = factory.LazyFunction(dict)


# Job API plans (DOMAIN.md, seed 003): monthly fee, included jobs, price per extra job, and the
# discount on the fee for 80–100 % quota use. Free has no overage price: the product stops at 10.
JOB_API_PLANS = {
    "Free": {"fee": "0.00", "included": 10, "overage": "0.00", "utilisation_discount": 0},
    "Starter": {"fee": "29.00", "included": 100, "overage": "0.50", "utilisation_discount": 2},
    "Professional": {"fee": "99.00", "included": 500, "overage": "0.30", "utilisation_discount": 3},
    "Business": {"fee": "299.00", "included": 2000, "overage": "0.20", "utilisation_discount": 4},
}


def job_api_terms(plan: str, *, failed_metric: str | None = None) -> dict:
    """The included-quota terms of a job API plan (1 % grace), as PriceTerms.terms."""
    spec = JOB_API_PLANS[plan]
    terms = {"included": spec["included"], "overage_unit_price": spec["overage"], "grace_percent": 1}
    if spec["utilisation_discount"]:
        terms["utilisation_discount_percent"] = spec["utilisation_discount"]
    if failed_metric:
        terms["failed_metric"] = failed_metric
    return terms


def job_api_subscription(
    customer, plan: str, *, start_date: date = date(2026, 11, 1), metric: str = "processed_jobs", failed_metric=None
) -> PriceTerms:
    """A monthly contract on a job API plan: a recurring plan-fee line priced with an included quota."""
    contract = ContractFactory(customer=customer, tenant=customer.tenant, start_date=start_date, title=f"{plan} plan")
    line = ContractLineFactory(
        contract=contract,
        tenant=customer.tenant,
        description=f"{plan} plan",
        kind=ContractLine.Kind.RECURRING,
        unit_price=Money(JOB_API_PLANS[plan]["fee"], customer.currency),
        starts_on=start_date,
    )
    return PriceTermsFactory(
        contract_line=line,
        tenant=customer.tenant,
        charge_model=ChargeModel.INCLUDED_QUOTA,
        metric=metric,
        terms=job_api_terms(plan, failed_metric=failed_metric),
    )


# --- card payment: a tenant's provider account ---------------------------------------------

from billing.models import PaymentProviderAccount  # noqa: E402


class PaymentProviderAccountFactory(factory.django.DjangoModelFactory):
    """A tenant's Stripe account with test-mode keys that carry the tenant's slug (so a leak is visible)."""

    class Meta:
        model = PaymentProviderAccount

    tenant = factory.SubFactory(TenantFactory)
    provider = PaymentProviderAccount._meta.get_field("provider").default
    publishable_key = factory.LazyAttribute(lambda a: f"pk_test_{a.tenant.slug}_publishable")
    secret_key = factory.LazyAttribute(lambda a: f"sk_test_{a.tenant.slug}_SECRETKEY")
    webhook_secret = factory.LazyAttribute(lambda a: f"whsec_{a.tenant.slug}_SIGNINGSECRET")
    enabled = True
