"""The customer portal: a customer sees, downloads and exports only their own documents."""

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from billing.models import BillableMetric
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.billing.factories import BillableMetricFactory, UsageEventFactory
from tests.customers.factories import CustomerFactory, PortalAccessFactory, StaffUserFactory, UserFactory

NBSP = "\u00a0"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def world(tenant_a, tenant_b):
    """Two customers of tenant_a and one of tenant_b, each with an invoice; a portal user per customer."""
    with platform_scope():
        mine = CustomerFactory(tenant=tenant_a, name="Northwind Analytics LLC", language="en", external_ref="northwind")
        neighbour = CustomerFactory(tenant=tenant_a, name="Contoso Ltd", language="en", external_ref="contoso")
        foreign = CustomerFactory(tenant=tenant_b, name="Sjöberg AB", language="sv", currency="SEK", external_ref="sjoberg")
        users = {
            customer: PortalAccessFactory(customer=customer, tenant=customer.tenant, user=UserFactory(username=customer.external_ref)).user
            for customer in (mine, neighbour, foreign)
        }
    november = build_invoice(mine, lines=[("Platform fee", "1", "500.00"), ("Savings share", "1000", "0.25")])
    october = build_invoice(
        mine, period_start=date(2026, 10, 1), period_end=date(2026, 10, 31), lines=[("Platform fee", "1", "500.00")],
        issue_date=date(2026, 11, 1),
    )
    draft = build_invoice(mine, period_start=date(2026, 12, 1), period_end=date(2026, 12, 31), finalize=False)
    neighbours = build_invoice(neighbour)
    foreigners = build_invoice(foreign, lines=[("Konsulttimmar", "10", "1234.50")], vat_rate="25")
    return {
        "mine": mine, "user": users[mine], "foreign_user": users[foreign], "november": november, "october": october,
        "draft": draft, "neighbours": neighbours, "foreigners": foreigners,
    }


@pytest.fixture
def portal(client, world):
    client.force_login(world["user"])
    return client


def test_invoice_list_shows_only_the_customers_issued_invoices(portal, world, django_assert_num_queries):
    # session, user, portal access, the view's savepoint and its release, count, page, card payment account
    with django_assert_num_queries(8):
        response = portal.get("/invoices/")

    assert response.status_code == 200
    numbers = [invoice.number for invoice in response.context["invoices"]]
    assert numbers == [world["november"].number, world["october"].number]
    body = response.content.decode()
    assert world["neighbours"].number not in body and world["foreigners"].number not in body
    assert "$750.00" in body


def test_invoice_list_filters_by_status_and_period(portal, world):
    world["october"].status = "paid"
    world["october"].save()

    by_status = portal.get("/invoices/", {"status": "paid"})
    by_period = portal.get("/invoices/", {"period": "2026-11"})

    assert [i.number for i in by_status.context["invoices"]] == [world["october"].number]
    assert [i.number for i in by_period.context["invoices"]] == [world["november"].number]


@pytest.mark.parametrize("query", [{"status": "draft"}, {"period": "november"}, {"period": "2026-13"}])
def test_a_bad_filter_is_a_400_with_a_message(portal, query):
    response = portal.get("/invoices/", query)

    assert response.status_code == 400
    assert b'role="alert"' in response.content


def test_invoice_detail_shows_lines_and_totals(portal, world):
    response = portal.get(f"/invoices/{world['november'].pk}/")

    assert response.status_code == 200
    body = response.content.decode()
    for expected in ["Savings share", "$250.00", "$750.00", "Download PDF", world["november"].number]:
        assert expected in body


@pytest.mark.parametrize("suffix", ["", "pdf/", "export.csv", "export.json"])
@pytest.mark.parametrize("whose", ["neighbours", "foreigners", "draft"])
def test_another_customers_or_tenants_invoice_or_a_draft_is_404(portal, world, whose, suffix):
    response = portal.get(f"/invoices/{world[whose].pk}/{suffix}")

    assert response.status_code == 404


