"""Outgoing webhooks: each event from its real service call reaches a real loopback receiver, signed;
retries, backoff, disabling, rotation, the SSRF guard, the API and the admin, across two tenants."""

import threading
from datetime import date, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.core import mail
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from billing.models import (
    Invoice,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointNotice,
    WebhookEvent,
)
from billing.services import invoice_finalize, payment_record
from billing.services.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_event_emit,
    webhook_overdue_announce,
)
from billing.tasks import webhook_deliver, webhook_overdue_sweep_all_tenants, webhook_requeue_lost
from billing.webhook_delivery import (
    DISABLE_AFTER,
    DISABLE_MIN_FAILURES,
    RETRY_SCHEDULE,
    retry_delay,
    webhook_deliveries_lost,
    webhook_endpoint_disabled_email,
)
from customers.models import Contract, Role
from customers.services import contract_cancel
from customers.tenancy import platform_scope
from tests.api_clients import key_client, staff_client
from tests.billing.document_builders import build_credit_note, build_invoice
from tests.billing.webhook_receiver import Receiver
from tests.customers.factories import ContractFactory, CustomerFactory

ALL_TYPES = [
    "invoice.finalized", "invoice.paid", "invoice.overdue", "credit_note.created", "payment.received", "usage.alert",
    "customer.churned",
]


def stamp(moment) -> str:
    return moment.astimezone(dt_timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def receivers():
    """Tenant A's receiver and tenant B's, both listening on loopback."""
    with Receiver() as a, Receiver() as b:
        yield a, b


@pytest.fixture
def hooked(tenant_a, tenant_b, receivers):
    """Each tenant with an endpoint for every event type, its receiver knowing its secret; Northwind of A."""
    receiver_a, receiver_b = receivers
    endpoint_a = webhook_endpoint_create(tenant=tenant_a, url=receiver_a.url, event_types=ALL_TYPES, description="ERP")
    endpoint_b = webhook_endpoint_create(tenant=tenant_b, url=receiver_b.url, event_types=ALL_TYPES)
    receiver_a.secrets, receiver_b.secrets = [endpoint_a.secret], [endpoint_b.secret]
    with platform_scope():
        northwind = CustomerFactory(tenant=tenant_a, name="Northwind", external_ref="northwind")
    return {"a": receiver_a, "b": receiver_b, "endpoint": endpoint_a, "endpoint_b": endpoint_b, "northwind": northwind}


def customer_of(hooked):
    c = hooked["northwind"]
    return {"id": c.pk, "external_ref": "northwind", "name": "Northwind"}


def only_event(tenant, type):
    return WebhookEvent.objects.for_tenant(tenant).get(type=type)


def invoice_data(invoice, hooked, status, **extra):
    return {
        "id": invoice.pk, "number": "ACME-2026-00001", "status": status, "customer": customer_of(hooked),
        "currency": "USD", "subtotal": "424.00", "vat_amount": "0.00", "total": "424.00", "amount_due": "424.00",
        "period_start": "2026-11-01", "period_end": "2026-11-30", "issue_date": "2026-12-01",
        "due_date": "2026-12-31", **extra,
    }


# --- each event from its service ----------------------------------------------------------------


def test_invoice_finalized_reaches_the_receiver_signed_with_its_exact_payload(hooked, tenant_a,
                                                                              django_capture_on_commit_callbacks):
    draft = build_invoice(hooked["northwind"], lines=[("Platform fee", "1", "424.00")], finalize=False)
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_finalize(invoice=draft, issue_date=date(2026, 12, 1), deliver=False)

    event = only_event(tenant_a, "invoice.finalized")
    [got] = hooked["a"].received
    assert got.verified_with == [0]
    assert got.message_id == event.message_id and event.message_id.startswith("msg_")
    assert got.json == {
        "type": "invoice.finalized", "timestamp": stamp(event.created_at),
        "data": invoice_data(invoice, hooked, "finalized"),
    }
    assert hooked["b"].received == []
    delivery = WebhookDelivery.objects.for_tenant(tenant_a).get()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)
    attempt = WebhookAttempt.objects.for_tenant(tenant_a).get()
    assert (attempt.status_code, attempt.succeeded, attempt.response_excerpt) == (200, True, '{"ok": true}')


