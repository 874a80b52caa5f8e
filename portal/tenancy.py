"""Which tenant a request acts for, and the scope it runs in.

- An ``Authorization: Api-Key …`` header names the tenant of that key (machines).
- A logged-in staff user acts for one of their memberships: the one chosen with the switcher
  (kept in the session), else the first by tenant name.
- A portal user acts for the tenant of their customer, and ``request.customer`` is that customer.
- A platform superuser sees every tenant (the request runs in ``platform_scope``).
Everyone else gets no scope, so any tenant-owned query they reach raises instead of leaking.
"""

from contextlib import nullcontext

from customers.models import Membership, PortalAccess, TenantAPIKey
from customers.tenancy import platform_scope, tenant_scope

SESSION_TENANT_KEY = "tenant_id"
API_KEY_PREFIX = "Api-Key "


def _api_key_tenant(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith(API_KEY_PREFIX):
        return None, None
    raw_key = header[len(API_KEY_PREFIX) :].strip()
    with platform_scope(hot=True):  # a key identifies its tenant; nothing else is read here
        try:
            api_key = TenantAPIKey.objects.get_from_key(raw_key)  # a manager method: not on querysets
        except TenantAPIKey.DoesNotExist:
            return None, None
    if api_key.has_expired:
        return None, None
    return api_key.tenant, api_key


def user_memberships(user):
    """The memberships of a staff user across tenants, by tenant name (for the switcher)."""
    if not user.is_authenticated:
        return []
    with platform_scope(hot=True):  # only this user's own memberships are read
        return list(Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name"))


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.membership = None
        request.customer = None
        request.api_key = None
        request.is_platform_admin = False
        request.memberships = []

        tenant, api_key = _api_key_tenant(request)
        user = request.user
        if tenant is not None:
            request.tenant, request.api_key = tenant, api_key
        elif user.is_authenticated and user.is_superuser:
            request.is_platform_admin = True
        elif user.is_authenticated and user.is_staff:
            request.memberships = memberships = user_memberships(user)
            chosen = request.session.get(SESSION_TENANT_KEY)
            membership = next((m for m in memberships if m.tenant_id == chosen), None) or (
                memberships[0] if memberships else None
            )
            if membership:
                request.membership, request.tenant = membership, membership.tenant
        elif user.is_authenticated:
            with platform_scope(hot=True):  # the user's own portal access names their tenant
                access = PortalAccess.objects.filter(user=user).select_related("tenant", "customer").first()
            if access:
                request.tenant, request.customer = access.tenant, access.customer

        if request.tenant is not None:
            context = tenant_scope(request.tenant)
        elif request.is_platform_admin:
            context = platform_scope(reason=f"platform superuser #{user.pk} {request.method} {request.path}")
        else:
            context = nullcontext()
        with context:
            return self.get_response(request)


def tenant_context(request):
    """Template context: the current tenant and the switcher's choices."""
    memberships = getattr(request, "memberships", [])
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": getattr(request, "membership", None),
        "switchable_memberships": memberships if len(memberships) > 1 else [],
    }