def test_an_unknown_export_format_is_404(portal, world):
    assert portal.get(f"/invoices/{world['november'].pk}/export.xlsx").status_code == 404


def test_pdf_download_is_the_stored_pdf_as_an_attachment(portal, world):
    response = portal.get(f"/invoices/{world['november'].pk}/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{world["november"].number}.pdf"'
    assert b"".join(response.streaming_content).startswith(b"%PDF")


def test_guessed_media_paths_are_404(portal, world):
    portal.get(f"/invoices/{world['november'].pk}/pdf/")  # the file now exists in MEDIA storage

    for path in [
        f"/media/invoices/acme/2026/{world['november'].number}.pdf",
        "/media/invoices/bergstrom/2026/BK-2026-00001.pdf",
        "/invoices/../media/invoices/acme/2026/ACME-2026-00001.pdf",
        "/invoices/acme/2026/ACME-2026-00001.pdf",
    ]:
        assert portal.get(path).status_code == 404, path


def test_csv_export_has_the_lines_then_the_totals(portal, world):
    response = portal.get(f"/invoices/{world['november'].pk}/export.csv")

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{world["november"].number}.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        ["position", "description", "kind", "quantity", "unit_price", "amount", "currency"],
        ["1", "Platform fee", "charge", "1", "500", "500.00", "USD"],
        ["2", "Savings share", "charge", "1000", "0.25", "250.00", "USD"],
        ["", "subtotal", "total", "", "", "750.00", "USD"],
        ["", "discount_total", "total", "", "", "0.00", "USD"],
        ["", "vat_amount", "total", "", "", "0.00", "USD"],
        ["", "total", "total", "", "", "750.00", "USD"],
        ["", "credit_applied", "total", "", "", "0.00", "USD"],
        ["", "credit_notes", "total", "", "", "0.00", "USD"],
        ["", "paid", "total", "", "", "0.00", "USD"],
        ["", "amount_due", "total", "", "", "750.00", "USD"],
    ]


def test_csv_export_defuses_spreadsheet_formulas(tenant_a, tenant_b, client):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a)
        user = PortalAccessFactory(customer=customer, tenant=tenant_a).user
    invoice = build_invoice(customer, lines=[("=HYPERLINK(\"http://evil\")", "1", "10.00")])
    client.force_login(user)

    rows = list(csv.reader(io.StringIO(client.get(f"/invoices/{invoice.pk}/export.csv").content.decode())))

    assert rows[1][1] == "'=HYPERLINK(\"http://evil\")"


def test_json_export_has_exact_lines_and_totals(portal, world):
    response = portal.get(f"/invoices/{world['november'].pk}/export.json")

    assert response.status_code == 200
    data = json.loads(response.content)
    assert data["number"] == world["november"].number
    assert data["currency"] == "USD" and data["customer"] == "Northwind Analytics LLC"
    assert data["period_start"] == "2026-11-01" and data["due_date"] == "2026-12-31"
    assert data["lines"] == [
        {"position": 1, "description": "Platform fee", "kind": "charge", "quantity": "1", "unit_price": "500", "amount": "500.00"},
        {"position": 2, "description": "Savings share", "kind": "charge", "quantity": "1000", "unit_price": "0.25", "amount": "250.00"},
    ]
    assert data["totals"] == {
        "subtotal": "750.00", "discount_total": "0.00", "vat_rate_percent": "0.00", "vat_amount": "0.00",
        "total": "750.00", "credit_applied": "0.00", "credit_notes": "0.00", "paid": "0.00", "amount_due": "750.00",
    }


def test_credit_notes_are_listed_shown_downloaded_and_exported(portal, world):
    note = build_credit_note(world["november"], amount="100.00", reason="Outage on 12 November")
    build_credit_note(world["neighbours"], amount="10.00")

    listing = portal.get("/credit-notes/")
    detail = portal.get(f"/credit-notes/{note.pk}/")
    pdf = portal.get(f"/credit-notes/{note.pk}/pdf/")
    exported = json.loads(portal.get(f"/credit-notes/{note.pk}/export.json").content)
    rows = list(csv.reader(io.StringIO(portal.get(f"/credit-notes/{note.pk}/export.csv").content.decode())))

    assert [n.number for n in listing.context["credit_notes"]] == [note.number]
    assert "Outage on 12 November" in detail.content.decode()
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    assert exported["invoice_number"] == world["november"].number and exported["totals"]["total"] == "100.00"
    assert rows[1] == ["1", "Service credit", "1", "100", "100.00", "USD"]