def test_a_payment_announces_the_payment_and_the_invoice_it_paid(hooked, tenant_a, django_capture_on_commit_callbacks):
    invoice = build_invoice(hooked["northwind"], lines=[("Platform fee", "1", "424.00")])
    with django_capture_on_commit_callbacks(execute=True):
        payment = payment_record(tenant=tenant_a, customer=hooked["northwind"], amount=Decimal("500.00"),
                                 received_on=date(2026, 12, 2), reference="BANK-7")

    by_type = {got.json["type"]: got for got in hooked["a"].received}
    assert sorted(by_type) == ["invoice.paid", "payment.received"]
    assert all(got.verified_with == [0] for got in by_type.values())
    paid_at = Invoice.objects.for_tenant(tenant_a).get(pk=invoice.pk).paid_at
    assert by_type["invoice.paid"].json["data"] == invoice_data(invoice, hooked, "paid", paid_at=stamp(paid_at))
    assert by_type["payment.received"].json["data"] == {
        "id": payment.pk, "customer": customer_of(hooked), "currency": "USD", "amount": "500.00",
        "unallocated": "76.00", "received_on": "2026-12-02", "method": "bank_transfer", "reference": "BANK-7",
        "allocations": [{"invoice": {"id": invoice.pk, "number": "ACME-2026-00001"}, "amount": "424.00"}],
    }
    assert hooked["b"].received == []


def test_credit_note_created(hooked, tenant_a, django_capture_on_commit_callbacks):
    invoice = build_invoice(hooked["northwind"], lines=[("Platform fee", "1", "424.00")])
    with django_capture_on_commit_callbacks(execute=True):
        note = build_credit_note(invoice, amount="100.00", reason="Outage")

    [got] = hooked["a"].received
    assert got.json["type"] == "credit_note.created" and got.verified_with == [0]
    assert got.json["data"] == {
        "id": note.pk, "number": "ACME-CN-2026-00001", "invoice": {"id": invoice.pk, "number": "ACME-2026-00001"},
        "customer": customer_of(hooked), "currency": "USD", "subtotal": "100.00", "vat_amount": "0.00",
        "total": "100.00", "reason": "Outage", "issue_date": note.issue_date.isoformat(),
    }


def test_cancelling_the_last_live_contract_announces_the_churn(hooked, tenant_a, django_capture_on_commit_callbacks):
    with platform_scope():
        contract = ContractFactory(tenant=tenant_a, customer=hooked["northwind"], start_date=date(2026, 1, 1),
                                   reference="C-1")
    with django_capture_on_commit_callbacks(execute=True):
        contract_cancel(contract=contract, last_day=date(2027, 1, 31))

    [got] = hooked["a"].received
    assert got.json["type"] == "customer.churned" and got.verified_with == [0]
    assert got.json["data"] == {
        "customer": customer_of(hooked), "churned_on": "2027-02-01",
        "last_contract": {"id": contract.pk, "reference": "C-1", "end_date": "2027-01-31"},
    }


def test_cancelling_one_of_two_live_contracts_is_no_churn(hooked, tenant_a, django_capture_on_commit_callbacks):
    with platform_scope():
        first = ContractFactory(tenant=tenant_a, customer=hooked["northwind"], start_date=date(2026, 1, 1))
        ContractFactory(tenant=tenant_a, customer=hooked["northwind"], start_date=date(2026, 1, 1),
                        status=Contract.Status.ACTIVE)
    with django_capture_on_commit_callbacks(execute=True):
        contract_cancel(contract=first, last_day=date(2027, 1, 31))

    assert hooked["a"].received == []
    assert not WebhookEvent.objects.for_tenant(tenant_a).exists()


def test_churn_waits_for_a_contract_cancelled_to_end_later(hooked, tenant_a, django_capture_on_commit_callbacks):
    with platform_scope():
        later = ContractFactory(tenant=tenant_a, customer=hooked["northwind"], start_date=date(2026, 1, 1))
        first = ContractFactory(tenant=tenant_a, customer=hooked["northwind"], start_date=date(2026, 1, 1))
    with django_capture_on_commit_callbacks(execute=True):
        contract_cancel(contract=later, last_day=date(2027, 3, 31))  # the other still runs: no churn
        contract_cancel(contract=first, last_day=date(2027, 1, 31))

    [got] = hooked["a"].received
    assert (got.json["type"], got.json["data"]["churned_on"]) == ("customer.churned", "2027-04-01")
    assert got.json["data"]["last_contract"]["id"] == first.pk


