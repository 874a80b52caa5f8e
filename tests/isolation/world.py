"""Two tenants with one row (or a few) of every tenant-owned model, for the generic isolation walk.

Tenant B's rows carry distinctive words (``Quokka`` in every name, title, description and reason,
invoice numbers ``QK-…``, the amount 987 654.32 in its invoice, deal, target, cost and snapshot), so a
page of tenant A that shows any of them is caught by ``markers_found``. ``build_world`` builds both
tenants; ``missing_models`` names every concrete tenant-owned model tenant B has no row of, so a new
model fails the walk until this builder makes one (or it is listed in ``NOT_BUILT`` with a reason).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal

from django.apps import apps
from django.db import models
from django.utils import timezone as django_timezone

from billing.models import (
    AiUsageDay,
    BillingRun,
    BillingRunItem,
    CreditApplication,
    DunningReminder,
    DunningReminderDelivery,
    DunningStep,
    InvoiceDelivery,
    PaymentProviderAccount,
    PendingCharge,
    ProviderEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointNotice,
    WebhookEvent,
    UsageEventBatch,
    UsageArchive,
)
from billing.services import credit_request_create, dunning_schedule_for
from billing.services.payments import payment_record, payment_refund
from customers.models import Contract, ContractChange, ContractLine, Membership, Role, Tenant, TenantAPIKey
from customers.money import Money
from customers.tenancy import TenantOwned, platform_scope, tenant_scope
from revenue.facts import revenue_facts_rebuild
from revenue.models import (
    AccountPlan,
    AlertDelivery,
    AnomalyAlert,
    AnomalyRule,
    CustomerCost,
    ExchangeRate,
    MetricSnapshot,
    ModelPrice,
    PricePlan,
    QuarterTarget,
    ReportDelivery,
    WhatIfRun,
)
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.billing.factories import (
    BillableMetricFactory,
    BillingSettingsFactory,
    PriceTermsFactory,
    UsageEventFactory,
)
from tests.customers.factories import (
    ContactFactory,
    ContractFactory,
    ContractLineFactory,
    CustomerFactory,
    MembershipFactory,
    PortalAccessFactory,
    StaffUserFactory,
    TenantFactory,
    UserFactory,
)
from tests.revenue.factories import OpportunityFactory

B_WORD = "Quokka"
B_AMOUNT = "987654.32"
# Tenant-owned models the builder consciously leaves out, with the reason. (None today.)
NOT_BUILT: dict[str, str] = {}

# B's word in any case, its invoice/credit-note numbers, and its amount however a page writes it
# (987654.32, 987,654.32, 987 654,32 with a no-break or thin space, 98765432 in minor units).
B_PATTERNS = [
    re.compile(B_WORD, re.IGNORECASE),
    re.compile(r"QK-\d{4}-"),
    re.compile(r"987\D{0,3}654\D{0,3}32"),
    re.compile(r"98765432"),
]


@dataclass
class TenantWorld:
    tenant: Tenant
    owner: object
    portal_user: object
    api_key: str = ""
    staff: dict[str, object] = field(default_factory=dict)  # role -> user (tenant A's identities)


def tenant_owned_models():
    """Every concrete tenant-owned model (TenantOwned subclasses, not abstract, not proxy)."""
    return sorted(
        (m for m in apps.get_models() if issubclass(m, TenantOwned) and not m._meta.proxy),
        key=lambda m: m._meta.label,
    )


def models_with_tenant_column():
    """Every model whose table has a tenant column: the tenant-owned ones and their history tables."""
    return sorted(
        (m for m in apps.get_models() if any(f.column == "tenant_id" for f in m._meta.local_fields)),
        key=lambda m: m._meta.label,
    )


def _build_tenant(tenant: Tenant, word: str, amount: str) -> TenantWorld:
    low = word.lower()
    currency = tenant.reporting_currency
    with tenant_scope(tenant):
        owner = StaffUserFactory(username=f"{low}-owner", first_name=word)
        MembershipFactory(tenant=tenant, user=owner, role=Role.OWNER)
        customer = CustomerFactory(
            tenant=tenant, name=f"{word} Customer AB", external_ref=f"{low}-cust", account_manager=owner,
            billing_emails=[f"billing@{low}.example.com"],
        )
        ContactFactory(tenant=tenant, customer=customer, name=f"{word} Contact", email=f"ada@{low}.example.com")
        portal_user = UserFactory(username=f"{low}-portal", email=f"portal@{low}.example.com")
        PortalAccessFactory(tenant=tenant, customer=customer, user=portal_user)
        _key, raw_key = TenantAPIKey.objects.create_key(tenant=tenant, name=f"{word} Key")

        draft = ContractFactory(
            tenant=tenant, customer=customer, reference=f"{low}-draft", title=f"{word} Draft Contract",
            status=Contract.Status.DRAFT, start_date=date(2027, 1, 1),
        )
        ContractLineFactory(tenant=tenant, contract=draft, description=f"{word} Draft Line")
        contract = ContractFactory(
            tenant=tenant, customer=customer, reference=f"{low}-active", title=f"{word} Contract",
            start_date=date(2026, 1, 1),
        )
        ContractLineFactory(
            tenant=tenant, contract=contract, description=f"{word} Platform Fee", unit_price=Money(amount, currency)
        )
        ContractChange.objects.create(
            tenant=tenant, contract=contract, kind=ContractChange.Kind.NEW, effective_on=date(2026, 1, 1),
            note=f"{word} signed", created_by=owner,
        )
        # Payment details with the tenant's word: printed on its invoices, never on another tenant's.
        BillingSettingsFactory(
            tenant=tenant, payment_method="iban", iban="SE4550000000058398257466",
            payment_reference_text=f"{word} Payment Note",
        )
        metric = BillableMetricFactory(tenant=tenant, code=f"{low}_jobs", name=f"{word} jobs")
        usage_line = ContractLineFactory(
            tenant=tenant, contract=contract, description=f"{word} Jobs", kind=ContractLine.Kind.USAGE,
            unit_price=Money("0.10", currency),
        )
        PriceTermsFactory(tenant=tenant, contract_line=usage_line, metric=metric.code)
        UsageEventFactory(
            tenant=tenant, customer=customer, metric_code=metric.code, idempotency_key=f"{low}-evt-1",
            timestamp=datetime(2026, 11, 5, 12, tzinfo=timezone.utc),
            properties={"provider": "openai", "model": f"{low}-gpt", "input_tokens": 1000, "output_tokens": 10},
        )
        # The ClickHouse usage store's key and pending batch (events themselves are outside PostgreSQL).
        # The event's key is in UsageEventKey already: the trigger on UsageEvent claims it.
        UsageEventBatch.objects.create(tenant=tenant, rows=f"{tenant.pk}\t{customer.pk}\t{metric.code}\t{low}-evt-1\n")
        UsageArchive.objects.create(
            tenant=tenant, month=date(2026, 9, 1), path=f"usage-archive/{low}/2026-09.csv.gz", sha256="0" * 64,
            rows=1, totals={str(customer.pk): {metric.code: "1"}},
        )
        if not AiUsageDay.objects.for_tenant(tenant).exists():  # the triggers keep it; else one by hand
            AiUsageDay.objects.create(
                tenant=tenant, customer=customer, day=date(2026, 11, 5), provider="openai", model=f"{low}-gpt",
                feature="", calls=1, input_tokens=1000, output_tokens=10,
            )

        invoice = build_invoice(customer, lines=((f"{word} Platform Fee", "1", amount),))
        draft_invoice = build_invoice(
            customer, lines=((f"{word} Draft Fee", "1", amount),), period_start=date(2026, 10, 1),
            period_end=date(2026, 10, 31), finalize=False,
        )
        build_credit_note(invoice, reason=f"{word} outage")
        payment = payment_record(
            tenant=tenant, customer=customer, amount=Decimal("10.00"), received_on=date(2026, 12, 1),
            reference=f"{word} bank ref", note=f"{word} payment", allocations=[(invoice, Decimal("10.00"))],
            created_by=owner,
        )
        AccountPlan.objects.create(tenant=tenant, organisation_number="556677-8899", receivables_account="1511")
        overpaid = payment_record(
            tenant=tenant, customer=customer, amount=Decimal("5.00"), received_on=date(2026, 12, 1),
            reference=f"{word} overpaid", allocations=None, created_by=owner,
        )
        payment_refund(payment=overpaid, amount=Decimal("5.00"), refunded_on=date(2026, 12, 1), reference=f"{word} refund ref")
        PaymentProviderAccount.objects.create(
            tenant=tenant, publishable_key=f"pk_test_{word}", secret_key=f"sk_test_{word}", webhook_secret=f"whsec_{word}"
        )
        ProviderEvent.objects.create(
            tenant=tenant, event_id=f"evt_{word}", event_type="checkout.session.completed", invoice=invoice,
            payment=payment, outcome=ProviderEvent.Outcome.MISMATCH, detail=f"{word} card payment flagged",
        )
        credit = credit_request_create(
            customer=customer, amount=Decimal("40.00"), reason=f"{word} goodwill", requested_by=owner
        )
        CreditApplication.objects.create(tenant=tenant, credit_request=credit, invoice=draft_invoice, amount=Decimal("40.00"))
        InvoiceDelivery.objects.create(tenant=tenant, invoice=invoice, recipient=f"ap@{low}.example.com")
        schedule = dunning_schedule_for(tenant=tenant)
        step = DunningStep.objects.get(schedule=schedule, days_overdue=3)
        reminder = DunningReminder.objects.create(
            tenant=tenant, invoice=invoice, customer=customer, step=step, days_overdue=3,
            status=DunningReminder.Status.SENT, amount_due=Decimal(amount), currency=currency, late_fee=Decimal("7.00"),
            note=f"{word} reminder", sent_at=datetime(2027, 1, 4, 9, tzinfo=timezone.utc),
        )
        DunningReminderDelivery.objects.create(tenant=tenant, reminder=reminder, recipient=f"dun@{low}.example.com")
        PendingCharge.objects.create(
            tenant=tenant, customer=customer, reminder=reminder, description=f"{word} late fee",
            amount=Decimal("7.00"), currency=currency,
        )
        run = BillingRun.objects.create(
            tenant=tenant, period_start=date(2026, 11, 1), period_end=date(2026, 11, 30), finalize_on=date(2026, 12, 5),
            started_by=owner,
            error=f"{word} run error",
        )
        BillingRunItem.objects.create(tenant=tenant, run=run, customer=customer, invoice=invoice)

        ModelPrice.objects.create(
            tenant=tenant, provider="openai", model=f"{low}-gpt", input_price_per_million=Decimal("1"),
            output_price_per_million=Decimal("2"), effective_on=date(2026, 1, 1),
        )
        CustomerCost.objects.create(
            tenant=tenant, customer=customer, month=date(2026, 10, 1), amount=Decimal(amount), note=f"{word} cost"
        )
        rule = AnomalyRule.objects.create(tenant=tenant, name=f"{word} Rule", metric="spend", threshold=Decimal("5"))
        alert = AnomalyAlert.objects.create(
            tenant=tenant, customer=customer, rule=rule, kind="threshold", measure=f"{low}_spend",
            period_start=date(2026, 10, 1), period_end=date(2026, 10, 1), observed=Decimal(amount),
            baseline=Decimal("5"), emailed_to=f"owner@{low}.example.com",
        )
        AlertDelivery.objects.create(tenant=tenant, alert=alert, recipient=f"owner@{low}.example.com")
        PricePlan.objects.create(
            tenant=tenant, code=f"{low}-plan", name=f"{word} Plan", currency=currency, charge_model="flat",
            base_fee=Decimal(amount), description=f"{word} plan",
        )
        WhatIfRun.objects.create(tenant=tenant, months=12, requested_by=owner, error=f"{word} what-if")
        ExchangeRate.objects.create(tenant=tenant, currency="EUR", rate=Decimal("1.2345"), effective_on=date(2026, 1, 1))
        QuarterTarget.objects.create(tenant=tenant, year=2026, quarter=4, target=Money(amount, currency))
        MetricSnapshot.objects.create(
            tenant=tenant, month=date(2026, 10, 1), segment=f"tier:{word}", figures={"mrr": amount}
        )
        OpportunityFactory(
            tenant=tenant, customer=customer, title=f"{word} Expansion", amount=Money(amount, currency), owner=owner
        )
        ReportDelivery.objects.create(
            tenant=tenant, kind=ReportDelivery.Kind.MONTHLY, period="2026-11", recipient=f"owner@{low}.example.com"
        )
        endpoint = WebhookEndpoint.objects.create(
            tenant=tenant, url=f"https://hooks.{low}.example.com/{word}", description=f"{word} ERP hook",
            event_types=["invoice.finalized"], secret=f"whsec_{low}secret", disabled_reason=f"{word} receiver down",
        )
        event = WebhookEvent.objects.create(
            tenant=tenant, message_id=f"msg_{low}1", type="invoice.finalized",
            body=f'{{"type":"invoice.finalized","data":{{"customer":"{word} Customer AB","total":"{amount}"}}}}',
        )
        webhook_delivery = WebhookDelivery.objects.create(
            tenant=tenant, event=event, endpoint=endpoint, last_error=f"{word} said no"
        )
        WebhookAttempt.objects.create(
            tenant=tenant, delivery=webhook_delivery, status_code=500, error=f"{word} error",
            response_excerpt=f"{word} receiver says no",
        )
        WebhookEndpointNotice.objects.create(
            tenant=tenant, endpoint=endpoint, disabled_at=datetime(2026, 12, 1, tzinfo=timezone.utc),
            recipient=f"owner@{low}.example.com",
        )
        # The MRR facts (CustomerMrrFact) and their RevenueFactsState, so the revenue pages read them.
        revenue_facts_rebuild(tenant=tenant)
    return TenantWorld(tenant=tenant, owner=owner, portal_user=portal_user, api_key=raw_key)


def build_world() -> tuple[TenantWorld, TenantWorld]:
    """Tenant A (the identities: a member of every role, a portal user, an API key) and tenant B (the target)."""
    with platform_scope():
        tenant_a = TenantFactory(name="Alpha Isolation Inc", slug="alpha-iso", invoice_number_prefix="AL-")
        tenant_b = TenantFactory(
            name=f"{B_WORD} Isolation AB", slug=f"{B_WORD.lower()}-iso", reporting_currency="SEK", locale="sv",
            invoice_number_prefix="QK-",
        )
    a = _build_tenant(tenant_a, "Alpha", "1234.50")
    b = _build_tenant(tenant_b, B_WORD, B_AMOUNT)
    with platform_scope():
        a.staff[Role.OWNER] = a.owner
        for role in Role.values:
            if role != Role.OWNER:
                user = StaffUserFactory(username=f"alpha-{role}")
                Membership.objects.create(tenant=tenant_a, user=user, role=role)
                a.staff[role] = user
    return a, b


def platform_row(model):
    """A row of a platform-wide model (no tenant) whose text carries tenant B's word, made from the
    model's own fields: a login attempt for B's owner, say. None when a required field has no rule."""
    values = {}
    for f in model._meta.concrete_fields:
        if f.primary_key or f.is_relation or getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            if f.is_relation and not f.null and not f.has_default():
                return None
            continue
        if isinstance(f, models.GenericIPAddressField):
            values[f.name] = "10.0.0.9"
        elif isinstance(f, (models.CharField, models.TextField)) and not f.choices:
            values[f.name] = f"{B_WORD.lower()}-owner"[: f.max_length or None]
        elif f.has_default() or f.null:
            continue
        elif isinstance(f, models.IntegerField):
            values[f.name] = 1
        elif isinstance(f, models.DateTimeField):
            values[f.name] = django_timezone.now()
        elif isinstance(f, models.BooleanField):
            values[f.name] = False
        else:
            return None
    with platform_scope():
        return model._base_manager.create(**values)


def missing_models(tenant: Tenant) -> list[str]:
    """Tenant-owned models with no row of ``tenant`` (and not in NOT_BUILT)."""
    with platform_scope():
        return [
            m._meta.label for m in tenant_owned_models()
            if m._meta.label not in NOT_BUILT and not m._default_manager.for_tenant(tenant).exists()
        ]


def b_rows(tenant: Tenant) -> dict[str, list[int | str]]:
    """Primary keys of every tenant-owned row of ``tenant``, by model label."""
    with platform_scope():
        return {
            m._meta.label: list(m._default_manager.for_tenant(tenant).order_by("pk").values_list("pk", flat=True))
            for m in tenant_owned_models()
        }


def snapshot(tenant: Tenant) -> dict[str, list[tuple]]:
    """Every row of ``tenant`` in every table with a tenant column (history tables included), as values."""
    with platform_scope():
        return {
            m._meta.label: sorted(
                (tuple(sorted((k, repr(v)) for k, v in row.items())) for row in
                 m._base_manager.filter(tenant=tenant).values()),
            )
            for m in models_with_tenant_column()
        }


def cross_tenant_references(tenant: Tenant) -> list[str]:
    """Rows of ``tenant`` whose foreign key points at another tenant's row (a cross-tenant write)."""
    found = []
    with platform_scope():
        for model in tenant_owned_models():
            for f in model._meta.concrete_fields:
                target = getattr(f, "related_model", None)
                if not f.is_relation or f.name == "tenant" or target is None or not issubclass(target, TenantOwned):
                    continue
                rows = (
                    model._base_manager.filter(tenant=tenant)
                    .exclude(**{f"{f.name}__isnull": True})
                    .exclude(**{f"{f.name}__tenant": tenant})
                    .values_list("pk", flat=True)
                )
                found += [f"{model._meta.label} {pk}.{f.name}" for pk in rows]
    return found


def markers_found(text: str, *, echoed: str = "") -> list[str]:
    """Tenant B markers in ``text``; what the request itself sent (``echoed``) is not a leak."""
    for value in re.findall(r"[\w.@-]+", echoed):
        if len(value) > 3:
            text = text.replace(value, "")
    return [m.group(0) for p in B_PATTERNS for m in [p.search(text)] if m]
