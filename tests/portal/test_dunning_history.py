"""Reminder history: the staff customer 360 page, the customer portal's invoice page and the admin."""

from datetime import date, datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.test import Client

from billing.models import DunningReminder, DunningStep
from billing.services import dunning_run, dunning_schedule_for
from customers.models import Role
from customers.tenancy import platform_scope, tenant_scope
from tests.billing.document_builders import build_invoice
from tests.customers.factories import CustomerFactory, PortalAccessFactory, UserFactory

UTC = dt_timezone.utc


def run(tenant, day):
    with tenant_scope(tenant):
        dunning_run(tenant=tenant, now=datetime(2027, 1, day, 9, tzinfo=UTC))


@pytest.fixture
def reminded(tenant_a, tenant_b):
    """Northwind (tenant A) reminded at 3 and 10 days (a 25.00 fee at 10) for its November invoice,
    and at 3 days for October's (due a day later); Sjöberg (tenant B, Swedish) reminded at 3 days."""
    with tenant_scope(tenant_a):
        dunning_schedule_for(tenant=tenant_a)
        DunningStep.objects.for_tenant(tenant_a).filter(days_overdue=10).update(fee="fixed", fee_amount=Decimal("25.00"))
    with platform_scope():
        northwind = CustomerFactory(tenant=tenant_a, name="Northwind", language="en")
        sjoberg = CustomerFactory(tenant=tenant_b, name="Sjöberg AB", language="sv", currency="SEK")
        portal_user = PortalAccessFactory(customer=northwind, tenant=tenant_a, user=UserFactory(username="nw")).user
        swedish_user = PortalAccessFactory(customer=sjoberg, tenant=tenant_b, user=UserFactory(username="sj")).user
    november = build_invoice(northwind, lines=[("Platform fee", "1", "1000.00")])
    october = build_invoice(northwind, lines=[("Platform fee", "1", "300.00")], period_start=date(2026, 10, 1),
                            period_end=date(2026, 10, 31), issue_date=date(2026, 12, 2))
    theirs = build_invoice(sjoberg, lines=[("Konsulttimmar", "2", "1500.00")])
    run(tenant_a, 3)
    run(tenant_a, 4)  # October's invoice is due a day later
    run(tenant_a, 10)
    run(tenant_b, 3)
    return {"northwind": northwind, "november": november, "october": october, "theirs": theirs,
            "portal_user": portal_user, "swedish_user": swedish_user}


def _rows(html, section_id):
    start = html.index(f'id="{section_id}"')
    table = html[html.index("<tbody>", start):html.index("</tbody>", start)]
    rows = []
    for row in table.split("<tr>")[1:]:
        cells = [cell.split("</td>")[0] for cell in row.split("<td")[1:]]
        rows.append([cell.split(">", 1)[1].replace("</a>", "").split(">")[-1].strip() for cell in cells])
    return rows


def test_the_360_page_lists_the_customers_reminders(reminded, member_factory):
    client = Client()
    client.force_login(member_factory(reminded["northwind"].tenant, Role.FINANCE))

    response = client.get(f"/staff/customers/{reminded['northwind'].pk}/")

    assert response.status_code == 200
    body = response.content.decode()
    assert _rows(body, "reminders") == [
        ["ACME-2026-00001", "10 days overdue", "Sent", "Jan 10, 2027", "$1,000.00", "$25.00"],
        ["ACME-2026-00002", "3 days overdue", "Sent", "Jan 4, 2027", "$300.00", "—"],
        ["ACME-2026-00001", "3 days overdue", "Sent", "Jan 3, 2027", "$1,000.00", "—"],
    ]
    assert "BK-2026" not in body  # tenant B's reminder is not on A's page


def test_the_portal_invoice_page_says_when_reminders_were_sent(reminded):
    client = Client()
    client.force_login(reminded["portal_user"])

    body = client.get(f"/invoices/{reminded['november'].pk}/").content.decode()
    other = client.get(f"/invoices/{reminded['october'].pk}/").content.decode()

    section = body[body.index('id="reminders"'):]
    assert section.index("Reminder sent on Jan 3, 2027") < section.index("Reminder sent on Jan 10, 2027")
    assert "late fee $25.00, on your next invoice" in section
    assert other.count("Reminder sent on") == 1 and "Reminder sent on Jan 4, 2027" in other


def test_a_swedish_customer_reads_the_history_in_swedish(reminded):
    client = Client()
    client.force_login(reminded["swedish_user"])

    body = client.get(f"/invoices/{reminded['theirs'].pk}/").content.decode()

    assert "Betalningspåminnelser" in body and "Påminnelse skickad 2027-01-03" in body


def test_an_invoice_without_reminders_shows_no_history(tenant_a):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a, language="en")
        user = PortalAccessFactory(customer=customer, tenant=tenant_a, user=UserFactory(username="quiet")).user
    invoice = build_invoice(customer)
    client = Client()
    client.force_login(user)

    body = client.get(f"/invoices/{invoice.pk}/").content.decode()

    assert 'id="reminders"' not in body


