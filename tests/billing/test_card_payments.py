"""Card payment through Stripe: the checkout we ask for, and the webhook that records what was paid.

Two tenants, each with its own Stripe keys. No network: checkout creation goes through the official
library into a recording HTTP client, and webhook deliveries are signed locally as Stripe signs them.
"""

import json
import logging
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connections

from billing.models import Invoice, Payment, PaymentAllocation, PaymentStatus, ProviderEvent
from billing.payment_providers import PaidCheckout, ProviderUnavailable, VerifiedEvent, stripe_provider
from billing.services.card_payments import CardPaymentOff, NothingToPay, card_checkout_start, card_event_record
from billing.services.payments import payment_record
from customers.periods import tenant_today
from customers.tenancy import platform_scope
from tests.billing.document_builders import build_invoice
from tests.billing.factories import PaymentProviderAccountFactory
from tests.billing.stripe_fakes import StripeRecorder, checkout_completed_event, signed_delivery
from tests.customers.factories import CustomerFactory, TenantFactory


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def recorder(monkeypatch):
    recorder = StripeRecorder()
    monkeypatch.setattr(stripe_provider, "http_client", recorder)
    return recorder


@pytest.fixture
def accounts(tenant_a, tenant_b):
    with platform_scope():
        return PaymentProviderAccountFactory(tenant=tenant_a), PaymentProviderAccountFactory(tenant=tenant_b)


@pytest.fixture
def invoices(tenant_a, tenant_b):
    """Tenant A's USD invoice of 1 234.50 and tenant B's SEK invoice of 300 000.00, both finalized."""
    with platform_scope():
        northwind = CustomerFactory(tenant=tenant_a, name="Northwind", language="en")
        sjoberg = CustomerFactory(tenant=tenant_b, name="Sjöberg AB", currency="SEK", language="sv")
    return (
        build_invoice(northwind, lines=[("Platform fee", "1", "1234.50")], issue_date=tenant_today(tenant_a)),
        build_invoice(sjoberg, lines=[("Startpaket", "1", "300000.00")], issue_date=tenant_today(tenant_b)),
    )


def _payments(tenant):
    return list(Payment.objects.for_tenant(tenant).order_by("id"))


def _status(invoice):
    today = tenant_today(invoice.tenant)
    return Invoice.objects.for_tenant(invoice.tenant).with_payment_status(today=today).get(pk=invoice.pk)


# --- the checkout we ask Stripe for ---------------------------------------------------------


def test_checkout_session_asks_for_the_amount_due_in_cents_with_tenant_and_invoice_metadata(accounts, invoices, recorder):
    invoice, _ = invoices

    checkout = card_checkout_start(
        tenant=invoice.tenant, invoice=invoice, success_url="https://p.example/ok", cancel_url="https://p.example/no"
    )

    assert checkout.url == "https://checkout.stripe.com/c/pay/cs_test_a1b2c3" and checkout.session_id == "cs_test_a1b2c3"
    [sent] = recorder.requests
    assert sent["method"] == "post" and sent["url"] == "https://api.stripe.com/v1/checkout/sessions"
    assert sent["headers"]["Authorization"] == "Bearer sk_test_acme_SECRETKEY"  # tenant A's key, not B's
    assert sent["params"] == {
        "mode": "payment",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "123450",
        "line_items[0][price_data][product_data][name]": f"Invoice {invoice.number}",
        "client_reference_id": f"{invoice.tenant_id}-{invoice.pk}",
        "metadata[tenant_id]": str(invoice.tenant_id),
        "metadata[invoice_id]": str(invoice.pk),
        "metadata[invoice_number]": invoice.number,
        "payment_intent_data[metadata][tenant_id]": str(invoice.tenant_id),
        "payment_intent_data[metadata][invoice_id]": str(invoice.pk),
        "payment_intent_data[metadata][invoice_number]": invoice.number,
        "payment_intent_data[description]": f"Invoice {invoice.number}",
        "success_url": "https://p.example/ok",
        "cancel_url": "https://p.example/no",
    }
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert sent["headers"]["Idempotency-Key"].startswith(f"checkout-{invoice.tenant_id}-{invoice.pk}-123450-USD-{day}-")


