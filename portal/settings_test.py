"""Settings for the test suite: production settings with test-friendly mail, hashing and static files."""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("FAST_PASSWORD_HASHING", "true")
# pytest-django creates and migrates the test database as the owner; tests/conftest.py's
# django_db_setup then runs db_roles and reconnects every test as the application role.
os.environ.setdefault("DATABASE_ROLE", "owner")

from portal.settings import *  # noqa: E402,F403

ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
MEDIA_ROOT = tempfile.mkdtemp(prefix="portal-test-media-")
CELERY_TASK_ALWAYS_EAGER = True
WEBHOOK_ALLOW_LOOPBACK = True  # the tests' receivers listen on 127.0.0.1; the SSRF tests turn it off
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
STATIC_ROOT = tempfile.mkdtemp(prefix="portal-test-static-")  # whitenoise wants it to exist
# Each process its own cache, emptied before every test (tests/conftest.py): no query counted for it, and no
# throttle counter or password-reset limit carried from one test into the next.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Rates no test reaches by accident; the throttling tests set their own.
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {  # noqa: F405
    scope: "100000/min" for scope in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]  # noqa: F405
}
