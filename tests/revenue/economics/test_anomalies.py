"""Anomalies: spikes and drops against a 28-day baseline, threshold rules, raised and emailed once."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client

from customers.models import Role
from customers.tenancy import tenant_scope
from revenue.economics.anomalies import anomaly_alerts_email, detect_anomalies
from revenue.models import AlertDelivery, AnomalyAlert, AnomalyRule
from revenue.tasks import detect_anomalies_for_tenant
from tests.customers.factories import CustomerFactory
from tests.revenue.economics.helpers import calls, price

DAY = date(2026, 3, 11)  # a Wednesday: no weekly test that day


def history(customer, per_day, *, model="m"):
    for back, count in enumerate(per_day, start=1):
        if count:
            calls(customer, count, when=DAY - timedelta(days=back), model=model)


@pytest.fixture
def world(tenant_a, tenant_b, member_factory):
    manager = member_factory(tenant_a, Role.ACCOUNT_MANAGER, username="ann")
    member_factory(tenant_a, Role.OWNER, username="olle")
    price(tenant_a, "priced", "1000000", "0")  # one input token costs 1.00; model "m" has no price
    spiky = CustomerFactory(tenant=tenant_a, name="Spiky", account_manager=manager)
    history(spiky, [20, 30] * 14)  # mean 25, sample sd 5.09
    calls(spiky, 60, when=DAY)
    droppy = CustomerFactory(tenant=tenant_a, name="Droppy")  # no account manager: the owners hear of it
    history(droppy, [30] * 28)  # sd 0: floored at 10 % of the mean, 3.0
    calls(droppy, 10, when=DAY)
    quiet = CustomerFactory(tenant=tenant_a, name="Quiet")
    history(quiet, [2] * 28)
    calls(quiet, 10, when=DAY)  # z is huge, but 10 calls are below the minimum volume of 20
    spender = CustomerFactory(tenant=tenant_a, name="Spender", account_manager=manager)
    calls(spender, 6, when=DAY, model="priced")  # spend 6.00
    AnomalyRule.objects.create(tenant=tenant_a, name="Spend above 5", metric="spend", threshold=Decimal("5.00"))
    elsewhere = CustomerFactory(tenant=tenant_b, name="Elsewhere")
    history(elsewhere, [20, 30] * 14)
    calls(elsewhere, 90, when=DAY)
    return tenant_a


def alerts(tenant):
    return sorted(
        (a.customer.name, a.kind, a.measure, a.observed, a.baseline, a.z_score)
        for a in AnomalyAlert.objects.for_tenant(tenant).select_related("customer")
    )


@pytest.mark.usage_events
def test_spike_drop_and_threshold_with_their_figures(world):
    result = detect_anomalies(tenant=world, day=DAY)

    assert result == {"found": 3, "created": 3}
    assert alerts(world) == [
        ("Droppy", "drop", "events", Decimal(10), Decimal(30), Decimal("-6.67")),
        ("Spender", "threshold", "spend", Decimal("6.00"), Decimal("5.00"), None),
        ("Spiky", "spike", "events", Decimal(60), Decimal(25), Decimal("6.87")),
    ]


def test_event_spikes_and_drops_are_found_in_either_usage_store(usage_store, tenant_a, tenant_b):
    spiky, droppy = CustomerFactory(tenant=tenant_a, name="Spiky"), CustomerFactory(tenant=tenant_a, name="Droppy")
    history(spiky, [20, 30] * 14)
    calls(spiky, 60, when=DAY)
    history(droppy, [30] * 28)
    calls(droppy, 10, when=DAY)
    elsewhere = CustomerFactory(tenant=tenant_b, name="Elsewhere")
    calls(elsewhere, 90, when=DAY)  # another tenant's spike day, on Droppy's quiet one

    assert detect_anomalies(tenant=tenant_a, day=DAY) == {"found": 2, "created": 2}
    assert alerts(tenant_a) == [
        ("Droppy", "drop", "events", Decimal(10), Decimal(30), Decimal("-6.67")),
        ("Spiky", "spike", "events", Decimal(60), Decimal(25), Decimal("6.87")),
    ]


@pytest.mark.usage_events
def test_a_second_run_raises_nothing_new(world):
    detect_anomalies(tenant=world, day=DAY)

    assert detect_anomalies(tenant=world, day=DAY) == {"found": 3, "created": 0}
    assert AnomalyAlert.objects.for_tenant(world).count() == 3


@pytest.mark.usage_events
def test_each_alert_is_emailed_once_to_the_account_manager_or_the_owners(world):
    detect_anomalies(tenant=world, day=DAY)

    first = anomaly_alerts_email(tenant=world)
    second = anomaly_alerts_email(tenant=world)

    assert first == {"emails": 2, "alerts": 3} and second == {"emails": 0, "alerts": 0}
    by_recipient = {tuple(m.to): m.body for m in mail.outbox}
    assert set(by_recipient) == {("ann@example.com",), ("olle@example.com",)}
    assert "Spiky" in by_recipient[("ann@example.com",)] and "Spender" in by_recipient[("ann@example.com",)]
    assert "Droppy" in by_recipient[("olle@example.com",)]
    assert AnomalyAlert.objects.for_tenant(world).filter(emailed_at__isnull=True).count() == 0


@pytest.mark.usage_events
def test_a_failed_alert_email_is_recorded_and_sent_by_the_next_run(world, monkeypatch):
    detect_anomalies(tenant=world, day=DAY)
    real_send = mail.EmailMessage.send

    def refuse_ann(message, *args, **kwargs):
        if message.to == ["ann@example.com"]:
            raise OSError("connection refused")
        return real_send(message, *args, **kwargs)

    monkeypatch.setattr(mail.EmailMessage, "send", refuse_ann)
    first = anomaly_alerts_email(tenant=world)

    assert first == {"emails": 1, "alerts": 1}  # Droppy reached the owner; ann's two did not
    rows = AlertDelivery.objects.for_tenant(world).select_related("alert__customer")
    assert sorted((r.alert.customer.name, r.recipient, r.status, r.attempts, r.error) for r in rows) == [
        ("Droppy", "olle@example.com", "sent", 1, ""),
        ("Spender", "ann@example.com", "failed", 1, "connection refused"),
        ("Spiky", "ann@example.com", "failed", 1, "connection refused"),
    ]
    assert sorted(AnomalyAlert.objects.for_tenant(world).filter(emailed_at__isnull=True)
                  .values_list("customer__name", flat=True)) == ["Spender", "Spiky"]

    monkeypatch.setattr(mail.EmailMessage, "send", real_send)
    second = anomaly_alerts_email(tenant=world)

    assert second == {"emails": 1, "alerts": 2}
    assert [m.to for m in mail.outbox] == [["olle@example.com"], ["ann@example.com"]]
    assert AnomalyAlert.objects.for_tenant(world).filter(emailed_at__isnull=True).count() == 0
    assert set(AlertDelivery.objects.for_tenant(world).values_list("status", "attempts")) == {("sent", 1), ("sent", 2)}


@pytest.mark.usage_events
def test_the_task_detects_and_emails(world):
    result = detect_anomalies_for_tenant.delay(world.pk, DAY.isoformat()).get()

    assert (result["created"], result["alerts"]) == (3, 3)
    assert len(mail.outbox) == 2


@pytest.mark.usage_events
def test_weekly_metric_rule_alerts_once_per_week(tenant_a):
    from billing.models import BillableMetric

    BillableMetric.objects.create(tenant=tenant_a, code="ai_call", name="AI calls")
    customer = CustomerFactory(tenant=tenant_a)
    AnomalyRule.objects.create(tenant=tenant_a, name="Busy week", metric="ai_call", threshold=Decimal(15), window="week")
    calls(customer, 10, when=date(2026, 3, 9))  # Monday
    calls(customer, 10, when=date(2026, 3, 10))

    detect_anomalies(tenant=tenant_a, day=date(2026, 3, 10))
    detect_anomalies(tenant=tenant_a, day=date(2026, 3, 11))

    alert = AnomalyAlert.objects.for_tenant(tenant_a).get()
    assert (alert.period_start, alert.period_end, alert.observed) == (date(2026, 3, 9), date(2026, 3, 15), Decimal(20))


def test_a_rule_on_an_unknown_metric_is_refused(tenant_a):
    rule = AnomalyRule(tenant=tenant_a, name="Typo", metric="jbos", threshold=Decimal(1))

    with tenant_scope(tenant_a), pytest.raises(ValidationError, match="No billable metric"):
        rule.full_clean()


def test_finance_edits_rules_account_managers_only_read_them(tenant_a, member_factory):
    finance, manager = Client(), Client()
    finance.force_login(member_factory(tenant_a, Role.FINANCE))
    manager.force_login(member_factory(tenant_a, Role.ACCOUNT_MANAGER))

    assert finance.get("/admin/revenue/anomalyrule/add/").status_code == 200
    assert manager.get("/admin/revenue/anomalyrule/add/").status_code == 403
    assert manager.get("/admin/revenue/anomalyrule/").status_code == 200


@pytest.mark.usage_events
def test_alerts_are_read_only_in_the_admin(world, member_factory):
    detect_anomalies(tenant=world, day=DAY)
    alert = AnomalyAlert.objects.for_tenant(world).first()
    client = Client()
    client.force_login(member_factory(world, Role.OWNER))

    assert client.get("/admin/revenue/anomalyalert/").status_code == 200
    assert client.post(f"/admin/revenue/anomalyalert/{alert.pk}/delete/", {"post": "yes"}).status_code == 403
