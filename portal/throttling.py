"""API throttling: one request budget per API key and one per staff user.

The rates are ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (settings, from the environment): scope
``api_key`` for machines, ``user`` for staff sessions, and a view's own ``throttle_scope`` (the usage
endpoint's ``usage_ingest``) with a budget of its own. Over the rate DRF answers 429 with a
``Retry-After`` header; the body is JSON (``portal.api_errors``). Counters live in the default cache,
which every web worker shares.
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class CallerRateThrottle(SimpleRateThrottle):
    """Counts requests per API key, else per logged-in user; anonymous requests are refused anyway."""

    def __init__(self):
        # The rate depends on the caller and the view, so it is read in allow_request, not here.
        pass

    def allow_request(self, request, view):
        api_key = getattr(request._request, "api_key", None)
        if api_key is not None:
            self.ident = f"key-{api_key.prefix}"  # its public prefix: the pk holds the key's hash
            default_scope = "api_key"
        elif request.user is not None and request.user.is_authenticated:
            self.ident = f"user-{request.user.pk}"
            default_scope = "user"
        else:
            return True
        self.scope = getattr(view, "throttle_scope", None) or default_scope
        # Read at request time, not import time, so that a settings override (tests) takes effect.
        self.rate = api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.ident}
