"""The portal's password reset: for portal users only, and limited per address and per account.

Staff and platform superusers reset their passwords another way (a platform admin sets it), so the
portal's form never emails them a link. Whoever asks, and whatever the outcome, the answer is the same
"check your email" page: nobody learns from it whether an address has an account, a staff account, or
hit a limit. Limits, per clock hour: ``PASSWORD_RESET_REQUESTS_PER_ADDRESS_PER_HOUR`` requests from one
client address, ``PASSWORD_RESET_EMAILS_PER_ACCOUNT_PER_HOUR`` emails to one account. Over a limit
nothing is sent and a warning is logged. The counters live in the shared cache.
"""

import logging
import time

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.core.cache import cache
from django.http import HttpResponseRedirect

from customers.tenancy import platform_scope

logger = logging.getLogger(__name__)
WINDOW_SECONDS = 3600


def _count_use(kind: str, ident) -> int:
    """One more use of ``kind``/``ident`` in this clock hour; returns the hour's count so far.

    get-then-set rather than ``incr``: Django's database cache re-sets an incremented key with the
    default timeout. Two simultaneous requests may both count as one, which a limit can afford.
    """
    key = f"password-reset:{kind}:{ident}:{int(time.time() // WINDOW_SECONDS)}"
    count = (cache.get(key) or 0) + 1
    cache.set(key, count, timeout=WINDOW_SECONDS)
    return count


class PortalPasswordResetForm(PasswordResetForm):
    def get_users(self, email):
        """Active portal users with this email, minus those already sent the hour's emails."""
        user_model = get_user_model()
        with platform_scope():  # the asker is anonymous: any tenant's portal user may match
            portal_user_ids = set(
                user_model._default_manager.filter(
                    email__iexact=email, is_staff=False, is_superuser=False, portal_access__isnull=False
                ).values_list("pk", flat=True)
            )
        for user in super().get_users(email):  # Django's rules: active, usable password, same email
            if user.pk not in portal_user_ids:
                continue
            if _count_use("account", user.pk) > settings.PASSWORD_RESET_EMAILS_PER_ACCOUNT_PER_HOUR:
                logger.warning(
                    "Password reset email not sent: user %s already had %s this hour",
                    user.pk,
                    settings.PASSWORD_RESET_EMAILS_PER_ACCOUNT_PER_HOUR,
                )
                continue
            yield user


class PortalPasswordResetView(auth_views.PasswordResetView):
    form_class = PortalPasswordResetForm

    def form_valid(self, form):
        address = get_client_ip_address(self.request)  # as the login lockout sees it (AXES_CLIENT_IP_HEADERS)
        if _count_use("address", address) > settings.PASSWORD_RESET_REQUESTS_PER_ADDRESS_PER_HOUR:
            logger.warning(
                "Password reset request ignored: address %s made more than %s this hour",
                address,
                settings.PASSWORD_RESET_REQUESTS_PER_ADDRESS_PER_HOUR,
            )
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)
