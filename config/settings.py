"""Vantage settings, read from the environment.

The defaults run on a laptop with nothing installed (SQLite, an in-process
cache, a Celery broker on the filesystem); production differs only through
environment variables. See README.md, "Configuration".
"""

from __future__ import annotations

import ssl
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config import __version__
from config.concurrency import web_workers
from config.logs import log_format_default, log_stream_default, logging_config
from config.paths import BASE_DIR, prometheus_multiproc_dir, var_dir

env = environ.Env()
# A developer's local overrides; never committed (see .env.example).
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

# Everything the embedded default writes (database, broker, media, metrics)
# lives here, so one directory can be wiped or moved as a unit.
VAR_DIR = var_dir()
VAR_DIR.mkdir(parents=True, exist_ok=True)

VERSION = __version__

# --- Core ---------------------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-vantage-development-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET_KEY)
if not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a random value of at least 50 characters "
        "when DJANGO_DEBUG is off."
    )

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.admin_site.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "csp",
    "django_prometheus",
    "config",
    "accounts",
    "images",
    "classifier",
    "audit",
    "webhooks",
]

MIDDLEWARE = [
    # Ids, timing, metrics (requests in flight too), the log line, problem details and
    # rate-limit headers, in one layer.
    "config.middleware.RequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.CorsMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "config.middleware.CommonMiddleware",
    # BROWSER_MIDDLEWARE, for pages and the API calls that carry a session cookie.
    "config.middleware.BrowserMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# What only a browser needs, in Django's order; an API call without a session cookie
# skips it (config.checks holds it to what the admin site needs).
BROWSER_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.identity.middleware.BrowserSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
# The admin site's and Django's CSRF checks look in MIDDLEWARE alone for these;
# config.checks finds them in BROWSER_MIDDLEWARE instead (and checks the CSRF cookie).
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410", "security.W003"]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "csp.context_processors.nonce",
                "config.navigation.navigation",
            ],
        },
    },
]

AUTH_USER_MODEL = "accounts.User"

# Argon2id first: new passwords are hashed with it and older hashes are
# upgraded on the next successful login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Database -----------------------------------------------------------------

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
# django-prometheus' wrapper of the same backend: it counts connections,
# queries and errors and times each query (django_db_* series), in memory.
_DATABASE_ENGINES = {
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
}
DATABASES["default"]["ENGINE"] = _DATABASE_ENGINES.get(
    DATABASES["default"]["ENGINE"], DATABASES["default"]["ENGINE"]
)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The web process and the worker share this file: WAL lets readers run
    # beside the writer, IMMEDIATE transactions take the write lock up front
    # instead of failing half-way, and the timeout waits for a busy lock. A
    # 32 MB page cache keeps index lookups in memory as tables grow.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-32768;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    # A new PostgreSQL connection costs milliseconds; keep them, and check
    # them before reuse so a restarted server does not fail the first request.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DATABASE_CONNECT_TIMEOUT", default=5
    )
    # Behind a pooler in transaction mode (PgBouncer's pool_mode=transaction)
    # consecutive statements outside a transaction may reach different server
    # connections: no server-side cursors (.iterator() fetches everything in
    # one statement instead), and no prepared statements (psycopg prepares a
    # query run five times on a connection).
    DATABASE_TRANSACTION_POOLING = env.bool("DATABASE_TRANSACTION_POOLING", default=False)
    if DATABASE_TRANSACTION_POOLING:
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None

# --- Cache --------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
CACHE_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="vantage")
REDIS_COOLDOWN_SECONDS = env.float("REDIS_COOLDOWN_SECONDS", default=5.0)
# How long each of /health's probes of the cache and the broker may wait.
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=0.5)
# A process asks its dependencies at most this often for /health (0: every request).
HEALTH_CACHE_SECONDS = env.float("HEALTH_CACHE_SECONDS", default=1.0)


def _sentinel_addresses(variable: str) -> list[tuple[str, int]]:
    """Read a list of Sentinel addresses, `host:port,host:port` (IPv6 in brackets)."""
    addresses = []
    for item in env.list(variable, default=[]):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ImproperlyConfigured(f"{variable}: {item!r} is not host:port.")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


