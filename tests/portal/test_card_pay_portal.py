"""What customers see of card payment: "Pay now" in the portal and the invoice email, and the pay page.

Two tenants: Acme (USD) has Stripe set up, Bergström (SEK) has not, as in the demo. The checkout is
created through the official library into a recording HTTP client (no network).
"""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.core import mail, signing
from django.test import override_settings

from billing.delivery import invoice_send
from billing.pay_links import SALT, pay_link_path, pay_link_read
from billing.payment_providers import stripe_provider
from billing.services.payments import payment_record
from customers.periods import tenant_today
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_invoice
from tests.billing.factories import PaymentProviderAccountFactory
from tests.billing.stripe_fakes import StripeRecorder
from tests.customers.factories import CustomerFactory, PortalAccessFactory, UserFactory

PAY_FORM = 'action="/invoices/{pk}/pay/"'
DISABLED = '<button type="button" class="pay-now" disabled aria-disabled="true"'


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def recorder(monkeypatch):
    recorder = StripeRecorder()
    monkeypatch.setattr(stripe_provider, "http_client", recorder)
    return recorder


@pytest.fixture
def world(tenant_a, tenant_b):
    """Acme with Stripe and an open and a paid invoice; Bergström without card payment, one open invoice."""
    with platform_scope():
        PaymentProviderAccountFactory(tenant=tenant_a)
        northwind = CustomerFactory(tenant=tenant_a, name="Northwind", language="en", billing_emails=["ap@northwind.example.com"])
        sjoberg = CustomerFactory(tenant=tenant_b, name="Sjöberg AB", language="en", billing_emails=["ekonomi@sjoberg.example.se"])
        a_user = PortalAccessFactory(tenant=tenant_a, customer=northwind, user=UserFactory(username="northwind")).user
        b_user = PortalAccessFactory(tenant=tenant_b, customer=sjoberg, user=UserFactory(username="sjoberg")).user
    today = tenant_today(tenant_a)
    open_invoice = build_invoice(northwind, lines=[("Platform fee", "1", "1234.50")], issue_date=today)
    paid = build_invoice(northwind, lines=[("Platform fee", "1", "50.00")], issue_date=today,
                         period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))
    payment_record(tenant=tenant_a, customer=northwind, amount=Decimal("50.00"), received_on=today,
                   allocations=[(paid, Decimal("50.00"))])
    b_invoice = build_invoice(sjoberg, lines=[("Startpaket", "1", "300000.00")], issue_date=tenant_today(tenant_b))
    return {"a_user": a_user, "b_user": b_user, "open": open_invoice, "paid": paid, "b_invoice": b_invoice}


def test_the_portal_offers_pay_now_only_for_open_invoices(client, world):
    client.force_login(world["a_user"])

    listing = client.get("/invoices/").content.decode()
    detail = client.get(f"/invoices/{world['open'].pk}/").content.decode()
    paid_detail = client.get(f"/invoices/{world['paid'].pk}/").content.decode()
    home = client.get("/").content.decode()

    assert PAY_FORM.format(pk=world["open"].pk) in listing and PAY_FORM.format(pk=world["open"].pk) in detail
    assert PAY_FORM.format(pk=world["paid"].pk) not in listing and "Pay now" not in paid_detail
    assert PAY_FORM.format(pk=world["open"].pk) in home
    assert DISABLED not in listing + detail and "not set up" not in listing + detail


def test_without_card_payment_the_button_is_disabled_with_the_reason(client, world):
    client.force_login(world["b_user"])

    detail = client.get(f"/invoices/{world['b_invoice'].pk}/").content.decode()
    listing = client.get("/invoices/").content.decode()

    assert DISABLED in detail and "Card payment is not set up by Bergström Konsult." in detail
    assert DISABLED in listing and "Card payment is not set up by Bergström Konsult." in listing
    assert "/pay/" not in detail


def test_the_swedish_reason_for_a_swedish_customer(client, world, tenant_b):
    with platform_scope():
        customer = world["b_invoice"].customer
        customer.language = "sv"
        customer.save()
    client.force_login(world["b_user"])

    detail = client.get(f"/invoices/{world['b_invoice'].pk}/").content.decode()

    assert "Kortbetalning är inte aktiverad av Bergström Konsult." in detail and "Betala nu" in detail


def test_pay_now_opens_the_checkout_and_redirects_to_stripe(client, world, recorder):
    client.force_login(world["a_user"])

    response = client.post(f"/invoices/{world['open'].pk}/pay/")

    assert response.status_code == 303 and response["Location"] == "https://checkout.stripe.com/c/pay/cs_test_a1b2c3"
    params = recorder.requests[0]["params"]
    assert params["line_items[0][price_data][unit_amount]"] == "123450"
    assert params["success_url"] == "http://127.0.0.1:8000/pay/done/?result=success"
    assert params["cancel_url"] == "http://127.0.0.1:8000/pay/done/?result=cancel"