def test_overdue_invoices_are_announced_once(hooked, tenant_a, django_capture_on_commit_callbacks):
    invoice = build_invoice(hooked["northwind"], lines=[("Platform fee", "1", "424.00")])  # due 2026-12-31
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_overdue_announce(tenant=tenant_a, today=date(2026, 12, 31)) == 0  # due today: not yet
        assert webhook_overdue_announce(tenant=tenant_a, today=date(2027, 1, 1)) == 1
        assert webhook_overdue_announce(tenant=tenant_a, today=date(2027, 1, 2)) == 0

    [got] = hooked["a"].received
    assert got.json["type"] == "invoice.overdue"
    assert got.json["data"] == invoice_data(invoice, hooked, "finalized", balance_due="424.00")
    assert only_event(tenant_a, "invoice.overdue").dedupe_key == f"invoice.overdue:{invoice.pk}"


def test_no_subscribed_endpoint_writes_nothing(tenant_a, tenant_b, receivers):
    webhook_endpoint_create(tenant=tenant_a, url=receivers[0].url, event_types=["invoice.paid"])
    webhook_endpoint_create(tenant=tenant_b, url=receivers[1].url, event_types=["invoice.finalized"])

    assert webhook_event_emit(tenant=tenant_a, type="invoice.finalized", payload={"id": 1}) is None
    assert WebhookEvent.objects.for_tenant(tenant_a).count() == 0
    assert WebhookDelivery.objects.for_tenant(tenant_a).count() == 0


def test_a_rolled_back_change_sends_nothing(hooked, tenant_a, django_capture_on_commit_callbacks):
    from django.db import transaction

    draft = build_invoice(hooked["northwind"], finalize=False)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            invoice_finalize(invoice=draft, issue_date=date(2026, 12, 1), deliver=False)
            raise RuntimeError("later step failed")

    assert hooked["a"].received == []
    assert not WebhookEvent.objects.for_tenant(tenant_a).exists()


# --- retries, backoff, disabling ------------------------------------------------------------------


def test_the_backoff_schedule_spans_about_a_day():
    assert [retry_delay(n) for n in range(1, 9)] == [
        timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=5),
        timedelta(hours=10), timedelta(hours=10), None,
    ]
    assert sum(RETRY_SCHEDULE, timedelta()) == timedelta(hours=27, minutes=35, seconds=5)


def make_due(delivery):
    WebhookDelivery.objects.for_tenant(delivery.tenant).filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_500_is_retried_with_the_same_id_until_it_succeeds(hooked, tenant_a, django_capture_on_commit_callbacks):
    hooked["a"].answers = [500, 200]
    with django_capture_on_commit_callbacks(execute=True):
        event = webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 7})
    delivery = WebhookDelivery.objects.for_tenant(tenant_a).get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, "HTTP 500")
    first_try = WebhookAttempt.objects.for_tenant(tenant_a).get()
    assert delivery.next_attempt_at == first_try.started_at + timedelta(seconds=5)

    assert webhook_deliver(tenant_a.pk, delivery.pk) is False  # not due yet: a duplicate task does nothing
    make_due(delivery)
    assert webhook_deliver(tenant_a.pk, delivery.pk) is True
    assert webhook_deliver(tenant_a.pk, delivery.pk) is False  # done

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert [got.message_id for got in hooked["a"].received] == [event.message_id, event.message_id]
    assert list(WebhookAttempt.objects.for_tenant(tenant_a).order_by("started_at").values_list(
        "status_code", "succeeded", "response_excerpt")) == [(500, False, "receiver says no"), (200, True, '{"ok": true}')]
    assert WebhookEndpoint.objects.for_tenant(tenant_a).get().consecutive_failures == 0


def test_an_unreachable_receiver_is_an_attempt_with_the_error(tenant_a):
    endpoint = webhook_endpoint_create(tenant=tenant_a, url="http://127.0.0.1:9/hooks", event_types=["invoice.paid"])
    webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 7})
    delivery = WebhookDelivery.objects.for_tenant(tenant_a).get(endpoint=endpoint)

    assert webhook_deliver(tenant_a.pk, delivery.pk) is True
    attempt = WebhookAttempt.objects.for_tenant(tenant_a).get()
    assert attempt.status_code is None and "ConnectionRefusedError" in attempt.error


