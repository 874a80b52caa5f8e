"""Generated garbage fed to usage ingestion (hypothesis): the service, and a few batches over HTTP.

Whatever arrives, three things hold: no exception escapes (over HTTP: a 200 or one JSON 400, never a
500); every accepted event is stored exactly once, also when the same batch comes again; and every
rejection carries a reason. Derandomized, without an example database, so CI runs the same examples.
"""

import json
from collections import Counter
from datetime import date, datetime, timezone

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.metering import ACCEPTED, DUPLICATE, REJECTED, usage_ingest, usage_store
from tests.billing.factories import BillableMetricFactory, stored_events
from tests.billing.test_usage_api import INGEST_URL, auth, make_key
from tests.customers.factories import ContractFactory, CustomerFactory

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Rollback(Exception):
    pass


@pytest.fixture
def world(tenant_a, tenant_b):
    CustomerFactory(tenant=tenant_a, external_ref="northwind")
    ContractFactory(customer=CustomerFactory(tenant=tenant_a, external_ref="contoso"), start_date=date(2026, 6, 15))
    CustomerFactory(tenant=tenant_b, external_ref="bergen")  # another tenant's: always an unknown customer
    BillableMetricFactory(tenant=tenant_a, code="processed_jobs")
    BillableMetricFactory(tenant=tenant_a, code="compute_ms", aggregation="sum", event_code="compute")


# Text with everything PostgreSQL or UTF-8 cannot hold: NUL, lone surrogates, COPY's special characters.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12) | st.sampled_from(
    ["", "\x00", "\ud800", "a\tb\nc\\d\re", "é" * 3000]
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**17, max_value=10**30)
    | st.floats()  # NaN and the infinities included
    | any_text
)
python_scalars = (
    json_scalars | st.decimals() | st.builds(pow, st.just(10), st.just(5000)) | st.datetimes() | st.binary(max_size=4)
)
json_garbage = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
python_garbage = st.recursive(
    python_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text | st.integers(), inner, max_size=4),
    max_leaves=12,
)
timestamps = st.sampled_from(
    [
        "2026-11-05T14:03:00Z",
        "2026-11-05T14:03:00.25Z",
        "2026-11-05T14:03:00+14:00",
        "2026-11-05T14:03:00",  # no offset
        "2026-06-01T00:00:00Z",  # contoso's first contract month (its contract starts on the 15th)
        "2026-05-31T23:59:59Z",  # before contoso's first contract month
        "2026-11-21T09:00:01Z",  # just over a day ahead
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-12:00",
        "1970-01-01T00:00:00Z",
        "not a time",
    ]
) | st.datetimes(timezones=st.timezones() | st.just(timezone.utc)).map(lambda moment: moment.isoformat()) | st.datetimes(
    timezones=st.just(timezone.utc)
).map(lambda moment: moment.isoformat().replace("+00:00", "Z"))  # the form the fast path stores as sent
# A few keys used again and again, so batches hold duplicates of each other.
keys = st.sampled_from(["k1", "k2", "k3", "k-é", "k\tcopy"]) | any_text | st.text(min_size=120, max_size=140)


def mostly(plausible, garbage):
    """Three plausible values for one of garbage, so that many events are accepted too."""
    return st.integers(0, 3).flatmap(lambda n: garbage if n == 0 else plausible)