def test_finance_reads_the_reminder_list_in_the_admin_without_changing_it(reminded, member_factory):
    tenant = reminded["northwind"].tenant
    client = Client()
    client.force_login(member_factory(tenant, Role.FINANCE))
    reminder = DunningReminder.objects.for_tenant(tenant).get(invoice=reminded["november"], days_overdue=10)

    listing = client.get("/admin/billing/dunningreminder/")
    page = client.get(f"/admin/billing/dunningreminder/{reminder.pk}/change/")

    assert listing.status_code == 200 and page.status_code == 200
    assert listing.content.decode().count("ACME-2026-0000") == 3 and "BK-2026" not in listing.content.decode()
    assert client.post(f"/admin/billing/dunningreminder/{reminder.pk}/delete/").status_code == 403
    assert client.get("/admin/billing/dunningreminder/add/").status_code == 403


# --- the schedule in the admin -------------------------------------------------------------------


def _form(schedule, steps, **changes):
    data = {
        "enabled": "on",
        "steps-TOTAL_FORMS": str(len(steps)), "steps-INITIAL_FORMS": str(len(steps)),
        "steps-MIN_NUM_FORMS": "0", "steps-MAX_NUM_FORMS": "1000",
    }
    for i, step in enumerate(steps):
        for name in ("days_overdue", "subject_en", "body_en", "subject_sv", "body_sv", "fee"):
            data[f"steps-{i}-{name}"] = getattr(step, name)
        data.update({f"steps-{i}-id": step.pk, f"steps-{i}-schedule": schedule.pk,
                     f"steps-{i}-fee_amount": "", f"steps-{i}-fee_percent": ""})
    data.update(changes)
    return data


@pytest.fixture
def schedule(tenant_a, tenant_b):
    with tenant_scope(tenant_a):
        schedule = dunning_schedule_for(tenant=tenant_a)
        steps = list(DunningStep.objects.for_tenant(tenant_a).filter(schedule=schedule).order_by("days_overdue"))
    return schedule, steps


def test_the_schedule_list_shows_the_tenants_own_schedule_only(schedule, member_factory, tenant_b):
    with tenant_scope(tenant_b):
        other = dunning_schedule_for(tenant=tenant_b)
    client = Client()
    client.force_login(member_factory(schedule[0].tenant, Role.FINANCE))

    response = client.get("/admin/billing/dunningschedule/")

    assert response.status_code == 200
    page = response.content.decode()
    assert f"/admin/billing/dunningschedule/{schedule[0].pk}/change/" in page
    assert f"/admin/billing/dunningschedule/{other.pk}/change/" not in page


def test_finance_sets_a_late_fee_on_a_step(schedule, member_factory):
    schedule, steps = schedule
    client = Client()
    client.force_login(member_factory(schedule.tenant, Role.FINANCE))

    response = client.post(
        f"/admin/billing/dunningschedule/{schedule.pk}/change/",
        _form(schedule, steps, **{"steps-2-fee": "percent", "steps-2-fee_percent": "2.5"}),
    )

    assert response.status_code == 302
    step = DunningStep.objects.for_tenant(schedule.tenant).get(pk=steps[2].pk)
    assert (step.fee, step.fee_percent, step.fee_amount) == ("percent", Decimal("2.50"), None)


def test_the_admin_refuses_two_steps_on_one_day_and_unknown_placeholders(schedule, member_factory):
    schedule, steps = schedule
    client = Client()
    client.force_login(member_factory(schedule.tenant, Role.OWNER))

    same_day = client.post(f"/admin/billing/dunningschedule/{schedule.pk}/change/",
                           _form(schedule, steps, **{"steps-1-days_overdue": "3"}))
    bad_text = client.post(f"/admin/billing/dunningschedule/{schedule.pk}/change/",
                           _form(schedule, steps, **{"steps-0-body_sv": "Betala {belopp}"}))

    assert same_day.status_code == 200 and bad_text.status_code == 200
    assert "Two steps at 3 days overdue" in same_day.content.decode()
    assert "Unknown placeholder {belopp}" in bad_text.content.decode()
    assert sorted(DunningStep.objects.for_tenant(schedule.tenant).values_list("days_overdue", flat=True)) == [3, 10, 20]


def test_a_viewer_cannot_change_the_schedule(schedule, member_factory):
    schedule, steps = schedule
    client = Client()
    client.force_login(member_factory(schedule.tenant, Role.VIEWER))

    response = client.post(f"/admin/billing/dunningschedule/{schedule.pk}/change/",
                           _form(schedule, steps, **{"steps-0-days_overdue": "5"}))

    assert response.status_code == 403
    assert DunningStep.objects.for_tenant(schedule.tenant).filter(days_overdue=5).count() == 0