def test_the_last_failed_attempt_fails_the_delivery(hooked, tenant_a):
    hooked["a"].answers = [503]
    webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 7})
    delivery = WebhookDelivery.objects.for_tenant(tenant_a).get()
    for _ in range(len(RETRY_SCHEDULE) + 1):
        make_due(delivery)
        webhook_deliver(tenant_a.pk, delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 8, None)
    assert len({got.message_id for got in hooked["a"].received}) == 1 and len(hooked["a"].received) == 8


def test_an_endpoint_failing_for_a_day_is_disabled_and_its_owners_emailed_once(
    hooked, tenant_a, member_factory, django_capture_on_commit_callbacks
):
    owner = member_factory(tenant_a, Role.OWNER, username="olle")
    member_factory(tenant_a, Role.FINANCE, username="fia")
    hooked["a"].answers = [500]
    endpoint = hooked["endpoint"]
    WebhookEndpoint.objects.for_tenant(tenant_a).filter(pk=endpoint.pk).update(
        consecutive_failures=DISABLE_MIN_FAILURES - 1, failing_since=timezone.now() - DISABLE_AFTER - timedelta(minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 1})
        webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 2})

    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.consecutive_failures) == (False, DISABLE_MIN_FAILURES)
    assert "in a row" in endpoint.disabled_reason
    assert [m.to for m in mail.outbox] == [[owner.email]]
    assert hooked["a"].url in mail.outbox[0].body
    assert WebhookEndpointNotice.objects.for_tenant(tenant_a).get().status == "sent"
    # The second event's delivery found the endpoint disabled: failed without a POST.
    assert len(hooked["a"].received) == 1
    assert sorted(WebhookDelivery.objects.for_tenant(tenant_a).values_list("status", flat=True)) == ["failed", "pending"]


def test_failures_for_less_than_a_day_keep_the_endpoint(hooked, tenant_a, django_capture_on_commit_callbacks):
    hooked["a"].answers = [500]
    WebhookEndpoint.objects.for_tenant(tenant_a).update(consecutive_failures=50, failing_since=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 1})

    endpoint = WebhookEndpoint.objects.for_tenant(tenant_a).get()
    assert (endpoint.enabled, endpoint.consecutive_failures) == (True, 51)
    assert mail.outbox == []


def test_a_lost_retry_is_queued_again_by_the_sweep(hooked, tenant_a, tenant_b, django_capture_on_commit_callbacks):
    hooked["a"].answers = [500, 200]
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 1})
    delivery = WebhookDelivery.objects.for_tenant(tenant_a).get()
    assert webhook_deliveries_lost() == []
    WebhookDelivery.objects.for_tenant(tenant_a).update(next_attempt_at=timezone.now() - timedelta(minutes=3))

    assert webhook_deliveries_lost() == [(tenant_a.pk, delivery.pk)]
    assert webhook_requeue_lost() == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


# --- secrets ------------------------------------------------------------------------------------


def test_both_secrets_verify_during_the_rotation_grace_then_only_the_new(hooked, tenant_a,
                                                                        django_capture_on_commit_callbacks):
    old = hooked["endpoint"].secret
    endpoint = webhook_endpoint_rotate_secret(endpoint=hooked["endpoint"])
    assert endpoint.secret != old and endpoint.secret.startswith("whsec_")
    hooked["a"].secrets = [old, endpoint.secret]
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 1})
    WebhookEndpoint.objects.for_tenant(tenant_a).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 2})

    during, after = hooked["a"].received
    assert during.verified_with == [0, 1] and len(during.headers["webhook-signature"].split(" ")) == 2
    assert after.verified_with == [1] and len(after.headers["webhook-signature"].split(" ")) == 1


# --- the SSRF guard and the API -----------------------------------------------------------------


