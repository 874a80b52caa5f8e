"""API throttling: a request budget per API key and per staff user; over it, 429 with Retry-After."""

import pytest
from rest_framework.test import APIClient

from customers.models import Role
from tests.api_clients import key_client


@pytest.fixture
def rates(settings):
    """Tiny rates, so that the third request of a caller is over its budget."""

    def set_rates(**overrides):
        rates = {"api_key": "2/min", "user": "2/min", "usage_ingest": "1/min", **overrides}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}

    set_rates()
    return set_rates


def assert_throttled(response):
    assert response.status_code == 429
    wait = int(response["Retry-After"])
    assert 0 < wait <= 60
    assert response.json() == {"detail": f"Request was throttled. Expected available in {wait} seconds."}


def test_an_api_key_over_its_rate_gets_429_with_retry_after(tenant_a, rates):
    client = key_client(tenant_a)

    assert [client.get("/api/v1/customers/").status_code for _ in range(2)] == [200, 200]
    assert_throttled(client.get("/api/v1/customers/"))


def test_each_api_key_has_its_own_budget(tenant_a, rates):
    busy, other = key_client(tenant_a, "busy"), key_client(tenant_a, "other")
    for _ in range(2):
        busy.get("/api/v1/customers/")

    assert busy.get("/api/v1/customers/").status_code == 429
    assert other.get("/api/v1/customers/").status_code == 200


def test_a_staff_session_over_its_rate_gets_429_with_retry_after(tenant_a, member_factory, rates):
    client = APIClient()
    client.force_login(member_factory(tenant_a, Role.VIEWER))

    assert [client.get("/api/v1/customers/").status_code for _ in range(2)] == [200, 200]
    assert_throttled(client.get("/api/v1/customers/"))


def test_staff_users_are_counted_apart(tenant_a, member_factory, rates):
    first, second = APIClient(), APIClient()
    first.force_login(member_factory(tenant_a, Role.VIEWER))
    second.force_login(member_factory(tenant_a, Role.VIEWER))
    for _ in range(2):
        first.get("/api/v1/customers/")

    assert first.get("/api/v1/customers/").status_code == 429
    assert second.get("/api/v1/customers/").status_code == 200


def test_usage_ingestion_has_a_budget_of_its_own(tenant_a, rates):
    client = key_client(tenant_a)
    event = {"customer": "nobody", "metric": "jobs", "timestamp": "2026-12-01T00:00:00Z", "idempotency_key": "k1"}

    assert client.post("/api/v1/usage-events/", event, format="json").status_code == 200
    assert_throttled(client.post("/api/v1/usage-events/", event, format="json"))
    # The rest of the API still answers: the usage budget is separate.
    assert client.get("/api/v1/customers/").status_code == 200


def test_anonymous_requests_are_refused_not_counted(db, rates):
    client = APIClient()

    assert [client.get("/api/v1/customers/").status_code for _ in range(3)] == [401, 401, 401]


def test_the_counters_live_in_the_shared_database_cache_by_default(tenant_a, rates, settings):
    """The embedded default: gunicorn's workers share the counters through the django_cache table."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}}
    client = key_client(tenant_a)

    assert [client.get("/api/v1/customers/").status_code for _ in range(3)] == [200, 200, 429]
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_cache WHERE cache_key LIKE %s", ["%throttle_api_key_key-%"])
        assert cursor.fetchone() == (1,)
