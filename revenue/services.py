"""Writes on the sales pipeline: create, touch, win, lose."""

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from customers.models import BillingInterval, Contract, ContractLine, Customer, Tenant
from customers.services import LineSpec, contract_create, customer_create, save_validated
from revenue.models import MetricSnapshot, Opportunity, QuarterTarget


def opportunity_create(*, tenant: Tenant, title: str, amount, probability: int, **fields) -> Opportunity:
    """Create an open opportunity. Raises ValidationError (e.g. probability outside 0–100)."""
    return save_validated(Opportunity(tenant=tenant, title=title, amount=amount, probability=probability, **fields))


def opportunity_update(*, opportunity: Opportunity, **fields) -> Opportunity:
    """Change an open opportunity and mark it touched now. Won or lost ones are closed to edits."""
    if not opportunity.is_open:
        raise ValidationError("A won or lost opportunity cannot be changed.")
    for name, value in fields.items():
        setattr(opportunity, name, value)
    opportunity.last_touched_at = timezone.now()
    return save_validated(opportunity)


def _customer_for(opportunity: Opportunity) -> Customer:
    if opportunity.customer_id:
        return opportunity.customer
    base = slugify(opportunity.prospect_name)[:50] or "prospect"
    ref, n = base, 1
    while Customer.objects.for_tenant(opportunity.tenant).filter(external_ref=ref).exists():
        n += 1
        ref = f"{base}-{n}"
    return customer_create(
        tenant=opportunity.tenant,
        name=opportunity.prospect_name,
        external_ref=ref,
        currency=str(opportunity.amount.currency),
        language=opportunity.tenant.locale,
    )


@transaction.atomic
def opportunity_win(*, opportunity: Opportunity, start_date: date, closed_on: date | None = None) -> Contract:
    """Mark the opportunity won and create a draft contract from it.

    A recurring opportunity's amount is its yearly value: the draft is an annual contract with one
    recurring line of that amount. A one-off becomes a one-time line. A prospect becomes a customer.
    The contract stays a draft until someone activates it (customers.services.contract_activate).
    """
    if not opportunity.is_open:
        raise ValidationError("Only an open opportunity can be won.")
    customer = _customer_for(opportunity)
    recurring = opportunity.kind == Opportunity.Kind.RECURRING
    contract = contract_create(
        customer=customer,
        title=opportunity.title,
        start_date=start_date,
        currency=str(opportunity.amount.currency),
        billing_interval=BillingInterval.ANNUAL if recurring else BillingInterval.MONTHLY,
        status=Contract.Status.DRAFT,
        lines=[
            LineSpec(
                description=opportunity.title,
                kind=ContractLine.Kind.RECURRING if recurring else ContractLine.Kind.ONE_TIME,
                unit_price=opportunity.amount,
            )
        ],
    )
    opportunity.customer = customer
    opportunity.stage = Opportunity.Stage.WON
    opportunity.probability = 100
    opportunity.won_contract = contract
    opportunity.closed_on = closed_on or timezone.localdate()
    opportunity.last_touched_at = timezone.now()
    save_validated(opportunity)
    return contract


@transaction.atomic
def opportunity_lose(*, opportunity: Opportunity, reason: str, closed_on: date | None = None) -> Opportunity:
    """Mark the opportunity lost with a reason (required)."""
    if not opportunity.is_open:
        raise ValidationError("Only an open opportunity can be lost.")
    if not reason.strip():
        raise ValidationError({"lost_reason": "Say why the opportunity was lost."})
    opportunity.stage = Opportunity.Stage.LOST
    opportunity.probability = 0
    opportunity.lost_reason = reason.strip()
    opportunity.closed_on = closed_on or timezone.localdate()
    opportunity.last_touched_at = timezone.now()
    return save_validated(opportunity)


@transaction.atomic
def quarter_target_set(*, tenant: Tenant, year: int, quarter: int, target) -> QuarterTarget:
    """Set the revenue ``tenant`` aims to close in ``year``-Q``quarter`` (a Money; it replaces the
    quarter's target if there is one). Pipeline coverage is measured against it. Raises
    ValidationError (quarter outside 1–4, year outside 2000–2100)."""
    quarter_target = QuarterTarget.objects.for_tenant(tenant).filter(year=year, quarter=quarter).first()
    if quarter_target is None:
        quarter_target = QuarterTarget(tenant=tenant, year=year, quarter=quarter)
    quarter_target.target = target
    return save_validated(quarter_target)


@transaction.atomic
def snapshot_month(*, tenant: Tenant, month: date, segment: str = "") -> MetricSnapshot:
    """Freeze one closed month's MRR, movements and retention figures for ``tenant`` (and ``segment``,
    ``dimension:value`` or ``""`` for all customers) into MetricSnapshot.

    Idempotent: a second run for the same (tenant, month, segment) replaces the figures. Raises
    ValidationError for a month that has not ended yet in the tenant's time zone or a bad segment,
    and MissingExchangeRate when a rate is missing.
    """
    from customers.periods import last_closed_month, month_start
    from revenue.selectors.common import MetricError, Segment
    from revenue.selectors.retention import retention_series

    month = month_start(month)
    if month > last_closed_month(tenant):
        raise ValidationError({"month": f"{month:%Y-%m} has not ended yet; only closed months are frozen."})
    try:
        parsed = Segment.parse(segment)
    except MetricError as exc:
        raise ValidationError({"segment": str(exc)}) from None
    figures = retention_series(tenant=tenant, first=month, last=month, segment=parsed)[0]
    stored = {key: (None if value is None else str(value)) for key, value in figures.items() if key not in ("month", "segment")}
    snapshot = MetricSnapshot.objects.for_tenant(tenant).filter(month=month, segment=segment).first()
    snapshot = snapshot or MetricSnapshot(tenant=tenant, month=month, segment=segment)
    snapshot.figures = stored
    snapshot.computed_at = timezone.now()
    return save_validated(snapshot)
