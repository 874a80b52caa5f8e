import json
import threading
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from billing.api_usage import url_patterns
from customers.models import Customer, Role, TenantAPIKey
from customers.tenancy import platform_scope
from tests.billing.factories import BillableMetricFactory, UsageEventFactory, stored_events
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.usage_events  # every test here stores or reads usage events

INGEST_URL = "/api/v1/usage-events/"
SUMMARY_URL = "/api/v1/usage-summary/"


def make_key(tenant):
    with platform_scope():
        return TenantAPIKey.objects.create_key(name=f"{tenant.slug} ingest", tenant=tenant)[1]


@pytest.fixture
def setup(tenant_a, tenant_b):
    CustomerFactory(tenant=tenant_a, external_ref="northwind")
    CustomerFactory(tenant=tenant_b, external_ref="bergen")
    BillableMetricFactory(tenant=tenant_a, code="processed_jobs")
    BillableMetricFactory(tenant=tenant_a, code="compute_ms", aggregation="sum", unit="ms")
    BillableMetricFactory(tenant=tenant_b, code="processed_jobs")
    return {"key_a": make_key(tenant_a), "key_b": make_key(tenant_b)}


def event(key, **overrides):
    raw = {
        "customer": "northwind",
        "metric": "processed_jobs",
        "timestamp": "2026-11-05T14:03:00Z",
        "idempotency_key": key,
    }
    raw.update(overrides)
    return raw


def auth(key):
    return {"Authorization": f"Api-Key {key}"}


def post(client, body, key=None, raw=False):
    headers = auth(key) if key else {}
    data = body if raw else json.dumps(body)
    return client.post(INGEST_URL, data=data, content_type="application/json", headers=headers)


def keys_of(tenant):
    return sorted(e.idempotency_key for e in stored_events(tenant))


def test_single_event_object_is_accepted(client, setup, tenant_a):
    response = post(client, event("k1", quantity=2.5), setup["key_a"])

    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 0,
        "results": [{"idempotency_key": "k1", "status": "accepted", "reason": None}],
    }
    assert [e.quantity for e in stored_events(tenant_a)] == [Decimal("2.5")]


def test_batch_reports_every_event_in_request_order(client, setup, tenant_a):
    batch = {"events": [event("k1"), event("k2", metric="gpu"), event("k1"), event("k3", quantity="3")]}

    response = post(client, batch, setup["key_a"])

    assert response.status_code == 200
    assert response.json() == {
        "accepted": 2,
        "duplicates": 1,
        "rejected": 1,
        "results": [
            {"idempotency_key": "k1", "status": "accepted", "reason": None},
            {"idempotency_key": "k2", "status": "rejected", "reason": "unknown metric"},
            {"idempotency_key": "k1", "status": "duplicate", "reason": None},
            {"idempotency_key": "k3", "status": "accepted", "reason": None},
        ],
    }
    assert keys_of(tenant_a) == ["k1", "k3"]


def test_resending_a_batch_answers_duplicate_for_each_event(client, setup, tenant_a):
    batch = {"events": [event("k1"), event("k2")]}
    post(client, batch, setup["key_a"])

    response = post(client, batch, setup["key_a"])

    assert response.json()["accepted"] == 0
    assert response.json()["duplicates"] == 2
    assert keys_of(tenant_a) == ["k1", "k2"]


def test_posting_without_an_api_key_is_401(client, setup, tenant_a):
    response = post(client, event("k1"))

    assert response.status_code == 401
    assert keys_of(tenant_a) == []


def test_posting_with_an_unknown_api_key_is_401(client, setup, tenant_a):
    response = post(client, event("k1"), "not.a-real-key")

    assert response.status_code == 401
    assert keys_of(tenant_a) == []


def test_tenant_a_key_with_tenant_b_customer_refs_is_an_unknown_customer(client, setup, tenant_a, tenant_b):
    response = post(client, event("k1", customer="bergen"), setup["key_a"])

    assert response.status_code == 200
    assert response.json()["results"] == [{"idempotency_key": "k1", "status": "rejected", "reason": "unknown customer"}]
    assert keys_of(tenant_a) == [] and keys_of(tenant_b) == []


def test_more_than_ten_thousand_events_is_400(client, setup, tenant_a):
    response = post(client, {"events": [event(f"k{i}") for i in range(10_001)]}, setup["key_a"])

    assert response.status_code == 400
    assert response.json() == {"detail": "A request may carry at most 10 000 events; this one has 10 001."}
    assert keys_of(tenant_a) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"customer": "northwind", ', "The body is not valid JSON"),
        ("", "The body is not valid JSON"),
        ('[{"idempotency_key": "k1"}]', 'The body must be one event object or {"events": [...]}.'),
        ('"hello"', 'The body must be one event object or {"events": [...]}.'),
        ('{"events": {"idempotency_key": "k1"}}', '"events" must be a list of event objects.'),
    ],
)
def test_malformed_body_is_400_with_a_message(client, setup, tenant_a, body, message):
    response = post(client, body, setup["key_a"], raw=True)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(message)
    assert keys_of(tenant_a) == []