@override_settings(WEBHOOK_ALLOW_LOOPBACK=False)
@pytest.mark.parametrize(("url", "message"), [
    ("http://93.184.216.34/hook", "The URL must start with https://."),
    ("ftp://93.184.216.34/hook", "The URL must start with https://."),
    ("https://user:pw@93.184.216.34/hook", "The URL must not contain a user name or password."),
    ("https://10.1.2.3/hook", "The host 10.1.2.3 resolves to a private or reserved address; webhooks go to public addresses only."),
    ("https://169.254.169.254/latest", "The host 169.254.169.254 resolves to a link-local address; webhooks go to public addresses only."),
    ("https://127.0.0.1:8000/hook", "The host 127.0.0.1 resolves to a loopback address; webhooks go to public addresses only."),
    ("https://localhost/hook", "The host localhost resolves to a loopback address; webhooks go to public addresses only."),
    ("https://[::ffff:10.0.0.1]/hook", "The host ::ffff:10.0.0.1 resolves to a private or reserved address; webhooks go to public addresses only."),
    ("https://no-such-host.invalid/hook", "The host no-such-host.invalid cannot be resolved."),
])
def test_the_api_refuses_urls_the_guard_refuses(tenant_a, url, message):
    response = key_client(tenant_a).post("/api/v1/webhook-endpoints/", {"url": url, "event_types": ["invoice.paid"]})

    assert (response.status_code, response.json()) == (400, {"url": [message]})
    assert not WebhookEndpoint.objects.for_tenant(tenant_a).exists()


@override_settings(WEBHOOK_ALLOW_LOOPBACK=False)
def test_the_api_registers_an_endpoint_and_shows_its_secret_once(tenant_a):
    client = key_client(tenant_a)
    response = client.post("/api/v1/webhook-endpoints/", {
        "url": "https://93.184.216.34/hooks", "description": "ERP", "event_types": ["invoice.paid", "usage.alert"]})

    assert response.status_code == 201
    body = response.json()
    endpoint = WebhookEndpoint.objects.for_tenant(tenant_a).get()
    assert body["secret"] == endpoint.secret and body["secret"].startswith("whsec_")
    assert (body["url"], body["event_types"], body["enabled"]) == ("https://93.184.216.34/hooks", ["invoice.paid", "usage.alert"], True)
    listed = client.get("/api/v1/webhook-endpoints/").json()["results"]
    assert [e["id"] for e in listed] == [endpoint.pk] and "secret" not in listed[0]
    assert "secret" not in client.get(f"/api/v1/webhook-endpoints/{endpoint.pk}/").json()


def test_the_api_refuses_an_unknown_event_type(tenant_a, receivers):
    response = key_client(tenant_a).post("/api/v1/webhook-endpoints/", {"url": receivers[0].url, "event_types": ["invoice.eaten"]})

    assert response.status_code == 400
    assert list(response.json()) == ["event_types"]


def test_the_api_rotates_the_secret_and_shows_the_new_one(hooked, tenant_a):
    response = key_client(tenant_a).post(f"/api/v1/webhook-endpoints/{hooked['endpoint'].pk}/rotate-secret/")

    endpoint = WebhookEndpoint.objects.for_tenant(tenant_a).get()
    assert response.status_code == 200
    assert response.json()["secret"] == endpoint.secret != hooked["endpoint"].secret
    assert endpoint.previous_secret == hooked["endpoint"].secret


def test_another_tenants_endpoint_is_a_404(hooked, tenant_a):
    client = key_client(tenant_a)
    other = hooked["endpoint_b"].pk

    assert client.get(f"/api/v1/webhook-endpoints/{other}/").status_code == 404
    assert client.patch(f"/api/v1/webhook-endpoints/{other}/", {"description": "mine"}).status_code == 404
    assert client.post(f"/api/v1/webhook-endpoints/{other}/rotate-secret/").status_code == 404
    assert [e["id"] for e in client.get("/api/v1/webhook-endpoints/").json()["results"]] == [hooked["endpoint"].pk]


def test_only_owners_and_api_keys_use_the_api(hooked, tenant_a, member_factory):
    finance = staff_client(member_factory, tenant_a, Role.FINANCE)
    owner = staff_client(member_factory, tenant_a, Role.OWNER)

    assert finance.get("/api/v1/webhook-endpoints/").status_code == 403
    assert owner.get("/api/v1/webhook-endpoints/").status_code == 200
    response = owner.patch(f"/api/v1/webhook-endpoints/{hooked['endpoint'].pk}/", {"event_types": ["invoice.paid"]})
    assert (response.status_code, response.json()["event_types"]) == (200, ["invoice.paid"])


