"""Payment reminders (dunning): each step once per invoice, on the tenant's calendar, never after payment.

The invoices are issued 2026-12-01 with 30 days' terms: due 2026-12-31, overdue from 2027-01-01, so
the default steps fall due on 2027-01-03 (3 days), 2027-01-10 (10) and 2027-01-20 (20).
"""

import re
import smtplib
from datetime import date, datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage

from billing.models import (
    DunningReminder,
    DunningReminderDelivery,
    DunningStep,
    Invoice,
    InvoiceLine,
    PendingCharge,
)
from billing.models.dunning import placeholder_errors
from billing.services import (
    dunning_late_fee,
    dunning_run,
    dunning_schedule_for,
    dunning_steps_validate,
    invoice_compute_drafts,
    invoice_finalize,
    invoice_void,
    payment_record,
)
from billing.services import dunning as dunning_service
from billing.services.dunning import render_template
from billing.tasks import dunning_run_tenant, dunning_tick
from customers.tenancy import platform_scope, tenant_scope
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.billing.factories import BillableMetricFactory, job_api_subscription
from tests.customers.factories import CustomerFactory

D = Decimal
UTC = dt_timezone.utc
PAID_ON = date(2026, 12, 2)  # when the money came in does not matter to the reminders; payments are never future-dated


def at(day: int, hour: int = 9, month: int = 1) -> datetime:
    return datetime(2027, month, day, hour, tzinfo=UTC)


@pytest.fixture
def northwind(tenant_a, tenant_b):
    """Tenant A's Northwind (USD, English) with one 1 000.00 invoice due 2026-12-31; tenant B exists too."""
    with platform_scope():
        customer = CustomerFactory(
            tenant=tenant_a, name="Northwind", language="en", billing_emails=["ap@northwind.example.com"]
        )
    return build_invoice(customer)


def run(tenant, when):
    with tenant_scope(tenant):
        return dunning_run(tenant=tenant, now=when)


def reminders(invoice):
    return list(
        DunningReminder.objects.for_tenant(invoice.tenant).filter(invoice=invoice)
        .order_by("days_overdue").values_list("days_overdue", "status", "amount_due", "late_fee")
    )


def set_fee(tenant, days, **fee):
    with tenant_scope(tenant):
        schedule = dunning_schedule_for(tenant=tenant)
        DunningStep.objects.for_tenant(tenant).filter(schedule=schedule, days_overdue=days).update(**fee)


# --- the schedule ------------------------------------------------------------------------------


def test_a_tenant_starts_with_the_default_3_10_20_schedule_in_both_languages(tenant_a):
    with tenant_scope(tenant_a):
        schedule = dunning_schedule_for(tenant=tenant_a)
        again = dunning_schedule_for(tenant=tenant_a)
        steps = list(DunningStep.objects.for_tenant(tenant_a).filter(schedule=schedule).order_by("days_overdue"))
        for step in steps:
            step.full_clean()  # the defaults pass their own validation

    assert again.pk == schedule.pk and schedule.enabled
    assert [s.days_overdue for s in steps] == [3, 10, 20]
    for step in steps:
        assert "{invoice_number}" in step.subject_en and "{invoice_number}" in step.subject_sv
        assert "{amount_due}" in step.body_sv and "{due_date}" in step.body_en


def test_steps_must_have_positive_distinct_days():
    assert dunning_steps_validate(days=[3, 10, 20]) == []
    assert dunning_steps_validate(days=[10, 3]) == []  # steps run in order of their days
    assert dunning_steps_validate(days=[3, 10, 10]) == [
        "Two steps at 10 days overdue: each step needs a later day than the one before."
    ]
    assert dunning_steps_validate(days=[0, 5]) == ["Every step needs a positive number of days overdue."]


def test_placeholders_are_checked_when_a_step_is_saved(tenant_a):
    assert placeholder_errors("Invoice {invoice_number}: {amount_due} by {due_date} {pay_url}") == []
    assert placeholder_errors("{{literal}} braces") == []
    assert placeholder_errors("{amount}")[0].startswith("Unknown placeholder {amount}; use one of {invoice_number}")
    assert placeholder_errors("{invoice_number.__class__}")[0].startswith("Unknown placeholder {invoice_number.__class__}")
    assert placeholder_errors("{amount_due!r}")[0].startswith("Unknown placeholder {amount_due!r}")
    assert placeholder_errors("{invoice_number")[0].startswith("Braces do not match")

    with tenant_scope(tenant_a):
        step = DunningStep(
            tenant=tenant_a, schedule=dunning_schedule_for(tenant=tenant_a), days_overdue=30,
            subject_en="Invoice {number}", body_en="Pay {amount_due}", subject_sv="Faktura {invoice_number}", body_sv=" ",
            fee=DunningStep.Fee.FIXED,
        )
        with pytest.raises(ValidationError) as refused:
            step.full_clean()
    errors = refused.value.message_dict
    assert errors["subject_en"][0].startswith("Unknown placeholder {number}")
    assert errors["body_sv"] == ["Write this text: every step needs English and Swedish."]
    assert errors["fee_amount"] == ["Give the fixed fee."]


