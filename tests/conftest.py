"""Shared fixtures. Every test world has two tenants, so a missing tenant filter fails a test.

Usage-event stores (``billing.usage_store``): a test marked ``usage_events`` runs on PostgreSQL and on
ClickHouse (chdb, in-process, one directory per xdist worker); ``--usage-store=clickhouse`` runs the
whole session on ClickHouse and skips the tests marked ``postgres_store_only``. The full ClickHouse
pass of the billing tests: ``./bin/test --usage-store=clickhouse tests/billing tests/revenue/economics``.
"""

import os

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections, transaction
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


USAGE_STORES = ("postgres", "clickhouse")


def pytest_addoption(parser):
    parser.addoption(
        "--usage-store",
        choices=USAGE_STORES,
        default="postgres",
        help="The usage-event store (USAGE_EVENT_STORE) of the whole session; tests marked usage_events run"
        " on both stores when it is postgres (the default), on ClickHouse only when it is clickhouse.",
    )


def pytest_generate_tests(metafunc):
    """A test marked ``usage_events`` runs once per store by default, on ClickHouse alone under
    ``--usage-store=clickhouse`` (``usage_store_kind``); a test naming ``usage_store`` runs on both anyway."""
    if metafunc.definition.get_closest_marker("usage_events") is None or "usage_store" in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("postgres_store_only") is not None:
        return
    stores = USAGE_STORES if metafunc.config.getoption("usage_store") == "postgres" else ("clickhouse",)
    metafunc.parametrize("usage_store_kind", stores, indirect=True)


def pytest_collection_modifyitems(config, items):
    if config.getoption("usage_store") == "postgres":
        return
    for item in items:
        marker = item.get_closest_marker("postgres_store_only")
        if marker is not None:
            why = marker.kwargs.get("reason") or " ".join(marker.args)
            item.add_marker(pytest.mark.skip(reason=f"PostgreSQL store only: {why}"))


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory):
    """ClickHouse in this process (chdb), one directory per test process (each xdist worker its own)."""
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


def _after_commit_in_tests(self, write) -> None:
    """``ClickHouseUsageStore._after_commit`` as if the test case's transaction were autocommit.

    A test that is not transactional runs inside the test case's atomic blocks, which never commit,
    so the batch would never be written. Here it is written when it would have been committed: at
    once when the store runs in no atomic block of the code's own, else when the code's outermost
    block exits without error (``_atomic_exit_in_tests``; a rolled-back block drops it, as Django
    drops its on_commit callbacks). A transactional test commits for real: plain ``on_commit``."""
    connection = transaction.get_connection()
    own = [block for block in connection.atomic_blocks if not block._from_testcase]
    if own and len(own) == len(connection.atomic_blocks):
        transaction.on_commit(write, robust=True)  # a transactional test: the code's block commits
    elif not own:
        write()
    else:
        write.usage_batch_in_test = True
        transaction.on_commit(write, robust=True)


def _atomic_exit_in_tests(original):
    def exit_(self, exc_type, exc_value, traceback):
        result = original(self, exc_type, exc_value, traceback)
        connection = transaction.get_connection(self.using)
        blocks = connection.atomic_blocks
        if exc_type is None and blocks and all(block._from_testcase for block in blocks):
            pending = [entry for entry in connection.run_on_commit if getattr(entry[1], "usage_batch_in_test", False)]
            if pending:
                connection.run_on_commit = [e for e in connection.run_on_commit if e not in pending]
                for _, write, _ in pending:
                    write()
        return result

    return exit_


@pytest.fixture(scope="session", autouse=True)
def usage_batches_written_at_test_commit():
    """ClickHouse batches are written when the code under test would have committed (see
    ``_after_commit_in_tests``): the store behaves as after a commit, and not before it."""
    from billing.usage_store.clickhouse import ClickHouseUsageStore

    patch = pytest.MonkeyPatch()
    patch.setattr(ClickHouseUsageStore, "_after_commit", _after_commit_in_tests)
    patch.setattr(transaction.Atomic, "__exit__", _atomic_exit_in_tests(transaction.Atomic.__exit__))
    yield
    patch.undo()


def _use_store(kind, settings, chdb_url):
    from billing.metering import usage_store as configured_store

    settings.USAGE_EVENT_STORE = kind
    settings.CLICKHOUSE_URL = chdb_url
    return configured_store()


@pytest.fixture(params=USAGE_STORES)
def usage_store(request, settings, chdb_url):
    """Run the test once per usage-event store (``billing.usage_store``); the store in use.

    ClickHouse batches are written as after a commit (``usage_batches_written_at_test_commit``). The
    ClickHouse table is emptied afterwards (tenant ids are never reused anyway).
    """
    store = _use_store(request.param, settings, chdb_url)
    yield store
    if request.param == "clickhouse":
        store.truncate()


@pytest.fixture(autouse=True)
def usage_store_kind(request):
    """The usage-event store of a test that does not take ``usage_store``: its ``usage_events``
    parameter, else the session's (``--usage-store``). On ClickHouse the table is emptied afterwards."""
    kind = getattr(request, "param", None)
    if kind is None:
        kind = request.config.getoption("usage_store")
        if kind == "postgres" or "usage_store" in request.fixturenames:
            yield None  # the default store, or the test's own choice
            return
    store = _use_store(kind, request.getfixturevalue("settings"), request.getfixturevalue("chdb_url"))
    yield kind
    if kind == "clickhouse":
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
