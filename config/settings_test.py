"""Settings for the test suite: the production settings, with test-only isolation.

Each test run gets its own var directory (embedded broker, media, metrics)
and its own cache key prefix, so runs never see each other's data. When
DATABASE_URL, REDIS_URL and CELERY_BROKER_URL are set the same suite runs
against those real services.
"""

import os
import tempfile
import uuid

os.environ.setdefault(
    "DJANGO_SECRET_KEY", "test-only-secret-key-" + "0123456789abcdefghijklmnopqrstuvwxyz"
)
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("VANTAGE_VAR_DIR", tempfile.mkdtemp(prefix="vantage-test-"))
os.environ.setdefault("CACHE_KEY_PREFIX", f"vantage-test-{uuid.uuid4().hex[:12]}")
os.environ.setdefault("METRICS_TOKEN", "test-metrics-token")
# A queue of this run's own, so a shared broker never mixes two runs' tasks.
os.environ.setdefault("CELERY_DEFAULT_QUEUE", f"vantage-test-{uuid.uuid4().hex[:12]}")
os.environ.setdefault("LOG_FORMAT", "json")
# Most tests make many requests as one user; the rate limit tests turn it on.
os.environ.setdefault("RATE_LIMIT_ENABLED", "false")
# Health answers probe every time, so a test that breaks a dependency sees it at once.
os.environ.setdefault("HEALTH_CACHE_SECONDS", "0")
os.environ.setdefault(
    "DJANGO_STATICFILES_STORAGE", "django.contrib.staticfiles.storage.StaticFilesStorage"
)

from config.settings import *  # noqa: F403
from config.settings import DATABASES, STATIC_ROOT, VAR_DIR

STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Tasks that exist for the tests only, so a worker started by a test knows them.
CELERY_IMPORTS = ["config.tests.tasks"]

# Argon2 at full strength is the point in production and a cost in tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory: a worker process started by a test must see the
    # same database as the test.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

# Django's test live server hands every path under MEDIA_URL to a file handler
# of its own and cannot parse None; nothing links to this path (files go out
# only through the permission-checked views, as in production).
MEDIA_URL = "/test-media-never-linked/"
