"""Churn risk, anomalies and what-ifs reachable by staff (pages) and machines (API), tenant-scoped."""


import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from customers.models import Role
from customers.tenancy import tenant_scope
from revenue.economics import whatif as whatif_module
from revenue.economics.anomalies import detect_anomalies
from revenue.economics.whatif import whatif_run_compute
from revenue.models import WhatIfRun
from revenue.models.economics import FiguresDecoder, FiguresEncoder
from revenue.selectors.common import MetricError
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.economics.test_anomalies import DAY
from tests.revenue.economics.test_anomalies import world as anomaly_world  # noqa: F401  (fixture)
from tests.revenue.economics.test_api import key_client
from tests.revenue.economics.test_churn_risk import churn_history, fading  # noqa: F401  (fixtures)
from tests.revenue.economics.test_whatif import book  # noqa: F401  (fixture)


@pytest.fixture
def now_in_april(monkeypatch):
    fixed = timezone.datetime(2026, 4, 10, 12, tzinfo=timezone.get_current_timezone())
    monkeypatch.setattr(timezone, "now", lambda: fixed)


def staff(tenant, member_factory, role=Role.ACCOUNT_MANAGER):
    client = Client()
    client.force_login(member_factory(tenant, role))
    return client


@pytest.mark.usage_events
def test_churn_risk_page_lists_the_at_risk_customer_with_signals(fading, tenant_a, tenant_b, member_factory, now_in_april):  # noqa: F811
    body = staff(tenant_a, member_factory).get("/staff/economics/churn-risk/?as_of=2026-03-31").content.decode()

    assert "Fading Freight" in body and "58.5" in body and "Overdue invoices" in body
    assert "Back-test against real churn" in body
    assert "Fading Freight" not in staff(tenant_b, member_factory).get("/staff/economics/churn-risk/?as_of=2026-03-31").content.decode()


def test_churn_back_test_on_the_page_shows_the_ranking_for_the_months_asked(churn_history, tenant_a, member_factory, now_in_april):  # noqa: F811
    body = staff(tenant_a, member_factory).get("/staff/economics/churn-risk/?months=3").content.decode()

    assert "2026-01 – 2026-03: 1 customers churned" in body
    assert 'name="months" type="number" min="1" max="24" value="3"' in body
    assert "Ranking: in 100% of the pairs of a churner one month before and a customer who stayed, the churner scored higher (100% two months before" in body
    assert "Usage history starts" not in body  # this tenant has sent no usage


def test_a_churner_who_scored_zero_shows_zero_not_a_dash(churn_history, tenant_a, member_factory, now_in_april):  # noqa: F811
    quiet = CustomerFactory(tenant=tenant_a, name="Quiet leaver")
    ContractLineFactory(contract=ContractFactory(customer=quiet, start_date=date(2024, 1, 1), end_date=date(2026, 1, 31)),
                        ends_on=date(2026, 1, 31))

    body = staff(tenant_a, member_factory).get("/staff/economics/churn-risk/?months=3").content.decode()

    assert f'<li><a href="/staff/customers/{quiet.pk}/">Quiet leaver</a> (2026-02): 0.0 / 0.0</li>' in body
    assert '">Churner</a> (2026-02): 10.0 / 10.0</li>' in body


def test_churn_back_test_months_out_of_range_is_400(tenant_a, member_factory):
    response = staff(tenant_a, member_factory).get("/staff/economics/churn-risk/?months=25")

    assert response.status_code == 400
    assert "months must be a whole number from 1 to 24." in response.content.decode()


def test_churn_risk_page_bad_day_is_400(tenant_a, member_factory):
    assert staff(tenant_a, member_factory).get("/staff/economics/churn-risk/?as_of=31-03-2026").status_code == 400


@pytest.mark.usage_events
def test_churn_risk_api_with_points_rounded(fading, tenant_a, now_in_april):  # noqa: F811
    body = key_client(tenant_a).get("/api/v1/economics/churn-risk/?as_of=2026-03-31").json()

    assert (body["scored"], body["at_risk"]) == (2, 1)
    customer = body["customers"][0]
    assert (customer["customer"], customer["score"]) == ("Fading Freight", "58.50")
    usage = next(s for s in customer["signals"] if s["code"] == "usage_trend")
    assert (usage["points"], usage["raw"]["ratio"]) == ("12.50", "0.7500")