# Redis Sentinel: the cache's (and so the rate limiter's) Redis is the master
# the sentinels name. REDIS_URL then names the master by its Sentinel service
# name in place of a host: redis://[:password@]SERVICE/DB (rediss:// for TLS).
REDIS_SENTINELS = _sentinel_addresses("REDIS_SENTINELS")
REDIS_SENTINEL_PASSWORD = env.str("REDIS_SENTINEL_PASSWORD", default="")
if REDIS_URL:
    _redis_options: dict[str, object] = {
        "SOCKET_CONNECT_TIMEOUT": env.float("REDIS_CONNECT_TIMEOUT", default=1.0),
        "SOCKET_TIMEOUT": env.float("REDIS_SOCKET_TIMEOUT", default=1.0),
        # After a timeout or a lost connection, calls to that Redis fail
        # at once for REDIS_COOLDOWN_SECONDS: a hung Redis costs a
        # request one timeout, not one per cache call.
        "CONNECTION_POOL_CLASS": "config.redis_guard.GuardedConnectionPool",
        "CONNECTION_POOL_KWARGS": {"health_check_interval": 30},
    }
    if REDIS_SENTINELS:
        _redis_options |= {
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "CONNECTION_POOL_CLASS": "config.redis_guard.GuardedSentinelConnectionPool",
            "SENTINELS": REDIS_SENTINELS,
            "SENTINEL_KWARGS": {
                "socket_timeout": _redis_options["SOCKET_TIMEOUT"],
                "socket_connect_timeout": _redis_options["SOCKET_CONNECT_TIMEOUT"],
                **({"password": REDIS_SENTINEL_PASSWORD} if REDIS_SENTINEL_PASSWORD else {}),
            },
        }
    CACHES = {
        "default": {
            # django-redis' cache, counting gets, hits and misses (django_cache_*).
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": _redis_options,
        }
    }
    # What every process must see alike (the classifier providers' health): the same Redis.
    CACHES["shared"] = {**CACHES["default"]}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "vantage",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        },
        # The web process and the worker are apart: what both must see (the classifier
        # providers' health) is kept in files under var/, shared by the processes of a host.
        "shared": {
            "BACKEND": "config.shared_file_cache.SharedFileCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        },
    }

# --- Static and media files ---------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Media is never served from a public URL: files go out through
# permission-checked API views only.
MEDIA_URL: str | None = None
# Images are kept under MEDIA_ROOT unless a bucket is named: then in S3 or an
# S3-compatible store (MinIO, Ceph, ...), with the default AWS credential chain
# (environment, shared files, instance or pod role) when no keys are given.
STORAGE_S3_BUCKET = env.str("STORAGE_S3_BUCKET", default="")
_default_storage: dict[str, object] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if STORAGE_S3_BUCKET:
    _s3_addressing_style = env.str("STORAGE_S3_ADDRESSING_STYLE", default="") or "auto"
    if _s3_addressing_style not in ("auto", "virtual", "path"):
        raise ImproperlyConfigured("STORAGE_S3_ADDRESSING_STYLE must be auto, virtual or path.")
    _s3_access_key = env.str("STORAGE_S3_ACCESS_KEY_ID", default="")
    _s3_secret_key = env.str("STORAGE_S3_SECRET_ACCESS_KEY", default="")
    if bool(_s3_access_key) != bool(_s3_secret_key):
        raise ImproperlyConfigured(
            "Set STORAGE_S3_ACCESS_KEY_ID and STORAGE_S3_SECRET_ACCESS_KEY together, "
            "or neither to use the default AWS credential chain."
        )
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": STORAGE_S3_BUCKET,
            "endpoint_url": env.str("STORAGE_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("STORAGE_S3_REGION", default="") or None,
            "access_key": _s3_access_key or None,
            "secret_key": _s3_secret_key or None,
            "addressing_style": _s3_addressing_style,
            "location": env.str("STORAGE_S3_PREFIX", default="").strip("/"),
            # No ACL is sent: objects are as private as the bucket, and files
            # go out only through the permission-checked views.
            "default_acl": None,
            "querystring_auth": True,
            # The pipeline rewrites an original at its own name: the object is
            # replaced, never saved beside it under another name.
            "file_overwrite": True,
            # A download larger than this is spooled to a temporary file rather
            # than held in memory while it is served.
            "max_memory_size": env.int("STORAGE_S3_MAX_MEMORY_SIZE", default=8 * 1024 * 1024),
        },
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": env.str(
            "DJANGO_STATICFILES_STORAGE",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security -----------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False)
    else None
)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
# Probes and scrapers talk plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$", r"^api/v1/health$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"
# Deliberately small: large uploads are streamed to disk, never held in memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)