def events(garbage):
    optional = {
        "quantity": mostly(
            st.sampled_from([0, 1, "2.5", "1e3", 10**17]),
            st.sampled_from(["0.0000001", -1, 10**18, "1e18", 2**70]) | garbage,
        ),
        "properties": mostly(
            st.dictionaries(any_text, json_scalars, max_size=5),
            st.just({"blob": "x" * 5000}) | st.dictionaries(any_text, garbage, max_size=5) | garbage,
        ),
    }
    event = st.fixed_dictionaries(
        {
            "customer": mostly(
                st.sampled_from(["northwind", "contoso"]), st.sampled_from(["bergen", "nobody"]) | garbage
            ),
            "metric": mostly(
                st.sampled_from(["processed_jobs", "compute"]), st.sampled_from(["compute_ms", "gpu"]) | garbage
            ),
            "timestamp": mostly(
                st.sampled_from(["2026-11-05T14:03:00Z", "2026-06-01T00:00:00Z"]), timestamps | garbage
            ),
            "idempotency_key": mostly(keys, garbage),
        },
        optional=optional,
    )
    # Now and then a client-supplied tenant, which rejects the event.
    event = st.tuples(event, st.integers(0, 7), garbage).map(
        lambda drawn: {**drawn[0], "tenant": drawn[2]} if drawn[1] == 0 else drawn[0]
    )
    return st.lists(mostly(event, garbage), max_size=12)


def assert_judged(events_sent, results):
    assert len(results) == len(events_sent)
    for result in results:
        assert result.status in (ACCEPTED, DUPLICATE, REJECTED)
        if result.status == REJECTED:
            assert isinstance(result.reason, str) and result.reason
        else:
            assert result.reason is None


def stored_counts(tenant):
    """Each key's stored events, as they are once the ingest's transaction commits: an example runs in a
    transaction it rolls back, so batches the store keeps until the commit are written out first."""
    usage_store().pending_flush(tenant=tenant)
    return Counter(e.idempotency_key for e in stored_events(tenant))


@pytest.fixture
def examples_forget_their_events():
    """Examples share the tenants; a rolled-back example leaves no event behind, in any store (ClickHouse
    has no transaction to roll back, so its table is emptied after each example)."""

    def forget():
        store = usage_store()
        if hasattr(store, "truncate"):
            store.truncate()

    return forget


@pytest.mark.slow
@pytest.mark.django_db
@settings(FUZZ, max_examples=60)
@given(batch=events(python_garbage))
def test_the_ingest_service_judges_any_garbage_event_by_event(
    world, tenant_a, tenant_b, batch, examples_forget_their_events
):
    try:
        with transaction.atomic():
            first = usage_ingest(tenant=tenant_a, events=batch, now=NOW)
            again = usage_ingest(tenant=tenant_a, events=batch, now=NOW)

            assert_judged(batch, first.results)
            assert_judged(batch, again.results)
            accepted = [r.idempotency_key for r in first.results if r.status == ACCEPTED]
            assert stored_counts(tenant_a) == Counter(accepted)  # each accepted key stored exactly once
            assert again.accepted == 0
            for before, after in zip(first.results, again.results, strict=True):
                if before.status == ACCEPTED:
                    assert after.status == DUPLICATE
            assert not stored_events(tenant_b)
            raise Rollback
    except Rollback:
        pass
    finally:
        examples_forget_their_events()


@pytest.fixture
def api_key(tenant_a):
    return make_key(tenant_a)


@pytest.mark.django_db
@settings(FUZZ, max_examples=20)
@given(batch=events(json_garbage), wrap=st.booleans(), raw=st.none() | st.binary(max_size=40))
def test_the_ingest_endpoint_answers_any_garbage_with_json(
    client, world, tenant_a, api_key, batch, wrap, raw, examples_forget_their_events
):
    key = api_key
    body = raw if raw is not None else json.dumps({"events": batch} if wrap or len(batch) != 1 else batch[0])
    try:
        with transaction.atomic():
            response = client.post(INGEST_URL, data=body, content_type="application/json", headers=auth(key))

            assert response.status_code in (200, 400), response.content[:500]
            answer = json.loads(response.content, parse_constant=pytest.fail)  # strict JSON, no NaN
            if response.status_code == 400:
                assert answer.get("detail") or answer.get("tenant")
            else:
                for result in answer["results"]:
                    assert (result["status"] == REJECTED) == bool(result["reason"])
                accepted = [r["idempotency_key"] for r in answer["results"] if r["status"] == ACCEPTED]
                assert stored_counts(tenant_a) == Counter(accepted)
            raise Rollback
    except Rollback:
        pass
    finally:
        examples_forget_their_events()