@pytest.mark.parametrize(
    ("role", "status"), [(Role.OWNER, 200), (Role.FINANCE, 200), (Role.ACCOUNT_MANAGER, 403), (Role.VIEWER, 403)]
)
def test_staff_may_post_only_with_a_role_that_edits_billing(setup, tenant_a, member_factory, role, status):
    client = Client()
    client.force_login(member_factory(tenant_a, role))

    response = post(client, event("k1"))

    assert response.status_code == status
    assert keys_of(tenant_a) == (["k1"] if status == 200 else [])


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_store_each_key_once(tenant_a, tenant_b):
    CustomerFactory(tenant=tenant_a, external_ref="northwind")
    BillableMetricFactory(tenant=tenant_a, code="processed_jobs")
    api_key = make_key(tenant_a)
    # Both requests carry keys 1000..2999; each also has keys of its own.
    first = [event(f"k{i:05d}") for i in range(0, 3000)]
    second = [event(f"k{i:05d}") for i in range(1000, 4000)][::-1]
    start = threading.Barrier(2)
    answers = {}

    def send(name, events):
        try:
            start.wait()
            answers[name] = post(Client(), {"events": events}, api_key).json()
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=args) for args in [("first", first), ("second", second)]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(stored_events(tenant_a)) == 4000
    assert answers["first"]["accepted"] + answers["second"]["accepted"] == 4000
    assert answers["first"]["duplicates"] + answers["second"]["duplicates"] == 2000
    accepted_keys = [
        r["idempotency_key"] for answer in answers.values() for r in answer["results"] if r["status"] == "accepted"
    ]
    assert len(accepted_keys) == len(set(accepted_keys)) == 4000


# --- summary --------------------------------------------------------------------------------------


def test_usage_summary_totals_each_metric_for_the_month(client, usage_store, setup, tenant_a):
    northwind = Customer.objects.for_tenant(tenant_a).get(external_ref="northwind")
    usage = [(3, "processed_jobs", 1), (4, "processed_jobs", 1), (4, "compute_ms", "1500.5"), (4, "compute_ms", "0.25")]
    for day, metric, quantity in usage:
        UsageEventFactory(
            customer=northwind,
            tenant=tenant_a,
            metric_code=metric,
            quantity=Decimal(quantity),
            timestamp=datetime(2026, 11, day, tzinfo=timezone.utc),
        )
    UsageEventFactory(customer=northwind, tenant=tenant_a, timestamp=datetime(2026, 12, 1, tzinfo=timezone.utc))

    response = client.get(SUMMARY_URL, {"customer": "northwind", "period": "2026-11"}, headers=auth(setup["key_a"]))

    assert response.status_code == 200
    assert response.json() == {
        "customer": "northwind",
        "period": "2026-11",
        "period_start": "2026-11-01",
        "period_end": "2026-11-30",
        "metrics": [
            {"code": "compute_ms", "name": "Compute ms", "unit": "ms", "aggregation": "sum", "quantity": "1500.75"},
            {
                "code": "processed_jobs",
                "name": "Processed jobs",
                "unit": "jobs",
                "aggregation": "count",
                "quantity": "2",
            },
        ],
    }


def test_posted_events_are_in_the_summary_and_a_resend_is_duplicate_in_either_store(client, usage_store, setup):
    batch = {"events": [event("k1"), event("k2"), event("k3", metric="compute_ms", quantity="2.5")]}

    first = post(client, batch, setup["key_a"])
    again = post(client, batch, setup["key_a"])
    summary = client.get(SUMMARY_URL, {"customer": "northwind", "period": "2026-11"}, headers=auth(setup["key_a"]))
    elsewhere = client.get(SUMMARY_URL, {"customer": "bergen", "period": "2026-11"}, headers=auth(setup["key_b"]))

    assert (first.status_code, first.json()["accepted"], again.json()["duplicates"]) == (200, 3, 3)
    assert {m["code"]: m["quantity"] for m in summary.json()["metrics"]} == {"compute_ms": "2.5", "processed_jobs": "2"}
    assert {m["code"]: m["quantity"] for m in elsewhere.json()["metrics"]} == {"processed_jobs": "0"}


def test_usage_summary_of_another_tenants_customer_is_404(client, setup):
    response = client.get(SUMMARY_URL, {"customer": "bergen", "period": "2026-11"}, headers=auth(setup["key_a"]))

    assert response.status_code == 404


