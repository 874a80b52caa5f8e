"""Staff sessions end after ``STAFF_SESSION_IDLE_SECONDS`` without a request; portal users' do not.

A staff login (``is_staff`` or superuser) gets a session that expires that many seconds after its last
save, and the middleware saves it again when it is used, at most once every ``REFRESH_SECONDS``
(writing the session on every request would cost a query each). So a staff session ends between
``idle - REFRESH_SECONDS`` and ``idle`` seconds after the member's last request. A portal user's session
keeps Django's ``SESSION_COOKIE_AGE``.
"""

import time

from django.conf import settings
from django.contrib.auth.signals import user_logged_in

SEEN_KEY = "staff_session_seen"
REFRESH_SECONDS = 300


def _is_staff(user) -> bool:
    return user.is_authenticated and (user.is_staff or user.is_superuser)


def _extend(session) -> None:
    session[SEEN_KEY] = int(time.time())
    session.set_expiry(settings.STAFF_SESSION_IDLE_SECONDS)


def staff_session_started(sender, request, user, **kwargs):
    """On a staff login, the session gets the short idle expiry from its first response on."""
    if request is not None and hasattr(request, "session") and _is_staff(user):
        _extend(request.session)


class StaffSessionExpiryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if user is not None and session is not None and _is_staff(user):
            seen = session.get(SEEN_KEY)
            if seen is None or time.time() - seen >= REFRESH_SECONDS:
                _extend(session)
        return response


def connect_staff_session_expiry() -> None:
    user_logged_in.connect(staff_session_started, dispatch_uid="portal.staff_session_started")