def test_the_same_checkout_asked_twice_sends_the_same_idempotency_key(accounts, invoices, recorder):
    invoice, _ = invoices
    for _ in range(2):
        card_checkout_start(tenant=invoice.tenant, invoice=invoice, success_url="https://p.example/ok", cancel_url="https://p.example/no")
    card_checkout_start(tenant=invoice.tenant, invoice=invoice, success_url="https://other.example/ok", cancel_url="https://p.example/no")

    first, second, other_return = (r["headers"]["Idempotency-Key"] for r in recorder.requests)
    assert first == second and other_return != first


def test_checkout_of_a_zero_decimal_currency_sends_whole_units(tenant_a, tenant_b, accounts, recorder):
    with platform_scope():
        tokyo = CustomerFactory(tenant=tenant_a, name="Tokyo KK", currency="JPY", language="en")
    invoice = build_invoice(tokyo, lines=[("Platform fee", "1", "5000")], issue_date=tenant_today(tenant_a))

    card_checkout_start(tenant=tenant_a, invoice=invoice, success_url="https://p.example/ok", cancel_url="https://p.example/no")

    params = recorder.requests[0]["params"]
    assert params["line_items[0][price_data][unit_amount]"] == "5000"
    assert params["line_items[0][price_data][currency]"] == "jpy"


def test_checkout_of_a_partly_paid_invoice_asks_for_what_is_left_under_a_new_idempotency_key(accounts, invoices, recorder):
    invoice, _ = invoices
    card_checkout_start(tenant=invoice.tenant, invoice=invoice, success_url="https://p.example/ok", cancel_url="https://p.example/no")
    payment_record(tenant=invoice.tenant, customer=invoice.customer, amount=Decimal("234.50"),
                   received_on=tenant_today(invoice.tenant), allocations=[(invoice, Decimal("234.50"))])

    card_checkout_start(tenant=invoice.tenant, invoice=invoice, success_url="https://p.example/ok", cancel_url="https://p.example/no")

    first, second = recorder.requests
    assert second["params"]["line_items[0][price_data][unit_amount]"] == "100000"
    assert first["headers"]["Idempotency-Key"] != second["headers"]["Idempotency-Key"]
    assert "-100000-USD-" in second["headers"]["Idempotency-Key"]


def test_checkout_is_refused_for_a_paid_invoice_and_without_card_payment(tenant_a, accounts, invoices, recorder):
    invoice, invoice_b = invoices
    payment_record(tenant=tenant_a, customer=invoice.customer, amount=Decimal("1234.50"), received_on=tenant_today(tenant_a))
    with pytest.raises(NothingToPay, match=f"Invoice {invoice.number} has nothing left to pay."):
        card_checkout_start(tenant=tenant_a, invoice=invoice, success_url="https://x/ok", cancel_url="https://x/no")
    accounts[1].secret_key = ""
    accounts[1].save()
    with pytest.raises(CardPaymentOff, match="Card payment is not set up by Bergström Konsult."):
        card_checkout_start(tenant=invoice_b.tenant, invoice=invoice_b, success_url="https://x/ok", cancel_url="https://x/no")
    assert recorder.requests == []


def test_a_stripe_error_is_a_safe_message_without_the_key(accounts, invoices, monkeypatch, caplog):
    invoice, _ = invoices
    refusing = StripeRecorder(status=401, body={"error": {"type": "invalid_request_error",
                                                          "message": "Invalid API Key provided: sk_test_****TKEY"}})
    monkeypatch.setattr(stripe_provider, "http_client", refusing)

    with caplog.at_level(logging.WARNING), pytest.raises(ProviderUnavailable) as refused:
        card_checkout_start(tenant=invoice.tenant, invoice=invoice, success_url="https://x/ok", cancel_url="https://x/no")

    assert str(refused.value) == "The card payment service could not open a payment page; try again later."
    assert "sk_test" not in caplog.text and "AuthenticationError" in caplog.text


# --- the webhook ------------------------------------------------------------------------------