@pytest.mark.parametrize(
    "query", [{"customer": "northwind"}, {"customer": "northwind", "period": "2026-13"}, {"period": "2026-11"}]
)
def test_usage_summary_needs_a_customer_and_a_month(client, setup, query):
    response = client.get(SUMMARY_URL, query, headers=auth(setup["key_a"]))

    assert response.status_code == 400


def test_usage_summary_without_credentials_is_401(client, setup):
    assert client.get(SUMMARY_URL, {"customer": "northwind", "period": "2026-11"}).status_code == 401


def test_usage_endpoints_are_documented_in_the_schema():
    schema = SchemaGenerator(patterns=url_patterns()).get_schema(request=None, public=True)

    assert schema["paths"]["/usage-events/"]["post"]["operationId"] == "usage_events_ingest"
    assert schema["paths"]["/usage-summary/"]["get"]["operationId"] == "usage_summary"


def test_a_full_batch_larger_than_djangos_upload_limit_is_accepted(client, setup, tenant_a, settings):
    padding = "x" * 200
    body = {"events": [event(f"k{i:05d}", properties={"note": padding}) for i in range(10_000)]}
    assert len(json.dumps(body)) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = post(client, body, setup["key_a"])

    assert response.status_code == 200
    assert response.json()["accepted"] == 10_000
    assert len(stored_events(tenant_a)) == 10_000


def test_a_body_over_32_mib_is_refused_unread_with_413(client, setup, tenant_a):
    response = client.post(
        INGEST_URL,
        data=json.dumps(event("k1")),
        content_type="application/json",
        headers=auth(setup["key_a"]),
        CONTENT_LENGTH=str(33 * 1024 * 1024),
    )

    assert response.status_code == 413
    assert keys_of(tenant_a) == []


# --- hostile input: every event judged alone, the envelope refused whole -------------------------


def test_nan_huge_numbers_and_deep_nesting_in_the_body_reject_only_their_event(client, setup, tenant_a):
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    good = json.dumps(event("good"))
    body = (
        '{"events": ['
        + ",".join(
            [
                '{"customer": "northwind", "metric": "processed_jobs", "timestamp": "2026-11-05T14:03:00Z",'
                ' "idempotency_key": "nan", "quantity": NaN}',
                '{"customer": "northwind", "metric": "processed_jobs", "timestamp": "2026-11-05T14:03:00Z",'
                ' "idempotency_key": "infinite-property", "properties": {"x": -Infinity}}',
                '{"customer": "northwind", "metric": "processed_jobs", "timestamp": "2026-11-05T14:03:00Z",'
                f' "idempotency_key": "huge", "quantity": {"9" * 5000}}}',
                '{"customer": "northwind", "metric": "processed_jobs", "timestamp": "2026-11-05T14:03:00Z",'
                f' "idempotency_key": "deep", "properties": {deep}}}',
                f'{{"idempotency_key": {"7" * 5000}}}',
                f'[{deep}]',
                good,
            ]
        )
        + "]}"
    )

    response = post(client, body, setup["key_a"], raw=True)

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["idempotency_key"], r["reason"]) for r in results] == [
        ("nan", "non-numeric quantity"),
        ("infinite-property", "properties contain values that cannot be stored"),
        ("huge", "quantity out of range"),
        ("deep", "properties nested deeper than 8 levels"),
        ("7" * 5000, "idempotency key must be a string"),
        (None, "event must be an object"),
        ("good", None),
    ]
    assert keys_of(tenant_a) == ["good"]


def test_a_body_nested_too_deeply_outside_any_event_is_one_400(client, setup, tenant_a):
    response = post(client, "[" * 100_000 + "]" * 100_000, setup["key_a"], raw=True)

    assert response.status_code == 400
    assert response.json() == {"detail": 'The body must be one event object or {"events": [...]}.'}


def test_ten_events_of_a_megabyte_of_properties_are_each_rejected(client, setup, tenant_a):
    batch = {"events": [event(f"k{i}", properties={"blob": "x" * 1_000_000}) for i in range(10)] + [event("small")]}

    response = post(client, batch, setup["key_a"])

    assert response.status_code == 200
    assert [r["reason"] for r in response.json()["results"]] == ["properties larger than 4096 bytes of JSON"] * 10 + [
        None
    ]
    assert keys_of(tenant_a) == ["small"]


