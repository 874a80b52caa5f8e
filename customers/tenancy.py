"""The tenancy guard: every tenant-owned model inherits ``TenantOwned``.

Two layers, one rule. In Python, queries on a tenant-owned model must be scoped, either explicitly
with ``Model.objects.for_tenant(tenant)`` or by running inside ``tenant_scope(tenant)`` (the web
middleware and every Celery task do this); an unscoped query raises ``ScopeError`` instead of
returning every tenant's rows (django-scopes). In PostgreSQL, every tenant-owned table has a
row-level-security policy (``customers.rls``) that shows a transaction only the rows of the tenant
named by its ``app.tenant_id`` setting, and none when the setting is unset.

The database layer follows the Python one by itself: the connection's execute wrapper
(``customers.database.tenant_settings``) makes sure every statement runs in a transaction whose
local settings name the active tenant, so raw SQL, triggers and history tables are fenced too. The active tenant is,
from the inside out: the tenant of a ``for_tenant`` queryset while it reads or writes; the tenant of a
``TenantOwned`` instance being saved, deleted or refreshed outside any scope; the innermost
``tenant_scope``. Platform-wide jobs leave both layers with ``platform_scope()``, the single
greppable way out, which is logged.
"""

import inspect
import logging
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, models
from django_scopes import ScopedManager, scope, scopes_disabled
from django_scopes.exceptions import ScopeError

from customers.database.tenant_settings import PLATFORM, _database_scope, _database_scope_set, database_tenant

__all__ = [
    "ScopeError",
    "TenantOwned",
    "platform_scope",
    "tenant_scope",
    "current_scope_tenant",
    "database_tenant",
    "tenant_cursor",
]

logger = logging.getLogger("customers.tenancy")


def _require_tenant(tenant):
    # django-scopes treats a scope value of None as "no filter"; we never allow that.
    from customers.models import Tenant

    if not isinstance(tenant, Tenant) or tenant.pk is None:
        raise ScopeError(f"A saved Tenant is required to scope a query, got {tenant!r}.")
    return tenant


@contextmanager
def tenant_scope(tenant):
    """Run the block with every tenant-owned query restricted to ``tenant``, in Python and in SQL."""
    tenant = _require_tenant(tenant)
    with scope(tenant=tenant), _database_scope_set(tenant.pk):
        yield


def _caller(depth: int = 3) -> str:
    frame = inspect.currentframe()
    try:
        for _ in range(depth):
            frame = frame.f_back if frame is not None else None
        if frame is None:
            return "?"
        path = "/".join(frame.f_code.co_filename.split("/")[-2:])
        return f"{path}:{frame.f_lineno} in {frame.f_code.co_name}"
    finally:
        del frame


@contextmanager
def platform_scope(*, hot: bool = False, reason: str = ""):
    """Leave tenant scoping for platform-wide work (superusers, fan-out jobs). Use sparingly.

    Both layers are left: django-scopes stops filtering, and the transaction's local setting
    ``app.platform = 'on'`` makes the row-level-security policies let every row through. A setting
    rather than a dedicated database role: the application then needs one login only, and the bypass
    is per transaction (``set_config(..., true)``), so it cannot outlive the block even behind a
    transaction-mode pooler. Each entry is logged on ``customers.tenancy`` with its caller (file, line,
    function) and ``reason`` if given, at INFO, or at DEBUG when ``hot`` (internal lookups on every
    request, such as finding an API key's tenant). Nothing else is logged: no keys, no rows.
    """
    level = logging.DEBUG if hot else logging.INFO
    if logger.isEnabledFor(level):
        logger.log(level, "platform_scope entered by %s%s", _caller(), f" ({reason})" if reason else "")
    with scopes_disabled(), _database_scope_set(PLATFORM):
        yield


