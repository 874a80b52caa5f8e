"""The pipeline in the admin: columns, filters, won/lost actions, inline edits and history."""

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import Contract, Role
from customers.tenancy import platform_scope, tenant_scope
from revenue.models import Opportunity
from tests.customers.factories import CustomerFactory
from tests.revenue.factories import OpportunityFactory

CHANGELIST = "/admin/revenue/opportunity/"


@pytest.fixture
def pipeline(tenant_a, tenant_b):
    """Tenant A: one deal per band, one without a close date, one stale; tenant B: a deal of its own."""
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a, name="Alpha Inc")
        deals = {
            "early": OpportunityFactory(customer=customer, tenant=tenant_a, title="Early deal", probability=20,
                                        expected_close_on=date(2026, 11, 3)),
            "active": OpportunityFactory(customer=customer, tenant=tenant_a, title="Active deal", probability=50,
                                         expected_close_on=date(2027, 2, 1)),
            "undated": OpportunityFactory(customer=customer, tenant=tenant_a, title="Undated deal", probability=40,
                                          expected_close_on=None),
            "stale": OpportunityFactory(customer=customer, tenant=tenant_a, title="Stale deal", probability=80,
                                        expected_close_on=date(2026, 12, 20),
                                        last_touched_at=timezone.now() - timedelta(days=8)),
        }
        OpportunityFactory(customer=CustomerFactory(tenant=tenant_b, name="Beta AB"), tenant=tenant_b,
                           title="Beta deal", probability=80)
    return deals


def titles(response):
    return sorted(o.title for o in response.context["cl"].result_list)


def test_list_shows_account_amount_band_weighted_amount_and_stale_flag(client, manager, pipeline):
    response = client.get(CHANGELIST + "?band=negotiating")
    body = response.content.decode()
    assert titles(response) == ["Stale deal"]
    assert "Alpha Inc" in body
    assert "Negotiating (70–90%)" in body
    assert "$9,600.00" in body  # 80% of $12,000.00
    assert 'alt="True"' in body  # the stale flag


@pytest.mark.parametrize(
    "query, expected",
    [
        ("band=early", ["Early deal"]),
        ("band=active", ["Active deal", "Undated deal"]),
        ("quarter=2026-Q4", ["Early deal", "Stale deal"]),
        ("quarter=2027-Q1", ["Active deal"]),
        ("quarter=none", ["Undated deal"]),
        ("stale=yes", ["Stale deal"]),
        ("stale=no", ["Active deal", "Early deal", "Undated deal"]),
        ("q=undated", ["Undated deal"]),
        ("q=Alpha", ["Active deal", "Early deal", "Stale deal", "Undated deal"]),
    ],
)
def test_filters_and_search(client, manager, pipeline, query, expected):
    assert titles(client.get(f"{CHANGELIST}?{query}")) == expected


def test_quarter_filter_offers_the_quarters_in_use_and_no_date(client, manager, pipeline):
    response = client.get(CHANGELIST)
    quarter_filter = next(f for f in response.context["cl"].filter_specs if f.parameter_name == "quarter")
    assert [label for _, label in quarter_filter.lookup_choices] == ["2026-Q4", "2027-Q1", "No date"]


def test_a_malformed_quarter_is_ignored_not_an_error(client, manager, pipeline):
    response = client.get(CHANGELIST + "?quarter=2026-Q9")
    assert response.status_code == 200
    assert len(titles(response)) == 4


def test_mark_won_creates_a_draft_contract_starting_today(client, manager, pipeline, tenant_a):
    deal = pipeline["active"]
    client.post(CHANGELIST, {"action": "mark_won", "_selected_action": [deal.pk], "index": 0})
    deal.refresh_from_db()
    assert (deal.stage, deal.probability) == (Opportunity.Stage.WON, 100)
    contract = Contract.objects.for_tenant(tenant_a).get()
    assert (contract.status, contract.start_date) == (Contract.Status.DRAFT, timezone.localdate())
    with tenant_scope(tenant_a):  # a related object is read as the request would, in its tenant's scope
        assert deal.won_contract == contract


def test_mark_lost_without_a_reason_changes_nothing(client, manager, pipeline):
    deal = pipeline["active"]
    response = client.post(CHANGELIST, {"action": "mark_lost", "_selected_action": [deal.pk], "index": 0}, follow=True)
    assert "Say why they were lost" in response.content.decode()
    deal.refresh_from_db()
    assert deal.stage == Opportunity.Stage.PROPOSAL


def test_mark_lost_with_a_reason(client, manager, pipeline):
    deal = pipeline["active"]
    client.post(
        CHANGELIST, {"action": "mark_lost", "_selected_action": [deal.pk], "index": 0, "lost_reason": "Chose a rival"}
    )
    deal.refresh_from_db()
    assert (deal.stage, deal.probability, deal.lost_reason) == (Opportunity.Stage.LOST, 0, "Chose a rival")


