"""A webhook delivery whose worker is SIGKILLed mid-request is delivered again by the next worker, under
the same ``webhook-id``: at least once, never under two ids.

A real ``celery worker`` subprocess (solo pool) on this test's database and a Redis database of this
pytest process's own (``tests.billing.redis_broker``) posts to a loopback receiver that holds the request open; the
test kills the worker while it waits, starts another, and the broker hands the unacknowledged task
to it (``acks_late``; ``tests.billing.webhook_worker_app`` shortens Redis' visibility timeout).
"""

import os
import threading

import pytest

from billing.models import WebhookAttempt, WebhookDelivery
from billing.services.webhooks import webhook_endpoint_create, webhook_event_emit
from tests.billing.redis_broker import process_broker_url, publishing_to
from tests.billing.test_month_end_worker import Workers, wait_until
from tests.billing.webhook_receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class WebhookWorkers(Workers):
    def start(self, **kwargs):
        os.environ["WEBHOOK_ALLOW_LOOPBACK"] = "true"  # the worker's settings: the receiver is on 127.0.0.1
        try:
            return super().start(app="tests.billing.webhook_worker_app")
        finally:
            del os.environ["WEBHOOK_ALLOW_LOOPBACK"]


@pytest.fixture
def workers(transactional_db, tmp_path):
    with publishing_to(process_broker_url()) as url:
        pool = WebhookWorkers(url, tmp_path)
        yield pool
        pool.stop_all()


def test_a_worker_killed_mid_delivery_leaves_it_to_the_next_under_the_same_id(workers, tenant_a, tenant_b):
    with Receiver() as receiver:
        receiver.hold = threading.Event()
        endpoint = webhook_endpoint_create(tenant=tenant_a, url=receiver.url, event_types=["invoice.paid"])
        receiver.secrets = [endpoint.secret]
        event = webhook_event_emit(tenant=tenant_a, type="invoice.paid", payload={"id": 1})  # queued on commit
        first = workers.start()
        wait_until(receiver.arrived.is_set, workers, "the first POST")

        workers.kill(first)  # SIGKILL while the receiver holds the request open
        held, receiver.hold = receiver.hold, None
        held.set()  # the held request's answer goes nowhere: its sender is dead
        workers.start()
        wait_until(lambda: len(receiver.received) >= 2, workers, "the redelivery")
        delivery = WebhookDelivery.objects.for_tenant(tenant_a).get()
        wait_until(lambda: WebhookDelivery.objects.for_tenant(tenant_a).get().status == "succeeded", workers,
                   "the delivery to be recorded")

    assert {got.message_id for got in receiver.received} == {event.message_id}
    assert all(got.verified_with == [0] for got in receiver.received)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)  # the killed attempt rolled back
    assert WebhookAttempt.objects.for_tenant(tenant_a).filter(succeeded=True).count() == 1
