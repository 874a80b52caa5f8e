"""The fast path of usage ingestion (msgspec-decoded events, ``usage_ingest_typed``) against the
event-by-event one (``parse_body`` + ``usage_ingest``): where the fast path answers, it answers and
stores exactly what the other does; where it cannot, the endpoint's answers are the other's."""

import json
import threading
from datetime import date, datetime, timezone

import pytest
from django.db import OperationalError, connection, transaction
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.api_usage import decode_typed_batch, parse_body
from billing.metering import TENANT_REFUSED, usage_ingest, usage_ingest_typed
from billing.models import UsageEvent
from tests.billing.factories import BillableMetricFactory, stored_events
from tests.billing.test_ingest_fuzz import FUZZ, Rollback, any_text, json_scalars, timestamps
from tests.billing.test_usage_api import INGEST_URL, auth, event, make_key, post
from tests.customers.factories import ContractFactory, CustomerFactory

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def world(tenant_a, tenant_b):
    CustomerFactory(tenant=tenant_a, external_ref="northwind")
    ContractFactory(customer=CustomerFactory(tenant=tenant_a, external_ref="contoso"), start_date=date(2026, 6, 15))
    CustomerFactory(tenant=tenant_b, external_ref="bergen")
    BillableMetricFactory(tenant=tenant_a, code="processed_jobs")
    BillableMetricFactory(tenant=tenant_a, code="compute_ms", aggregation="sum", event_code="compute")


def stored(tenant):
    return sorted(
        UsageEvent.objects.for_tenant(tenant).values_list(
            "customer_id", "metric_code", "timestamp", "idempotency_key", "quantity", "properties"
        )
    )


def judged(tenant, body, path):
    """(the answer as a dict, the rows stored) of one path over ``body``, rolled back after; the
    answer is None when the fast path declines the batch."""
    outcome = {}
    try:
        with transaction.atomic():
            if path == "fast":
                batch = decode_typed_batch(body)
                result = None if batch is None else usage_ingest_typed(tenant=tenant, events=batch.events, now=NOW)
            else:
                payload = parse_body(body)
                result = usage_ingest(tenant=tenant, events=payload["events"], now=NOW)
            outcome["answer"] = None if result is None else result.as_dict()
            outcome["rows"] = stored(tenant)
            raise Rollback
    except Rollback:
        pass
    return outcome["answer"], outcome["rows"]


def mostly(plausible, odd):
    # hypothesis favours the ends of a range, so the odd value sits in its middle
    return st.integers(0, 15).flatmap(lambda n: odd if n == 7 else plausible)


property_values = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.lists(st.integers(-5, 5) | st.text(max_size=3), max_size=3)
)


# Events that are nearly always valid, with now and then one thing a client gets wrong.
clean_events = st.lists(
    st.fixed_dictionaries(
        {
            "customer": mostly(st.sampled_from(["northwind", "contoso"]), st.sampled_from(["bergen", "nobody", 7])),
            "metric": mostly(st.sampled_from(["processed_jobs", "compute"]), st.sampled_from(["compute_ms", None])),
            "timestamp": mostly(st.sampled_from(["2026-11-05T14:03:00Z", "2026-11-05T14:03:00.25+02:00"]), timestamps),
            "idempotency_key": mostly(
                st.sampled_from(["k1", "k2", "k-é", "k\tcopy", "k\\back", "é" * 128]),
                st.sampled_from(["", "é" * 129, "nul\x00", None, 1.5]) | any_text,
            ),
        },
        optional={
            "quantity": mostly(st.integers(0, 10**18 - 1), st.sampled_from([-1, 10**18, 2**70, 1.5, "2", True])),
            "properties": mostly(
                st.dictionaries(st.text(max_size=6), property_values, max_size=4),
                st.just({"blob": "x" * 5000})
                | st.just({"a": [[[[[[[[[1]]]]]]]]]})
                | st.dictionaries(any_text, json_scalars, max_size=3)
                | json_scalars,
            ),
        },
    ).flatmap(lambda event: mostly(st.just(event), st.just({**event, "tenant": None}))),
    max_size=6,
)