def test_a_valid_webhook_pays_the_invoice_with_one_card_payment(client, accounts, invoices):
    invoice, invoice_b = invoices
    event = checkout_completed_event(invoice=invoice, amount_total=123450, event_id="evt_paid", payment_intent="pi_3Paid")

    response = signed_delivery(client, slug="acme", event=event, secret="whsec_acme_SIGNINGSECRET")

    assert response.status_code == 200
    assert response.json() == {"detail": "Event processed.", "outcome": "recorded"}
    [payment] = _payments(invoice.tenant)
    assert (payment.customer_id, payment.amount, payment.currency, payment.method, payment.reference, payment.received_on) == (
        invoice.customer_id, Decimal("1234.50"), "USD", Payment.Method.CARD, "pi_3Paid", tenant_today(invoice.tenant)
    )
    [allocation] = PaymentAllocation.objects.for_tenant(invoice.tenant).all()
    assert (allocation.payment_id, allocation.invoice_id, allocation.amount) == (payment.pk, invoice.pk, Decimal("1234.50"))
    paid = _status(invoice)
    assert (paid.status, paid.payment_status, paid.balance_due) == (Invoice.Status.PAID, PaymentStatus.PAID, Decimal("0.00"))
    [stored] = ProviderEvent.objects.for_tenant(invoice.tenant).all()
    assert (stored.event_id, stored.outcome, stored.payment_id, stored.invoice_id) == ("evt_paid", "recorded", payment.pk, invoice.pk)
    assert _payments(invoice_b.tenant) == [] and _status(invoice_b).payment_status == PaymentStatus.OPEN


def test_the_same_event_twice_records_one_payment_and_answers_200_both_times(client, accounts, invoices):
    invoice, _ = invoices
    event = checkout_completed_event(invoice=invoice, amount_total=50000, event_id="evt_twice")

    first = signed_delivery(client, slug="acme", event=event, secret="whsec_acme_SIGNINGSECRET")
    second = signed_delivery(client, slug="acme", event=event, secret="whsec_acme_SIGNINGSECRET")

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == {"detail": "Event already processed.", "outcome": "duplicate"}
    assert [p.amount for p in _payments(invoice.tenant)] == [Decimal("500.00")]
    assert ProviderEvent.objects.for_tenant(invoice.tenant).count() == 1


def test_a_replayed_delivery_with_an_old_timestamp_is_refused(client, accounts, invoices):
    invoice, _ = invoices
    event = checkout_completed_event(invoice=invoice, amount_total=123450)

    response = signed_delivery(client, slug="acme", event=event, secret="whsec_acme_SIGNINGSECRET",
                               timestamp=int(time.time()) - 301)

    assert response.status_code == 400
    assert response.json() == {"detail": "The signature's timestamp is too old (a replay?)."}
    assert _payments(invoice.tenant) == []


def test_a_delivery_signed_with_another_secret_is_refused(client, accounts, invoices):
    invoice, _ = invoices
    event = checkout_completed_event(invoice=invoice, amount_total=123450)

    # Signed with tenant B's secret, sent to tenant A's URL.
    response = signed_delivery(client, slug="acme", event=event, secret="whsec_bergstrom_SIGNINGSECRET")
    unsigned = client.post("/webhooks/stripe/acme/", data=json.dumps(event), content_type="application/json")

    assert (response.status_code, unsigned.status_code) == (400, 400)
    assert response.json() == {"detail": "The Stripe-Signature header does not verify."}
    assert _payments(invoice.tenant) == []


def test_an_event_naming_another_tenants_invoice_is_refused_and_logged(client, accounts, invoices, caplog):
    invoice, invoice_b = invoices
    # Signed by tenant A's Stripe account but naming tenant B's invoice (with B's or A's tenant id).
    theirs = checkout_completed_event(invoice=invoice_b, amount_total=30000000, event_id="evt_b1")
    disguised = checkout_completed_event(tenant_id=invoice.tenant_id, invoice_id=invoice_b.pk, amount_total=30000000,
                                         event_id="evt_b2", currency="sek")

    with caplog.at_level(logging.WARNING):
        first = signed_delivery(client, slug="acme", event=theirs, secret="whsec_acme_SIGNINGSECRET")
        second = signed_delivery(client, slug="acme", event=disguised, secret="whsec_acme_SIGNINGSECRET")

    assert (first.status_code, second.status_code) == (404, 404)
    assert first.json() == second.json() == {"detail": "The event names no invoice of this account."}
    assert invoice_b.number not in first.content.decode() + second.content.decode()
    assert _payments(invoice.tenant) == [] and _payments(invoice_b.tenant) == []
    assert ProviderEvent.objects.for_tenant(invoice.tenant).count() == 0
    assert "evt_b1" in caplog.text and "evt_b2" in caplog.text


def test_an_event_naming_an_unknown_invoice_is_refused(client, accounts, invoices, caplog):
    invoice, _ = invoices
    event = checkout_completed_event(tenant_id=invoice.tenant_id, invoice_id=999999, amount_total=100, event_id="evt_x")

    with caplog.at_level(logging.WARNING):
        response = signed_delivery(client, slug="acme", event=event, secret="whsec_acme_SIGNINGSECRET")

    assert response.status_code == 404
    assert response.json() == {"detail": "The event names no invoice of this account."}
    assert "unknown invoice 999999" in caplog.text
    assert _payments(invoice.tenant) == []


