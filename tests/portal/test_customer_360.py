"""The customer 360 page: one customer's MRR history and movements, contracts with their change
timeline, invoices and credit notes, usage with its projected invoice, open deals, churn risk,
margin, contacts and audit history; reachable only by its tenant's staff, in a constant number of
queries."""

from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import BillableMetric, ChargeModel, PriceTerms
from customers.models import Contract, ContractLine, Role
from customers.money import Money
from customers.services import LineSpec, contract_create, contract_line_change
from customers.tenancy import tenant_scope
from revenue.models import Opportunity
from tests.billing.factories import BillableMetricFactory, UsageEventFactory
from tests.customers.factories import ContactFactory, CustomerFactory, PortalAccessFactory
from tests.revenue.economics.helpers import billed, credit_note, entered_cost
from tests.revenue.economics.test_roi import mid  # noqa: F401  (fixture)
from tests.revenue.factories import OpportunityFactory

JUNE_10 = datetime(2026, 6, 10, 12, tzinfo=dt_timezone.utc)


@pytest.fixture
def june_10(monkeypatch):
    """Today is 2026-06-10: the last closed month is May, the window June 2025 – May 2026."""
    monkeypatch.setattr(timezone, "now", lambda: JUNE_10)


def _book(tenant, name, *, contracts=2, invoices=2, manager=None):
    """A customer with a platform contract from January and a seats contract from March whose seats
    go from 12 to 15 on 1 May; invoices of April (credited 150) and May, usage this June, one
    open and one won deal, a contact. ``contracts``/``invoices`` add more of each (older ones)."""
    customer = CustomerFactory(tenant=tenant, name=name, account_manager=manager)
    with tenant_scope(tenant):
        contract_create(customer=customer, title="Platform", start_date=date(2026, 1, 1), created_by=manager, lines=[
            LineSpec(description="Platform fee", kind=ContractLine.Kind.RECURRING, quantity=Decimal(1),
                     unit_price=Money("1000.00", customer.currency)),
            LineSpec(description="Jobs", kind=ContractLine.Kind.USAGE, quantity=Decimal(1),
                     unit_price=Money("0.10", customer.currency)),
        ])
        jobs = ContractLine.objects.for_tenant(tenant).get(contract__customer=customer, description="Jobs")
        PriceTerms.objects.create(tenant=tenant, contract_line=jobs, charge_model=ChargeModel.PER_UNIT,
                                  metric="processed_jobs", terms={})
        seats = contract_create(customer=customer, title="Seats", start_date=date(2026, 3, 1), created_by=manager, lines=[
            LineSpec(description="Seats", kind=ContractLine.Kind.PER_SEAT, quantity=Decimal(12),
                     unit_price=Money("50.00", customer.currency)),
        ])
        contract_line_change(line=seats.lines.get(), effective_on=date(2026, 5, 1), quantity=Decimal(15),
                             created_by=manager)
        for n in range(contracts - 2):  # older, ended one-off projects: no MRR, more rows
            contract_create(customer=customer, title=f"Project {n}", start_date=date(2024, 1, 1),
                            end_date=date(2024, 1, 31), lines=[
                LineSpec(description="Workshop", kind=ContractLine.Kind.ONE_TIME, quantity=Decimal(1),
                         unit_price=Money("10.00", customer.currency)),
            ])
    april = billed(customer, date(2026, 4, 1), "1500.00")
    billed(customer, date(2026, 5, 1), "1750.00")
    for n in range(invoices - 2):
        billed(customer, date(2024, 1 + n % 12, 1), "10.00")
    credit_note(april, "150.00")
    with tenant_scope(tenant):
        if not BillableMetric.objects.for_tenant(tenant).filter(code="processed_jobs").exists():
            BillableMetricFactory(tenant=tenant, code="processed_jobs", name="Processed jobs")
    for day in (2, 3, 4):
        UsageEventFactory(customer=customer, timestamp=datetime(2026, 6, day, 9, tzinfo=dt_timezone.utc))
    OpportunityFactory(customer=customer, title="Seats for the EU team", probability=60,
                       amount=Money("24000.00", customer.currency), expected_close_on=date(2026, 7, 31))
    OpportunityFactory(customer=customer, title="Already won", stage=Opportunity.Stage.WON, probability=100)
    ContactFactory(customer=customer, tenant=tenant, name="Ada Lindqvist", email="ada@kestrel.example.com",
                   title="CFO")
    return customer