# Scripts only from this origin, never inline; styles likewise.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

CORS_ALLOWED_ORIGINS = env.list("DJANGO_CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_ALL_ORIGINS = False
CORS_EXPOSE_HEADERS = [
    "X-Request-ID",
    "X-Response-Time",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "Location",
]
if not DEBUG and any("*" in origin for origin in CORS_ALLOWED_ORIGINS):
    raise ImproperlyConfigured(
        "DJANGO_CORS_ALLOWED_ORIGINS may not contain a wildcard when DJANGO_DEBUG is off; "
        "list each allowed origin."
    )

# How many reverse proxies in front of the app append to X-Forwarded-For;
# 0 means the socket address is the client.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# --- Identity -------------------------------------------------------------------

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_TOKEN_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_TOKEN_DAYS", default=7)),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=SECRET_KEY),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "TOKEN_TYPE_CLAIM": "type",
    "JTI_CLAIM": "jti",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "LEEWAY": 0,
    "UPDATE_LAST_LOGIN": False,
}
# Keys that signed tokens before JWT_SIGNING_KEY replaced them: such tokens are
# still accepted until they expire (the refresh lifetime at most), then the key
# can be dropped. New tokens are signed with JWT_SIGNING_KEY only.
JWT_PREVIOUS_SIGNING_KEYS = env.list("JWT_PREVIOUS_SIGNING_KEYS", default=[])
# Two refreshes of the newest refresh token this close together are taken for
# a client's retry rather than a stolen token; 0 tolerates none.
AUTH_REFRESH_REUSE_WINDOW_SECONDS = env.int("AUTH_REFRESH_REUSE_WINDOW_SECONDS", default=0)
AUTH_SESSION_IDLE_DAYS = env.int("AUTH_SESSION_IDLE_DAYS", default=30)
AUTH_LOCKOUT_WINDOW_SECONDS = env.int("AUTH_LOCKOUT_WINDOW_SECONDS", default=15 * 60)
AUTH_LOCKOUT_USERNAME_FAILURES = env.int("AUTH_LOCKOUT_USERNAME_FAILURES", default=5)
AUTH_LOCKOUT_IP_FAILURES = env.int("AUTH_LOCKOUT_IP_FAILURES", default=20)
AUTHENTICATION_BACKENDS = ["accounts.backends.LoginBackend"]
# Second factors: the sign-in challenge's life and attempts, how recent a check a
# sensitive action needs, the name authenticator apps list, and the WebAuthn relying
# party (its id is the site's domain; the origins are the addresses browsers sign for).
MFA_CHALLENGE_SECONDS = env.int("MFA_CHALLENGE_SECONDS", default=5 * 60)
MFA_CHALLENGE_ATTEMPTS = env.int("MFA_CHALLENGE_ATTEMPTS", default=5)
MFA_STEP_UP_SECONDS = env.int("MFA_STEP_UP_SECONDS", default=15 * 60)
MFA_ISSUER = env.str("MFA_ISSUER", default="Vantage")
WEBAUTHN_RP_ID = env.str("WEBAUTHN_RP_ID", default="localhost")
WEBAUTHN_RP_NAME = env.str("WEBAUTHN_RP_NAME", default="Vantage")
WEBAUTHN_ORIGINS = env.list("WEBAUTHN_ORIGINS", default=["http://localhost:8000"])
# The permission cache: member views and decisions in process memory and in
# the shared cache, valid while their organization's generation is current and
# no longer than the TTL of their permission's class (denials: their own TTL).
AUTH_CACHE_ENABLED = env.bool("AUTH_CACHE_ENABLED", default=True)
AUTH_CACHE_TTL_READ = env.int("AUTH_CACHE_TTL_READ", default=300)
AUTH_CACHE_TTL_WRITE = env.int("AUTH_CACHE_TTL_WRITE", default=60)
AUTH_CACHE_TTL_ADMIN = env.int("AUTH_CACHE_TTL_ADMIN", default=30)
AUTH_CACHE_TTL_DENIED = env.int("AUTH_CACHE_TTL_DENIED", default=120)
# Where decisions are made: `local` (this deployment's database) or `remote`
# (another deployment's POST /api/v1/authorization/check, with a service token
# holding authz:check), guarded by a circuit breaker shared through the cache.
AUTHZ_BACKEND = env.str("AUTHZ_BACKEND", default="local")
AUTH_API_URL = env.str("AUTH_API_URL", default="")
AUTH_API_TOKEN = env.str("AUTH_API_TOKEN", default="")
AUTH_API_TIMEOUT = env.float("AUTH_API_TIMEOUT", default=2.0)
AUTH_BREAKER_FAILURES = env.int("AUTH_BREAKER_FAILURES", default=5)
AUTH_BREAKER_RESET_SECONDS = env.int("AUTH_BREAKER_RESET_SECONDS", default=60)
# When the remote decision point cannot answer: refuse (503) or allow.
AUTH_FAIL_OPEN = env.bool("AUTH_FAIL_OPEN", default=False)

