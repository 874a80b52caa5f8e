"""Deleting a whole tenant: the one way, for every app's rows, without knowing the apps.

``customers`` is the lowest app, so this module names no model of another app: it finds the
tenant-owned tables in the app registry (every concrete field on the column ``tenant_id``, which
covers ``TenantOwned`` models, simple-history's ``Historical*`` copies and anything else carrying the
tenant) and orders them from the foreign keys ``_meta`` describes.

What a higher app keeps outside PostgreSQL (billing's usage events in ClickHouse) it deletes in a
purge hook it registers from its ``AppConfig.ready`` (``register_purge_hook``, the dependency
inversion of ``customers.contract_hooks``). A hook is ``hook(*, tenant_id)``, idempotent, and runs
after the purge commits: run before, a rolled-back purge would leave a live tenant without that
data; run after, a failure leaves only rows of a tenant that no longer exists (ids are never
reused), which the hook's own retry (``manage.py usage_store_purge``) removes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from graphlib import CycleError, TopologicalSorter

from django.apps import apps
from django.db import connection, models, transaction

from customers.models import Tenant
from customers.tenancy import database_tenant

logger = logging.getLogger(__name__)
_PURGE_HOOKS: dict[str, Callable[..., None]] = {}


def register_purge_hook(name: str, hook: Callable[..., None]) -> None:
    """Register ``hook(*, tenant_id)`` under ``name`` (again: replaces it), run after every purge commits."""
    _PURGE_HOOKS[name] = hook


def _purge_hooks_run(tenant_id: int) -> None:
    for name, hook in _PURGE_HOOKS.items():
        try:
            hook(tenant_id=tenant_id)
        except Exception:
            logger.exception("Purge hook %s failed for the purged tenant %s.", name, tenant_id)
            raise


def _tenant_owned_models() -> list[type[models.Model]]:
    """Every concrete model with a ``tenant_id`` column, once per table (proxies share their table)."""
    owned: dict[str, type[models.Model]] = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed or model is Tenant:
            continue
        if any(field.column == "tenant_id" for field in meta.concrete_fields):
            owned.setdefault(meta.db_table, model)
    return list(owned.values())


def _deletion_order(owned: list[type[models.Model]]) -> list[type[models.Model]]:
    """``owned`` with every model before the models its foreign keys point at.

    Self-references (a contract's renewal of a contract) impose no order: one DELETE removes both
    ends. ``on_delete`` (PROTECT, RESTRICT) is Django's Python-side rule and does not apply to
    raw statements; the database's foreign keys are what the order must respect. Should a cycle
    between two tables ever appear, PostgreSQL's foreign keys here are DEFERRABLE INITIALLY
    DEFERRED (as Django creates them), so any order within the transaction still commits.
    """
    tables = {model._meta.db_table: model for model in owned}
    # graphlib yields a node after its predecessors: a referenced table is a "successor" here,
    # so the graph maps each table to the tables that point at it.
    referenced_by: dict[str, set[str]] = {table: set() for table in tables}
    for table, model in tables.items():
        for field in model._meta.concrete_fields:
            if not field.is_relation or not getattr(field, "db_constraint", False):
                continue
            target = field.related_model._meta.db_table
            if target in tables and target != table:
                referenced_by[target].add(table)
    try:
        order = list(TopologicalSorter(referenced_by).static_order())
    except CycleError:
        order = sorted(tables)  # deferred foreign keys are checked at commit, when all are gone
    return [tables[table] for table in order]


def tenant_purge(*, tenant: Tenant) -> dict[str, int]:
    """Delete ``tenant`` and every row it owns in any app; returns the rows deleted per table.

    One transaction: first ``Tenant.purge_started_at`` is set, which is what billing's
    issued-document triggers check before they let a finalized invoice, its lines or a credit note
    be deleted; then one ``DELETE ... WHERE tenant_id = %s`` per tenant-owned table (no Python loop
    over rows, so a tenant with millions of usage events goes in a few statements), children before
    parents; then the tenant row. The counts are keyed by table name, ``customers_tenant`` last
    (always 1). Tables with no rows of the tenant are counted as 0. After the commit (the outermost
    one, when called inside a transaction) the purge hooks run; a hook's failure is logged and raised
    to the caller, the database purge stays committed.

    Raises ValueError when ``tenant`` is None or unsaved, and ``Tenant.DoesNotExist`` when no tenant
    row has its id (already purged). Anything the database refuses rolls the whole purge back.
    """
    if tenant is None or tenant.pk is None:
        raise ValueError("tenant_purge needs a saved tenant.")
    counts: dict[str, int] = {}
    # Run as the tenant for row-level security: every row deleted is the tenant's, whatever the caller's scope.
    with transaction.atomic(), database_tenant(tenant.pk), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Tenant._meta.db_table} SET purge_started_at = now() WHERE id = %s", [tenant.pk]
        )
        if cursor.rowcount != 1:
            raise Tenant.DoesNotExist(f"No tenant with id {tenant.pk} to purge.")
        for model in _deletion_order(_tenant_owned_models()):
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"DELETE FROM {table} WHERE tenant_id = %s", [tenant.pk])
            counts[model._meta.db_table] = cursor.rowcount
        cursor.execute(f"DELETE FROM {Tenant._meta.db_table} WHERE id = %s", [tenant.pk])
        counts[Tenant._meta.db_table] = cursor.rowcount
        transaction.on_commit(partial(_purge_hooks_run, tenant.pk))
    return counts