@pytest.mark.usage_events
def test_churn_risk_api_refuses_a_future_day_and_another_tenant_sees_nothing(fading, tenant_a, tenant_b, now_in_april):  # noqa: F811
    assert key_client(tenant_a).get("/api/v1/economics/churn-risk/?as_of=2027-01-01").status_code == 400
    assert key_client(tenant_b).get("/api/v1/economics/churn-risk/?as_of=2026-03-31").json()["customers"] == []


@pytest.mark.usage_events
def test_churn_validation_api(fading, tenant_a):  # noqa: F811
    response = key_client(tenant_a).get("/api/v1/economics/churn-risk/validation/?months=3")

    assert response.status_code == 200
    assert set(response.json()) >= {"one_month_before", "two_months_before", "non_churners", "lift", "churners",
                                    "auc_one_month", "auc_two_months", "usage_history_from"}
    assert response.json()["usage_history_from"] == "2026-01-01"  # the month of Fading Freight's first calls
    assert key_client(tenant_a).get("/api/v1/economics/churn-risk/validation/?months=99").status_code == 400


@pytest.mark.usage_events
def test_anomalies_page_and_api(anomaly_world, tenant_b, member_factory):  # noqa: F811
    detect_anomalies(tenant=anomaly_world, day=DAY)

    body = staff(anomaly_world, member_factory).get("/staff/economics/anomalies/?days=366").content.decode()
    api = key_client(anomaly_world).get(f"/api/v1/economics/anomalies/?since={DAY.isoformat()}").json()

    assert "Spiky" in body and "Spend above 5" in body
    assert sorted((a["customer"], a["kind"]) for a in api["alerts"]) == [
        ("Droppy", "drop"), ("Spender", "threshold"), ("Spiky", "spike")
    ]
    assert key_client(tenant_b).get(f"/api/v1/economics/anomalies/?since={DAY.isoformat()}").json()["alerts"] == []


@pytest.mark.usage_events
def test_whatif_page_and_api(book, member_factory, monkeypatch, django_capture_on_commit_callbacks):  # noqa: F811
    monkeypatch.setattr(timezone, "now", lambda: timezone.datetime(2026, 3, 5, tzinfo=timezone.get_current_timezone()))
    client = staff(book, member_factory, Role.FINANCE)

    with django_capture_on_commit_callbacks(execute=True):  # no broker in tests: the worker's task runs here
        asked = client.post("/staff/economics/what-if/", {"months": "2"})
    body = client.get("/staff/economics/what-if/?months=2").content.decode()
    api = key_client(book).get("/api/v1/economics/what-if/?months=2&plans=flat-49,tiered").json()

    assert (asked.status_code, asked["Location"]) == (302, "/staff/economics/what-if/?months=2")
    assert "Computed at 2026-03-05" in body and 'http-equiv="refresh"' not in body

    assert "flat-49" in body and "$122.50" in body and "3 of 3" in body
    # No cost to serve in January or February: the page says so and defines each column.
    assert body.count("no cost data") == 6 and "(cost data: —)" in body  # the actual pricing and five plans
    assert "Re-priced revenue: each customer&#x27;s fees and usage of Jan–Feb 2026 priced under the plan" in body
    assert (api["totals"]["flat-49"]["revenue"], api["totals"]["tiered"]["revenue"]) == ("122.50", "80.00")
    assert [m["customer"] for m in api["movers"]["tiered"]["pay_less"]] == ["Yara"]
    assert "customers" not in api
    assert key_client(book).get("/api/v1/economics/what-if/?plans=nope").status_code == 400


def test_price_plan_admin_for_finance(tenant_a, member_factory):
    assert staff(tenant_a, member_factory, Role.FINANCE).get("/admin/revenue/priceplan/add/").status_code == 200
    assert staff(tenant_a, member_factory, Role.VIEWER).get("/admin/revenue/priceplan/add/").status_code == 403