def test_a_late_fee_is_fixed_or_a_percentage_rounded_half_up(tenant_a):
    fixed = DunningStep(fee=DunningStep.Fee.FIXED, fee_amount=D("25.00"))
    percent = DunningStep(fee=DunningStep.Fee.PERCENT, fee_percent=D("1.50"))
    none = DunningStep()

    assert dunning_late_fee(step=fixed, amount_due=D("1234.50"), currency="SEK") == D("25.00")
    assert dunning_late_fee(step=percent, amount_due=D("1234.50"), currency="USD") == D("18.52")  # 18.5175
    assert dunning_late_fee(step=none, amount_due=D("1234.50"), currency="USD") is None


def test_a_line_naming_an_empty_pay_link_is_left_out():
    text = "Amount: {amount_due}\nPay online: {pay_url}\nThanks"
    assert render_template(text, {"amount_due": "$5.00", "pay_url": ""}) == "Amount: $5.00\nThanks"
    assert render_template(text, {"amount_due": "$5.00", "pay_url": "https://pay.example.com/1"}) == (
        "Amount: $5.00\nPay online: https://pay.example.com/1\nThanks"
    )


# --- sending -----------------------------------------------------------------------------------


def test_nothing_is_sent_before_the_first_step_is_due(northwind):
    run(northwind.tenant, at(2))  # 2 days overdue

    assert mail.outbox == [] and reminders(northwind) == []


def test_the_first_step_names_the_number_amount_due_and_due_date(northwind):
    counts = run(northwind.tenant, at(3))

    (message,) = mail.outbox
    assert counts == {"sent": 1, "failed": 0, "cancelled": 0, "unchanged": 0}
    assert message.to == ["ap@northwind.example.com"]
    assert message.subject == "Reminder: invoice ACME-2026-00001 is overdue"
    assert "invoice ACME-2026-00001, due on Dec 31, 2026, has not been paid yet. The amount due is $1,000.00." in message.body
    assert "Pay online" not in message.body  # no pay link configured: the line is left out
    assert reminders(northwind) == [(3, "sent", D("1000.00"), None)]


def test_days_overdue_follow_the_tenants_time_zone(northwind):
    tenant = northwind.tenant
    tenant.time_zone = "Europe/Stockholm"
    tenant.save()

    run(tenant, datetime(2027, 1, 2, 22, 30, tzinfo=UTC))  # 23:30 on 2 January in Stockholm: 2 days
    assert mail.outbox == []
    run(tenant, datetime(2027, 1, 2, 23, 30, tzinfo=UTC))  # 00:30 on 3 January in Stockholm: 3 days
    assert len(mail.outbox) == 1 and reminders(northwind) == [(3, "sent", D("1000.00"), None)]


def test_each_step_goes_out_once_however_often_the_task_runs(northwind):
    run(northwind.tenant, at(3))
    second = run(northwind.tenant, at(3, hour=15))
    run(northwind.tenant, at(9))
    run(northwind.tenant, at(10))
    run(northwind.tenant, at(10, hour=15))

    assert second == {"sent": 0, "failed": 0, "cancelled": 0, "unchanged": 1}
    assert [m.subject for m in mail.outbox] == [
        "Reminder: invoice ACME-2026-00001 is overdue",
        "Second reminder: invoice ACME-2026-00001 is 10 days overdue",
    ]
    assert reminders(northwind) == [(3, "sent", D("1000.00"), None), (10, "sent", D("1000.00"), None)]
    assert DunningReminderDelivery.objects.for_tenant(northwind.tenant).filter(status="sent").count() == 2


def test_payment_between_step_one_and_two_stops_the_reminders(northwind):
    run(northwind.tenant, at(3))
    payment_record(tenant=northwind.tenant, customer=northwind.customer, amount=D("1000.00"), received_on=PAID_ON)

    run(northwind.tenant, at(10))
    run(northwind.tenant, at(20))

    assert len(mail.outbox) == 1
    assert reminders(northwind) == [(3, "sent", D("1000.00"), None)]