@pytest.mark.django_db
@pytest.mark.postgres_store_only(reason="compares the rows each path stored inside a rolled-back transaction, which only "
                                 "the PostgreSQL table holds before a commit")
@settings(FUZZ, max_examples=80)
@given(batch=clean_events)
def test_the_fast_path_answers_and_stores_what_the_event_by_event_path_does(world, tenant_a, batch):
    body = json.dumps({"events": batch}).encode()

    fast_answer, fast_rows = judged(tenant_a, body, "fast")
    slow_answer, slow_rows = judged(tenant_a, body, "slow")

    if fast_answer is not None:
        assert fast_answer == slow_answer
        assert fast_rows == slow_rows
    else:  # declined: some event is not accepted or a duplicate, or has a shape only the other path reads
        assert fast_rows == []


def nested(depth):
    value = 1
    for _ in range(depth - 1):
        value = [value]
    return {"a": value}


@pytest.mark.django_db
@pytest.mark.postgres_store_only(reason="compares the rows each path stored inside a rolled-back transaction")
@pytest.mark.parametrize(
    "properties, accepted",
    [
        ({"status": "ok", "region": "eu"}, True),  # flat: the nesting is not counted
        ({"note": "a{b[c", "tab": "x\ty", "back": "c:\\temp"}, True),  # brackets in text are counted, and pass
        ({"é": "ü", "emoji": "🙂"}, True),
        (nested(8), True),  # nested to the limit
        ({"gone": None}, True),  # a null: judged by the careful encoder, and stored
        (nested(9), False),  # one level deeper: refused on both paths (the fast one declines the batch)
        ({"nul": "a\x00b"}, False),
    ],
)
def test_properties_are_judged_on_the_fast_path_as_on_the_other(world, tenant_a, properties, accepted):
    body = json.dumps({"events": [event("p1", properties=properties)]}).encode()

    fast_answer, fast_rows = judged(tenant_a, body, "fast")
    slow_answer, slow_rows = judged(tenant_a, body, "slow")

    if accepted:
        assert fast_answer == slow_answer and fast_answer["accepted"] == 1
        assert fast_rows == slow_rows and fast_rows[0][5] == properties
    else:
        assert (fast_answer, fast_rows, slow_rows) == (None, [], [])
        assert slow_answer["rejected"] == 1


@pytest.mark.usage_events
def test_a_clean_batch_takes_the_fast_path_and_a_batch_with_a_rejection_the_other(client, world, tenant_a, monkeypatch):
    calls = []
    real = usage_ingest

    def counted(**kwargs):
        calls.append(len(kwargs["events"]))
        return real(**kwargs)

    monkeypatch.setattr("billing.api_usage.usage_ingest", counted)
    key = make_key(tenant_a)
    clean = [event("k1", quantity=2, properties={"region": "eu"}), event("k2"), event("k1")]

    first = post(client, {"events": clean}, key)
    second = post(client, {"events": [event("k3"), event("k4", customer="nobody")]}, key)

    assert first.json()["results"] == [
        {"idempotency_key": "k1", "status": "accepted", "reason": None},
        {"idempotency_key": "k2", "status": "accepted", "reason": None},
        {"idempotency_key": "k1", "status": "duplicate", "reason": None},
    ]
    assert second.json()["results"] == [
        {"idempotency_key": "k3", "status": "accepted", "reason": None},
        {"idempotency_key": "k4", "status": "rejected", "reason": "unknown customer"},
    ]
    assert calls == [2]  # only the second batch went event by event
    assert sorted((e.idempotency_key, e.quantity) for e in stored_events(tenant_a)) == [
        ("k1", 2), ("k2", 1), ("k3", 1)
    ]


def typed(events):
    return decode_typed_batch(json.dumps({"events": events}).encode()).events


