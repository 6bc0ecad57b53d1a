"""Health of the app's dependencies: GET /health and GET /api/v1/health."""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import redis
import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from drf_spectacular.utils import extend_schema
from redis.sentinel import Sentinel
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.celery import app as celery_app
from config.celery import timed_out
from config.negotiation import JsonToBrowsers

logger = structlog.get_logger("vantage.health")


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    location = _redis_location()
    if location is None:
        cache.set(key, "ok", timeout=10)
        try:
            found = cache.get(key)
        finally:
            cache.delete(key)
    else:
        found = _redis_probe(location, cache.make_key(key))
    if found != "ok":
        raise RuntimeError("the cache did not return the value just written")


def _redis_probe(location: str, key: str) -> Any:
    """Write, read and drop `key` in one round trip; return what was read."""
    # A connection of its own with the probe's timeout: the app's pool may be
    # cooling down after a failure, and the probe must say how Redis is now.
    client = _redis_client(location)
    with client, client.pipeline(transaction=False) as pipe:
        pipe.set(key, b"ok", ex=10)
        pipe.get(key)
        pipe.delete(key)
        found = pipe.execute()[1]
    return found.decode() if isinstance(found, bytes) else found


def _redis_client(location: str) -> redis.Redis:
    """Return a client of the cache's Redis: the URL's server, or the master Sentinel names."""
    sentinels = settings.CACHES["default"].get("OPTIONS", {}).get("SENTINELS")
    if not sentinels:
        return redis.Redis.from_url(location, **_redis_timeouts())
    # REDIS_URL names the master's service in place of a host.
    url = redis.connection.parse_url(location)
    service = str(url.pop("host"))
    url.pop("port", None)
    if url.pop("connection_class", None) is redis.SSLConnection:
        url["ssl"] = True  # the Sentinel-managed TLS connection
    kwargs = settings.CACHES["default"]["OPTIONS"].get("SENTINEL_KWARGS") or {}
    sentinel = Sentinel(sentinels, sentinel_kwargs={**kwargs, **_redis_timeouts()})
    return sentinel.master_for(service, **url, **_redis_timeouts())


# The cache backends that are django-redis (django-prometheus' counts its gets).
REDIS_CACHE_BACKENDS = ("django_redis.", "django_prometheus.cache.backends.redis.RedisCache")


def _redis_location() -> str | None:
    """Return the URL of the cache's Redis, None when the cache is not Redis."""
    config = settings.CACHES["default"]
    if not config["BACKEND"].startswith(REDIS_CACHE_BACKENDS):
        return None
    location = config["LOCATION"]
    first = location[0] if isinstance(location, list | tuple) else location.split(",")[0]
    return str(first).strip()


def _redis_timeouts() -> dict[str, Any]:
    seconds = settings.HEALTH_CHECK_TIMEOUT
    return {"socket_timeout": seconds, "socket_connect_timeout": seconds, "retry": None}


def _broker() -> None:
    seconds = settings.HEALTH_CHECK_TIMEOUT
    timeouts = {
        "socket_timeout": seconds,
        "socket_connect_timeout": seconds,
        "read_timeout": seconds,
        "write_timeout": seconds,
    }
    with celery_app.connection_for_write(
        url=settings.CELERY_BROKER_URL, connect_timeout=seconds, transport_options=timeouts
    ) as conn:
        conn.ensure_connection(max_retries=0, timeout=seconds)
        if conn.transport_cls in ("redis", "rediss", "sentinel"):
            # Connecting succeeds even when Redis hangs (the kernel accepts): a
            # command must be answered too.
            cast(Any, conn.default_channel).client.ping()


# A failing database makes the app unhealthy; a failing cache or broker only
# degrades it (requests are still served, jobs wait to be queued).
CHECKS: dict[str, tuple[Callable[[], None], bool]] = {
    "database": (_database, True),
    "cache": (_cache, False),
    "broker": (_broker, False),
}


