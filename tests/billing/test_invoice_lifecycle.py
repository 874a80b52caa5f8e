"""Issue 14's whole life of one invoice, through the real services and HTTP: finalized and announced
to a registered endpoint, reminded when overdue, paid by a signed card-payment webhook (announced
again), downloaded as UBL and Factur-X, never reminded after payment, and in the month's journal.

The dates follow today: the invoice was issued 40 days ago with 30 days' terms, so it fell due 10
days ago, and the provider's event (dated now) cannot be in the future.
"""

from datetime import datetime, time, timedelta
from decimal import Decimal
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from facturx import get_xml_from_pdf
from lxml import etree

from billing.models import Invoice, PaymentStatus, WebhookEvent
from billing.services import billing_payment_details_set, dunning_run, invoice_finalize
from billing.services.webhooks import webhook_endpoint_create, webhook_overdue_announce
from customers.models import EInvoiceFormat
from customers.periods import add_months, tenant_today
from customers.tenancy import platform_scope, tenant_scope
from revenue.accounting import journal_entries
from tests.api_clients import key_client
from tests.billing.document_builders import build_invoice
from tests.billing.einvoice_checks import UBL_NS, assert_valid_ubl, ubl_figures
from tests.billing.factories import PaymentProviderAccountFactory
from tests.billing.stripe_fakes import checkout_completed_event, signed_delivery
from tests.billing.webhook_receiver import Receiver
from tests.customers.factories import CustomerFactory

D = Decimal
EVENTS = ["invoice.finalized", "invoice.overdue", "invoice.paid", "payment.received"]


@pytest.fixture
def konsult(tenant_b, settings, tmp_path):
    """Bergström Konsult (SEK): seller details for e-invoices, bankgiro with OCR, card payment through
    Stripe, and an endpoint on a loopback receiver for the invoice's events; tenant A exists beside it."""
    settings.MEDIA_ROOT = tmp_path
    tenant = tenant_b
    tenant.legal_name, tenant.vat_number, tenant.vat_rate = "Bergström Konsult AB", "SE556732170701", D("25")
    tenant.country, tenant.address, tenant.peppol_id = "SE", "Drottninggatan 55\n111 21 Stockholm", "0007:5567321707"
    tenant.save()
    with tenant_scope(tenant):
        billing_payment_details_set(tenant=tenant, payment_method="bankgiro", bankgiro="1234566")
    with platform_scope():
        PaymentProviderAccountFactory(tenant=tenant)
        customer = CustomerFactory(
            tenant=tenant, name="Kund AB", currency="SEK", language="sv", vat_number="SE556000000101",
            org_number="556000-0001", peppol_id="0007:5560000001", address_line1="Storgatan 1", postal_code="411 38",
            city="Göteborg", country="SE", billing_emails=["ap@kund.example"], einvoice_format=EInvoiceFormat.FACTURX,
        )
    with Receiver() as receiver:
        endpoint = webhook_endpoint_create(tenant=tenant, url=receiver.url, event_types=EVENTS, description="ERP")
        receiver.secrets = [endpoint.secret]
        yield {"tenant": tenant, "customer": customer, "receiver": receiver}


def received_types(receiver) -> list[str]:
    return [got.json["type"] for got in receiver.received]


