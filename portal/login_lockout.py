"""Login lockout with backoff (django-axes; settings ``AXES_*``), and the page a locked-out login gets.

``AXES_FAILURE_LIMIT`` wrong passwords for one username from one address lock that username there for
``AXES_COOLOFF_MINUTES``. Every attempt while locked counts as one more failure and doubles the wait, up
to ``MAX_COOL_OFF``: guessing on only buys a longer lock. A correct login after the wait clears the count.
The page is 429 Too Many Requests with a ``Retry-After`` of the whole wait; it serves the admin and the
portal login alike.
"""

from datetime import timedelta

from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import ngettext

MAX_COOL_OFF = timedelta(hours=24)


def _failures(request) -> int:
    """Failures counted against this request's username at its address (axes' lockout parameters)."""
    if request is None or getattr(request, "axes_ip_address", None) is None:
        return 0
    attempts = AccessAttempt.objects.filter(username=get_client_username(request), ip_address=request.axes_ip_address)
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


def login_cool_off(request) -> timedelta:
    """How long the username stays locked at this address: the base wait, doubled per failure past the limit.

    axes asks this (``AXES_COOLOFF_TIME``) both to judge whether the last failures are recent enough to
    lock and to date each entry's expiry (``AXES_USE_ATTEMPT_EXPIRATION``, so one user's long lock is
    never cleaned up by another user's short one).
    """
    base = timedelta(minutes=settings.AXES_COOLOFF_MINUTES)
    over = max(0, _failures(request) - settings.AXES_FAILURE_LIMIT)
    return min(base * 2 ** min(over, 16), MAX_COOL_OFF)


def _duration(wait: timedelta) -> str:
    minutes = int(wait.total_seconds() // 60)
    if minutes >= 60 and minutes % 60 == 0:
        return ngettext("%(count)d hour", "%(count)d hours", minutes // 60) % {"count": minutes // 60}
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}


def lockout_response(request, original_response=None, credentials=None):
    wait = login_cool_off(request)
    context = {
        "username": get_client_username(request, credentials) or "",
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "wait": _duration(wait),
        "max_wait": _duration(MAX_COOL_OFF),
        "is_admin_login": request.path.startswith(reverse("admin:index")),
    }
    response = render(request, "portal/login_locked.html", context, status=429)
    response["Retry-After"] = str(int(wait.total_seconds()))
    return response