def test_the_api_lists_deliveries_and_redelivers_with_the_same_id(hooked, tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event = webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 1})
    client = key_client(tenant_a)
    endpoint = hooked["endpoint"].pk
    [listed] = client.get(f"/api/v1/webhook-endpoints/{endpoint}/deliveries/").json()
    assert (listed["message_id"], listed["status"], len(listed["attempt_log"])) == (event.message_id, "succeeded", 1)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/webhook-endpoints/{endpoint}/deliveries/{listed['id']}/redeliver/")

    assert response.status_code == 202
    assert [got.message_id for got in hooked["a"].received] == [event.message_id, event.message_id]
    assert WebhookAttempt.objects.for_tenant(tenant_a).count() == 2


# --- the admin ----------------------------------------------------------------------------------


def test_the_admin_redeliver_action_sends_again_with_the_same_id(
    hooked, tenant_a, client, member_factory, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        event = webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 1})
    delivery = WebhookDelivery.objects.for_tenant(tenant_a).get()
    client.force_login(member_factory(tenant_a, Role.OWNER))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:billing_webhookdelivery_changelist"),
                               {"action": "redeliver", "_selected_action": [delivery.pk], "index": 0})

    assert response.status_code == 302
    assert [got.message_id for got in hooked["a"].received] == [event.message_id, event.message_id]
    assert WebhookAttempt.objects.for_tenant(tenant_a).filter(delivery=delivery).count() == 2


def test_the_admin_adds_an_endpoint_and_shows_the_secret_once(tenant_a, client, member_factory, receivers):
    client.force_login(member_factory(tenant_a, Role.OWNER))
    response = client.post(reverse("admin:billing_webhookendpoint_add"), {
        "url": receivers[0].url, "description": "ERP", "event_types": ["invoice.paid"], "enabled": "on"}, follow=True)

    endpoint = WebhookEndpoint.objects.for_tenant(tenant_a).get()
    assert response.status_code == 200
    assert endpoint.secret in response.content.decode()
    assert endpoint.secret not in client.get(reverse("admin:billing_webhookendpoint_change", args=[endpoint.pk])).content.decode()


def test_a_finance_member_cannot_add_endpoints_in_the_admin(tenant_a, client, member_factory):
    client.force_login(member_factory(tenant_a, Role.FINANCE))

    assert client.get(reverse("admin:billing_webhookendpoint_add")).status_code == 403


def test_the_disabled_endpoint_email_speaks_the_owners_language(tenant_b, member_factory):
    owner = member_factory(tenant_b, Role.OWNER, username="sven")  # tenant B's language is Swedish
    endpoint = webhook_endpoint_create(tenant=tenant_b, url="http://127.0.0.1:9/hooks", event_types=["invoice.paid"])
    WebhookEndpoint.objects.for_tenant(tenant_b).filter(pk=endpoint.pk).update(
        enabled=False, disabled_at=timezone.now(), disabled_reason="receiver down"
    )
    endpoint.refresh_from_db()

    rows = webhook_endpoint_disabled_email(tenant=tenant_b, endpoint=endpoint)
    webhook_endpoint_disabled_email(tenant=tenant_b, endpoint=endpoint)  # once per owner and disabling

    assert [(r.recipient, r.status) for r in rows] == [(owner.email, "sent")]
    [message] = mail.outbox
    assert message.subject == f"{tenant_b.name}: webhook-mottagaren har stängts av"
    assert message.body.startswith("Webhook-mottagaren http://127.0.0.1:9/hooks (-) har stängts av: receiver down")


@override_settings(WEBHOOK_TIMEOUT_SECONDS=0.3)
def test_a_receiver_that_does_not_answer_in_time_is_a_timed_out_attempt(hooked, tenant_a):
    hooked["a"].hold = threading.Event()  # holds the request until the test ends
    webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 1})
    delivery = WebhookDelivery.objects.for_tenant(tenant_a).get()

    webhook_deliver(tenant_a.pk, delivery.pk)

    attempt = WebhookAttempt.objects.for_tenant(tenant_a).get()
    assert (attempt.status_code, attempt.error) == (None, "TimeoutError: no complete answer within 0.3 s")
    assert 300 <= attempt.latency_ms < 3000


