"""Opportunities: an open pipeline over the next four quarters, and deals won or lost in the past.

The open pipeline always starts with a fixed pattern (every band, a stale deal, one without a close
date) so the dashboards have something to show at any scale; random deals follow.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from customers.models import Contract, Customer
from customers.money import Money
from customers.periods import add_months
from customers.services import contract_activate
from portal.demo.common import DemoContext, money, round_to
from revenue.models import Opportunity, QuarterTarget
from revenue.selectors.pipeline import pipeline_coverage, quarters_ahead
from revenue.services import opportunity_create, opportunity_lose, opportunity_win, quarter_target_set

# (probability, quarters ahead or None for no close date, days since last touched)
OPEN_PATTERN = [
    (80, 0, 12),  # negotiating and stale: the weekly digest must flag it
    (20, 2, 3),
    (50, 1, 2),
    (10, None, 30),
    (90, 0, 1),
    (30, 3, 5),
    (60, 2, 4),
    (70, 1, 9),  # stale
    (40, None, 6),
]


@dataclass(frozen=True)
class Deal:
    """An opportunity to be: on an existing customer or a named prospect."""

    title: str
    amount: Money
    kind: str = Opportunity.Kind.RECURRING
    customer: Customer | None = None
    prospect_name: str = ""
    next_step: str = ""


def stage_for(probability: int) -> str:
    if probability <= 20:
        return Opportunity.Stage.LEAD
    if probability <= 30:
        return Opportunity.Stage.QUALIFIED
    if probability <= 60:
        return Opportunity.Stage.PROPOSAL
    return Opportunity.Stage.NEGOTIATION


def _close_in_quarter(ctx: DemoContext, quarters_ahead: int) -> date:
    quarter_first = add_months(ctx.today, -((ctx.today.month - 1) % 3) + 3 * quarters_ahead)
    earliest = max(quarter_first, ctx.today + timedelta(days=7))
    latest = add_months(quarter_first, 3) - timedelta(days=1)
    if earliest > latest:  # the current quarter is nearly over: the deal slips to the next one
        return _close_in_quarter(ctx, quarters_ahead + 1)
    return earliest + timedelta(days=ctx.rng.randint(0, (latest - earliest).days))


def open_deal(ctx: DemoContext, deal: Deal, *, probability: int, quarters_ahead: int | None, touched_days_ago: int):
    touched = ctx.today - timedelta(days=touched_days_ago)
    created = touched - timedelta(days=ctx.rng.randint(10, 120))
    return opportunity_create(
        tenant=ctx.tenant,
        title=deal.title,
        amount=deal.amount,
        probability=probability,
        kind=deal.kind,
        customer=deal.customer,
        prospect_name=deal.prospect_name,
        stage=stage_for(probability),
        expected_close_on=None if quarters_ahead is None else _close_in_quarter(ctx, quarters_ahead),
        owner=deal.customer.account_manager if deal.customer else ctx.manager(),
        next_step=deal.next_step,
        last_touched_at=ctx.moment(touched),
        created_at=ctx.moment(created),
    )


def open_pipeline(ctx: DemoContext, deals: list[Deal]) -> None:
    """Open opportunities: the fixed pattern first, then random probabilities, dates and touches."""
    for index, deal in enumerate(deals):
        if index < len(OPEN_PATTERN):
            probability, quarters_ahead, touched = OPEN_PATTERN[index]
        else:
            probability = ctx.rng.choice([10, 20, 20, 30, 30, 40, 50, 50, 60, 70, 80])
            quarters_ahead = None if ctx.rng.random() < 0.12 else ctx.rng.randint(0, 3)
            touched = ctx.rng.randint(0, 6) if ctx.rng.random() < 0.8 else ctx.rng.randint(8, 25)
        open_deal(ctx, deal, probability=probability, quarters_ahead=quarters_ahead, touched_days_ago=touched)


def _backdate(opportunity: Opportunity, ctx: DemoContext, *, created: date, closed: date) -> None:
    # The services stamp "touched now"; a deal closed last year was last touched when it closed.
    Opportunity.objects.for_tenant(ctx.tenant).filter(pk=opportunity.pk).update(
        created_at=ctx.moment(created), last_touched_at=ctx.moment(closed, hour=15)
    )


def won_deal(ctx: DemoContext, deal: Deal, *, closed_on: date, start: date, sales_days: int = 60) -> Contract:
    """A deal won on ``closed_on``: its draft contract starts on ``start`` and is activated."""
    opportunity = opportunity_create(
        tenant=ctx.tenant,
        title=deal.title,
        amount=deal.amount,
        probability=70,
        kind=deal.kind,
        customer=deal.customer,
        prospect_name=deal.prospect_name,
        stage=Opportunity.Stage.NEGOTIATION,
        expected_close_on=closed_on,
        owner=deal.customer.account_manager if deal.customer else ctx.manager(),
    )
    contract = opportunity_win(opportunity=opportunity, start_date=start, closed_on=closed_on)
    contract = contract_activate(contract=contract, created_by=opportunity.owner)
    _backdate(opportunity, ctx, created=closed_on - timedelta(days=sales_days), closed=closed_on)
    return contract


def lost_deal(ctx: DemoContext, deal: Deal, *, closed_on: date, reason: str) -> Opportunity:
    opportunity = opportunity_create(
        tenant=ctx.tenant,
        title=deal.title,
        amount=deal.amount,
        probability=ctx.rng.choice([30, 40, 50, 60]),
        kind=deal.kind,
        customer=deal.customer,
        prospect_name=deal.prospect_name,
        stage=Opportunity.Stage.PROPOSAL,
        expected_close_on=closed_on,
        owner=deal.customer.account_manager if deal.customer else ctx.manager(),
    )
    opportunity = opportunity_lose(opportunity=opportunity, reason=reason, closed_on=closed_on)
    _backdate(opportunity, ctx, created=closed_on - timedelta(days=ctx.rng.randint(20, 90)), closed=closed_on)
    return opportunity


# The open pipeline of a healthy sales team covers about three times what is left to win in a quarter.
COVERAGE_AIMED = 3


def has_quarter_targets(tenant) -> bool:
    return QuarterTarget.objects.for_tenant(tenant).exists()


def quarter_targets(ctx: DemoContext) -> None:
    """Targets for the current and the next quarter, so the pipeline dashboard shows coverage: what
    is already won plus a third of the open pipeline expected in the quarter, rounded as people
    would quote it."""
    step = 10_000 if ctx.currency == "SEK" else 1_000
    for year, quarter in quarters_ahead(ctx.today, 2):
        coverage = pipeline_coverage(tenant=ctx.tenant, year=year, quarter=quarter, today=ctx.today)
        left = max(coverage["open_pipeline"] / COVERAGE_AIMED, Decimal(step))
        target = money(round_to(coverage["won"] + left, step), ctx.currency)
        quarter_target_set(tenant=ctx.tenant, year=year, quarter=quarter, target=target)