def test_list_edit_saves_and_touches_the_opportunity(client, manager, pipeline):
    response = client.get(CHANGELIST + "?band=negotiating")
    deal = pipeline["stale"]
    formset = response.context["cl"].formset
    data = {
        "form-TOTAL_FORMS": 1, "form-INITIAL_FORMS": 1, "form-MIN_NUM_FORMS": 0, "form-MAX_NUM_FORMS": 1000,
        "form-0-id": deal.pk, "form-0-probability": 90, "form-0-stage": "negotiation",
        "form-0-expected_close_on": "2026-12-31", "_save": "Save",
    }
    assert formset.total_form_count() == 1
    response = client.post(CHANGELIST + "?band=negotiating", data)
    assert response.status_code == 302
    deal.refresh_from_db()
    assert (deal.probability, deal.stage, deal.expected_close_on) == (90, "negotiation", date(2026, 12, 31))
    assert not deal.is_stale


def test_changes_show_in_the_history(client, manager, pipeline):
    deal = pipeline["early"]
    url = reverse("admin:revenue_opportunity_change", args=(deal.pk,))
    client.post(
        url,
        {
            "title": deal.title, "customer": deal.customer_id, "prospect_name": "", "kind": deal.kind,
            "amount_0": "12000.00", "amount_1": "USD", "probability": 30, "stage": "qualified",
            "expected_close_on": "2026-11-03", "owner": manager.pk, "next_step": "Demo", "lost_reason": "",
        },
    )
    response = client.get(reverse("admin:revenue_opportunity_history", args=(deal.pk,)))
    body = response.content.decode()
    assert response.status_code == 200
    assert manager.username in body
    assert "Probability" in body and "20" in body and "30" in body


def test_the_pipeline_list_starts_on_open_opportunities(client, tenant_a, tenant_b, member_factory):
    OpportunityFactory(tenant=tenant_a, customer__tenant=tenant_a, title="Open deal", stage=Opportunity.Stage.PROPOSAL)
    OpportunityFactory(tenant=tenant_a, customer__tenant=tenant_a, title="Won deal", stage=Opportunity.Stage.WON)
    client.force_login(member_factory(tenant_a, Role.ACCOUNT_MANAGER))

    default = client.get("/admin/revenue/opportunity/").content.decode()
    everything = client.get("/admin/revenue/opportunity/?state=all").content.decode()
    won_by_stage = client.get("/admin/revenue/opportunity/?stage__exact=won").content.decode()

    assert ("Open deal" in default, "Won deal" in default) == (True, False)
    assert ("Open deal" in everything, "Won deal" in everything) == (True, True)
    assert ("Open deal" in won_by_stage, "Won deal" in won_by_stage) == (False, True)


def _list_edit(deal, **changes):
    data = {
        "form-TOTAL_FORMS": 1, "form-INITIAL_FORMS": 1, "form-MIN_NUM_FORMS": 0, "form-MAX_NUM_FORMS": 1000,
        "form-0-id": deal.pk, "form-0-probability": deal.probability, "form-0-stage": deal.stage,
        "form-0-expected_close_on": deal.expected_close_on.isoformat() if deal.expected_close_on else "",
        "_save": "Save",
    }
    data.update({f"form-0-{name}": value for name, value in changes.items()})
    return data


def test_a_deal_is_won_only_by_the_action_not_by_editing_its_stage(client, manager, pipeline, tenant_a):
    deal = pipeline["stale"]

    listed = client.post(CHANGELIST + "?band=negotiating", _list_edit(deal, stage="won"))
    url = reverse("admin:revenue_opportunity_change", args=(deal.pk,))
    form = client.get(url).content.decode()
    changed = client.post(url, {
        "title": deal.title, "customer": deal.customer_id, "prospect_name": "", "kind": deal.kind,
        "amount_0": "12000.00", "amount_1": "USD", "probability": 100, "stage": "won",
        "expected_close_on": "2026-12-20", "owner": "", "next_step": "", "lost_reason": "",
    })

    assert listed.status_code == changed.status_code == 200  # shown again with the error
    assert "Use the “Mark won” or “Mark lost” action" in listed.content.decode()
    assert "Use the “Mark won” or “Mark lost” action" in changed.content.decode()
    assert 'value="won"' not in form and 'value="negotiation"' in form and 'value="lost"' not in form
    deal.refresh_from_db()
    assert (deal.stage, deal.probability) == (Opportunity.Stage.PROPOSAL, 80)
    assert not Contract.objects.for_tenant(tenant_a).exists()


def test_a_closed_deal_is_history_shown_and_not_edited(client, manager, pipeline):
    deal = pipeline["active"]
    client.post(CHANGELIST, {"action": "mark_lost", "_selected_action": [deal.pk], "index": 0, "lost_reason": "Rival"})
    deal.refresh_from_db()
    url = reverse("admin:revenue_opportunity_change", args=(deal.pk,))

    form = client.get(url).content.decode()
    listed = client.post(CHANGELIST + "?state=all&q=Active", _list_edit(deal, probability=60, stage="proposal"))

    assert 'name="amount_0"' not in form and 'name="probability"' not in form and "Rival" in form
    assert "“Active deal” is lost: a closed opportunity is history and is not edited." in listed.content.decode()
    deal.refresh_from_db()
    assert (deal.stage, deal.probability, deal.lost_reason) == (Opportunity.Stage.LOST, 0, "Rival")
