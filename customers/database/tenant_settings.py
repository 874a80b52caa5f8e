"""The database half of tenant scoping: what the running code tells PostgreSQL, per transaction.

``customers.tenancy`` decides who is active (a tenant id, the platform, or nobody);
``apply_tenant_settings``, an execute wrapper the backend (``customers.database.base``) installs on
every connection, writes that into the current transaction's local settings ``app.tenant_id`` and
``app.platform``, which the row-level-security policies (``customers.rls``) read. Kept apart from
``customers.tenancy`` because the backend is loaded before any model.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

PLATFORM = "platform"
# What the database must be told about the running code: None (no tenant: the policy shows nothing),
# a tenant id, or PLATFORM (the policy lets everything through).
_database_scope: ContextVar = ContextVar("database_scope", default=None)


@contextmanager
def _database_scope_set(value):
    token = _database_scope.set(value)
    try:
        yield
    finally:
        _database_scope.reset(token)


@contextmanager
def database_tenant(tenant_id: int):
    """Run the block's SQL as tenant ``tenant_id`` in the database only (the ORM guard is unchanged).

    For code that already names its tenant explicitly: ``for_tenant`` querysets, instance saves and
    raw SQL that filters on the tenant itself (the purge, the revenue selectors).
    """
    if not isinstance(tenant_id, int) or isinstance(tenant_id, bool):
        raise TypeError(f"A tenant id is required for the database scope, got {tenant_id!r}.")
    with _database_scope_set(tenant_id):
        yield


_SET_SQL = "SELECT set_config('app.tenant_id', %s, true), set_config('app.platform', %s, true)"


def _tell_database(connection, wanted) -> None:
    tenant_id = "" if wanted in (None, PLATFORM) else str(wanted)
    platform = "on" if wanted == PLATFORM else ""
    with connection.connection.cursor() as cursor:  # the raw driver cursor: not logged, not wrapped
        cursor.execute(_SET_SQL, [tenant_id, platform])
    connection.rls_applied = wanted


def apply_tenant_settings(execute, sql, params, many, context):
    """An execute wrapper: run each statement in a transaction whose local settings name the tenant.

    Inside a transaction the settings are written once, when they differ from what this transaction
    was last told (the backend forgets that on commit, rollback and savepoint rollback, so a rolled
    back ``set_config`` is written again). Outside one (autocommit), a statement run for a tenant or
    the platform gets its own short transaction: ``set_config(..., true)``, the statement, commit.
    With nothing active nothing is written, and an unset setting shows no rows: fail closed.
    """
    connection = context["connection"]
    wanted = _database_scope.get()
    if not connection.get_autocommit():
        if getattr(connection, "rls_applied", None) != wanted:
            _tell_database(connection, wanted)
        return execute(sql, params, many, context)
    if wanted is None:
        return execute(sql, params, many, context)
    with transaction.atomic(using=connection.alias):
        _tell_database(connection, wanted)
        return execute(sql, params, many, context)
