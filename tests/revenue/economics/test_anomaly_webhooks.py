"""Usage alerts as webhooks: each alert ``detect_anomalies`` raises reaches the tenant's receiver once."""

from datetime import date
from decimal import Decimal

import pytest

from billing.models import WebhookEvent
from billing.services.webhooks import webhook_endpoint_create
from revenue.economics.anomalies import detect_anomalies
from revenue.models import AnomalyAlert, AnomalyRule
from tests.billing.webhook_receiver import Receiver
from tests.customers.factories import CustomerFactory
from tests.revenue.economics.helpers import call, price

pytestmark = pytest.mark.usage_events  # the figures here are read from usage events

DAY = date(2026, 3, 11)


def test_a_raised_alert_reaches_the_receiver_once(tenant_a, tenant_b, django_capture_on_commit_callbacks):
    price(tenant_a, "priced", "1000000", "0")  # one input token costs 1.00
    spender = CustomerFactory(tenant=tenant_a, name="Spender", external_ref="spender")
    for _ in range(6):
        call(spender, DAY, "priced", 1, 0)  # spend 6.00
    rule = AnomalyRule.objects.create(tenant=tenant_a, name="Spend above 5", metric="spend", threshold=Decimal("5.00"))
    with Receiver() as receiver, Receiver() as other:
        receiver.secrets = [webhook_endpoint_create(tenant=tenant_a, url=receiver.url, event_types=["usage.alert"]).secret]
        webhook_endpoint_create(tenant=tenant_b, url=other.url, event_types=["usage.alert"])
        with django_capture_on_commit_callbacks(execute=True):
            detect_anomalies(tenant=tenant_a, day=DAY)
            detect_anomalies(tenant=tenant_a, day=DAY)  # a rerun raises, and announces, nothing new

    alert = AnomalyAlert.objects.for_tenant(tenant_a).get()
    [got] = receiver.received
    assert got.verified_with == [0] and got.json["type"] == "usage.alert"
    assert got.json["data"] == {
        "id": alert.pk, "customer": {"id": spender.pk, "external_ref": "spender", "name": "Spender"},
        "kind": "threshold", "measure": "spend", "period_start": "2026-03-11", "period_end": "2026-03-11",
        "observed": "6.000000", "baseline": "5.000000", "z_score": None,
        "rule": {"id": rule.pk, "name": "Spend above 5"},
    }
    assert WebhookEvent.objects.for_tenant(tenant_a).get().dedupe_key == f"usage.alert:{alert.pk}"
    assert other.received == []