@pytest.mark.usage_events
def test_the_fast_path_stores_each_instant_as_sent_in_whatever_form(world, tenant_a):
    sent = {
        "z": "2026-11-05T14:03:00Z",
        "fraction": "2026-11-05T14:03:00.25Z",
        "micros": "2026-11-05T14:03:00.123456Z",
        "offset": "2026-11-05T15:03:00.5+01:00",
        "plus_zero": "2026-11-05T14:03:00+00:00",
        "basic": "20261105T140300Z",
        # Twenty characters ending in Z, as the plain form, but not it.
        "week": "2026-W45-4T14:03:00Z",
        "space": "2026-11-05 14:03:00Z",
    }
    events = [event(key, timestamp=timestamp) for key, timestamp in sent.items()]

    result = usage_ingest_typed(tenant=tenant_a, events=typed(events), now=NOW)

    assert [status for _, status, _ in result._rows] == ["accepted"] * 8
    at = {e.idempotency_key: e.timestamp for e in stored_events(tenant_a)}
    base = datetime(2026, 11, 5, 14, 3, tzinfo=timezone.utc)
    assert at == {
        "z": base, "fraction": base.replace(microsecond=250000), "micros": base.replace(microsecond=123456),
        "offset": base.replace(microsecond=500000), "plus_zero": base, "basic": base, "week": base, "space": base,
    }


@pytest.mark.postgres_store_only(reason="reads the order of the PostgreSQL table's ids")
def test_a_batch_is_stored_in_time_order_and_events_at_one_instant_in_the_order_sent(world, tenant_a):
    times = ["2026-11-09T00:00:00Z", "2026-11-02T00:00:00Z", "2026-11-05T00:00:00Z", "2026-11-02T00:00:00Z"]
    events = [event(f"k{n}", timestamp=when) for n, when in enumerate(times)]

    usage_ingest_typed(tenant=tenant_a, events=typed(events), now=NOW)

    by_id = UsageEvent.objects.for_tenant(tenant_a).order_by("id").values_list("idempotency_key", flat=True)
    assert list(by_id) == ["k1", "k3", "k2", "k0"]


@pytest.mark.parametrize(
    "body, status_code, answer",
    [
        ({"events": [event("k1")], "tenant": 1}, 400, {"tenant": [TENANT_REFUSED]}),
        (event("k1"), 200, ("accepted", None)),  # one event alone
        ({"events": [event("k1", quantity=1.5)]}, 200, ("accepted", None)),  # read exactly by json
        ({"events": [event("k1", quantity="3")]}, 200, ("accepted", None)),  # a numeric string
        ({"events": [event("k1", tenant=None)]}, 200, ("rejected", TENANT_REFUSED)),
    ],
)
def test_bodies_the_fast_path_declines_are_answered_as_before(client, world, tenant_a, body, status_code, answer):
    response = post(client, body, make_key(tenant_a))

    assert response.status_code == status_code
    if status_code == 400:
        assert response.json() == answer
    else:
        assert response.json()["results"] == [{"idempotency_key": "k1", "status": answer[0], "reason": answer[1]}]


@pytest.mark.slow  # a transactional test: the database is emptied after it
@pytest.mark.django_db(transaction=True)
def test_a_posting_batch_holds_no_lock_on_the_throttle_counter(tenant_a, settings, monkeypatch):
    """With the database cache (the default), the throttle's counter row is written before the
    batch is ingested; were it inside the request's transaction, the caller's next batch would wait
    for this one to commit."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}
    }
    CustomerFactory(tenant=tenant_a, external_ref="northwind")
    BillableMetricFactory(tenant=tenant_a, code="processed_jobs")
    key = make_key(tenant_a)
    seen = {}
    real = usage_ingest_typed

    def probe(**kwargs):
        def lock_counter():  # another connection, as another gunicorn worker would have
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT cache_key FROM django_cache WHERE cache_key LIKE %s FOR UPDATE NOWAIT",
                        ["%throttle_usage_ingest%"],
                    )
                    seen["counters"] = len(cursor.fetchall())
            except OperationalError as exc:
                seen["error"] = str(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=lock_counter)
        thread.start()
        thread.join()
        return real(**kwargs)

    monkeypatch.setattr("billing.api_usage.usage_ingest_typed", probe)

    response = Client().post(
        INGEST_URL, data=json.dumps({"events": [event("k1")]}), content_type="application/json", headers=auth(key)
    )

    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert seen == {"counters": 1}