# Reads of /api/schema/ and /api/docs/ a minute, per client (or principal), in a
# window of their own apart from the API's.
API_DOCS_PER_MINUTE = env.int("API_DOCS_PER_MINUTE", default=60)

# What each tier may do; an organization's own overrides take precedence.
TIER_LIMITS: dict[str, dict[str, int]] = {
    "anonymous": {
        "requests_per_minute": 10,
        "max_file_size_bytes": 2_000_000,
        "uploads_per_day": 0,
    },
    "free": {"requests_per_minute": 10, "max_file_size_bytes": 5_000_000, "uploads_per_day": 500},
    "pro": {
        "requests_per_minute": 60,
        "max_file_size_bytes": 25_000_000,
        "uploads_per_day": 10_000,
    },
    "enterprise": {
        "requests_per_minute": 300,
        "max_file_size_bytes": 100_000_000,
        "uploads_per_day": 100_000,
    },
}
# Requests per minute are limited by tier (off only for suites that test other things).
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
# Dashboard page loads per minute and signed-in principal, by tier, in a window
# apart from the API's: a few times a person's quickest clicking, far below a script's.
TIER_PAGES_PER_MINUTE: dict[str, int] = {"free": 30, "pro": 60, "enterprise": 120}
# Images: dimensions (each side) and formats accepted, detected from the bytes.
IMAGE_MIN_DIMENSION = env.int("IMAGE_MIN_DIMENSION", default=32)
IMAGE_MAX_DIMENSION = env.int("IMAGE_MAX_DIMENSION", default=8192)
IMAGE_ALLOWED_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp")
# Animations (GIF, WebP, APNG): at most this many frames, and this many pixels
# across all frames, since each frame is decoded in full.
IMAGE_MAX_FRAMES = env.int("IMAGE_MAX_FRAMES", default=100)
IMAGE_MAX_TOTAL_PIXELS = env.int("IMAGE_MAX_TOTAL_PIXELS", default=100_000_000)
# Jobs: attempts before a job fails for good; a job queued longer than this
# (its message lost, the broker down) or running longer (its worker died) is
# handed to the queue again by the periodic check.
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=5)
JOB_QUEUED_TIMEOUT = env.int("JOB_QUEUED_TIMEOUT", default=120)
JOB_RUNNING_TIMEOUT = env.int("JOB_RUNNING_TIMEOUT", default=600)
# The queue image jobs are sent to; empty: Celery's default queue. Workers given
# `-Q <name>` then do image work apart from the rest.
JOB_QUEUE = env.str("JOB_QUEUE", default="")
# An organization as a whole may make this many times its tier's per-principal
# figure of requests per minute.
RATE_LIMIT_ORGANIZATION_FACTOR = env.int("RATE_LIMIT_ORGANIZATION_FACTOR", default=5)
# While Redis is unreachable each web process counts alone, with the limits
# divided by the number of processes (gunicorn's worker count).
RATE_LIMIT_FALLBACK_PROCESSES = env.int("RATE_LIMIT_FALLBACK_PROCESSES", default=web_workers())
# The cache's copy of an organization's upload count for today, which the limits
# answer reads in the credential's round trip: each upload refreshes it as it commits,
# and a copy the cache failed to take is read from the database again after this long.
QUOTA_COPY_SECONDS = env.int("QUOTA_COPY_SECONDS", default=60)
# Service tokens
TOKEN_DEFAULT_LIFETIME_DAYS = 90
TOKEN_MAX_LIFETIME_DAYS = 365
TOKEN_EXPIRY_THRESHOLDS_DAYS = (7, 1)
# Uses are counted in the cache; an in-process cache (no Redis) is invisible
# to the worker, so the web process flushes it itself now and then.
TOKEN_USAGE_FLUSH_IN_PROCESS = env.bool("TOKEN_USAGE_FLUSH_IN_PROCESS", default=not REDIS_URL)
TOKEN_USAGE_FLUSH_SECONDS = env.int("TOKEN_USAGE_FLUSH_SECONDS", default=60)
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = env.str("DJANGO_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="Vantage <noreply@localhost>")
# Invitations to join an organization: how long one stays open, and the
# dashboard's address the invitation mail links to.
INVITATION_EXPIRY_DAYS = env.int("INVITATION_EXPIRY_DAYS", default=7)
DASHBOARD_URL = env.str("DASHBOARD_URL", default="http://127.0.0.1:8000")
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

# --- REST framework and OpenAPI -----------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.identity.authentication.ServiceTokenAuthentication",
        "accounts.identity.authentication.JWTAuthentication",
        "accounts.identity.authentication.SessionAuthentication",
        # Last: a request without credentials is counted by its client address.
        "accounts.ratelimits.throttling.AnonymousRateLimit",
    ],
    # Deny by default: a view names the permission it needs (required_permission).
    "DEFAULT_PERMISSION_CLASSES": ["accounts.authz.permissions.RequiredPermission"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.ratelimits.throttling.TierRateLimit"],
    "DEFAULT_RENDERER_CLASSES": (
        ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"]
        if DEBUG
        else ["rest_framework.renderers.JSONRenderer"]
    ),
    # The API speaks JSON, bounded in size and nesting and refusing NUL
    # characters; the operations that take files declare multipart themselves.
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.negotiation.ContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "config.openapi.OperationSchema",
    "EXCEPTION_HANDLER": "config.errors.problem_exception_handler",
    "DATETIME_FORMAT": "iso-8601",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
API_MAX_PAGE_SIZE = 100

SPECTACULAR_SETTINGS = {
    # A URL whose methods are views of their own (config.routes.operations) lists each.
    "DEFAULT_GENERATOR_CLASS": "config.openapi.SchemaGenerator",
    "TITLE": "Vantage API",
    "DESCRIPTION": (
        "Organizations upload images; background jobs classify the vehicles in them. "
        "Every error is RFC 9457 problem details with a stable `code`."
    ),
    "VERSION": VERSION,
    # The credentials a caller may present (the last authentication step only counts).
    "AUTHENTICATION_WHITELIST": [
        "accounts.identity.authentication.ServiceTokenAuthentication",
        "accounts.identity.authentication.JWTAuthentication",
        "accounts.identity.authentication.SessionAuthentication",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get components of their own, so an uploaded file is binary, not a URL.
    "COMPONENT_SPLIT_REQUEST": True,
    # Operation ids and tags start after the version: `images_upload`, tag `images`.
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "HealthStatusEnum": ["healthy", "degraded", "unhealthy"],
        "CheckStatusEnum": ["ok", "error"],
        "PermissionEnum": "accounts.roles.PERMISSIONS",
        "ScopeEnum": "accounts.roles.SCOPES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_problem_responses",
        "config.openapi.add_response_headers",
    ],
}

# --- Celery -------------------------------------------------------------------

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker: messages are files under var/, shared by the web
    # process and the worker on one machine, with no server to run.
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A task not acknowledged within this time is delivered again
        # (acks_late): longer than the longest task's hard time limit.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    }
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
# A broker that accepts connections but answers nothing (hung) would hold a
# publish, and so the upload that makes it, forever: every command waits this
# long at most. Longer than the Redis transport's 1 s blocking pop.
CELERY_BROKER_SOCKET_TIMEOUT = env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=2.0)
# After a publish timed out, a process sends nothing for this long (the job
# stays queued in the database and is handed again later).
BROKER_COOLDOWN_SECONDS = env.float("BROKER_COOLDOWN_SECONDS", default=5.0)
# A Redis broker behind Sentinel: CELERY_BROKER_URL lists the sentinels,
# `sentinel://[:password@]host:port/DB;sentinel://host:port/DB`, and this names
# the master's service (the password is the master's; the sentinels' own goes
# in CELERY_BROKER_TRANSPORT_OPTIONS' sentinel_kwargs).
CELERY_BROKER_SENTINEL_MASTER = env.str("CELERY_BROKER_SENTINEL_MASTER", default="")
if CELERY_BROKER_URL.startswith("sentinel://"):
    if not CELERY_BROKER_SENTINEL_MASTER:
        raise ImproperlyConfigured(
            "A sentinel:// CELERY_BROKER_URL needs CELERY_BROKER_SENTINEL_MASTER, the master's "
            "service name."
        )
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = CELERY_BROKER_SENTINEL_MASTER
if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "sentinel://", "unix://", "socket://")):
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "socket_timeout": CELERY_BROKER_SOCKET_TIMEOUT,
        "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
        "retry_on_timeout": False,
    }
