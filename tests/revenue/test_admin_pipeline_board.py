"""The pipeline's totals row, its board by stage (moving a card), and quarter targets in the admin."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers.models import Role
from customers.money import Money
from customers.tenancy import platform_scope, tenant_scope
from revenue.models import ExchangeRate, Opportunity, QuarterTarget
from revenue.selectors.pipeline import pipeline_totals
from revenue.services import quarter_target_set
from tests.customers.factories import CustomerFactory
from tests.revenue.factories import ExchangeRateFactory, OpportunityFactory, QuarterTargetFactory

CHANGELIST = "/admin/revenue/opportunity/"
BOARD = "/admin/revenue/opportunity/board/"


def move_url(opportunity):
    return reverse("admin:revenue_opportunity_move", args=(opportunity.pk,))


@pytest.fixture
def deals(tenant_a, tenant_b):
    """Tenant A (USD): two open USD deals, an open SEK deal (rate 0.095), a won deal and a lost one;
    tenant B a deal of its own."""
    with platform_scope():
        ExchangeRateFactory(tenant=tenant_a, currency="SEK", rate=Decimal("0.0950000000"), effective_on=date(2025, 1, 1))
        alpha = CustomerFactory(tenant=tenant_a, name="Alpha Inc", currency="USD")
        sjo = CustomerFactory(tenant=tenant_a, name="Sjöberg AB", currency="SEK")
        found = {
            "big": OpportunityFactory(customer=alpha, tenant=tenant_a, title="Big deal", probability=50,
                                      amount=Money("12000.00", "USD"), stage=Opportunity.Stage.PROPOSAL),
            "odd": OpportunityFactory(customer=alpha, tenant=tenant_a, title="Odd deal", probability=30,
                                      amount=Money("3333.33", "USD"), stage=Opportunity.Stage.LEAD),
            "swedish": OpportunityFactory(customer=sjo, tenant=tenant_a, title="Swedish deal", probability=80,
                                          amount=Money("10000.00", "SEK"), stage=Opportunity.Stage.NEGOTIATION),
            "won": OpportunityFactory(customer=alpha, tenant=tenant_a, title="Won deal", probability=100,
                                      amount=Money("5000.00", "USD"), stage=Opportunity.Stage.WON),
            "lost": OpportunityFactory(customer=alpha, tenant=tenant_a, title="Lost deal", probability=0,
                                       amount=Money("7000.00", "USD"), stage=Opportunity.Stage.LOST),
        }
        OpportunityFactory(customer=CustomerFactory(tenant=tenant_b, name="Beta AB", currency="SEK"), tenant=tenant_b,
                           title="Beta deal", probability=90, amount=Money("999999.00", "SEK"))
    return found


# Totals row


def test_totals_of_the_open_list_in_the_reporting_currency(tenant_a, deals):
    with tenant_scope(tenant_a):
        totals = pipeline_totals(tenant=tenant_a, opportunities=Opportunity.objects.for_tenant(tenant_a).open())
    # 12 000 + 3 333.33 + 10 000 SEK × 0.095 = 950; weighted 6 000 + 999.999 + 760.
    assert totals == {"currency": "USD", "count": 3, "amount": Decimal("16283.33"), "weighted": Decimal("7759.999")}


def test_the_list_shows_the_totals_of_every_listed_row(client, manager, deals):
    response = client.get(CHANGELIST)
    totals = response.context["pipeline_totals"]
    assert (totals["count"], totals["amount"], totals["weighted"]) == (3, Decimal("16283.33"), Decimal("7759.999"))
    body = response.content.decode()
    assert '<td class="pipeline-total-amount">$16,283.33</td>' in body
    assert '<td class="pipeline-total-weighted">$7,760.00</td>' in body


def test_the_totals_follow_the_filters(client, manager, deals):
    totals = client.get(CHANGELIST + "?state=all").context["pipeline_totals"]
    # Won deals count in full, lost ones at 0 %.
    assert (totals["count"], totals["amount"], totals["weighted"]) == (5, Decimal("28283.33"), Decimal("12759.999"))
    totals = client.get(CHANGELIST + "?q=Odd").context["pipeline_totals"]
    assert (totals["count"], totals["amount"], totals["weighted"]) == (1, Decimal("3333.33"), Decimal("999.999"))


def test_a_missing_exchange_rate_is_said_not_a_500(client, manager, deals, tenant_a):
    with tenant_scope(tenant_a):
        ExchangeRate.objects.for_tenant(tenant_a).delete()
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert "pipeline_totals" not in response.context
    assert "SEK" in response.context["pipeline_totals_problem"]


# The board


def test_the_board_has_one_column_per_open_stage_with_the_tenants_open_cards(client, manager, deals):
    response = client.get(BOARD)
    assert response.status_code == 200
    columns = {stage: [o.title for o in cards] for stage, _label, cards in response.context["columns"]}
    assert columns == {"lead": ["Odd deal"], "qualified": [], "proposal": ["Big deal"], "negotiation": ["Swedish deal"]}
    body = response.content.decode()
    assert "$12,000.00" in body and "50 %" in body and "2026-12-15" in body
    assert "Beta deal" not in body
    assert 'draggable="true"' in body


def test_moving_a_card_changes_the_stage_and_records_who_did_it(client, manager, deals):
    deal = deals["odd"]
    before = timezone.now()
    response = client.post(move_url(deal), {"stage": "qualified"})
    assert response.status_code == 200
    assert response.json() == {"id": deal.pk, "stage": "qualified", "stage_display": "Qualified"}
    deal.refresh_from_db()
    assert deal.stage == Opportunity.Stage.QUALIFIED
    assert deal.last_touched_at >= before
    with platform_scope():
        record = deal.history.order_by("-history_date", "-history_id").first()
    assert (record.stage, record.history_user, record.history_type) == ("qualified", manager, "~")


def test_a_viewer_cannot_move_a_card(client, member_factory, tenant_a, deals):
    client.force_login(member_factory(tenant_a, Role.VIEWER))
    board = client.get(BOARD)
    assert board.status_code == 200 and 'draggable="true"' not in board.content.decode()
    response = client.post(move_url(deals["odd"]), {"stage": "qualified"})
    assert response.status_code == 403
    assert "reads the pipeline" in response.json()["error"]
    deals["odd"].refresh_from_db()
    assert deals["odd"].stage == Opportunity.Stage.LEAD


def test_finance_reads_the_pipeline_and_cannot_move_a_card(client, member_factory, tenant_a, deals):
    client.force_login(member_factory(tenant_a, Role.FINANCE))
    assert client.post(move_url(deals["odd"]), {"stage": "proposal"}).status_code == 403


@pytest.mark.parametrize("closed", ["won", "lost"])
def test_a_won_or_lost_deal_is_not_moved(client, manager, deals, closed):
    deal = deals[closed]
    response = client.post(move_url(deal), {"stage": "proposal"})
    assert response.status_code == 409
    assert "is closed" in response.json()["error"]
    deal.refresh_from_db()
    assert deal.stage == closed


@pytest.mark.parametrize("stage", ["won", "lost", "", "nonsense"])
def test_a_card_moves_only_to_an_open_stage(client, manager, deals, stage):
    response = client.post(move_url(deals["odd"]), {"stage": stage})
    assert response.status_code == 400
    assert "list's actions" in response.json()["error"]
    deals["odd"].refresh_from_db()
    assert deals["odd"].stage == Opportunity.Stage.LEAD


def test_moving_needs_a_post_with_a_csrf_token(manager, deals):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(manager)
    assert csrf_client.get(move_url(deals["odd"])).status_code == 405
    assert csrf_client.post(move_url(deals["odd"]), {"stage": "qualified"}).status_code == 403
    deals["odd"].refresh_from_db()
    assert deals["odd"].stage == Opportunity.Stage.LEAD


def test_another_tenants_deal_is_not_found(client, manager, deals, tenant_b):
    with platform_scope():
        theirs = Opportunity.objects.get(tenant=tenant_b)
    assert client.post(move_url(theirs), {"stage": "lead"}).status_code == 404


# Quarter targets


@pytest.mark.parametrize("role", [Role.OWNER, Role.FINANCE, Role.ACCOUNT_MANAGER])
def test_owners_finance_and_managers_set_a_quarter_target(client, member_factory, tenant_a, role):
    client.force_login(member_factory(tenant_a, role))
    response = client.post("/admin/revenue/quartertarget/add/",
                           {"year": 2027, "quarter": 1, "target_0": "250000.00", "target_1": "USD"})
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        target = QuarterTarget.objects.for_tenant(tenant_a).get()
    assert (target.year, target.quarter, target.target) == (2027, 1, Money("250000.00", "USD"))


def test_a_viewer_cannot_set_a_quarter_target(client, member_factory, tenant_a):
    client.force_login(member_factory(tenant_a, Role.VIEWER))
    response = client.post("/admin/revenue/quartertarget/add/",
                           {"year": 2027, "quarter": 1, "target_0": "250000.00", "target_1": "USD"})
    assert response.status_code == 403
    with tenant_scope(tenant_a):
        assert not QuarterTarget.objects.for_tenant(tenant_a).exists()


def test_quarter_target_set_replaces_the_quarters_target(tenant_a, tenant_b):
    with platform_scope():
        QuarterTargetFactory(tenant=tenant_b, year=2027, quarter=1)
    with tenant_scope(tenant_a):
        quarter_target_set(tenant=tenant_a, year=2027, quarter=1, target=Money("100.00", "USD"))
        quarter_target_set(tenant=tenant_a, year=2027, quarter=1, target=Money("250.00", "USD"))
        assert [(t.year, t.quarter, t.target) for t in QuarterTarget.objects.for_tenant(tenant_a)] == [
            (2027, 1, Money("250.00", "USD"))]


def test_quarter_target_set_refuses_a_fifth_quarter(tenant_a):
    with tenant_scope(tenant_a), pytest.raises(ValidationError):
        quarter_target_set(tenant=tenant_a, year=2027, quarter=5, target=Money("100.00", "USD"))