def test_a_partial_amount_leaves_the_invoice_partially_paid_and_flagged(client, accounts, invoices):
    invoice, _ = invoices
    event = checkout_completed_event(invoice=invoice, amount_total=34500, event_id="evt_part")

    response = signed_delivery(client, slug="acme", event=event, secret="whsec_acme_SIGNINGSECRET")

    assert response.json()["outcome"] == "mismatch"
    state = _status(invoice)
    assert (state.status, state.payment_status, state.balance_due) == (
        Invoice.Status.FINALIZED, PaymentStatus.PARTIALLY_PAID, Decimal("889.50"))
    [payment] = _payments(invoice.tenant)
    assert payment.amount == Decimal("345.00")
    assert payment.note == "Card payment pi_3Abc: paid 345.00 USD, invoice owed 1234.50"
    assert ProviderEvent.objects.for_tenant(invoice.tenant).get().outcome == ProviderEvent.Outcome.MISMATCH


def test_more_than_owed_pays_the_invoice_and_keeps_the_rest_as_flagged_credit(client, accounts, invoices):
    invoice, _ = invoices
    event = checkout_completed_event(invoice=invoice, amount_total=130000, event_id="evt_over")

    signed_delivery(client, slug="acme", event=event, secret="whsec_acme_SIGNINGSECRET")

    assert _status(invoice).status == Invoice.Status.PAID
    payment = Payment.objects.for_tenant(invoice.tenant).with_unallocated().get()
    assert (payment.amount, payment.unallocated) == (Decimal("1300.00"), Decimal("65.50"))
    assert ProviderEvent.objects.for_tenant(invoice.tenant).get().detail == (
        "Card payment pi_3Abc: paid 1300.00 USD, invoice owed 1234.50; 65.50 USD kept as the customer's credit"
    )


def test_a_payment_in_another_currency_is_recorded_as_credit_and_flagged(client, accounts, invoices):
    invoice, _ = invoices
    event = checkout_completed_event(invoice=invoice, amount_total=123450, currency="eur", event_id="evt_eur")

    response = signed_delivery(client, slug="acme", event=event, secret="whsec_acme_SIGNINGSECRET")

    assert response.json()["outcome"] == "mismatch"
    payment = Payment.objects.for_tenant(invoice.tenant).with_unallocated().get()
    assert (payment.currency, payment.amount, payment.unallocated) == ("EUR", Decimal("1234.50"), Decimal("1234.50"))
    assert _status(invoice).payment_status == PaymentStatus.OPEN


def test_a_checkout_not_paid_yet_records_nothing_until_its_async_success(client, accounts, invoices):
    invoice, _ = invoices
    pending = checkout_completed_event(invoice=invoice, amount_total=123450, event_id="evt_pending", payment_status="unpaid")
    later = checkout_completed_event(invoice=invoice, amount_total=123450, event_id="evt_later",
                                     event_type="checkout.session.async_payment_succeeded")

    first = signed_delivery(client, slug="acme", event=pending, secret="whsec_acme_SIGNINGSECRET")
    assert first.json()["outcome"] == "not_paid" and _payments(invoice.tenant) == []
    signed_delivery(client, slug="acme", event=later, secret="whsec_acme_SIGNINGSECRET")

    assert _status(invoice).status == Invoice.Status.PAID


def test_other_event_types_are_acknowledged_and_ignored(client, accounts, invoices):
    invoice, _ = invoices
    event = checkout_completed_event(invoice=invoice, amount_total=123450, event_type="payment_intent.succeeded")

    response = signed_delivery(client, slug="acme", event=event, secret="whsec_acme_SIGNINGSECRET")

    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert _payments(invoice.tenant) == [] and ProviderEvent.objects.for_tenant(invoice.tenant).count() == 0


def test_an_unknown_tenant_and_a_tenant_without_card_payment_look_the_same(client, tenant_a, tenant_b, invoices):
    with platform_scope():
        PaymentProviderAccountFactory(tenant=tenant_b, webhook_secret="")
    event = checkout_completed_event(invoice=invoices[0], amount_total=123450)

    unknown = signed_delivery(client, slug="nobody", event=event, secret="whsec_x")
    unset = signed_delivery(client, slug="bergstrom", event=event, secret="whsec_x")
    not_configured = signed_delivery(client, slug="acme", event=event, secret="whsec_x")

    assert unknown.status_code == unset.status_code == not_configured.status_code == 404
    assert unknown.json() == unset.json() == not_configured.json() == {"detail": "No webhook here."}