def test_an_invoice_lives_from_finalized_to_paid_announced_reminded_and_downloadable(
    konsult, client, django_capture_on_commit_callbacks
):
    tenant, customer, receiver = konsult["tenant"], konsult["customer"], konsult["receiver"]
    today = tenant_today(tenant)
    issued = today - timedelta(days=40)
    due = issued + timedelta(days=tenant.payment_terms_days)
    month = add_months(issued.replace(day=1), -1)
    draft = build_invoice(
        customer, lines=[("Rådgivning", "10", "1250.00")], vat_rate="25", finalize=False,
        period_start=month, period_end=issued.replace(day=1) - timedelta(days=1),
    )

    # Finalized: numbered, an OCR, the email with its Factur-X, and invoice.finalized announced, signed.
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_finalize(invoice=draft, issue_date=issued)
    assert (invoice.total, invoice.due_date) == (D("15625.00"), due)
    assert invoice.ocr_reference and invoice.number.startswith("BK-")
    [email] = mail.outbox
    assert f"OCR {invoice.ocr_reference}" in email.body and "Bankgiro 123-4566" in email.body
    assert [name for name, *_ in email.attachments] == [f"{invoice.number}-facturx.pdf"]
    assert received_types(receiver) == ["invoice.finalized"]
    assert all(got.verified_with == [0] for got in receiver.received)

    # Overdue: announced once, and the first reminder (3 days) goes out in Swedish with the card link.
    with django_capture_on_commit_callbacks(execute=True):
        webhook_overdue_announce(tenant=tenant, today=due + timedelta(days=1))
    three_days_late = datetime.combine(due + timedelta(days=3), time(9), tzinfo=ZoneInfo(tenant.time_zone))
    with tenant_scope(tenant):
        assert dunning_run(tenant=tenant, now=three_days_late)["sent"] == 1
    reminder = mail.outbox[1]
    assert invoice.number in reminder.subject and "Att betala: 15\u00a0625,00\u00a0kr" in reminder.body
    assert "/pay/" in reminder.body
    assert received_types(receiver) == ["invoice.finalized", "invoice.overdue"]

    # Paid by card: Stripe's signed event records the payment; invoice.paid and payment.received follow.
    event = checkout_completed_event(invoice=invoice, amount_total=1562500, currency="sek", event_id="evt_life")
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_delivery(client, slug=tenant.slug, event=event, secret=f"whsec_{tenant.slug}_SIGNINGSECRET")
    assert response.status_code == 200 and response.json()["outcome"] == "recorded"
    paid = Invoice.objects.for_tenant(tenant).with_payment_status(today=today).get(pk=invoice.pk)
    assert (paid.status, paid.payment_status, paid.balance_due) == ("paid", PaymentStatus.PAID, D("0.00"))
    assert sorted(received_types(receiver)) == ["invoice.finalized", "invoice.overdue", "invoice.paid", "payment.received"]
    with tenant_scope(tenant):
        assert WebhookEvent.objects.for_tenant(tenant).count() == 4

    # No reminder after payment, however late the next run.
    ten_days_late = three_days_late + timedelta(days=7)
    with tenant_scope(tenant):
        assert dunning_run(tenant=tenant, now=ten_days_late)["sent"] == 0
    assert len(mail.outbox) == 2

    # Downloadable as UBL and Factur-X over the API, with the invoice's figures to the cent.
    api = key_client(tenant)
    ubl = api.get(f"/api/v1/invoices/{invoice.pk}/ubl/")
    assert ubl.status_code == 200 and ubl["Content-Type"].startswith("application/xml")
    tree = assert_valid_ubl(ubl.content)
    assert ubl_figures(tree)["payable"] == invoice.total
    assert tree.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=UBL_NS) == invoice.ocr_reference
    facturx = api.get(f"/api/v1/invoices/{invoice.pk}/facturx/")
    assert facturx.status_code == 200 and facturx["Content-Type"] == "application/pdf"
    _, xml = get_xml_from_pdf(BytesIO(facturx.content), check_xsd=True)
    cii = etree.fromstring(xml)
    assert [D(e.text) for e in cii.iter("{*}GrandTotalAmount")] == [invoice.total]

    # In the books: the invoice on its issue day, the card payment on the day it arrived.
    vouchers = journal_entries(tenant=tenant, month=issued.replace(day=1))
    assert [(v.kind, [(p.account, p.amount) for p in v.postings]) for v in vouchers if v.document == invoice.number] == [
        ("invoice", [("1510", D("15625.00")), ("3001", D("-12500.00")), ("2611", D("-3125.00"))]),
    ]
    payments = journal_entries(tenant=tenant, month=today.replace(day=1))
    assert [(v.kind, v.postings[0].amount) for v in payments if v.kind == "payment"] == [("payment", D("15625.00"))]