elif CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "read_timeout": CELERY_BROKER_SOCKET_TIMEOUT,
        "write_timeout": CELERY_BROKER_SOCKET_TIMEOUT,
    }
# Any other option of the transport, as a JSON object, applied last (e.g.
# {"sentinel_kwargs": {"password": "..."}} or {"priority_steps": [0, 5, 9]}).
_transport_options = env.json("CELERY_BROKER_TRANSPORT_OPTIONS", default={})
if not isinstance(_transport_options, dict):
    raise ImproperlyConfigured("CELERY_BROKER_TRANSPORT_OPTIONS must be a JSON object.")
CELERY_BROKER_TRANSPORT_OPTIONS |= _transport_options
# TLS to the broker: on for rediss:// and amqps:// URLs (and when asked), the
# server's certificate checked against the system's or the given authorities.
_broker_tls_url = CELERY_BROKER_URL.startswith(("rediss://", "amqps://"))
_broker_tls = env.bool("CELERY_BROKER_USE_SSL", default=_broker_tls_url)
_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}
_cert_reqs = env.str("CELERY_BROKER_SSL_CERT_REQS", default="required")
if _cert_reqs not in _CERT_REQS:
    raise ImproperlyConfigured("CELERY_BROKER_SSL_CERT_REQS must be required, optional or none.")
