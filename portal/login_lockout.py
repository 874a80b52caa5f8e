"""The page a locked-out login gets (django-axes calls ``lockout_response``; settings ``AXES_*``).

429 Too Many Requests with a ``Retry-After`` header of the full cool-off, since every attempt while
locked starts the wait again. The same page serves the admin and the portal login.
"""

from axes.helpers import get_client_username
from django.conf import settings
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import ngettext


def lockout_response(request, original_response=None, credentials=None):
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    wait = ngettext("%(minutes)d minute", "%(minutes)d minutes", minutes) % {"minutes": minutes}
    context = {
        "username": get_client_username(request, credentials) or "",
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "wait": wait,
        "is_admin_login": request.path.startswith(reverse("admin:index")),
    }
    response = render(request, "portal/login_locked.html", context, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