def test_another_customers_credit_note_is_404(portal, world):
    note = build_credit_note(world["neighbours"], amount="10.00")

    for suffix in ["", "pdf/", "export.csv", "export.json"]:
        assert portal.get(f"/credit-notes/{note.pk}/{suffix}").status_code == 404


def test_swedish_customer_reads_the_portal_in_swedish(client, world):
    client.force_login(world["foreign_user"])

    listing = client.get("/invoices/").content.decode()
    detail = client.get(f"/invoices/{world['foreigners'].pk}/").content.decode()

    assert "Fakturor" in listing and "Att betala" in listing
    assert f"15{NBSP}431,25{NBSP}kr" in detail and "Moms" in detail and "Ladda ner PDF" in detail


@pytest.mark.usage_events
def test_usage_page_shows_this_months_usage_per_metric(portal, world, tenant_a):
    with platform_scope():
        BillableMetricFactory(tenant=tenant_a, code="processed_jobs", name="Processed jobs", unit="jobs")
        BillableMetricFactory(tenant=tenant_a, code="data_gb", name="Data transferred", unit="GB",
                              aggregation=BillableMetric.Aggregation.SUM)
        now = timezone.now()
        for _ in range(3):
            UsageEventFactory(customer=world["mine"], tenant=tenant_a, metric_code="processed_jobs", timestamp=now)
        UsageEventFactory(customer=world["mine"], tenant=tenant_a, metric_code="data_gb", timestamp=now, quantity=Decimal("2.5"))
        other = CustomerFactory(tenant=tenant_a)
        UsageEventFactory(customer=other, tenant=tenant_a, metric_code="processed_jobs", timestamp=now)

    response = portal.get("/usage/")

    assert response.status_code == 200
    assert [(row["metric"].code, row["quantity"]) for row in response.context["metrics"]] == [
        ("data_gb", Decimal("2.5")),
        ("processed_jobs", Decimal(3)),
    ]


def test_staff_users_are_sent_to_the_admin(client, world):
    client.force_login(StaffUserFactory())

    for path in ["/", "/invoices/", f"/invoices/{world['november'].pk}/pdf/", "/usage/"]:
        response = client.get(path)
        assert (response.status_code, response["Location"]) == (302, "/admin/"), path


def test_anonymous_visitors_are_sent_to_log_in(client, world):
    response = client.get(f"/invoices/{world['november'].pk}/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_a_login_without_a_customer_gets_no_access(client, world):
    client.force_login(UserFactory())

    assert client.get("/invoices/").status_code == 403


def test_home_lists_open_invoices(portal, world):
    body = portal.get("/").content.decode()

    assert world["november"].number in body and world["october"].number in body


def test_password_reset_emails_a_portal_link(client, world):
    response = client.post("/accounts/password-reset/", {"email": world["user"].email})

    assert (response.status_code, response["Location"]) == (302, "/accounts/password-reset/sent/")
    (message,) = mail.outbox
    assert message.to == [world["user"].email]
    link = next(line for line in message.body.splitlines() if "/accounts/reset/" in line)
    path = link.split("testserver", 1)[1]
    form = client.get(path, follow=True)
    assert form.status_code == 200 and form.context["validlink"]
    done = client.post(form.redirect_chain[-1][0], {"new_password1": "a-Better-pass-42", "new_password2": "a-Better-pass-42"})
    assert (done.status_code, done["Location"]) == (302, "/accounts/reset/done/")
    login = client.post("/accounts/login/", {"username": world["user"].username, "password": "a-Better-pass-42"})
    assert (login.status_code, login["Location"]) == (302, "/")
