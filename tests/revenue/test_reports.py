"""The monthly revenue report and the weekly pipeline digest: who gets them, once, in which language."""

import email
import io
import socket
from datetime import date, timedelta
from email import policy

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.utils import timezone
from pypdf import PdfReader

from customers.models import Role
from customers.money import Money
from customers.tenancy import platform_scope
from revenue.models import ReportDelivery
from revenue.reports import monthly_report_send, weekly_digest_send
from revenue.tasks import send_monthly_reports, send_weekly_digests
from tests.customers.factories import ContractFactory, ContractLineFactory, CustomerFactory
from tests.revenue.factories import OpportunityFactory

MARCH = date(2025, 3, 1)
MONDAY = date(2026, 11, 23)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def subscribe(customer, *, price, start=date(2025, 1, 1), end=None):
    contract = ContractFactory(customer=customer, start_date=start, end_date=end)
    ContractLineFactory(contract=contract, unit_price=Money(price, customer.currency), starts_on=start)


@pytest.fixture
def people(tenant_a, tenant_b, member_factory):
    """Each tenant's staff: an owner (executive), an account manager and finance."""
    return {
        "a_owner": member_factory(tenant_a, Role.OWNER, username="maya"),
        "a_manager": member_factory(tenant_a, Role.ACCOUNT_MANAGER, username="jordan"),
        "a_finance": member_factory(tenant_a, Role.FINANCE, username="priya"),
        "b_owner": member_factory(tenant_b, Role.OWNER, username="karin"),
        "b_manager": member_factory(tenant_b, Role.ACCOUNT_MANAGER, username="erik"),
    }


@pytest.fixture
def books(tenant_a, tenant_b, people):
    """March 2025: tenant A's MRR is 1 200 (Alpha 1 000 + Gamma 200; Beta's 300 churned at February's end);
    tenant B's is 45 000 SEK."""
    with platform_scope():
        alpha = CustomerFactory(tenant=tenant_a, name="Alpha Corp")
        beta = CustomerFactory(tenant=tenant_a, name="Beta LLC")
        gamma = CustomerFactory(tenant=tenant_a, name="Gamma AB")
        subscribe(alpha, price="1000.00")
        subscribe(beta, price="300.00", end=date(2025, 2, 28))
        subscribe(gamma, price="200.00", start=date(2025, 3, 1))
        subscribe(CustomerFactory(tenant=tenant_b, name="Sjöberg Bygg AB"), price="45000.00")
    return {"alpha": alpha, "beta": beta, "gamma": gamma}


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_monthly_report_goes_to_the_owners_only(tenant_a, books, people):
    monthly_report_send(tenant=tenant_a, month=MARCH)

    assert [message.to for message in mail.outbox] == [[people["a_owner"].email]]
    message = mail.outbox[0]
    assert message.subject == "Acme Optimizer: revenue report for March 2025"
    assert "MRR: $1,200.00" in message.body
    assert "Beta LLC (churned): −$300.00" in message.body
    assert "Gamma AB (new or returning): +$200.00" in message.body
    assert "Sjöberg" not in message.body


def test_monthly_report_pdf_is_attached_and_shows_the_mrr(tenant_a, books, people):
    monthly_report_send(tenant=tenant_a, month=MARCH)

    filename, content, mimetype = mail.outbox[0].attachments[0]
    assert (filename, mimetype) == ("revenue-report-2025-03.pdf", "application/pdf")
    assert content.startswith(b"%PDF")
    text = pdf_text(content)
    assert "$1,200.00" in text
    assert "Revenue report for March 2025" in text


def test_monthly_report_html_body_has_the_movements(tenant_a, books, people):
    monthly_report_send(tenant=tenant_a, month=MARCH)

    html, mimetype = mail.outbox[0].alternatives[0]
    assert mimetype == "text/html"
    assert "$1,200.00" in html and "−$300.00" in html


def test_running_the_monthly_job_twice_sends_once(tenant_a, books, people):
    monthly_report_send(tenant=tenant_a, month=MARCH)
    monthly_report_send(tenant=tenant_a, month=MARCH)

    assert len(mail.outbox) == 1
    rows = ReportDelivery.objects.for_tenant(tenant_a).values_list("kind", "period", "recipient", "status", "attempts")
    assert list(rows) == [("monthly", "2025-03", people["a_owner"].email, "sent", 1)]


def test_the_beat_task_twice_sends_each_owner_one_report(tenant_a, tenant_b, books, people):
    send_monthly_reports.delay()
    send_monthly_reports.delay()

    assert sorted(message.to[0] for message in mail.outbox) == sorted([people["a_owner"].email, people["b_owner"].email])


def test_swedish_tenant_gets_a_swedish_report(tenant_b, books, people):
    monthly_report_send(tenant=tenant_b, month=MARCH)

    (message,) = mail.outbox
    assert message.to == [people["b_owner"].email]
    assert message.subject == "Bergström Konsult: intäktsrapport för mars 2025"
    assert "MRR: 45\u00a0000,00\u00a0kr" in message.body
    assert "Största förändringarna per kund" in message.body
    filename, content, _ = message.attachments[0]
    assert filename == "intaktsrapport-2025-03.pdf"
    assert "45\u00a0000,00\u00a0kr" in pdf_text(content) or "45 000,00 kr" in pdf_text(content)


