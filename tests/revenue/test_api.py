"""The REST API for pipeline opportunities: derived fields, filters, win and lose, isolation."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from customers.models import Contract, Customer, Role
from customers.money import Money
from customers.tenancy import platform_scope
from revenue.models import Opportunity
from tests.api_clients import key_client
from tests.customers.factories import CustomerFactory
from tests.revenue.factories import OpportunityFactory


@pytest.fixture
def api_a(tenant_a):
    return key_client(tenant_a)


@pytest.fixture
def customer_a(tenant_a):
    return CustomerFactory(tenant=tenant_a, name="Alpha Inc", currency="USD")


def names(response):
    return sorted(o["title"] for o in response.json()["results"])


def test_opportunity_shows_band_weighted_amount_and_staleness(api_a, customer_a, member_factory):
    owner = member_factory(customer_a.tenant)
    touched = timezone.now() - timedelta(days=8)
    opportunity = OpportunityFactory(
        customer=customer_a,
        title="Expansion",
        amount=Money("12345.67", "USD"),
        probability=70,
        stage=Opportunity.Stage.NEGOTIATION,
        owner=owner,
        last_touched_at=touched,
    )

    body = api_a.get(f"/api/v1/opportunities/{opportunity.pk}/").json()

    assert {k: v for k, v in body.items() if k not in ("last_touched_at", "created_at")} == {
        "id": opportunity.pk,
        "customer": customer_a.pk,
        "prospect_name": "",
        "account_name": "Alpha Inc",
        "title": "Expansion",
        "kind": "recurring",
        "amount": {"amount": "12345.67", "currency": "USD"},
        "probability": 70,
        "band": "negotiating",
        "weighted_amount": {"amount": "8641.969", "currency": "USD"},
        "stage": "negotiation",
        "expected_close_on": "2026-12-15",
        "owner": owner.pk,
        "next_step": "",
        "is_stale": True,
        "lost_reason": "",
        "won_contract": None,
        "closed_on": None,
    }


def test_create_opportunity_answers_201(api_a, tenant_a, customer_a):
    response = api_a.post(
        "/api/v1/opportunities/",
        {
            "customer": customer_a.pk,
            "title": "Upsell",
            "amount": {"amount": "24000", "currency": "USD"},
            "probability": 40,
            "expected_close_on": "2026-11-30",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["stage"], body["band"], body["weighted_amount"], body["is_stale"]) == (
        "lead",
        "active",
        {"amount": "9600.00", "currency": "USD"},
        False,
    )
    opportunity = Opportunity.objects.for_tenant(tenant_a).get()
    assert (opportunity.amount, opportunity.probability) == (Money("24000.00", "USD"), 40)


def test_probability_above_100_is_refused_with_a_message(api_a, customer_a):
    response = api_a.post(
        "/api/v1/opportunities/",
        {"customer": customer_a.pk, "title": "Dream", "amount": {"amount": "1", "currency": "USD"}, "probability": 150},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"probability": ["Probability is a percentage between 0 and 100."]}


def test_opportunity_without_customer_or_prospect_is_refused(api_a):
    response = api_a.post(
        "/api/v1/opportunities/",
        {"title": "Nobody", "amount": {"amount": "1000", "currency": "USD"}, "probability": 10},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Name a customer or a prospect."]}


def test_opportunity_in_an_unknown_currency_is_refused(api_a):
    response = api_a.post(
        "/api/v1/opportunities/",
        {"prospect_name": "Delta", "title": "X", "amount": {"amount": "1000", "currency": "BTC"}, "probability": 10},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "amount": {"currency": ['Unknown currency "BTC"; use one of USD, EUR, SEK, GBP, NOK, DKK, CHF, JPY, CAD, AUD.']}
    }


def test_opportunity_cannot_be_created_won(api_a, customer_a):
    response = api_a.post(
        "/api/v1/opportunities/",
        {
            "customer": customer_a.pk,
            "title": "Shortcut",
            "amount": {"amount": "1", "currency": "USD"},
            "probability": 90,
            "stage": "won",
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"stage": ["Use the win or lose action to close an opportunity."]}


def test_owner_from_another_tenant_is_refused(api_a, customer_a, tenant_b, member_factory):
    foreign = member_factory(tenant_b, Role.ACCOUNT_MANAGER)

    response = api_a.post(
        "/api/v1/opportunities/",
        {
            "customer": customer_a.pk,
            "title": "X",
            "amount": {"amount": "1", "currency": "USD"},
            "probability": 10,
            "owner": foreign.pk,
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"owner": [f'Invalid pk "{foreign.pk}" - object does not exist.']}


def test_patch_opportunity_marks_it_touched(api_a, customer_a):
    long_ago = timezone.now() - timedelta(days=30)
    opportunity = OpportunityFactory(customer=customer_a, probability=50, last_touched_at=long_ago)

    response = api_a.patch(f"/api/v1/opportunities/{opportunity.pk}/", {"probability": 80}, format="json")

    assert response.status_code == 200
    opportunity.refresh_from_db()
    assert opportunity.probability == 80
    assert opportunity.last_touched_at > long_ago


def test_patch_of_a_closed_opportunity_is_refused(api_a, customer_a):
    opportunity = OpportunityFactory(customer=customer_a, stage=Opportunity.Stage.LOST, lost_reason="Budget")

    response = api_a.patch(f"/api/v1/opportunities/{opportunity.pk}/", {"title": "Revived"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["A won or lost opportunity cannot be changed."]}


def test_filter_by_quarter_of_expected_close(api_a, customer_a):
    OpportunityFactory(customer=customer_a, title="Oct 1", expected_close_on=date(2026, 10, 1))
    OpportunityFactory(customer=customer_a, title="Dec 31", expected_close_on=date(2026, 12, 31))
    OpportunityFactory(customer=customer_a, title="Sep 30", expected_close_on=date(2026, 9, 30))
    OpportunityFactory(customer=customer_a, title="Jan 1", expected_close_on=date(2027, 1, 1))
    OpportunityFactory(customer=customer_a, title="Undated", expected_close_on=None)

    assert names(api_a.get("/api/v1/opportunities/?quarter=2026-Q4")) == ["Dec 31", "Oct 1"]


def test_malformed_quarter_is_refused(api_a):
    response = api_a.get("/api/v1/opportunities/?quarter=2026-Q5")

    assert response.status_code == 400
    assert response.json() == {"quarter": ["Write the quarter as YYYY-Qn, e.g. 2026-Q4."]}


def test_filter_by_band(api_a, customer_a):
    for probability in (10, 35, 40, 65, 70, 95):
        OpportunityFactory(customer=customer_a, title=f"{probability}%", probability=probability)

    assert names(api_a.get("/api/v1/opportunities/?band=early")) == ["10%", "35%"]
    assert names(api_a.get("/api/v1/opportunities/?band=active")) == ["40%", "65%"]
    assert names(api_a.get("/api/v1/opportunities/?band=negotiating")) == ["70%", "95%"]


def test_filter_stale(api_a, customer_a):
    old = timezone.now() - timedelta(days=8)
    OpportunityFactory(customer=customer_a, title="Stale", probability=70, last_touched_at=old)
    OpportunityFactory(customer=customer_a, title="Low", probability=60, last_touched_at=old)
    OpportunityFactory(customer=customer_a, title="Fresh", probability=70)
    OpportunityFactory(
        customer=customer_a, title="Won", probability=100, stage=Opportunity.Stage.WON, last_touched_at=old
    )

    assert names(api_a.get("/api/v1/opportunities/?stale=true")) == ["Stale"]
    assert names(api_a.get("/api/v1/opportunities/?stale=false")) == ["Fresh", "Low", "Won"]


def test_filter_by_stage_and_owner(api_a, customer_a, member_factory):
    owner = member_factory(customer_a.tenant)
    OpportunityFactory(customer=customer_a, title="Mine", stage=Opportunity.Stage.PROPOSAL, owner=owner)
    OpportunityFactory(customer=customer_a, title="Other stage", stage=Opportunity.Stage.LEAD, owner=owner)
    OpportunityFactory(customer=customer_a, title="Unowned", stage=Opportunity.Stage.PROPOSAL)

    assert names(api_a.get(f"/api/v1/opportunities/?stage=proposal&owner={owner.pk}")) == ["Mine"]


def test_win_answers_201_with_the_draft_contract(api_a, tenant_a, customer_a):
    opportunity = OpportunityFactory(customer=customer_a, title="Annual deal", amount=Money("12000.00", "USD"))

    response = api_a.post(f"/api/v1/opportunities/{opportunity.pk}/win/", {"start_date": "2026-02-01"}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["customer"], body["billing_interval"], body["start_date"]) == (
        "draft",
        customer_a.pk,
        12,
        "2026-02-01",
    )
    assert [(line["kind"], line["unit_price"]) for line in body["lines"]] == [
        ("recurring", {"amount": "12000.00", "currency": "USD"})
    ]
    opportunity.refresh_from_db()
    assert (opportunity.stage, opportunity.probability, opportunity.won_contract_id) == ("won", 100, body["id"])


def test_winning_a_prospect_makes_it_a_customer(api_a, tenant_a):
    opportunity = OpportunityFactory(
        customer=None, tenant=tenant_a, prospect_name="Delta Analytics", amount=Money("5000.00", "USD")
    )

    response = api_a.post(f"/api/v1/opportunities/{opportunity.pk}/win/", {"start_date": "2026-02-01"}, format="json")

    assert response.status_code == 201
    customer = Customer.objects.for_tenant(tenant_a).get()
    assert (customer.name, response.json()["customer"]) == ("Delta Analytics", customer.pk)


def test_win_without_start_date_is_refused(api_a, customer_a):
    opportunity = OpportunityFactory(customer=customer_a)

    response = api_a.post(f"/api/v1/opportunities/{opportunity.pk}/win/", {}, format="json")

    assert response.status_code == 400
    assert response.json() == {"start_date": ["This field is required."]}


def test_winning_twice_is_refused(api_a, customer_a):
    opportunity = OpportunityFactory(customer=customer_a)
    api_a.post(f"/api/v1/opportunities/{opportunity.pk}/win/", {"start_date": "2026-02-01"}, format="json")

    response = api_a.post(f"/api/v1/opportunities/{opportunity.pk}/win/", {"start_date": "2026-02-01"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Only an open opportunity can be won."]}
    with platform_scope():
        assert Contract.objects.count() == 1


def test_lose_without_reason_is_refused(api_a, customer_a):
    opportunity = OpportunityFactory(customer=customer_a)

    missing = api_a.post(f"/api/v1/opportunities/{opportunity.pk}/lose/", {}, format="json")
    blank = api_a.post(f"/api/v1/opportunities/{opportunity.pk}/lose/", {"reason": "  "}, format="json")

    assert (missing.status_code, blank.status_code) == (400, 400)
    assert missing.json() == {"reason": ["This field is required."]}
    assert blank.json() == {"reason": ["This field may not be blank."]}
    opportunity.refresh_from_db()
    assert opportunity.stage == Opportunity.Stage.PROPOSAL


def test_lose_with_reason_closes_the_opportunity(api_a, customer_a):
    opportunity = OpportunityFactory(customer=customer_a)

    response = api_a.post(
        f"/api/v1/opportunities/{opportunity.pk}/lose/",
        {"reason": "Chose a competitor", "closed_on": "2026-03-01"},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["stage"], body["probability"], body["lost_reason"], body["closed_on"]) == (
        "lost",
        0,
        "Chose a competitor",
        "2026-03-01",
    )


def test_another_tenants_opportunity_cannot_be_seen_or_won(api_a, tenant_b):
    theirs = OpportunityFactory(customer=CustomerFactory(tenant=tenant_b), title="Secret deal")

    listed = api_a.get("/api/v1/opportunities/")
    won = api_a.post(f"/api/v1/opportunities/{theirs.pk}/win/", {"start_date": "2026-02-01"}, format="json")

    assert listed.json()["count"] == 0
    assert won.status_code == 404
    theirs.refresh_from_db()
    assert theirs.stage == Opportunity.Stage.PROPOSAL


def test_opportunity_list_query_count_does_not_grow_with_opportunities(api_a, tenant_a, django_assert_num_queries):
    for _ in range(3):
        OpportunityFactory(customer=CustomerFactory(tenant=tenant_a))

    # API key, its tenant, the view's savepoint and its release, count, opportunities with customers.
    with django_assert_num_queries(6):
        response = api_a.get("/api/v1/opportunities/")

    assert response.json()["count"] == 3