@contextmanager
def tenant_cursor(tenant, using=DEFAULT_DB_ALIAS):
    """A database cursor whose SQL runs as ``tenant`` (row-level security), for raw SQL that names it.

    Raw SQL still filters on ``tenant_id`` itself; this makes the policy agree, whatever scope the
    caller runs in (none, the platform's, or the same tenant's).
    """
    tenant = _require_tenant(tenant)
    with database_tenant(tenant.pk), connections[using].cursor() as cursor:
        yield cursor


def current_scope_tenant():
    """The tenant of the active scope, or None outside any tenant scope."""
    from django_scopes.state import get_scope

    return get_scope().get("tenant")


# --- The ORM side ------------------------------------------------------------------------------


def _in_database_tenant(method):
    """Wrap a queryset method so its SQL runs as the queryset's own tenant, if it has one."""

    def wrapped(self, *args, **kwargs):
        runs_as = self._tenant_for_sql()
        if runs_as is None:
            return method(self, *args, **kwargs)
        with _database_scope_set(runs_as):
            return method(self, *args, **kwargs)

    wrapped.__name__ = method.__name__
    wrapped.__doc__ = method.__doc__
    return wrapped


class TenantQuerySet(models.QuerySet):
    """A queryset that remembers the tenant ``for_tenant`` gave it and runs its SQL as that tenant.

    So ``Invoice.objects.for_tenant(t)`` works outside any ``tenant_scope`` (services called with an
    explicit tenant, tests building rows for two tenants) with the database's policy still in force.
    """

    _database_tenant_id = None
    _built_in_scope = None  # the database scope active when the manager made this queryset

    def _clone(self):
        clone = super()._clone()
        clone._database_tenant_id = self._database_tenant_id
        clone._built_in_scope = self._built_in_scope
        return clone

    def _tenant_for_sql(self):
        """Who this queryset's SQL runs as: its own tenant (``for_tenant``); else the scope it was made
        in, as django-scopes' filter is fixed when a queryset is made (so a queryset made inside
        ``platform_scope`` and read after it still reads every tenant); else, outside any scope, the
        tenant of the instance a related lookup starts from (``invoice_line.invoice``: Django passes
        that instance as a hint), as that instance's save would; else the active scope's."""
        if self._database_tenant_id is not None:
            return self._database_tenant_id
        if self._built_in_scope is not None:
            return self._built_in_scope
        if _database_scope.get() is None:
            instance = self._hints.get("instance")
            if isinstance(instance, TenantOwned) and instance.tenant_id is not None:
                return instance.tenant_id
        return None

    def _remember_tenant(self, tenant):
        self._database_tenant_id = tenant.pk
        return self

    def for_tenant(self, tenant):
        tenant = _require_tenant(tenant)
        return self.filter(tenant=tenant)._remember_tenant(tenant)

    def iterator(self, chunk_size=None):
        # The tenant is set only while a row is fetched, never across a ``yield``: a caller that stops
        # iterating half-way must not be left running as this queryset's tenant.
        runs_as = self._tenant_for_sql()
        rows = super().iterator(chunk_size)
        if runs_as is None:
            yield from rows
            return
        while True:
            with _database_scope_set(runs_as):
                try:
                    row = next(rows)
                except StopIteration:
                    return
            yield row

    _fetch_all = _in_database_tenant(models.QuerySet._fetch_all)
    count = _in_database_tenant(models.QuerySet.count)
    exists = _in_database_tenant(models.QuerySet.exists)
    contains = _in_database_tenant(models.QuerySet.contains)
    aggregate = _in_database_tenant(models.QuerySet.aggregate)
    get = _in_database_tenant(models.QuerySet.get)
    get_or_create = _in_database_tenant(models.QuerySet.get_or_create)
    update_or_create = _in_database_tenant(models.QuerySet.update_or_create)
    in_bulk = _in_database_tenant(models.QuerySet.in_bulk)
    update = _in_database_tenant(models.QuerySet.update)
    _update = _in_database_tenant(models.QuerySet._update)
    delete = _in_database_tenant(models.QuerySet.delete)
    _raw_delete = _in_database_tenant(models.QuerySet._raw_delete)
    bulk_create = _in_database_tenant(models.QuerySet.bulk_create)
    bulk_update = _in_database_tenant(models.QuerySet.bulk_update)
    explain = _in_database_tenant(models.QuerySet.explain)


