"""Emailing invoices: one delivery row per recipient, once, after commit, in the customer's language."""

import email
import smtplib
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction

from billing.delivery import invoice_send, invoice_send_on_commit
from billing.models import InvoiceDelivery
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_invoice
from tests.customers.factories import CustomerFactory


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def us_invoice(tenant_a, tenant_b):
    with platform_scope():
        customer = CustomerFactory(
            tenant=tenant_a,
            name="Northwind Analytics LLC",
            language="en",
            billing_emails=["ap@northwind.example.com", "cfo@northwind.example.com", "AP@northwind.example.com"],
        )
        CustomerFactory(tenant=tenant_b, billing_emails=["ap@northwind.example.com"])  # same address, other tenant
    return build_invoice(customer)


@pytest.fixture
def se_invoice(tenant_b):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_b, language="sv", currency="SEK", billing_emails=["ekonomi@sjoberg.example.se"])
    return build_invoice(customer, lines=[("Konsulttimmar", "10", "1234.50")])


def deliveries(invoice):
    return list(
        InvoiceDelivery.objects.for_tenant(invoice.tenant)
        .filter(invoice=invoice)
        .order_by("recipient")
        .values_list("recipient", "status", "attempts")
    )


def test_each_billing_address_gets_the_invoice_with_its_pdf(us_invoice):
    invoice_send(invoice=us_invoice)

    assert sorted(message.to[0] for message in mail.outbox) == ["ap@northwind.example.com", "cfo@northwind.example.com"]
    message = mail.outbox[0]
    assert message.subject == "Invoice ACME-2026-00001 from Acme Optimizer"
    assert "Amount due: $1,000.00" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "ACME-2026-00001" in html
    filename, content, attachment_type = message.attachments[0]
    assert (filename, attachment_type) == ("ACME-2026-00001.pdf", "application/pdf")
    assert content.startswith(b"%PDF")
    assert deliveries(us_invoice) == [
        ("ap@northwind.example.com", "sent", 1),
        ("cfo@northwind.example.com", "sent", 1),
    ]


def test_swedish_customer_gets_a_swedish_email(se_invoice, tenant_a):
    invoice_send(invoice=se_invoice)

    (message,) = mail.outbox
    assert message.subject == "Faktura BK-2026-00001 från Bergström Konsult"
    assert "Att betala: 12\u00a0345,00\u00a0kr" in message.body
    assert "Vänliga hälsningar" in message.alternatives[0][0]


def test_sending_twice_sends_once(us_invoice):
    invoice_send(invoice=us_invoice)
    invoice_send(invoice=us_invoice)

    assert len(mail.outbox) == 2
    assert [status for _, status, _ in deliveries(us_invoice)] == ["sent", "sent"]


def test_resend_sends_again_and_counts_the_attempt(us_invoice):
    invoice_send(invoice=us_invoice)

    invoice_send(invoice=us_invoice, resend=True)

    assert len(mail.outbox) == 4
    assert [attempts for *_, attempts in deliveries(us_invoice)] == [2, 2]


def test_a_draft_is_refused(tenant_a, tenant_b):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a)
    draft = build_invoice(customer, finalize=False)

    with pytest.raises(ValidationError, match="draft"):
        invoice_send(invoice=draft)
    assert mail.outbox == []


def test_a_customer_without_billing_email_is_refused(tenant_a, tenant_b):
    with platform_scope():
        customer = CustomerFactory(tenant=tenant_a, billing_emails=[])
    invoice = build_invoice(customer)

    with pytest.raises(ValidationError, match="no billing email"):
        invoice_send(invoice=invoice)


def test_a_mail_server_failure_is_recorded_and_a_later_send_retries(us_invoice, monkeypatch):
    real_send = EmailMultiAlternatives.send

    def refuse_cfo(message, fail_silently=False):
        if message.to == ["cfo@northwind.example.com"]:
            raise smtplib.SMTPRecipientsRefused({"cfo@northwind.example.com": (550, b"mailbox unavailable")})
        return real_send(message, fail_silently)

    monkeypatch.setattr(EmailMultiAlternatives, "send", refuse_cfo)
    invoice_send(invoice=us_invoice)

    assert deliveries(us_invoice) == [("ap@northwind.example.com", "sent", 1), ("cfo@northwind.example.com", "failed", 1)]
    failed = InvoiceDelivery.objects.for_tenant(us_invoice.tenant).get(recipient="cfo@northwind.example.com")
    assert "mailbox unavailable" in failed.error and failed.sent_at is None

    monkeypatch.setattr(EmailMultiAlternatives, "send", real_send)
    invoice_send(invoice=us_invoice)

    assert deliveries(us_invoice) == [("ap@northwind.example.com", "sent", 1), ("cfo@northwind.example.com", "sent", 2)]
    assert len(mail.outbox) == 2


def test_send_on_commit_waits_for_the_commit(us_invoice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            invoice_send_on_commit(invoice=us_invoice)
            assert mail.outbox == []

    assert len(callbacks) == 1
    assert len(mail.outbox) == 2


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


def test_a_real_smtp_server_receives_the_pdf(us_invoice, settings):
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        invoice_send(invoice=us_invoice)
    finally:
        controller.stop()

    assert sorted(rcpt for envelope in inbox.envelopes for rcpt in envelope.rcpt_tos) == [
        "ap@northwind.example.com",
        "cfo@northwind.example.com",
    ]
    received = email.message_from_bytes(inbox.envelopes[0].content, policy=policy.default)
    assert "ACME-2026-00001" in received["Subject"]
    (attachment,) = list(received.iter_attachments())
    assert attachment.get_filename() == "ACME-2026-00001.pdf"
    assert attachment.get_content().startswith(b"%PDF")
    assert [status for _, status, _ in deliveries(us_invoice)] == ["sent", "sent"]