@pytest.fixture
def world(tenant_a, tenant_b, member_factory, june_10):
    manager = member_factory(tenant_a, Role.ACCOUNT_MANAGER, username="acme-manager")
    customer = _book(tenant_a, "Kestrel Analytics", manager=manager)
    secret = CustomerFactory(tenant=tenant_b, name="Hemlig Kund AB")
    client = Client()
    client.force_login(manager)
    return {"customer": customer, "secret": secret, "client": client, "manager": manager}


def _page(world, query=""):
    response = world["client"].get(f"/staff/customers/{world['customer'].pk}/{query}")
    assert response.status_code == 200
    return response, response.content.decode()


def _section(body, section_id, next_marker="</section>"):
    start = body.index(f'id="{section_id}"')
    return body[start:body.index(next_marker, start)]


def test_mrr_history_chart_and_movements_are_the_customers_own(world):
    response, body = _page(world)

    trend, stacked = response.context["panels"][0]["charts"]
    assert trend["labels"][0] == "Jun 2025" and trend["labels"][-1] == "May 2026"
    assert trend["series"][0]["values"] == ["0.00"] * 7 + ["1000.00", "1000.00", "1600.00", "1600.00", "1750.00"]
    by_label = {s["label"]: s["values"] for s in stacked["series"]}
    assert by_label["New"][7] == "1000.00"  # January 2026
    assert by_label["Expansion"][9] == "600.00" and by_label["Expansion"][11] == "150.00"  # March, May
    assert set(by_label["Churn"]) == {"0.00"}
    assert 'data-chart="chart-mrr-0"' in body and 'data-chart="chart-mrr-1"' in body
    assert response.context["mrr_now"] == Decimal("1750.00")
    assert "$1,750.00" in _section(body, "summary", "</dl>")


def test_mrr_table_shows_the_movements_of_each_month(world):
    response, _body = _page(world)

    table = response.context["panels"][0]
    may = next(row for row in table["rows"] if row[0]["text"] == "May 2026")
    # month, start, new, reactivation, expansion, contraction, churn, end
    assert [cell["text"] for cell in may] == [
        "May 2026", "$1,600.00", "$0.00", "$0.00", "$150.00", "$0.00", "$0.00", "$1,750.00"]
    assert table["csv_url"] is None


def test_contracts_show_current_lines_and_the_change_timeline(world):
    _response, body = _page(world)

    contracts = _section(body, "contracts")
    assert "Platform fee" in contracts and "Seats" in contracts
    # Only the line version in force today: 15 seats, not the 12 that ended on 30 April.
    seats = contracts[contracts.index("· Seats"):]
    assert ">15<" in seats and ">12<" not in seats.split("</table>")[0]
    assert "Upgrade: Seats: quantity 12 → 15" in contracts
    assert "May 1, 2026" in contracts  # the upgrade's date
    assert contracts.count("<li>") == 3  # new (platform), upgrade (seats beside it), upgrade (seats 10 → 15)


def test_invoices_and_credit_notes_with_status_and_amount_due(world):
    response, body = _page(world)

    invoices = _section(body, "invoices")
    assert [i.period_start for i in response.context["invoices"]] == [date(2026, 5, 1), date(2026, 4, 1)]
    assert invoices.count("Overdue") == 2  # due 1 May and 1 June, unpaid on 10 June
    assert "$1,500.00" in invoices and "$1,750.00" in invoices
    april, may = response.context["invoices"][1], response.context["invoices"][0]
    assert f'href="/admin/billing/invoice/{april.pk}/change/"' in invoices
    assert f'href="/admin/billing/invoice/{may.pk}/change/"' in invoices
    note = response.context["credit_notes"][0]
    assert note.total == Decimal("150.00") and note.invoice_id == april.pk
    # Amount due is billing's one figure: April's $1,500.00 less its $150.00 credit note.
    assert (april.balance_due, may.balance_due) == (Decimal("1350.00"), Decimal("1750.00"))
    assert "$1,350.00" in invoices
    assert f'href="/admin/billing/creditnote/{note.pk}/change/"' in invoices and "$150.00" in invoices