class _ExplicitTenantMixin:
    def get_queryset(self):
        queryset = super().get_queryset()
        if isinstance(queryset, TenantQuerySet):
            queryset._built_in_scope = _database_scope.get()
        return queryset

    def for_tenant(self, tenant):
        """Rows of ``tenant``, whatever scope is active (explicit scoping beats the ambient one)."""
        tenant = _require_tenant(tenant)
        return self.with_scope(tenant=tenant).all()._remember_tenant(tenant)

    def bulk_create(self, objs, *args, **kwargs):
        """Outside any scope, rows that all belong to one tenant are written as that tenant (as a
        save of each would be); rows of several tenants need ``platform_scope``."""
        objs = list(objs)
        with _rows_own_tenant_unless_scoped(objs):
            return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, *args, **kwargs):
        """As ``bulk_create``: one tenant's rows outside any scope are updated as that tenant."""
        objs = list(objs)
        with _rows_own_tenant_unless_scoped(objs):
            return super().bulk_update(objs, *args, **kwargs)


def TenantManager(queryset_class=TenantQuerySet, base=models.Manager):
    """A manager that refuses unscoped queries; ``queryset_class`` must subclass TenantQuerySet."""
    manager_class = type("TenantManagerBase", (_ExplicitTenantMixin, base.from_queryset(queryset_class)), {})
    return ScopedManager(tenant="tenant", _manager_class=manager_class)


@contextmanager
def _own_tenant_unless_scoped(instance):
    """Outside any scope, run the block's SQL as the instance's tenant; inside one, leave it be."""
    if _database_scope.get() is None and instance.tenant_id is not None:
        with database_tenant(instance.tenant_id):
            yield
    else:
        yield


def base_rows_for(instance, model=None):
    """``model``'s (default: the instance's own) base manager, unfiltered, whose SQL outside any scope
    runs as ``instance``'s tenant, as a related lookup from the instance would: for a model's own
    checks of its stored row before ``save`` or ``delete``."""
    return (model or type(instance))._base_manager.db_manager(hints={"instance": instance})


@contextmanager
def _rows_own_tenant_unless_scoped(objs):
    tenant_ids = {obj.tenant_id for obj in objs}
    if _database_scope.get() is None and len(tenant_ids) == 1 and None not in tenant_ids:
        with database_tenant(tenant_ids.pop()):
            yield
    else:
        yield


class TenantOwned(models.Model):
    """Abstract base: a non-null tenant and the scoped manager.

    Saving, deleting or refreshing an instance outside any scope runs as the instance's own tenant,
    so factories and services that name their tenant work under row-level security; inside a scope
    the scope's tenant rules, and a row of another tenant is refused by the database.
    """

    tenant = models.ForeignKey("customers.Tenant", on_delete=models.PROTECT, related_name="+")

    objects = TenantManager()
    # Django's base manager (related lookups, saves, deletes), unfiltered as Django's own is, but with
    # TenantQuerySet's rule for which tenant its SQL runs as. Declared after ``objects``, which stays
    # the default manager.
    tenant_base_objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        abstract = True
        base_manager_name = "tenant_base_objects"

    def save(self, *args, **kwargs):
        with _own_tenant_unless_scoped(self):
            return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        with _own_tenant_unless_scoped(self):
            return super().delete(*args, **kwargs)

    def refresh_from_db(self, *args, **kwargs):
        with _own_tenant_unless_scoped(self):
            return super().refresh_from_db(*args, **kwargs)