WHATIF = "/staff/economics/what-if/"


@pytest.mark.usage_events
def test_whatif_page_before_any_run_offers_to_compute(book, member_factory):  # noqa: F811
    body = staff(book, member_factory).get(WHATIF + "?months=4").content.decode()

    assert "No what-if over 4 closed month(s) yet" in body
    assert '<input type="hidden" name="months" value="4">' in body and "<table>" not in body


@pytest.mark.usage_events
def test_whatif_page_while_computing_reloads_itself_and_a_lost_run_can_be_asked_again(book, member_factory):  # noqa: F811
    run = WhatIfRun.objects.for_tenant(book).create(tenant=book, months=3, status=WhatIfRun.Status.RUNNING)
    working = staff(book, member_factory).get(WHATIF).content.decode()
    WhatIfRun.objects.for_tenant(book).filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=16))
    lost = staff(book, member_factory).get(WHATIF).content.decode()

    assert "Computing since" in working and '<meta http-equiv="refresh" content="3">' in working
    assert "did not finish: its worker stopped" in lost and 'http-equiv="refresh"' not in lost


@pytest.mark.usage_events
def test_whatif_run_that_cannot_be_computed_says_why(book, member_factory, monkeypatch):  # noqa: F811
    run = WhatIfRun.objects.for_tenant(book).create(tenant=book, months=2)

    def refuse(**kwargs):
        raise MetricError("No closed month yet.")

    monkeypatch.setattr(whatif_module, "pricing_whatif", refuse)
    with tenant_scope(book):
        whatif_run_compute(run=run)
    body = staff(book, member_factory).get(WHATIF + "?months=2").content.decode()

    run.refresh_from_db()
    assert (run.status, run.error, run.figures) == (WhatIfRun.Status.FAILED, "No closed month yet.", None)
    assert "The computation failed: No closed month yet." in body and "Compute again" in body


@pytest.mark.usage_events
def test_whatif_bad_months_is_400_and_queues_nothing(book, member_factory):  # noqa: F811
    response = staff(book, member_factory).post(WHATIF, {"months": "25"})

    assert response.status_code == 400
    assert "months must be a whole number from 1 to 24." in response.content.decode()
    assert not WhatIfRun.objects.for_tenant(book).exists()


@pytest.mark.usage_events
def test_another_tenant_never_sees_the_run(book, tenant_b, member_factory, django_capture_on_commit_callbacks):  # noqa: F811
    with django_capture_on_commit_callbacks(execute=True):
        staff(book, member_factory).post(WHATIF, {"months": "2"})

    body = staff(tenant_b, member_factory).get(WHATIF + "?months=2").content.decode()

    assert "Ingen kalkyl över 2 stängda månader ännu" in body  # tenant B works in Swedish
    assert "<table>" not in body and "flat-49" not in body


def test_stored_figures_come_back_as_decimals_and_dates():
    figures = {"revenue": Decimal("122.50"), "to": date(2026, 2, 1), "rows": [{"delta": Decimal("-0.10")}], "name": "x"}

    assert json.loads(json.dumps(figures, cls=FiguresEncoder), cls=FiguresDecoder) == figures


@pytest.mark.usage_events
def test_whatif_computed_before_a_month_closed_says_so(book, member_factory, monkeypatch,  # noqa: F811
                                                       django_capture_on_commit_callbacks):
    march, april = (timezone.datetime(2026, m, 5, tzinfo=timezone.get_current_timezone()) for m in (3, 4))
    client = staff(book, member_factory, Role.FINANCE)
    monkeypatch.setattr(timezone, "now", lambda: march)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(WHATIF, {"months": "2"})
    fresh = client.get(WHATIF + "?months=2").content.decode()
    monkeypatch.setattr(timezone, "now", lambda: april)
    later = client.get(WHATIF + "?months=2").content.decode()

    assert "A newer month has closed since." not in fresh and "A newer month has closed since." in later
    assert "2026-01 – 2026-02" in later  # the figures shown are still the ones computed, for their window
