"""What outgoing webhooks cost: emitting in a domain service's transaction, and one delivery attempt.

``run_webhooks_benchmark`` builds one tenant and times, median of ``runs``:

- ``emit``: ``events`` calls of ``webhook_event_emit`` in one transaction (rolled back, so nothing is
  queued), per event, with no endpoint subscribed (the lookup every finalize, payment and credit
  note now pays) and with 1 and 3 subscribed endpoints (the event and its delivery rows), against the
  baseline of one indexed read per event in the same transaction;
- ``deliver``: ``deliveries`` attempts through ``webhook_delivery_attempt`` (lock, sign, POST to a
  loopback receiver, log the attempt) against the baseline of the same number of bare ``http.client``
  POSTs of the same body to the same receiver, measured in the same run.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

from django.db import transaction
from django.test import override_settings

from benchmarks.harness import results_file, results_write, tenant_drop, timed_median
from billing.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from billing.services.webhooks import new_message_id, webhook_endpoint_create, webhook_event_emit
from billing.webhook_delivery import webhook_delivery_attempt
from customers.models import Tenant
from customers.tenancy import platform_scope, tenant_scope

RESULTS_PATH = results_file("webhooks")
PAYLOAD = {"id": 1, "number": "BENCH-2026-00001", "currency": "USD", "total": "424.00",
           "customer": {"id": 1, "external_ref": "bench", "name": "Bench"}}


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def run_webhooks_benchmark(*, events: int = 500, deliveries: int = 200, runs: int = 3) -> dict:
    run_id = uuid.uuid4().hex[:8]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    with platform_scope():
        tenant = Tenant.objects.create(name=f"Webhooks benchmark {run_id}", slug=f"bench-hooks-{run_id}")
    try:
        with tenant_scope(tenant), override_settings(WEBHOOK_ALLOW_LOOPBACK=True):
            def emit_all():
                with transaction.atomic():
                    for _ in range(events):
                        webhook_event_emit(tenant=tenant, type="invoice.paid", payload=PAYLOAD)
                    transaction.set_rollback(True)

            def one_query_each():  # the baseline: one indexed read per event, as the lookup is
                with transaction.atomic():
                    for _ in range(events):
                        WebhookEndpoint.objects.for_tenant(tenant).filter(enabled=True).exists()

            emit = {"baseline_one_query": timed_median(one_query_each, runs)[1]}
            for subscribed in (0, 1, 3):
                WebhookEndpoint.objects.for_tenant(tenant).delete()
                for _ in range(subscribed):
                    webhook_endpoint_create(tenant=tenant, url=url, event_types=["invoice.paid"])
                emit[f"{subscribed}_endpoints"] = timed_median(emit_all, runs)[1]

            WebhookEndpoint.objects.for_tenant(tenant).delete()
            webhook_endpoint_create(tenant=tenant, url=url, event_types=["invoice.paid"])
            body = json.dumps({"type": "invoice.paid", "data": PAYLOAD}).encode()

            def bare_posts():
                for _ in range(deliveries):
                    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
                    connection.request("POST", "/hooks", body=body, headers={"content-type": "application/json"})
                    connection.getresponse().read()
                    connection.close()

            def pending_deliveries() -> list[int]:
                endpoint = WebhookEndpoint.objects.for_tenant(tenant).get()
                events_made = WebhookEvent.objects.for_tenant(tenant).bulk_create(
                    WebhookEvent(tenant=tenant, message_id=new_message_id(), type="invoice.paid", body=body.decode())
                    for _ in range(deliveries)
                )
                return [d.pk for d in WebhookDelivery.objects.for_tenant(tenant).bulk_create(
                    WebhookDelivery(tenant=tenant, event=event, endpoint=endpoint) for event in events_made
                )]

            bare = timed_median(bare_posts, runs)[1]
            timings = []
            for _ in range(runs):
                ids = pending_deliveries()
                started = time.perf_counter()
                for delivery_id in ids:
                    webhook_delivery_attempt(tenant=tenant, delivery_id=delivery_id)
                timings.append(time.perf_counter() - started)
            delivered = statistics.median(timings)
            succeeded = WebhookDelivery.objects.for_tenant(tenant).filter(status="succeeded").count()
    finally:
        server.shutdown()
        tenant_drop(tenant)
    figures = {
        "events": events,
        "deliveries": deliveries,
        "runs": runs,
        "deliveries_succeeded": succeeded,
        "emit_microseconds_per_event": {name: round(s / events * 1e6, 1) for name, s in emit.items()},
        "deliver_milliseconds_per_attempt": {
            "bare_http_post": round(bare / deliveries * 1e3, 2),
            "webhook_delivery_attempt": round(delivered / deliveries * 1e3, 2),
        },
    }
    results_write(RESULTS_PATH, figures)
    return figures