def _run(name: str, probe: Callable[[], None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:
        latency = round((time.perf_counter() - started) * 1000, 2)
        # The exception's class only: its message may hold a host or a password.
        error = _error_name(exc)
        logger.warning("health_check_failed", check=name, error_type=error)
        return {"status": "error", "latency_ms": latency, "error": error}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _error_name(exc: BaseException) -> str:
    """Name the failure's class; `TimeoutError` for any that is, or wraps, a timeout."""
    return "TimeoutError" if timed_out(exc) else type(exc).__name__


def health_report() -> tuple[dict[str, Any], int]:
    """Run every check and return the report with its HTTP status."""
    # The database in this thread (its connection is this thread's); the others
    # side by side, so each waits at most HEALTH_CHECK_TIMEOUT and not their sum.
    others = [name for name in CHECKS if name != "database"]
    with ThreadPoolExecutor(max_workers=len(others)) as pool:
        # Each probe runs in a copy of this request's context: its log lines
        # carry the request's id like every other line of the request.
        pending = {
            name: pool.submit(contextvars.copy_context().run, _run, name, CHECKS[name][0])
            for name in others
        }
        checks = {"database": _run("database", CHECKS["database"][0])}
        checks |= {name: future.result() for name, future in pending.items()}
    failed = {name for name, result in checks.items() if result["status"] != "ok"}
    if any(CHECKS[name][1] for name in failed):
        return {"status": "unhealthy", "checks": checks}, 503
    return {"status": "degraded" if failed else "healthy", "checks": checks}, 200


class _LastReport:
    """This process's last report, probed again once it is HEALTH_CACHE_SECONDS old.

    Probes and load balancers may ask many times a second; the dependencies
    are asked at most once a second per process. One request probes at a
    time; meanwhile the others get the last report, or wait for the first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[dict[str, Any], int, float] | None = None

    def get(self) -> tuple[dict[str, Any], int]:
        seconds = settings.HEALTH_CACHE_SECONDS
        if seconds <= 0:
            return health_report()
        last = self._last
        if last is not None and (
            time.monotonic() - last[2] < seconds or not self._lock.acquire(blocking=False)
        ):
            return dict(last[0]), last[1]  # fresh, or being probed again meanwhile
        if last is None:
            self._lock.acquire()
        try:
            last = self._last
            if last is None or time.monotonic() - last[2] >= seconds:
                report, status = health_report()
                last = self._last = (report, status, time.monotonic())
            return dict(last[0]), last[1]
        finally:
            self._lock.release()

    def forget(self) -> None:
        self._last = None


last_report = _LastReport()


class CheckResultSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["ok", "error"])
    latency_ms = serializers.FloatField()
    error = serializers.CharField(
        required=False,
        help_text="The failure's class, when failed; `TimeoutError` when the dependency hangs.",
    )


class ChecksSerializer(serializers.Serializer[Any]):
    database = CheckResultSerializer()
    cache = CheckResultSerializer()
    broker = CheckResultSerializer()


class HealthSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"])
    checks = ChecksSerializer()


class VersionedHealthSerializer(HealthSerializer):
    version = serializers.CharField()


class HealthApi(APIView):
    """Liveness and readiness: the database, the cache and the broker, with their latency."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    # JSON to a browser too: probes, load balancers and people read the same answer
    # (the browsable page of debug mode would also need scripts the CSP refuses),
    # never 406 to a browser asking for text/html alone.
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonToBrowsers
    rate_limit = None  # probes and load balancers ask often
    include_version = False

    @extend_schema(
        summary="Health of the app and its dependencies",
        responses={200: HealthSerializer, 503: HealthSerializer},
        tags=["operations"],
    )
    def get(self, request: Request) -> Response:
        report, status = last_report.get()
        if self.include_version:
            report["version"] = settings.VERSION
        return Response(report, status=status, headers={"Cache-Control": "no-store"})


class VersionedHealthApi(HealthApi):
    include_version = True

    @extend_schema(
        summary="Health of the app and its dependencies, with the app's version",
        responses={200: VersionedHealthSerializer, 503: VersionedHealthSerializer},
        tags=["operations"],
    )
    def get(self, request: Request) -> Response:
        return super().get(request)