_broker_tls_files = {
    "ca_certs": env.str("CELERY_BROKER_SSL_CA_CERTS", default="") or None,
    "certfile": env.str("CELERY_BROKER_SSL_CERTFILE", default="") or None,
    "keyfile": env.str("CELERY_BROKER_SSL_KEYFILE", default="") or None,
}
CELERY_BROKER_USE_SSL: dict[str, object] | bool = False
if _broker_tls:
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "sentinel://")):
        # redis-py's names: ssl_cert_reqs, ssl_ca_certs, ssl_certfile, ssl_keyfile.
        CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": _CERT_REQS[_cert_reqs]} | {
            f"ssl_{name}": value for name, value in _broker_tls_files.items() if value
        }
    else:
        CELERY_BROKER_USE_SSL = {"cert_reqs": _CERT_REQS[_cert_reqs]} | {
            name: value for name, value in _broker_tls_files.items() if value
        }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
# A Redis result backend, when one is set, waits no longer than the cache does.
CELERY_REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=1.0)
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=1.0)
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_DEFAULT_QUEUE", default="vantage")
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "token-usage-flush": {"task": "accounts.token_usage_flush", "schedule": 60.0},
    "token-expiry-notify": {"task": "accounts.token_expiry_notify", "schedule": 6 * 3600.0},
    "login-failures-prune": {"task": "accounts.login_failures_prune", "schedule": 3600.0},
    "jobs-requeue-stuck": {"task": "images.jobs_requeue_stuck", "schedule": 30.0},
    "cache-invalidations-replay": {
        "task": "accounts.cache_invalidations_replay",
        "schedule": 15.0,
    },
    "classifier-providers-probe": {"task": "classifier.providers_probe", "schedule": 60.0},
    "audit-sink-backlog-resend": {"task": "audit.sink_backlog_resend", "schedule": 60.0},
    "webhook-deliveries-due": {"task": "webhooks.deliveries_due", "schedule": 15.0},
    "webhook-log-purge": {"task": "webhooks.log_purge", "schedule": 3600.0},
}
CELERY_TIMEZONE = "UTC"

