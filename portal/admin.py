"""django-axes' pages in the admin, for platform superusers only.

Login attempts and lockouts are not tenant-owned: a row names a username and an address from any
tenant, so tenant staff, owners included, never see these pages. Deleting a locked entry lifts the lock.
"""

from axes.admin import AccessAttemptAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessLog
from django.contrib import admin

from customers.admin_base import is_platform_admin


class PlatformAdminOnly:
    def has_module_permission(self, request):
        return is_platform_admin(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return is_platform_admin(request) and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return is_platform_admin(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return is_platform_admin(request) and super().has_delete_permission(request, obj)


@admin.register(AccessAttempt)
class LoginLockoutAdmin(PlatformAdminOnly, AccessAttemptAdmin):
    # axes' "clean up expired attempts" needs a login request's attributes; deleting entries is the unlock.
    actions = []


@admin.register(AccessLog)
class LoginLogAdmin(PlatformAdminOnly, AccessLogAdmin):
    pass