def test_a_body_that_is_not_json_or_a_get_is_refused_as_json(client, accounts):
    response = signed_delivery(client, slug="acme", event="not json at all", secret="whsec_acme_SIGNINGSECRET")
    get = client.get("/webhooks/stripe/acme/")

    assert response.status_code == 400 and response.json() == {"detail": "The body is not a Stripe event."}
    assert get.status_code == 405 and get.json() == {"detail": "Only POST."}


def test_the_payment_is_dated_the_day_stripe_took_the_money_in_the_tenants_time_zone(client, accounts, invoices):
    invoice, _ = invoices
    two_days_ago = int(time.time()) - 2 * 86400
    event = checkout_completed_event(invoice=invoice, amount_total=123450, created=two_days_ago)

    signed_delivery(client, slug="acme", event=event, secret="whsec_acme_SIGNINGSECRET")

    assert _payments(invoice.tenant)[0].received_on == datetime.fromtimestamp(two_days_ago, tz=UTC).date()  # tenant A is UTC


def test_each_tenant_verifies_with_its_own_secret_at_its_own_url(client, accounts, invoices):
    invoice_a, invoice_b = invoices
    event = checkout_completed_event(invoice=invoice_b, amount_total=30000000, currency="sek", event_id="evt_1")

    at_a = signed_delivery(client, slug="acme", event=event, secret="whsec_bergstrom_SIGNINGSECRET")
    at_b = signed_delivery(client, slug="bergstrom", event=event, secret="whsec_bergstrom_SIGNINGSECRET")
    # The same event id at tenant A is A's own event: ids are unique per tenant, not across tenants.
    same_id_at_a = signed_delivery(client, slug="acme", event=checkout_completed_event(
        invoice=invoice_a, amount_total=123450, event_id="evt_1"), secret="whsec_acme_SIGNINGSECRET")

    assert (at_a.status_code, at_b.status_code, same_id_at_a.status_code) == (400, 200, 200)
    assert [(p.amount, p.currency) for p in _payments(invoice_b.tenant)] == [(Decimal("300000.00"), "SEK")]
    assert [(p.amount, p.currency) for p in _payments(invoice_a.tenant)] == [(Decimal("1234.50"), "USD")]
    assert _status(invoice_b).status == _status(invoice_a).status == Invoice.Status.PAID


def test_an_oversized_body_is_refused_before_it_is_read(client, accounts):
    response = client.post("/webhooks/stripe/acme/", data="x" * (300 * 1024), content_type="application/json",
                           HTTP_STRIPE_SIGNATURE="t=1,v1=00")

    assert response.status_code == 413 and response.json() == {"detail": "The body is too large for an event."}


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_concurrently_records_one_payment():
    with platform_scope():
        tenant = TenantFactory(slug="concurrent", invoice_number_prefix="C-")
        other = TenantFactory(slug="other-tenant", invoice_number_prefix="O-")
        customer = CustomerFactory(tenant=tenant, name="Northwind", language="en")
        PaymentProviderAccountFactory(tenant=tenant)
        PaymentProviderAccountFactory(tenant=other)
    invoice = build_invoice(customer, lines=[("Platform fee", "1", "1234.50")], issue_date=tenant_today(tenant))
    event = VerifiedEvent(
        event_id="evt_race", event_type="checkout.session.completed", created=datetime.now(tz=UTC),
        checkout=PaidCheckout(session_id="cs_race", reference="pi_race", amount=Decimal("1234.50"), currency="USD",
                              paid=True, tenant_id=str(tenant.pk), invoice_id=str(invoice.pk)),
    )
    threads_count = 4
    barrier = threading.Barrier(threads_count)
    results, errors = [], []

    def deliver():
        try:
            barrier.wait()
            results.append(card_event_record(tenant=tenant, provider="stripe", event=event)[1])
        except Exception as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == [] and sorted(results) == [False, False, False, True]
    assert [p.amount for p in _payments(tenant)] == [Decimal("1234.50")]
    assert ProviderEvent.objects.for_tenant(tenant).count() == 1 and _status(invoice).status == Invoice.Status.PAID
