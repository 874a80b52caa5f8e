"""Staff dashboards: access by role, tenant isolation, exact figures of a hand-computed world, CSV, query counts."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Role
from customers.money import Money
from customers.tenancy import platform_scope
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory, PortalAccessFactory
from tests.revenue.factories import OpportunityFactory

WINDOW = "?from=2025-01&to=2025-03"
MONTH = "?month=2025-03"
PAGES = {
    "/staff/": WINDOW,
    "/staff/retention/": WINDOW,
    "/staff/unit-economics/": MONTH,
    "/staff/concentration/": MONTH,
    "/staff/pipeline/": "",
    "/staff/forecast/": "",
}


def subscribe(customer, *, price, start=date(2025, 1, 1), end=None, interval=1):
    contract = ContractFactory(customer=customer, start_date=start, end_date=end, billing_interval=interval)
    ContractLineFactory(contract=contract, unit_price=Money(price, customer.currency), starts_on=start)
    return contract


@pytest.fixture
def world(tenant_a, tenant_b):
    """Tenant A, by hand: Jan MRR 1 300 (Alpha 1 000 + Beta 300), Feb 1 500 (+ Gamma 2 400 a year = 200),
    Mar 1 200 (Beta's contract ended Feb 28: churn 300). Trailing twelve months to March: Alpha 3 000,
    Beta 600, Gamma 400 = 4 000. Tenant B has one large customer that must never show in A's pages."""
    with platform_scope():
        alpha = CustomerFactory(tenant=tenant_a, name="Alpha Corp", segment="enterprise")
        beta = CustomerFactory(tenant=tenant_a, name="Beta LLC", segment="smb")
        gamma = CustomerFactory(tenant=tenant_a, name="Gamma AB", segment="smb")
        subscribe(alpha, price="1000.00")
        subscribe(beta, price="300.00", end=date(2025, 2, 28))
        subscribe(gamma, price="2400.00", start=date(2025, 2, 1), interval=12)
        zeta = CustomerFactory(tenant=tenant_b, name="Zeta Hidden AB", segment="enterprise")
        subscribe(zeta, price="5000.00")
        OpportunityFactory(customer=zeta, title="Zeta secret deal", probability=90,
                           expected_close_on=timezone.localdate() + timedelta(days=20))
    return {"alpha": alpha, "beta": beta, "gamma": gamma}


@pytest.fixture
def owner_client(client, tenant_a, member_factory):
    client.force_login(member_factory(tenant_a, Role.OWNER))
    return client


def csv_rows(response) -> list[str]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return response.content.decode().strip().splitlines()


@pytest.mark.parametrize("role", [Role.OWNER, Role.ACCOUNT_MANAGER, Role.FINANCE, Role.VIEWER])
def test_every_page_opens_for_every_role_and_shows_no_other_tenants_customer(client, world, tenant_a, member_factory, role):
    client.force_login(member_factory(tenant_a, role))

    for path, query in PAGES.items():
        response = client.get(path + query)
        assert response.status_code == 200, path
        assert b"Zeta" not in response.content, path


def test_anonymous_visitor_is_sent_to_the_login(client, world):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_portal_user_is_refused(client, world):
    with platform_scope():
        access = PortalAccessFactory(customer=world["alpha"])
    client.force_login(access.user)

    for path in PAGES:
        assert client.get(path).status_code == 403


def test_staff_user_without_membership_is_refused(client, world, django_user_model):
    client.force_login(django_user_model.objects.create_user("drifter", is_staff=True))

    assert client.get("/staff/").status_code == 403


def test_revenue_page_shows_the_hand_computed_mrr(owner_client, world):
    html = owner_client.get("/staff/" + WINDOW).content.decode()

    assert "$1,200.00" in html  # March MRR (KPI and table)
    assert "$14,400.00" in html  # March ARR
    assert "$1,500.00" in html and "$500.00" in html  # February MRR and ARPA
    assert 'id="chart-mrr-0"' in html and 'id="chart-movements-0"' in html


def test_mrr_csv_has_exact_rows(owner_client, world):
    response = owner_client.get("/staff/revenue/mrr.csv" + WINDOW)

    assert csv_rows(response) == [
        "month,mrr,arr,customers,arpa",
        "2025-01,1300.00,15600.00,2,650.00",
        "2025-02,1500.00,18000.00,3,500.00",
        "2025-03,1200.00,14400.00,2,600.00",
    ]


def test_movements_csv_has_exact_rows(owner_client, world):
    response = owner_client.get("/staff/revenue/movements.csv" + WINDOW)

    assert csv_rows(response) == [
        "month,mrr_start,new,reactivation,expansion,contraction,churn,mrr_end,quick_ratio",
        "2025-01,0.00,1300.00,0.00,0.00,0.00,0.00,1300.00,",
        "2025-02,1300.00,200.00,0.00,0.00,0.00,0.00,1500.00,",
        "2025-03,1500.00,0.00,0.00,0.00,0.00,300.00,1200.00,0.0000",
    ]


def test_churn_csv_counts_the_customer_who_left(owner_client, world):
    response = owner_client.get("/staff/retention/churn.csv" + WINDOW)

    assert csv_rows(response)[-1] == "2025-03,3,1,0.3333,0.2000,0.2000"


def test_concentration_page_ranks_customers_by_trailing_revenue(owner_client, world):
    html = owner_client.get("/staff/concentration/" + MONTH).content.decode()

    assert "$4,000.00" in html  # twelve months' revenue
    assert "5,950" in html  # HHI = 75² + 15² + 10²
    assert html.index("Alpha Corp") < html.index("Beta LLC") < html.index("Gamma AB")


def test_top_customers_csv_flags_shares_above_ten_percent(owner_client, world):
    response = owner_client.get("/staff/concentration/top_customers.csv" + MONTH)

    assert csv_rows(response) == [
        "rank,customer,revenue,share,flagged",
        "1,Alpha Corp,3000.00,0.7500,yes",
        "2,Beta LLC,600.00,0.1500,yes",
        "3,Gamma AB,400.00,0.1000,",
    ]


def test_clv_by_segment_csv(owner_client, world):
    # enterprise: ARPA 1 000, no churn in six months → lifetime capped at 60. smb: churn 0 in Feb and
    # 1 of 2 in March → 0.25 on average, lifetime 4, ARPA 200 (Gamma alone).
    response = owner_client.get("/staff/unit-economics/clv.csv" + MONTH)

    assert csv_rows(response) == [
        "group,customers,mrr,arpa,churn_rate,lifetime_months,predictive_clv",
        "enterprise,1,1000.00,1000.00,0.0000,60.0000,60000.00",
        "smb,1,200.00,200.00,0.2500,4.0000,800.00",
    ]


def test_pipeline_page_lists_only_this_tenants_stale_deals(owner_client, world, tenant_a, member_factory):
    with platform_scope():
        manager = member_factory(tenant_a, Role.ACCOUNT_MANAGER, username="jordan")
        OpportunityFactory(customer=world["alpha"], title="Alpha renewal", probability=80, owner=manager,
                           last_touched_at=timezone.now() - timedelta(days=10), amount=Money("24000.00", "USD"))

    response = owner_client.get("/staff/pipeline/stale.csv")

    rows = csv_rows(response)
    assert rows[0] == "title,account,owner,probability,last_touched"
    assert rows[1].startswith("Alpha renewal,Alpha Corp,jordan,0.8000,")
    assert len(rows) == 2


def test_bad_month_is_a_400_with_the_reason(owner_client, world):
    response = owner_client.get("/staff/?from=2025-13")

    assert response.status_code == 400
    assert "YYYY-MM" in response.content.decode()


def test_reversed_window_is_a_400(owner_client, world):
    assert owner_client.get("/staff/?from=2025-03&to=2025-01").status_code == 400


def test_unknown_csv_panel_is_a_404(owner_client, world):
    assert owner_client.get("/staff/revenue/nothing.csv").status_code == 404


def test_swedish_tenant_sees_swedish_pages(client, tenant_b, member_factory, world):
    client.force_login(member_factory(tenant_b, Role.OWNER))

    response = client.get("/staff/" + WINDOW)

    assert response["Content-Language"] == "sv"
    assert "Intäkter" in response.content.decode()
    assert "Alpha" not in response.content.decode()


def test_chart_library_is_served_from_our_static_files(owner_client, world):
    html = owner_client.get("/staff/" + WINDOW).content.decode()

    assert "/static/vendor/chart.js/chart.umd.min.js" in html
    assert "cdn" not in html.lower()


def _grow(tenant, count):
    with platform_scope():
        for i in range(count):
            customer = CustomerFactory(tenant=tenant, name=f"Grown {i}", segment="smb")
            subscribe(customer, price="50.00")
            OpportunityFactory(customer=customer, probability=80, last_touched_at=timezone.now() - timedelta(days=9))


@pytest.mark.parametrize("path", [p + q for p, q in PAGES.items()])
def test_query_count_stays_the_same_as_customers_grow(owner_client, world, tenant_a, path, django_assert_num_queries):
    _grow(tenant_a, 2)
    owner_client.get(path)  # warm the per-process caches (content types, sessions)
    with CaptureQueriesContext(connection) as few:
        assert owner_client.get(path).status_code == 200

    _grow(tenant_a, 12)
    with django_assert_num_queries(len(few)):
        assert owner_client.get(path).status_code == 200


def test_figures_are_exact_decimals_not_floats_in_the_chart_data(owner_client, world):
    response = owner_client.get("/staff/" + WINDOW)

    (panel,) = [p for p in response.context["panels"] if p["key"] == "mrr"]
    assert panel["charts"][0]["series"][0]["values"] == ["1300.00", "1500.00", "1200.00"]
    assert Decimal(panel["charts"][0]["series"][0]["values"][-1]) == Decimal("1200")