def test_two_clicks_and_the_emailed_link_ask_stripe_for_the_same_session(client, world, recorder):
    client.force_login(world["a_user"])
    client.post(f"/invoices/{world['open'].pk}/pay/")
    client.post(f"/invoices/{world['open'].pk}/pay/")
    client.logout()
    client.post(pay_link_path(invoice=world["open"]))

    assert len({r["headers"]["Idempotency-Key"] for r in recorder.requests}) == 1
    assert len({tuple(sorted(r["params"].items())) for r in recorder.requests}) == 1


def test_pay_now_is_refused_for_a_paid_invoice_another_tenants_and_without_card_payment(client, world, recorder):
    client.force_login(world["a_user"])
    paid = client.post(f"/invoices/{world['paid'].pk}/pay/")
    other_tenant = client.post(f"/invoices/{world['b_invoice'].pk}/pay/")
    client.force_login(world["b_user"])
    off = client.post(f"/invoices/{world['b_invoice'].pk}/pay/")

    assert paid.status_code == 409 and f"Invoice {world['paid'].number} has nothing left to pay." in paid.content.decode()
    assert other_tenant.status_code == 404
    assert off.status_code == 409 and "Card payment is not set up by Bergström Konsult." in off.content.decode()
    assert recorder.requests == []


def test_a_provider_failure_is_a_502_page_without_the_key(client, world, monkeypatch):
    monkeypatch.setattr(stripe_provider, "http_client", StripeRecorder(status=500, body={"error": {"message": "boom"}}))
    client.force_login(world["a_user"])

    response = client.post(f"/invoices/{world['open'].pk}/pay/")

    body = response.content.decode()
    assert response.status_code == 502 and "could not open a payment page" in body and "sk_test" not in body


def test_the_invoice_email_carries_a_pay_link_when_card_payment_is_set_up(world):
    invoice_send(invoice=world["open"])
    invoice_send(invoice=world["b_invoice"])

    with_link, without = mail.outbox
    # The token is timestamped: read the emailed one back rather than signing again a second later.
    found = re.search(r"Pay now by card: (http://127\.0\.0\.1:8000/pay/([^/\s]+)/)", with_link.body)
    assert found is not None, with_link.body
    url, token = found.groups()
    assert pay_link_read(token) == (world["open"].tenant_id, world["open"].pk)
    assert f'href="{url}"' in with_link.alternatives[0][0]
    assert "/pay/" not in without.body and "/pay/" not in without.alternatives[0][0]
    assert "Pay now" not in without.body


def test_a_paid_invoice_email_has_no_pay_link(world):
    invoice_send(invoice=world["paid"])

    assert "/pay/" not in mail.outbox[0].body


def test_the_emailed_link_shows_the_invoice_and_its_button_posts_to_stripe(client, world, recorder):
    path = pay_link_path(invoice=world["open"])

    page = client.get(path)
    checkout = client.post(path)

    assert page.status_code == 200
    body = page.content.decode()
    assert world["open"].number in body and "$1,234.50" in body and f'action="{path}"' in body
    assert checkout.status_code == 303 and checkout["Location"].startswith("https://checkout.stripe.com/")
    assert recorder.requests[0]["params"]["metadata[invoice_id]"] == str(world["open"].pk)


def test_the_return_page_says_what_happened_and_nothing_of_any_invoice(client, world):
    success = client.get("/pay/done/", {"result": "success"}).content.decode()
    cancel = client.get("/pay/done/", {"result": "cancel"}).content.decode()

    assert "Thank you: your card payment was received" in success
    assert "The card payment was cancelled; nothing was charged." in cancel
    assert world["open"].number not in success + cancel and "1,234.50" not in success + cancel


@override_settings(CARD_PAY_LINK_MAX_AGE_DAYS=0)
def test_an_expired_link_is_410_and_a_forged_one_404(client, world):
    expired = client.get(pay_link_path(invoice=world["open"]))
    forged_token = signing.dumps([world["b_invoice"].tenant_id, world["b_invoice"].pk], salt=SALT, key="not-our-secret")
    forged = client.get(f"/pay/{forged_token}/")

    assert expired.status_code == 410 and "This payment link has expired" in expired.content.decode()
    assert forged.status_code == 404


def test_a_swedish_customer_reads_the_pay_link_in_swedish(world, tenant_a):
    with platform_scope():
        customer = world["open"].customer
        customer.language = "sv"
        customer.save()

    invoice_send(invoice=world["open"])

    assert "Betala nu med kort: http://127.0.0.1:8000/pay/" in mail.outbox[0].body