@pytest.mark.usage_events
def test_usage_this_period_and_the_invoice_it_projects(world):
    response, body = _page(world)

    usage = _section(body, "usage")
    assert "Processed jobs" in usage and ">3<" in usage
    projection = response.context["usage"]["projection"]
    # Platform 1 000 + 15 seats × 50 + 3 jobs × 0.10, June priced as the month-end draft will be.
    assert projection.subtotal == Decimal("1750.30") and projection.total == Decimal("1750.30")
    assert "$1,750.30" in usage and "$0.30" in usage


def test_open_opportunities_only(world):
    _response, body = _page(world)

    deals = _section(body, "opportunities")
    assert "Seats for the EU team" in deals and "$24,000.00" in deals and "60 %" in deals
    assert "Already won" not in deals


def test_churn_risk_with_its_signals(world):
    response, body = _page(world)

    risk = response.context["risk"]
    points = {s["code"]: s["points"] for s in risk["signals"]}
    # Two invoices overdue (due 1 May and 1 June, unpaid) and five months as a customer.
    assert points == {"usage_trend": 0, "savings_trend": 0, "contraction": 0, "overdue": Decimal("20.0"),
                      "tenure": Decimal("10.0"), "open_credits": 0}
    assert risk["score"] == Decimal("30.0") and risk["at_risk"] is True
    section = _section(body, "churn-risk")
    assert "2 invoice(s) overdue, 3250.00 USD" in section and "at risk" in section


def test_cost_to_serve_and_margin_over_the_window(world):
    response, body = _page(world)

    economics = response.context["economics"]
    # April 1 500 less the 150 credit note, May 1 750; no cost entered or metered.
    assert economics["total"]["revenue"] == Decimal("3100.00")
    # With no cost data at all there is no margin to show, rather than a margin of 100 %.
    assert economics["total"]["cost"] == Decimal("0") and economics["total"]["margin"] is None
    assert economics["total"]["has_cost_data"] is False
    assert {m["month"]: m["revenue"] for m in economics["by_month"] if m["revenue"]} == {
        date(2026, 4, 1): Decimal("1350.00"), date(2026, 5, 1): Decimal("1750.00")}
    assert economics["roi"] is None
    assert "$3,100.00" in _section(body, "economics") and 'id="roi"' not in body
    assert "no cost data" in _section(body, "economics")


def test_contacts_and_audit_history(world):
    response, body = _page(world)

    assert "Ada Lindqvist" in _section(body, "contacts") and "CFO" in body
    audit = response.context["audit"]
    seats_change = next(e for e in audit if e["what"] == "Contract line" and e["changed"] == ["ends_on"])
    assert seats_change["object"] == "Seats" and seats_change["record"].ends_on == date(2026, 4, 30)
    assert {e["what"] for e in audit} == {"Customer", "Contract", "Contract line"}


def test_another_tenants_customer_is_404_and_names_nothing(world):
    response = world["client"].get(f"/staff/customers/{world['secret'].pk}/")

    assert response.status_code == 404
    assert "Hemlig" not in response.content.decode()


def test_a_customer_that_does_not_exist_is_404(world):
    assert world["client"].get("/staff/customers/999999999/").status_code == 404


