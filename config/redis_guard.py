"""Redis connections that give up at once while their server has just failed.

A Redis that hangs (alive, accepting connections, answering nothing) makes
every command wait for the socket timeout, and a request makes several. Once
a command to a server times out or loses its connection, every connection of
this process to that server fails at once for `REDIS_COOLDOWN_SECONDS`; then
the next command tries it again. A request thus waits for one timeout at most.
Callers already take a failed command for "Redis is down": identity answers
from the database (never from a copy), rate limits are counted in the process.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import structlog
from redis.connection import Connection, ConnectionPool, SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import (
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

from config.metrics import REDIS_POOL_CONNECTIONS

logger = structlog.get_logger("vantage.redis")

DEFAULT_COOLDOWN_SECONDS = 5.0
FAILURES = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisCoolingDown(RedisConnectionError):
    """Not sent: this Redis failed moments ago and is left alone until its cooldown ends."""


_lock = threading.Lock()
_failed_until: dict[tuple[Any, ...], float] = {}


def _server(connection: Any) -> tuple[Any, ...]:
    return tuple(getattr(connection, name, None) for name in ("host", "port", "path"))


def _cooldown_seconds() -> float:
    from django.conf import settings

    return float(getattr(settings, "REDIS_COOLDOWN_SECONDS", DEFAULT_COOLDOWN_SECONDS))


def _check(connection: Any) -> None:
    until = _failed_until.get(_server(connection))
    if until is not None and time.monotonic() < until:
        raise RedisCoolingDown(f"Redis failed under {_cooldown_seconds():g} s ago; not tried")


def _failed(connection: Any, exc: BaseException) -> None:
    server, seconds = _server(connection), _cooldown_seconds()
    with _lock:
        cooling = time.monotonic() < _failed_until.get(server, 0.0)
        _failed_until[server] = time.monotonic() + seconds
    if not cooling:
        logger.warning("redis_cooling_down", error_type=type(exc).__name__, seconds=seconds)


def redis_cooldowns_forget() -> None:
    """Try every Redis again at once (tests start with none cooling down)."""
    with _lock:
        _failed_until.clear()


class GuardedConnectionMixin:
    """Fails at once while its server is cooling down; a failure starts the cooldown."""

    def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
        _check(self)
        return self._guarded(super().connect_check_health, *args, **kwargs)  # type: ignore[misc]

    def send_packed_command(self, *args: Any, **kwargs: Any) -> Any:
        _check(self)
        return self._guarded(super().send_packed_command, *args, **kwargs)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        return self._guarded(super().read_response, *args, **kwargs)  # type: ignore[misc]

    def _guarded(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except RedisCoolingDown:
            raise
        except FAILURES as exc:
            _failed(self, exc)
            raise


_guarded_classes: dict[type[Any], type[Any]] = {}


def guarded(connection_class: type[Any]) -> type[Any]:
    """Return `connection_class` (plain, TLS or Unix socket) with the cooldown added."""
    with _lock:
        if connection_class not in _guarded_classes:
            name = f"Guarded{connection_class.__name__}"
            bases = (GuardedConnectionMixin, connection_class)
            _guarded_classes[connection_class] = type(name, bases, {})
        return _guarded_classes[connection_class]


# The cache's pools in this process, for the pool gauge (usually one).
_pools: weakref.WeakSet[Any] = weakref.WeakSet()
_POOL_IN_USE = REDIS_POOL_CONNECTIONS.labels(pool="cache", state="in_use")
_POOL_IDLE = REDIS_POOL_CONNECTIONS.labels(pool="cache", state="idle")


# What the gauge shows, and when it was last written: it is written at most
# once a second while connections come and go (each write costs a few
# microseconds, a command far less), and at once when the pools fall idle,
# so that a quiet process never shows a connection in use that is not.
_published = {"in_use": -1, "idle": -1, "at": 0.0, "grown": False}
PUBLISH_SECONDS = 1.0


def _pool_gauges_set(*, settled: bool = False, given_back: bool = False) -> None:
    """Set the pool gauge from this process's pools' own counts (no command is sent)."""
    now = time.monotonic()
    recent = now - _published["at"] < PUBLISH_SECONDS
    if recent and not settled:
        return
    # A connection given back while the gauge shows none in use and some idle (a
    # busy process, one request after another) changes nothing a reader needs
    # before the next second, unless a pool has grown since; counting the pools
    # for it costs more than the command.
    shown_idle = _published["in_use"] == 0 and _published["idle"] > 0
    if recent and given_back and shown_idle and not _published["grown"]:
        return
    in_use = idle = 0
    for pool in list(_pools):
        in_use += len(pool._in_use_connections)
        idle += len(pool._available_connections)
    if settled and in_use and recent:
        return  # not idle yet: the next write in its time
    _published["at"] = now
    _published["grown"] = False
    if in_use != _published["in_use"]:
        _POOL_IN_USE.set(in_use)
        _published["in_use"] = in_use
    if idle != _published["idle"]:
        _POOL_IDLE.set(idle)
        _published["idle"] = idle


class PoolMetricsMixin:
    """Keeps vantage_redis_pool_connections current as connections are lent and given back."""

    def _pool_register(self) -> None:
        _pools.add(self)
        _pool_gauges_set(settled=True)

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().get_connection(*args, **kwargs)  # type: ignore[misc]
        finally:
            _pool_gauges_set()

    def make_connection(self, *args: Any, **kwargs: Any) -> Any:
        _published["grown"] = True
        return super().make_connection(*args, **kwargs)  # type: ignore[misc]

    def release(self, connection: Any) -> None:
        try:
            super().release(connection)  # type: ignore[misc]
        finally:
            _pool_gauges_set(settled=True, given_back=True)

    def disconnect(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().disconnect(*args, **kwargs)  # type: ignore[misc]
        finally:
            _pool_gauges_set(settled=True)


class GuardedConnectionPool(PoolMetricsMixin, ConnectionPool):
    """A connection pool whose connections observe the cooldown (django-redis' pool class)."""

    def __init__(self, connection_class: type[Any] = Connection, **kwargs: Any) -> None:
        super().__init__(connection_class=guarded(connection_class), **kwargs)
        self._pool_register()


class GuardedSentinelConnectionPool(PoolMetricsMixin, SentinelConnectionPool):
    """The pool of a Redis found through Sentinel (REDIS_SENTINELS), guarded and counted alike.

    Its connections ask the sentinels for the master's address whenever they
    connect, so after a failover they reach the new master; the old master's
    address cools down like any failed server.
    """

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        tls = kwargs.pop("ssl", False) or kwargs.get("connection_class") is SSLConnection
        managed = SentinelManagedSSLConnection if tls else SentinelManagedConnection
        kwargs["connection_class"] = guarded(managed)
        super().__init__(service_name, sentinel_manager, **kwargs)
        self._pool_register()