def test_the_daily_sweep_fans_out_to_tenants_with_an_overdue_endpoint(hooked, tenant_a, tenant_b,
                                                                      django_capture_on_commit_callbacks):
    from customers.periods import tenant_today

    WebhookEndpoint.objects.for_tenant(tenant_b).update(event_types=["invoice.paid"])
    issued = tenant_today(tenant_a) - timedelta(days=31)  # due yesterday
    invoice = build_invoice(hooked["northwind"], lines=[("Platform fee", "1", "424.00")], issue_date=issued)
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_overdue_sweep_all_tenants() == 1
        assert webhook_overdue_sweep_all_tenants() == 1  # the tenant is swept again, the invoice not announced

    [got] = hooked["a"].received
    assert (got.json["type"], got.json["data"]["id"]) == ("invoice.overdue", invoice.pk)


def test_the_address_is_checked_again_at_delivery(hooked, tenant_a, django_capture_on_commit_callbacks):
    with override_settings(WEBHOOK_ALLOW_LOOPBACK=False), django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 1})

    assert hooked["a"].received == []
    attempt = WebhookAttempt.objects.for_tenant(tenant_a).get()
    assert attempt.error == "The host 127.0.0.1 resolves to a loopback address; webhooks go to public addresses only."


def test_a_disabled_endpoint_gets_no_new_deliveries(hooked, tenant_a):
    WebhookEndpoint.objects.for_tenant(tenant_a).update(enabled=False)

    assert webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 1}) is None
    assert not WebhookDelivery.objects.for_tenant(tenant_a).exists()


def test_the_admin_rotates_a_secret_and_shows_the_new_one_once(hooked, tenant_a, client, member_factory):
    client.force_login(member_factory(tenant_a, Role.OWNER))
    response = client.post(reverse("admin:billing_webhookendpoint_changelist"),
                           {"action": "rotate_secret", "_selected_action": [hooked["endpoint"].pk], "index": 0},
                           follow=True)

    endpoint = WebhookEndpoint.objects.for_tenant(tenant_a).get()
    assert endpoint.secret != hooked["endpoint"].secret and endpoint.previous_secret == hooked["endpoint"].secret
    assert endpoint.secret in response.content.decode()


def test_enabling_a_disabled_endpoint_in_the_admin_starts_its_count_afresh(hooked, tenant_a, client, member_factory):
    WebhookEndpoint.objects.for_tenant(tenant_a).update(
        enabled=False, consecutive_failures=9, failing_since=timezone.now(), disabled_at=timezone.now(),
        disabled_reason="down",
    )
    client.force_login(member_factory(tenant_a, Role.OWNER))
    response = client.post(reverse("admin:billing_webhookendpoint_change", args=[hooked["endpoint"].pk]), {
        "url": hooked["a"].url, "description": "ERP", "event_types": ALL_TYPES, "enabled": "on"})

    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.for_tenant(tenant_a).get()
    assert (endpoint.enabled, endpoint.consecutive_failures, endpoint.failing_since, endpoint.disabled_at,
            endpoint.disabled_reason) == (True, 0, None, None, "")


@pytest.mark.django_db(transaction=True)
def test_a_second_worker_skips_a_delivery_another_is_sending(tenant_a):
    from django.db import connection

    with Receiver() as receiver:
        receiver.hold = threading.Event()
        endpoint = webhook_endpoint_create(tenant=tenant_a, url=receiver.url, event_types=["invoice.paid"])
        event = WebhookEvent.objects.for_tenant(tenant_a).create(
            tenant=tenant_a, message_id="msg_race", type="invoice.paid", body='{"type":"invoice.paid","data":{}}'
        )
        delivery = WebhookDelivery.objects.for_tenant(tenant_a).create(tenant=tenant_a, event=event, endpoint=endpoint)
        outcome = {}

        def first_worker():
            try:
                outcome["first"] = webhook_deliver(tenant_a.pk, delivery.pk)
            finally:
                connection.close()

        sender = threading.Thread(target=first_worker)
        sender.start()
        assert receiver.arrived.wait(10)
        outcome["second"] = webhook_deliver(tenant_a.pk, delivery.pk)  # while the first holds the row
        receiver.hold.set()
        sender.join(10)

    assert outcome == {"first": True, "second": False}
    assert [got.message_id for got in receiver.received] == ["msg_race"]
    assert WebhookAttempt.objects.for_tenant(tenant_a).count() == 1