def test_unfinished_month_end_run_holds_the_report_back(tenant_a, books, people):
    from billing.models import BillingRun
    from revenue.tasks import send_monthly_report

    with platform_scope():
        run = BillingRun.objects.create(
            tenant=tenant_a, period_start=MARCH, period_end=date(2025, 3, 31), finalize_on=date(2025, 4, 4),
            status=BillingRun.Status.DRAFTED,
        )

    assert send_monthly_report(tenant_a.pk, month="2025-03", wait_for_month_end=True) == 0
    assert mail.outbox == []

    run.status = BillingRun.Status.DONE
    run.save()
    assert send_monthly_report(tenant_a.pk, month="2025-03", wait_for_month_end=True) == 1


@pytest.fixture
def pipeline(tenant_a, tenant_b, books, people):
    """Jordan's open deals: 90 % fresh, 70 % untouched for 10 days (stale), 60 % exactly (not above), a won
    90 %; Maya (owner) has one 80 % deal; tenant B's manager a stale 90 % one."""
    now = timezone.now()
    old = now - timedelta(days=10)
    with platform_scope():
        deal = lambda **kw: OpportunityFactory(customer=books["alpha"], **kw)  # noqa: E731
        deal(title="Alpha expansion", probability=90, owner=people["a_manager"], last_touched_at=now,
             expected_close_on=date(2026, 12, 10))
        deal(title="Alpha analytics add-on", probability=70, owner=people["a_manager"], last_touched_at=old,
             expected_close_on=date(2026, 12, 20))
        deal(title="Alpha training", probability=60, owner=people["a_manager"], last_touched_at=old)
        deal(title="Alpha renewal (won)", probability=90, owner=people["a_manager"], stage="won", last_touched_at=old)
        deal(title="Alpha enterprise tier", probability=80, owner=people["a_owner"], last_touched_at=now,
             expected_close_on=date(2027, 1, 15))
        sjoberg = CustomerFactory(tenant=tenant_b, name="Sjöberg Fastigheter AB")
        OpportunityFactory(customer=sjoberg, title="Sjöberg retainer", probability=90, owner=people["b_manager"],
                           last_touched_at=old)


def digest_for(user):
    (message,) = [m for m in mail.outbox if m.to == [user.email]]
    return message


def test_weekly_digest_lists_the_managers_deals_above_sixty_percent_and_the_stale_ones(tenant_a, pipeline, people):
    weekly_digest_send(tenant=tenant_a, today=MONDAY)

    body = digest_for(people["a_manager"]).body
    listed, stale = body.split("Stale: untouched for 7 days")
    assert [line.split(" · ")[0].strip(" -") for line in listed.splitlines() if line.startswith("  - ")] == [
        "Alpha expansion",
        "Alpha analytics add-on",
    ]
    assert [line.split(" · ")[0].strip(" -") for line in stale.splitlines() if line.startswith("  - ")] == [
        "Alpha analytics add-on"
    ]
    assert "Alpha training" not in body and "won" not in body and "Alpha enterprise tier" not in body


def test_weekly_digest_goes_to_each_pipeline_keeper_with_deals_and_no_one_else(tenant_a, pipeline, people):
    weekly_digest_send(tenant=tenant_a, today=MONDAY)

    assert sorted(m.to[0] for m in mail.outbox) == sorted([people["a_manager"].email, people["a_owner"].email])
    assert digest_for(people["a_manager"]).subject == "Acme Optimizer: your pipeline, week 2026-W48"
    assert "Sjöberg" not in "".join(m.body for m in mail.outbox)


def test_weekly_digest_twice_in_a_week_sends_once(tenant_a, pipeline, people):
    weekly_digest_send(tenant=tenant_a, today=MONDAY)
    weekly_digest_send(tenant=tenant_a, today=MONDAY + timedelta(days=2))

    assert len(mail.outbox) == 2
    assert ReportDelivery.objects.for_tenant(tenant_a).filter(kind="weekly", period="2026-W48").count() == 2


def test_weekly_beat_task_fans_out_to_every_tenant_in_its_language(tenant_a, tenant_b, pipeline, people):
    send_weekly_digests.delay()
    send_weekly_digests.delay()

    swedish = digest_for(people["b_manager"])
    assert swedish.subject.startswith("Bergström Konsult: din pipeline, vecka ")
    assert "Sjöberg retainer" in swedish.body
    assert len(mail.outbox) == 3


class _Inbox:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_monthly_report_through_a_real_smtp_server(tenant_a, books, people, settings):
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        monthly_report_send(tenant=tenant_a, month=MARCH)
    finally:
        controller.stop()

    (envelope,) = inbox.envelopes
    assert envelope.rcpt_tos == [people["a_owner"].email]
    received = email.message_from_bytes(envelope.content, policy=policy.default)
    assert received["Subject"] == "Acme Optimizer: revenue report for March 2025"
    (attachment,) = list(received.iter_attachments())
    assert attachment.get_filename() == "revenue-report-2025-03.pdf"
    assert "$1,200.00" in pdf_text(attachment.get_content())
    assert ReportDelivery.objects.for_tenant(tenant_a).get().status == "sent"
