"""Row-level security on every tenant-owned table, found in the app registry (never a hand list).

A table is tenant-owned when its model is concrete and has a ``tenant_id`` column (``TenantOwned``
models, simple-history's ``Historical*`` copies, anything else carrying the tenant), or when it is a
many-to-many through table whose rows hang off a tenant-owned table (it is fenced through that
parent). Each such table gets ``ENABLE`` and ``FORCE ROW LEVEL SECURITY`` (FORCE: the owner is fenced
too) and one policy, ``tenant_isolation``, for every command (``USING`` and ``WITH CHECK``):

    tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::bigint)
    OR (SELECT current_setting('app.platform', true)) = 'on'

With neither setting made, the policy shows no row and refuses every write: fail closed. The settings
are written per transaction by ``customers.tenancy`` (``set_config(..., true)``). Each setting is read
in a sub-select, so PostgreSQL reads it once per statement (an init plan) rather than once per row:
a 250 000-row scan took 160 ms with per-row reads, 110-130 ms so, and 100-130 ms as a superuser
without RLS (README, "Performance").

Each app's migration secures its own tables (``secure_tables_migration(app_label)``), and a
``post_migrate`` hook secures any tenant-owned table still lacking it, so a new model is covered the
moment it is migrated; ``row_level_security_problems`` lists what is missing, and the test suite
fails on anything it lists.
"""

from __future__ import annotations

from django.db import models

POLICY_NAME = "tenant_isolation"
TENANT_RULE = (
    "tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::bigint)"
    " OR (SELECT current_setting('app.platform', true)) = 'on'"
)


def _has_tenant_column(model) -> bool:
    return any(field.column == "tenant_id" for field in model._meta.concrete_fields)


def _concrete(model) -> bool:
    meta = model._meta
    return not (meta.proxy or not meta.managed or meta.swapped)


def tenant_owned_policies(models_: list[type[models.Model]]) -> dict[str, str]:
    """``{table: policy expression}`` for every tenant-owned table among ``models_``.

    ``models_`` may be the live registry's models or a migration's historical ones; the
    ``customers_tenant`` table itself is not tenant-owned.
    """
    direct: dict[str, str] = {}
    for model in models_:
        meta = model._meta
        if _concrete(model) and meta.db_table != "customers_tenant" and _has_tenant_column(model):
            direct[meta.db_table] = TENANT_RULE
    through: dict[str, str] = {}
    for model in models_:
        meta = model._meta
        if not _concrete(model) or meta.db_table in direct or not meta.auto_created:
            continue
        for field in meta.concrete_fields:
            parent = getattr(field, "related_model", None)
            if parent is not None and parent._meta.db_table in direct:
                through[meta.db_table] = (
                    f'EXISTS (SELECT 1 FROM "{parent._meta.db_table}" AS parent'
                    f' WHERE parent."{parent._meta.pk.column}" = "{meta.db_table}"."{field.column}")'
                )
                break
    return {**direct, **through}


def _policy_state(cursor, table: str) -> tuple[bool, bool, list[str]]:
    cursor.execute(
        "SELECT c.relrowsecurity, c.relforcerowsecurity FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = %s AND n.nspname = current_schema()",
        [table],
    )
    row = cursor.fetchone()
    if row is None:
        return False, False, []
    cursor.execute(
        "SELECT policyname FROM pg_policies WHERE tablename = %s AND schemaname = current_schema()", [table]
    )
    return row[0], row[1], [name for (name,) in cursor.fetchall()]


def secure_table(cursor, table: str, rule: str) -> bool:
    """Give ``table`` RLS, FORCE and the one policy, unless it already has them; True if it changed."""
    enabled, forced, policies = _policy_state(cursor, table)
    if enabled and forced and policies == [POLICY_NAME]:
        return False
    cursor.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    cursor.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    for name in policies:
        cursor.execute(f'DROP POLICY "{name}" ON "{table}"')
    cursor.execute(f'CREATE POLICY "{POLICY_NAME}" ON "{table}" USING ({rule}) WITH CHECK ({rule})')
    return True


def secure_tables_migration(app_label: str):
    """A ``RunPython`` forward function securing ``app_label``'s tenant-owned tables at that point."""

    def forward(apps, schema_editor):
        policies = tenant_owned_policies(list(apps.get_models(include_auto_created=True)))
        own = {m._meta.db_table for m in apps.get_app_config(app_label).get_models(include_auto_created=True)}
        with schema_editor.connection.cursor() as cursor:
            for table, rule in sorted(policies.items()):
                if table in own:
                    secure_table(cursor, table, rule)

    return forward


def secure_all_tables(connection) -> list[str]:
    """Secure every tenant-owned table of the live registry that lacks it; the tables changed."""
    from django.apps import apps

    changed = []
    with connection.cursor() as cursor:
        for table, rule in sorted(tenant_owned_policies(list(apps.get_models(include_auto_created=True))).items()):
            if secure_table(cursor, table, rule):
                changed.append(table)
    return changed


def partitions_of(cursor, table: str) -> list[str]:
    """The partitions of ``table`` (all levels), by name; none for a table that is not partitioned.

    A query naming a partition directly is not fenced by its parent's policy, so each partition of a
    tenant-owned table needs its own (``billing.partitions`` gives each one when it makes it)."""
    cursor.execute(
        "SELECT c.relname FROM pg_partition_tree(%s::regclass) t JOIN pg_class c ON c.oid = t.relid"
        " WHERE t.level > 0 ORDER BY c.relname",
        [table],
    )
    return [name for (name,) in cursor.fetchall()]


def row_level_security_problems(connection) -> list[str]:
    """What a tenant-owned table of the live registry, or a partition of one, lacks: RLS, FORCE, or
    exactly one policy."""
    from django.apps import apps

    problems = []
    with connection.cursor() as cursor:
        tables = sorted(tenant_owned_policies(list(apps.get_models(include_auto_created=True))))
        for table in tables + [part for table in tables for part in partitions_of(cursor, table)]:
            enabled, forced, policies = _policy_state(cursor, table)
            if not enabled:
                problems.append(f"{table}: row level security is not enabled")
            if not forced:
                problems.append(f"{table}: row level security is not forced (the owner bypasses it)")
            if policies != [POLICY_NAME]:
                problems.append(f"{table}: policies {policies}, want exactly [{POLICY_NAME!r}]")
    return problems


def secure_after_migrate(sender, using="default", **kwargs):
    """``post_migrate``: secure any tenant-owned table a migration left without its policy."""
    from django.db import connections

    changed = secure_all_tables(connections[using])
    if changed:
        import logging

        logging.getLogger(__name__).warning(
            "Row level security added after migrate to %s; give their app a migration calling"
            " customers.rls.secure_tables_migration", ", ".join(changed)
        )