def test_a_payment_committed_after_the_decision_stops_the_email(northwind, monkeypatch):
    # The payment lands between the reminder being decided and its email being composed: the check
    # under the invoice's lock right before sending sees it.
    decide = dunning_service._decide

    def decide_then_pay(tenant, invoice_id, step, earlier, today, now):
        decided = decide(tenant, invoice_id, step, earlier, today, now)
        payment_record(tenant=tenant, customer=northwind.customer, amount=D("1000.00"), received_on=PAID_ON)
        return decided

    monkeypatch.setattr(dunning_service, "_decide", decide_then_pay)
    counts = run(northwind.tenant, at(3))

    assert mail.outbox == []
    assert counts["cancelled"] == 1
    assert reminders(northwind) == [(3, "cancelled", D("1000.00"), None)]


def test_a_partly_paid_invoice_is_reminded_of_what_is_left(northwind):
    run(northwind.tenant, at(3))
    payment_record(tenant=northwind.tenant, customer=northwind.customer, amount=D("400.00"), received_on=PAID_ON)

    run(northwind.tenant, at(10))

    assert "The amount due is $600.00." in mail.outbox[1].body
    assert reminders(northwind) == [(3, "sent", D("1000.00"), None), (10, "sent", D("600.00"), None)]


def test_a_credit_note_lowers_the_amount_reminded(northwind):
    build_credit_note(northwind, amount="250.00")

    run(northwind.tenant, at(3))

    assert "The amount due is $750.00." in mail.outbox[0].body


def test_an_invoice_first_seen_25_days_overdue_gets_only_the_latest_step(northwind):
    run(northwind.tenant, at(25))

    (message,) = mail.outbox
    assert message.subject == "Final reminder: invoice ACME-2026-00001"
    assert reminders(northwind) == [
        (3, "skipped", D("1000.00"), None), (10, "skipped", D("1000.00"), None), (20, "sent", D("1000.00"), None),
    ]
    skipped = DunningReminder.objects.for_tenant(northwind.tenant).get(invoice=northwind, days_overdue=3)
    assert skipped.note == "Skipped: the invoice was already 25 days overdue, so the 20-day step replaced it."
    run(northwind.tenant, at(26))
    assert len(mail.outbox) == 1


def test_a_swedish_customer_gets_the_swedish_text(tenant_a, tenant_b):
    with platform_scope():
        customer = CustomerFactory(
            tenant=tenant_b, name="Sjöberg AB", language="sv", currency="SEK", billing_emails=["ekonomi@sjoberg.example.se"]
        )
    invoice = build_invoice(customer, lines=[("Konsulttimmar", "10", "1234.50")])

    run(tenant_b, at(3))

    (message,) = mail.outbox
    assert message.subject == "Påminnelse: faktura BK-2026-00001 har förfallit"
    assert "Att betala: 12\u00a0345,00\u00a0kr." in message.body
    assert "med förfallodag 2026-12-31 ännu inte betald" in message.body
    assert message.body.endswith("Vänliga hälsningar\nBergström Konsult")
    assert reminders(invoice)[0][:2] == (3, "sent")


def test_a_pay_link_from_the_hook_is_included(northwind, settings):
    settings.DUNNING_PAY_URL = "tests.billing.test_dunning.example_pay_url"

    run(northwind.tenant, at(3))

    assert f"Pay online: https://pay.example.com/{northwind.number}" in mail.outbox[0].body


def example_pay_url(invoice):
    return f"https://pay.example.com/{invoice.number}"


def test_by_default_the_reminder_carries_the_card_pay_link_when_the_tenant_takes_cards(northwind):
    from billing.pay_links import pay_link_read
    from tests.billing.factories import PaymentProviderAccountFactory

    run(northwind.tenant, at(3))
    assert "/pay/" not in mail.outbox[0].body  # no card payment set up: the line is left out

    with platform_scope():
        PaymentProviderAccountFactory(tenant=northwind.tenant)
    run(northwind.tenant, at(10))
    found = re.search(r"http://127\.0\.0\.1:8000/pay/([^/\s]+)/", mail.outbox[1].body)
    assert found is not None, mail.outbox[1].body
    assert pay_link_read(found.group(1)) == (northwind.tenant_id, northwind.pk)


