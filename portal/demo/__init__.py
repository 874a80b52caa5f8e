"""The demo: three tenants with two years of believable history, built through the services.

``demo_load`` is what ``manage.py demo_load`` runs. A tenant whose slug exists is left alone
("already loaded"); logins are ensured every time, and so are the billing data (metrics, usage,
invoices: ``portal.demo.billing``), added to a tenant that has no billable metric yet, and the
customer economics (costs, price plans, alert rules: ``portal.demo.economics``), added to a tenant
without a price plan. Each tenant is built in one transaction, inside its own scope, so a failure
leaves no half-built tenant behind.
"""

import random
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import timezone as dt_timezone

from django.db import transaction
from faker import Faker
from tqdm import tqdm

from billing.metering import usage_store
from billing.models import CreditNote, CreditRequest, Invoice
from customers.models import Contact, Contract, ContractChange, ContractLine, Customer, Tenant
from customers.periods import tenant_today
from customers.purge import tenant_purge
from customers.tenancy import platform_scope, tenant_scope
from portal.demo import billing as demo_billing
from portal.demo import economics as demo_economics
from portal.demo import jobapi, konsult, optimizer
from portal.demo import pipeline as demo_pipeline
from portal.demo.common import DemoContext
from portal.demo.logins import Logins
from revenue.facts import revenue_facts_rebuild
from revenue.models import AnomalyAlert, CustomerCost, Opportunity, PricePlan, RevenueFactsState

BUILDERS = [optimizer, jobapi, konsult]
FAKER_LOCALES = {"en": "en_US", "sv": "sv_SE"}


@dataclass
class TenantReport:
    slug: str
    name: str
    status: str  # "built" or "already loaded"
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class LoadReport:
    tenants: list[TenantReport]
    logins: list


def _usage_events(tenant: Tenant) -> int:
    """How many usage events the tenant has, in the store in use."""
    store = usage_store()
    first = store.first_event_at(tenant=tenant)
    if first is None:
        return 0
    counts = store.event_counts(tenant=tenant, bounds=[first, datetime(2200, 1, 1, tzinfo=dt_timezone.utc)])
    return sum(count for buckets in counts.values() for count in buckets.values())


def _counts(tenant: Tenant) -> dict[str, int]:
    return {
        "customers": Customer.objects.for_tenant(tenant).count(),
        "contacts": Contact.objects.for_tenant(tenant).count(),
        "contracts": Contract.objects.for_tenant(tenant).count(),
        "lines": ContractLine.objects.for_tenant(tenant).count(),
        "changes": ContractChange.objects.for_tenant(tenant).count(),
        "opportunities": Opportunity.objects.for_tenant(tenant).count(),
        "usage events": _usage_events(tenant),
        "invoices": Invoice.objects.for_tenant(tenant).count(),
        "credit notes": CreditNote.objects.for_tenant(tenant).count(),
        "credit requests": CreditRequest.objects.for_tenant(tenant).count(),
        "price plans": PricePlan.objects.for_tenant(tenant).count(),
        "customer costs": CustomerCost.objects.for_tenant(tenant).count(),
        "usage alerts": AnomalyAlert.objects.for_tenant(tenant).count(),
    }


def _context(tenant: Tenant, rng: random.Random, *, today: date, scale: float, managers: list, progress=None):
    faker = Faker(FAKER_LOCALES[tenant.locale])
    faker.seed_instance(rng.getrandbits(32))
    return DemoContext(
        tenant=tenant, today=today, rng=rng, scale=scale, account_managers=managers, faker=faker, progress=progress
    )


def _build(builder, tenant: Tenant, *, today: date, seed: int, scale: float, managers: list, progress) -> list:
    rng = random.Random(f"{seed}:{tenant.slug}")
    return builder.build(_context(tenant, rng, today=today, scale=scale, managers=managers, progress=progress))


SLUGS = [builder.TENANT["slug"] for builder in BUILDERS]


def demo_load(
    *, today: date | None = None, seed: int = 2026, scale: float = 1.0, reset: bool = False, progress: bool = True,
    only: list[str] | None = None,
) -> LoadReport:
    """Build the demo tenants that do not exist yet and ensure every demo login.

    ``today`` ends the history (24 months up to its month); None: each tenant's own today in its
    time zone, so no usage is dated after the tenant's day (ingestion refuses events more than a day
    ahead, and UTC's date runs ahead of New York's every evening); ``seed`` makes the data reproducible;
    ``scale`` multiplies the number of generated customers (the scripted showcase ones are always
    there). ``reset`` deletes the demo tenants first and rebuilds them. ``only``: these slugs of
    ``SLUGS`` (all when None); a tenant looks the same whether built alone or with the others.
    """
    unknown = sorted(set(only or []) - set(SLUGS))
    if unknown:
        raise ValueError(f"No demo tenant {', '.join(unknown)}; the demo tenants are {', '.join(SLUGS)}.")
    logins = Logins()
    reports = []
    with platform_scope():
        logins.admin()
    builders = [b for b in BUILDERS if only is None or b.TENANT["slug"] in only]
    tenants_bar = tqdm(builders, desc="demo tenants", unit="tenant", file=sys.stderr, disable=not progress)
    for builder in tenants_bar:
        spec = builder.TENANT
        tenants_bar.set_postfix_str(spec["slug"])
        if reset:
            with platform_scope():
                existing = Tenant.objects.filter(slug=spec["slug"]).first()
            if existing is not None:
                tenant_purge(tenant=existing)
        with transaction.atomic():
            tenant = Tenant.objects.filter(slug=spec["slug"]).first()
            status = "already loaded" if tenant else "built"
            if tenant is None:
                tenant = Tenant(**spec)
                tenant.full_clean()
                tenant.save()
            day = today or tenant_today(tenant)
            with tenant_scope(tenant):
                managers = logins.staff(tenant)
                if status == "built":
                    with tqdm(
                        total=builder.planned_customers(scale), desc=spec["slug"], unit="customer",
                        file=sys.stderr, disable=not progress, leave=False,
                    ) as bar:
                        _build(builder, tenant, today=day, seed=seed, scale=scale, managers=managers, progress=bar)
                logins.portal(tenant, builder.PORTAL_CUSTOMERS)
                if not demo_billing.has_billing(tenant):
                    rng = demo_billing.billing_rng(seed, tenant.slug)
                    ctx = _context(tenant, rng, today=day, scale=scale, managers=managers)
                    demo_billing.build(ctx, builder, builder.PORTAL_CUSTOMERS)
                if not demo_pipeline.has_quarter_targets(tenant):
                    rng = random.Random(f"{seed}:{tenant.slug}:targets")
                    demo_pipeline.quarter_targets(_context(tenant, rng, today=day, scale=scale, managers=managers))
                if not demo_economics.has_economics(tenant):
                    rng = random.Random(f"{seed}:{tenant.slug}:economics")
                    demo_economics.build(_context(tenant, rng, today=day, scale=scale, managers=managers), builder)
                if not RevenueFactsState.objects.for_tenant(tenant).exists():
                    # The dashboards read the MRR facts (revenue.facts) once they are built.
                    revenue_facts_rebuild(tenant=tenant)
                reports.append(TenantReport(tenant.slug, tenant.name, status, _counts(tenant)))
    return LoadReport(tenants=reports, logins=logins.rows)