# --- Audit --------------------------------------------------------------------

AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=400)
# When set, every committed event is also POSTed there (at least once; the
# receiver deduplicates by the event id in the Idempotency-Key header).
AUDIT_SINK_URL = env.str("AUDIT_SINK_URL", default="")
AUDIT_SINK_TOKEN = env.str("AUDIT_SINK_TOKEN", default="")
AUDIT_SINK_TIMEOUT = env.float("AUDIT_SINK_TIMEOUT", default=5.0)

# --- Webhooks -----------------------------------------------------------------

# Plain http:// endpoints, for development only (production takes https:// alone).
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)
# Deliver to loopback and private addresses too: development and the tests only
# (`check --deploy` warns). Cloud metadata addresses stay refused regardless.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
# Certificate authorities endpoints' certificates are checked against (empty: the usual ones).
WEBHOOK_CA_BUNDLE = env.str("WEBHOOK_CA_BUNDLE", default="")
# How a host name becomes addresses: a function (host, port) -> [address, ...].
WEBHOOK_RESOLVER = env.str("WEBHOOK_RESOLVER", default="webhooks.network.system_resolve")
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# How much of an endpoint's answer is read and kept in the delivery log.
WEBHOOK_RESPONSE_BODY_MAX_BYTES = env.int("WEBHOOK_RESPONSE_BODY_MAX_BYTES", default=4096)
# The wait before each retry (seconds, each with up to 20% jitter): 8 attempts over about 32 h.
WEBHOOK_RETRY_SCHEDULE_SECONDS = tuple(
    env.list(
        "WEBHOOK_RETRY_SCHEDULE_SECONDS",
        cast=int,
        default=[5, 300, 1800, 7200, 18000, 36000, 50400],
    )
)
# An endpoint whose every attempt failed for this long is disabled (admins are mailed).
WEBHOOK_DISABLE_AFTER_SECONDS = env.int("WEBHOOK_DISABLE_AFTER_SECONDS", default=3 * 24 * 3600)
# After a rotation the previous secret signs too, for this long.
WEBHOOK_SECRET_OVERLAP_SECONDS = env.int("WEBHOOK_SECRET_OVERLAP_SECONDS", default=24 * 3600)
# Deliveries to one endpoint in flight at once; more wait, so a slow endpoint waits on itself.
WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = env.int("WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", default=4)
# Deliveries of one organization's endpoints at once: below the webhook workers'
# concurrency, one organization's slow endpoints never take every worker.
WEBHOOK_MAX_IN_FLIGHT_PER_ORGANIZATION = env.int(
    "WEBHOOK_MAX_IN_FLIGHT_PER_ORGANIZATION", default=2
)
# Events, deliveries and the delivery log are kept this long.
WEBHOOK_LOG_RETENTION_DAYS = env.int("WEBHOOK_LOG_RETENTION_DAYS", default=30)
# The Celery queue of deliveries; empty: the default queue. Set `webhooks` and run a
# worker with `-Q webhooks` so image jobs never wait behind deliveries.
WEBHOOK_QUEUE = env.str("WEBHOOK_QUEUE", default="")

