"""What billing's admin modules share: who may bill, and read-only rows.

Its own module so that ``billing.admin`` (which imports ``billing.admin_month_end`` to register
the month-end admin) and ``billing.admin_month_end`` both import it without importing each other.
"""

from billing.models import Invoice
from customers.admin_base import is_platform_admin, request_role
from customers.roles import role_can_edit


def _may_bill(request) -> bool:
    role = request_role(request)
    return is_platform_admin(request) or (role is not None and role_can_edit(role, Invoice))


class ReadOnlyMixin:
    """Rows only services write: viewable by every member, never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
