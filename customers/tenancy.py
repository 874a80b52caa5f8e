"""The tenancy guard: every tenant-owned model inherits ``TenantOwned``.

Queries on a tenant-owned model must be scoped, either explicitly with
``Model.objects.for_tenant(tenant)`` or by running inside ``tenant_scope(tenant)`` (the web
middleware and every Celery task do this). An unscoped query raises ``ScopeError`` instead of
returning every tenant's rows. Platform-wide jobs leave the scope with ``platform_scope()``,
the single greppable way out.
"""

from contextlib import contextmanager

from django.db import models
from django_scopes import ScopedManager, scope, scopes_disabled
from django_scopes.exceptions import ScopeError

__all__ = ["ScopeError", "TenantOwned", "platform_scope", "tenant_scope", "current_scope_tenant"]


def _require_tenant(tenant):
    # django-scopes treats a scope value of None as "no filter"; we never allow that.
    from customers.models import Tenant

    if not isinstance(tenant, Tenant) or tenant.pk is None:
        raise ScopeError(f"A saved Tenant is required to scope a query, got {tenant!r}.")
    return tenant


@contextmanager
def tenant_scope(tenant):
    """Run the block with every tenant-owned query restricted to ``tenant``."""
    with scope(tenant=_require_tenant(tenant)):
        yield


@contextmanager
def platform_scope():
    """Leave tenant scoping for platform-wide work (superusers, fan-out jobs). Use sparingly."""
    with scopes_disabled():
        yield


def current_scope_tenant():
    """The tenant of the active scope, or None outside any tenant scope."""
    from django_scopes.state import get_scope

    return get_scope().get("tenant")


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant):
        return self.filter(tenant=_require_tenant(tenant))


class _ExplicitTenantMixin:
    def for_tenant(self, tenant):
        """Rows of ``tenant``, whatever scope is active (explicit scoping beats the ambient one)."""
        return self.with_scope(tenant=_require_tenant(tenant)).all()


def TenantManager(queryset_class=TenantQuerySet, base=models.Manager):
    """A manager that refuses unscoped queries; ``queryset_class`` must subclass TenantQuerySet."""
    manager_class = type("TenantManagerBase", (_ExplicitTenantMixin, base.from_queryset(queryset_class)), {})
    return ScopedManager(tenant="tenant", _manager_class=manager_class)


class TenantOwned(models.Model):
    """Abstract base: a non-null tenant and the scoped manager."""

    tenant = models.ForeignKey("customers.Tenant", on_delete=models.PROTECT, related_name="+")

    objects = TenantManager()

    class Meta:
        abstract = True