def test_portal_users_and_strangers_are_refused(world):
    portal = Client()
    portal.force_login(PortalAccessFactory(customer=world["customer"], tenant=world["customer"].tenant).user)
    assert portal.get(f"/staff/customers/{world['customer'].pk}/").status_code == 403
    anonymous = Client().get(f"/staff/customers/{world['customer'].pk}/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous.headers["Location"]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.FINANCE, Role.OWNER])
def test_every_staff_role_of_the_tenant_sees_the_page(world, member_factory, role):
    client = Client()
    client.force_login(member_factory(world["customer"].tenant, role))

    assert client.get(f"/staff/customers/{world['customer'].pk}/").status_code == 200


def test_bad_window_is_400(world):
    response = world["client"].get(f"/staff/customers/{world['customer'].pk}/?from=2026-13")

    assert response.status_code == 400


def test_queries_do_not_grow_with_contracts_and_invoices(tenant_a, tenant_b, member_factory, june_10):
    manager = member_factory(tenant_a)
    small = _book(tenant_a, "Small", contracts=2, invoices=2)
    large = _book(tenant_a, "Large", contracts=10, invoices=10)
    client = Client()
    client.force_login(manager)
    counts = []
    for customer in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/staff/customers/{customer.pk}/").status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]
    assert counts[1] <= 62  # 62 measured: session, tenancy, the two-factor device check, the view's savepoint
    # and its release (one transaction per request), each selector's own queries (the payment reminders and
    # the projection's pending late fees are one each; the churn risk's first event and event counts are two
    # each: the tenant's metric codes, then the read, see billing.usage_store.postgres)


def _link(customer):
    return f'href="/staff/customers/{customer.pk}/"'


def test_the_admin_customer_list_and_change_form_link_to_the_page(world):
    customer, client = world["customer"], world["client"]

    listing = client.get("/admin/customers/customer/").content.decode()
    change = client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()

    assert _link(customer) in listing and "360 view" in listing
    assert _link(customer) in change


def test_admin_pages_that_name_the_customer_link_to_its_page(world, member_factory):
    customer = world["customer"]
    client = Client()
    client.force_login(member_factory(customer.tenant, Role.OWNER))
    with tenant_scope(customer.tenant):
        contract = Contract.objects.for_tenant(customer.tenant).filter(customer=customer).first()
        invoice = customer.invoices.first()
        note = customer.credit_notes.get()
        deal = Opportunity.objects.for_tenant(customer.tenant).get(title="Seats for the EU team")
    pages = [f"/admin/customers/contract/{contract.pk}/change/", f"/admin/billing/invoice/{invoice.pk}/change/",
             f"/admin/billing/creditnote/{note.pk}/change/", f"/admin/revenue/opportunity/{deal.pk}/change/"]

    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert _link(customer) in response.content.decode(), page


def test_staff_pages_link_the_customer_name_to_its_page(world, member_factory):
    customer = world["customer"]
    client = Client()
    client.force_login(member_factory(customer.tenant, Role.OWNER))

    assert _link(customer) in client.get("/staff/economics/churn-risk/").content.decode()
    entered_cost(customer, date(2026, 5, 1), "2000.00")  # May at a loss: listed on the profitability page
    assert _link(customer) in client.get("/staff/economics/?from=2026-05&to=2026-05").content.decode()
    assert _link(customer) in client.get("/staff/concentration/").content.decode()
    OpportunityFactory(customer=customer, title="Gone quiet", probability=80, last_touched_at=JUNE_10 - timedelta(days=30))
    assert _link(customer) in _section(client.get("/staff/pipeline/").content.decode(), "stale")
    csv = client.get("/staff/concentration/top_customers.csv").content.decode()
    assert "1,Kestrel Analytics,6950.00,1.0000,yes" in csv  # the CSV keeps the name alone


def test_roi_where_the_tenant_prices_by_savings(mid, member_factory):  # noqa: F811
    client = Client()
    client.force_login(member_factory(mid.tenant))

    response = client.get(f"/staff/customers/{mid.pk}/?from=2026-01&to=2026-02")

    assert response.status_code == 200
    roi = response.context["economics"]["roi"]["cumulative"]
    assert (roi["savings"], roi["fees"], roi["roi"]) == (Decimal(3100), Decimal("1620.00"), Decimal(1480) / Decimal(1620))
    section = _section(response.content.decode(), "economics")
    assert 'id="roi"' in section and "$3,100.00" in section and "$1,620.00" in section and "91.36%" in section


def test_the_swedish_tenants_page_shows_money_in_swedish(tenant_b, member_factory, june_10):
    customer = CustomerFactory(tenant=tenant_b, name="Sjöberg Konsult AB")
    with tenant_scope(tenant_b):
        contract_create(customer=customer, title="Retainer", start_date=date(2026, 1, 1), lines=[
            LineSpec(description="Retainer", kind=ContractLine.Kind.RECURRING, quantity=Decimal(1),
                     unit_price=Money("300000.00", "SEK")),
        ])
    client = Client()
    client.force_login(member_factory(tenant_b))

    response = client.get(f"/staff/customers/{customer.pk}/")

    assert response.status_code == 200 and response.headers["Content-Language"] == "sv"
    assert "300\xa0000,00\xa0kr" in _section(response.content.decode(), "summary", "</dl>")
