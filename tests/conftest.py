"""Shared fixtures. Every test world has two tenants, so a missing tenant filter fails a test."""

import os

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from hypothesis import settings as hypothesis_settings

from customers.models import Role
from customers.tenancy import platform_scope
from tests.customers.factories import MembershipFactory, TenantFactory
from tests.two_factor import verified_login

# Property tests draw the same examples on every run, so CI is reproducible and a red run is the code's
# fault, not the draw's. HYPOTHESIS_PROFILE=explore draws new ones (run it while working on a rule).
hypothesis_settings.register_profile("suite", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


def _connect_as(user: str, password: str) -> None:
    connection = connections["default"]
    connection.close()
    connection.settings_dict.update(USER=user, PASSWORD=password)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database is created and migrated as the owner; the tests run as the application role.

    So row-level security holds in every test as in production: the role is no superuser, owns no
    table and has no BYPASSRLS (tests/billing/test_row_level_security.py checks it). The owner
    comes back at the end, to drop the database.
    """
    owner = connections["default"].settings_dict
    owner_user, owner_password = owner["USER"], owner.get("PASSWORD", "")
    with django_db_blocker.unblock():
        call_command("db_roles", verbosity=0)
    _connect_as(settings.DATABASE_APP_USER, settings.DATABASE_APP_PASSWORD)
    yield
    _connect_as(owner_user, owner_password)


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Acme Optimizer", slug="acme", reporting_currency="USD", invoice_number_prefix="ACME-")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(
        name="Bergström Konsult", slug="bergstrom", reporting_currency="SEK", locale="sv", invoice_number_prefix="BK-"
    )


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory):
    """ClickHouse in this process (chdb), one directory per test process."""
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture(params=["postgres", "clickhouse"])
def usage_store(request, settings, chdb_url, monkeypatch):
    """Run the test once per usage-event store (``billing.usage_store``); the store in use.

    The test's transaction never commits, so the ClickHouse store writes each batch at once, as it
    does right after a commit. Its table is emptied afterwards (tenant ids are never reused anyway).
    """
    from billing.metering import usage_store as configured_store

    settings.USAGE_EVENT_STORE = request.param
    settings.CLICKHOUSE_URL = chdb_url
    store = configured_store()
    if request.param == "clickhouse":
        monkeypatch.setattr(store, "_after_commit", lambda write: write())
    yield store
    if request.param == "clickhouse":
        store.truncate()


@pytest.fixture
def unscoped():
    """Run a block outside tenant scoping, as fixtures that build several tenants' data must."""
    return platform_scope


@pytest.fixture
def member_factory(db):
    """Make a staff user with a role in a tenant: ``member_factory(tenant, Role.FINANCE)``."""

    def make(tenant, role=Role.ACCOUNT_MANAGER, username=None):
        kwargs = {"tenant": tenant, "role": role}
        if username:
            kwargs["user__username"] = username
        with platform_scope():
            return MembershipFactory(**kwargs).user

    return make


@pytest.fixture
def admin_client(client, admin_user):
    """pytest-django's ``admin_client``, past two-factor: platform superusers must always enter a code."""
    verified_login(client, admin_user)
    return client


@pytest.fixture(autouse=True)
def default_language():
    """Start every test in the default language: a request for a Swedish tenant's page leaves
    Swedish active in the thread (LocaleMiddleware does not switch back), and a later test's
    service message would otherwise depend on which test ran before it."""
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def empty_cache():
    """Start every test with an empty cache: API throttle counters and password-reset limits live there."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def celery_join_flag_reset():
    """Start every test with Celery's "joining a result would block" flag off.

    Celery runs an eager task inside ``denied_join_result()``, which sets and restores a process-wide
    flag, not a thread-local one. Tests that finalize from several threads at once (parallel numbering)
    interleave those sets and restores and can leave the flag on, so a later test in the same process
    that calls ``.get()`` on an eager result failed with "Never call result.get() within a task!",
    depending on which tests ran before it.
    """
    from celery.result import _set_task_join_will_block

    _set_task_join_will_block(False)
    yield