def test_a_mail_server_failure_is_recorded_and_retried_without_a_duplicate(northwind, monkeypatch):
    real_send = EmailMessage.send
    refuse = {"on": True}

    def flaky(message, fail_silently=False):
        if refuse["on"]:
            raise smtplib.SMTPServerDisconnected("connection lost")
        return real_send(message, fail_silently)

    monkeypatch.setattr(EmailMessage, "send", flaky)
    first = run(northwind.tenant, at(3))

    assert first["failed"] == 1 and mail.outbox == []
    reminder = DunningReminder.objects.for_tenant(northwind.tenant).get(invoice=northwind)
    assert (reminder.status, reminder.note) == ("failed", "Mail server: connection lost")

    refuse["on"] = False
    run(northwind.tenant, at(4))
    run(northwind.tenant, at(5))

    assert len(mail.outbox) == 1
    delivery = DunningReminderDelivery.objects.for_tenant(northwind.tenant).get()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert reminders(northwind) == [(3, "sent", D("1000.00"), None)]


def test_a_customer_without_billing_email_is_recorded_and_retried(tenant_a):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a, billing_emails=[])
    invoice = build_invoice(customer)

    run(tenant_a, at(3))
    assert reminders(invoice) == [(3, "failed", D("1000.00"), None)]

    customer.billing_emails = ["late@example.com"]
    customer.save()
    run(tenant_a, at(4))
    assert [m.to for m in mail.outbox] == [["late@example.com"]]
    assert reminders(invoice)[0][1] == "sent"


def test_a_disabled_schedule_sends_nothing(northwind):
    with tenant_scope(northwind.tenant):
        schedule = dunning_schedule_for(tenant=northwind.tenant)
        schedule.enabled = False
        schedule.save()

    run(northwind.tenant, at(25))

    assert mail.outbox == [] and reminders(northwind) == []


def test_schedules_and_reminders_never_cross_tenants(northwind, tenant_b):
    with platform_scope():
        bergstrom = CustomerFactory(tenant=tenant_b, language="sv", currency="SEK", billing_emails=["ar@b.example.se"])
    theirs = build_invoice(bergstrom, lines=[("Konsulttimmar", "1", "500.00")])
    with tenant_scope(northwind.tenant):
        dunning_schedule_for(tenant=northwind.tenant)
        DunningStep.objects.for_tenant(northwind.tenant).filter(days_overdue=3).delete()  # A starts at 10 days

    run(northwind.tenant, at(3))
    assert mail.outbox == [] and reminders(theirs) == []  # A's run neither reminds A's invoice nor B's
    run(tenant_b, at(3))

    assert [m.to for m in mail.outbox] == [["ar@b.example.se"]]
    assert reminders(northwind) == [] and reminders(theirs) == [(3, "sent", D("500.00"), None)]
    with tenant_scope(northwind.tenant):
        assert DunningReminder.objects.for_tenant(northwind.tenant).count() == 0
        assert list(DunningStep.objects.for_tenant(northwind.tenant).values_list("days_overdue", flat=True)) == [10, 20]
    with tenant_scope(tenant_b):
        assert list(DunningStep.objects.for_tenant(tenant_b).values_list("days_overdue", flat=True)) == [3, 10, 20]


def test_the_daily_task_fans_out_to_every_tenant(northwind, tenant_b, monkeypatch):
    queued = []
    monkeypatch.setattr(dunning_run_tenant, "delay", lambda tenant_id: queued.append(tenant_id))

    assert dunning_tick() == 2
    assert sorted(queued) == sorted([northwind.tenant_id, tenant_b.pk])


def test_the_tenant_task_runs_the_reminders(northwind, monkeypatch):
    monkeypatch.setattr(dunning_service, "tenant_today", lambda tenant, now=None: date(2027, 1, 3))

    assert dunning_run_tenant(northwind.tenant_id)["sent"] == 1


# --- late fees ---------------------------------------------------------------------------------


@pytest.fixture
def subscriber(tenant_a, tenant_b):
    """A Starter subscriber ($29 a month from November) whose November invoice of 1 234.50 is overdue."""
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a, name="Osprey", language="en", billing_emails=["ap@osprey.example.com"])
        BillableMetricFactory(tenant=tenant_a, code="processed_jobs", unit="jobs")
    job_api_subscription(customer, "Starter", start_date=date(2026, 12, 1))
    return build_invoice(customer, lines=[("Workshop", "1", "1234.50")])


def late_fee_lines(customer, period_start):
    invoice = Invoice.objects.for_tenant(customer.tenant).get(customer=customer, period_start=period_start)
    lines = InvoiceLine.objects.for_tenant(customer.tenant).filter(invoice=invoice).order_by("position")
    return invoice, [(line.description, line.kind, line.amount) for line in lines]