# --- Classifier ---------------------------------------------------------------

# The ONNX model, with its metadata JSON beside it. The product ships it in
# classifier/weights/; `make model` makes it again from the pretrained weights.
CLASSIFIER_MODEL_PATH = Path(
    env.str(
        "CLASSIFIER_MODEL_PATH",
        default=str(BASE_DIR / "classifier/weights/efficientnet-lite0.onnx"),
    )
)
# The failover chain, tried in order: `onnx`, `remote` or dotted paths of provider classes.
CLASSIFIER_PROVIDERS = env.list("CLASSIFIER_PROVIDERS", default=["onnx"])
# An image is a vehicle when its vehicle classes together reach this probability.
CLASSIFIER_VEHICLE_THRESHOLD = env.float("CLASSIFIER_VEHICLE_THRESHOLD", default=0.3)
# The `remote` provider: another deployment's classify-batch API, called with a
# service token of that deployment holding image:upload.
CLASSIFIER_REMOTE_URL = env.str("CLASSIFIER_REMOTE_URL", default="")
CLASSIFIER_REMOTE_TOKEN = env.str("CLASSIFIER_REMOTE_TOKEN", default="")
CLASSIFIER_REMOTE_TIMEOUT = env.float("CLASSIFIER_REMOTE_TIMEOUT", default=10.0)
# Provider health: failures within the window (seconds; 0: failures in a
# row only) make a provider degraded, then unhealthy and ejected for the
# ejection time (doubled for repeated ejections); successes in a row make it
# healthy again.
CLASSIFIER_HEALTH_DEGRADED_AFTER = env.int("CLASSIFIER_HEALTH_DEGRADED_AFTER", default=3)
CLASSIFIER_HEALTH_UNHEALTHY_AFTER = env.int("CLASSIFIER_HEALTH_UNHEALTHY_AFTER", default=5)
CLASSIFIER_HEALTH_HEALTHY_AFTER = env.int("CLASSIFIER_HEALTH_HEALTHY_AFTER", default=3)
CLASSIFIER_HEALTH_EJECTION_SECONDS = env.int("CLASSIFIER_HEALTH_EJECTION_SECONDS", default=300)
CLASSIFIER_HEALTH_FAILURE_WINDOW = env.int("CLASSIFIER_HEALTH_FAILURE_WINDOW", default=3600)
if not (
    1 <= CLASSIFIER_HEALTH_DEGRADED_AFTER <= CLASSIFIER_HEALTH_UNHEALTHY_AFTER
    and CLASSIFIER_HEALTH_HEALTHY_AFTER >= 1
    and CLASSIFIER_HEALTH_EJECTION_SECONDS >= 1
    and CLASSIFIER_HEALTH_FAILURE_WINDOW >= 0
):
    raise ImproperlyConfigured(
        "CLASSIFIER_HEALTH_*: need 1 <= DEGRADED_AFTER <= UNHEALTHY_AFTER, HEALTHY_AFTER >= 1, "
        "EJECTION_SECONDS >= 1 and FAILURE_WINDOW >= 0."
    )
# Threads one inference may use: several web and worker processes share the cores.
CLASSIFIER_ONNX_THREADS = env.int("CLASSIFIER_ONNX_THREADS", default=2)

# --- Observability ------------------------------------------------------------

# Several gunicorn workers and the Celery worker write their metrics to files
# here and /metrics adds them up; the apps import prometheus_client after
# these settings, so setting it here is early enough.
PROMETHEUS_MULTIPROC_DIR = prometheus_multiproc_dir()
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# One JSON object per line on stdout for Django, Celery and gunicorn alike;
# JSON lines, or readable lines for a human at a terminal (or with LOG_FORMAT=console).
_log_stream = log_stream_default()
LOGGING = logging_config(
    level=env.str("LOG_LEVEL", default="INFO").upper(),
    fmt=log_format_default(_log_stream),
    stream=_log_stream,
)