def test_a_tenant_in_the_body_is_400_and_in_an_event_rejects_that_event(client, setup, tenant_a, tenant_b):
    whole = post(client, {"tenant": tenant_b.pk, "events": [event("k1")]}, setup["key_a"])
    single = post(client, event("k2", tenant=tenant_b.pk), setup["key_a"])
    one = post(client, {"events": [event("k3", tenant=tenant_b.slug), event("k4")]}, setup["key_a"])

    assert (whole.status_code, whole.json()) == (
        400, {"tenant": ["The tenant comes from your credentials and cannot be set."]}
    )
    assert whole_400(single) == whole_400(whole)
    assert one.status_code == 200
    assert [(r["idempotency_key"], r["reason"]) for r in one.json()["results"]] == [
        ("k3", "The tenant comes from your credentials and cannot be set."),
        ("k4", None),
    ]
    assert keys_of(tenant_a) == ["k4"] and keys_of(tenant_b) == []


def whole_400(response):
    return (response.status_code, response.json())


def test_an_event_outside_the_window_is_rejected_over_http(client, setup, tenant_a):
    response = post(client, {"events": [event("y1970", timestamp="1970-01-01T00:00:00Z"), event("y9999",
                    timestamp="9999-01-01T00:00:00Z")]}, setup["key_a"])

    assert response.status_code == 200
    # northwind has no contract here: only the default 24 hours ahead applies
    assert [r["reason"] for r in response.json()["results"]] == [None, "timestamp more than 24 hours in the future"]


# --- every API error is JSON -------------------------------------------------------------------


def test_an_unhandled_exception_under_the_api_is_a_logged_json_500(client, setup, tenant_a, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("billing.api_usage.usage_ingest", broken)
    monkeypatch.setattr("billing.api_usage.usage_ingest_typed", broken)  # the fast path, for a clean batch
    client.raise_request_exception = False

    response = post(client, event("k1"), setup["key_a"])

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "The server failed to answer this request; the error is logged. Try again later.",
        "code": "server_error",
    }
    assert "the database went away" not in response.content.decode()
    logged = [r for r in caplog.records if r.name == "django.request" and r.levelname == "ERROR"]
    assert logged and logged[0].exc_info[0] is RuntimeError


def test_unknown_api_urls_are_json_404_and_other_pages_stay_html(client, setup):
    api = client.get("/api/v1/no-such-endpoint/", headers=auth(setup["key_a"]))
    page = client.get("/no-such-page/")

    assert (api.status_code, api["Content-Type"], api.json()) == (
        404, "application/json", {"detail": "No API endpoint at this address.", "code": "not_found"}
    )
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_a_method_the_endpoint_does_not_have_is_a_json_405(client, setup):
    response = client.delete(INGEST_URL, headers=auth(setup["key_a"]))

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "DELETE" not allowed.'}


@pytest.mark.parametrize(("method", "url"), [("post", "/api/docs/"), ("post", "/api/schema/")])
def test_errors_of_the_api_docs_and_schema_views_are_json_too(client, setup, method, url):
    response = getattr(client, method)(url, headers=auth(setup["key_a"]))

    assert (response.status_code, response["Content-Type"]) == (405, "application/json")
    assert response.json() == {"detail": "Method Not Allowed.", "code": "method_not_allowed"}
    assert "GET" in response["Allow"]


# --- parsing: orjson for the common body, json where only it reads numbers exactly ----------------


def test_a_float_quantity_with_more_digits_than_a_double_keeps_is_judged_as_written(client, setup, tenant_a):
    body = '{"events": [%s]}' % json.dumps(event("k1")).replace("}", ', "quantity": 0.30000000000000001}')

    response = post(client, body, setup["key_a"], raw=True)

    assert response.json()["results"] == [
        {"idempotency_key": "k1", "status": "rejected", "reason": "quantity has more than 6 decimal places"}
    ]


def test_a_long_integer_in_properties_is_stored_exactly(client, setup, tenant_a):
    body = json.dumps({"events": [event("k1", properties={"bytes": 123456789012345678901234})]})

    response = post(client, body, setup["key_a"], raw=True)

    assert response.json()["accepted"] == 1
    (stored,) = [e.properties for e in stored_events(tenant_a)]
    assert stored == {"bytes": 123456789012345678901234}


def test_a_float_key_is_echoed_as_its_decimal_text(client, setup, tenant_a):
    response = post(client, '{"events": [{"idempotency_key": 1.50}]}', setup["key_a"], raw=True)

    assert response.json()["results"] == [
        {"idempotency_key": "1.50", "status": "rejected", "reason": "idempotency key must be a string"}
    ]


def test_integer_quantities_and_float_properties_take_the_fast_parser_and_store_the_same(client, setup, tenant_a):
    body = json.dumps({"events": [event("k1", quantity=3, properties={"ratio": 0.1, "tags": ["a", {"b": None}]})]})

    response = post(client, body, setup["key_a"], raw=True)

    assert response.json()["accepted"] == 1
    (stored,) = stored_events(tenant_a)
    assert (stored.quantity, stored.properties) == (Decimal(3), {"ratio": 0.1, "tags": ["a", {"b": None}]})