def test_a_late_fee_is_billed_once_on_the_next_draft(subscriber):
    tenant, customer = subscriber.tenant, subscriber.customer
    set_fee(tenant, 10, fee=DunningStep.Fee.PERCENT, fee_percent=D("1.50"))
    run(tenant, at(3))
    run(tenant, at(10))
    assert reminders(subscriber) == [(3, "sent", D("1234.50"), None), (10, "sent", D("1234.50"), D("18.52"))]
    (charge,) = PendingCharge.objects.for_tenant(tenant).filter(customer=customer)
    assert (charge.amount, charge.currency, charge.invoice_id) == (D("18.52"), "USD", None)

    dec, jan = date(2026, 12, 1), date(2027, 1, 1)
    invoice_compute_drafts(tenant=tenant, period_start=dec, period_end=date(2026, 12, 31))
    invoice_compute_drafts(tenant=tenant, period_start=dec, period_end=date(2026, 12, 31))  # a rerun: still once
    december, lines = late_fee_lines(customer, dec)
    assert lines == [
        ("Starter plan", "charge", D("29.00")),
        ("Late fee: invoice ACME-2026-00001, 10 days overdue", "one_time", D("18.52")),
    ]
    assert december.total == D("47.52")
    invoice_finalize(invoice=december, issue_date=date(2027, 1, 11), close_early=True)

    invoice_compute_drafts(tenant=tenant, period_start=jan, period_end=date(2027, 1, 31))
    assert late_fee_lines(customer, jan)[1] == [("Starter plan", "charge", D("29.00"))]
    charge.refresh_from_db()
    assert charge.invoice_id == december.pk


def test_a_late_fee_is_in_the_customers_language_and_only_charged_when_sent(tenant_a, tenant_b):
    set_fee(tenant_b, 3, fee=DunningStep.Fee.FIXED, fee_amount=D("60.00"))
    with platform_scope():
        quiet = CustomerFactory(tenant=tenant_b, language="sv", currency="SEK", billing_emails=[])
        loud = CustomerFactory(tenant=tenant_b, language="sv", currency="SEK", billing_emails=["a@b.example.se"])
    build_invoice(loud)
    build_invoice(quiet)

    run(tenant_b, at(3))

    charges = list(PendingCharge.objects.for_tenant(tenant_b).values_list("customer_id", "description", "amount"))
    assert charges == [(loud.pk, "Förseningsavgift: faktura BK-2026-00001, 3 dagar försenad", D("60.00"))]


def test_every_billing_address_gets_the_step_and_the_fee_is_charged_once(tenant_a, tenant_b):
    set_fee(tenant_a, 3, fee=DunningStep.Fee.FIXED, fee_amount=D("15.00"))
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a, language="en",
                                   billing_emails=["ap@kite.example.com", "cfo@kite.example.com", "AP@kite.example.com"])
    invoice = build_invoice(customer)

    run(tenant_a, at(3))
    run(tenant_a, at(4))

    assert sorted(m.to[0] for m in mail.outbox) == ["ap@kite.example.com", "cfo@kite.example.com"]
    assert reminders(invoice) == [(3, "sent", D("1000.00"), D("15.00"))]
    assert list(PendingCharge.objects.for_tenant(tenant_a).values_list("amount", "currency")) == [(D("15.00"), "USD")]


def test_a_late_fee_on_a_voided_invoice_moves_to_the_next_draft(subscriber):
    tenant, customer = subscriber.tenant, subscriber.customer
    set_fee(tenant, 3, fee=DunningStep.Fee.FIXED, fee_amount=D("40.00"))
    run(tenant, at(3))
    dec, jan = date(2026, 12, 1), date(2027, 1, 1)
    invoice_compute_drafts(tenant=tenant, period_start=dec, period_end=date(2026, 12, 31))
    december = invoice_finalize(invoice=late_fee_lines(customer, dec)[0], issue_date=date(2027, 1, 4), close_early=True)
    invoice_void(invoice=december)

    invoice_compute_drafts(tenant=tenant, period_start=jan, period_end=date(2027, 1, 31))

    january, lines = late_fee_lines(customer, jan)
    assert lines == [
        ("Starter plan", "charge", D("29.00")),
        ("Late fee: invoice ACME-2026-00001, 3 days overdue", "one_time", D("40.00")),
    ]
    assert PendingCharge.objects.for_tenant(tenant).get().invoice_id == january.pk
