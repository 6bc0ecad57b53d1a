"""Decisions kept per (organization, subject, permission): in this process and in the shared cache.

An entry is used only while it carries its organization's generation read for
the current request (so any change to members, groups, tokens or the
organization makes it stale in every process at once) and while the TTL of
its permission's class has not run out. Denials are kept too (negative
caching), for their own TTL; a grant bumps the generation, so it is seen on
the next request all the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from accounts.caching.invalidations import cache_get_many, cache_write, local_cache_register
from config.ids import Id
from config.lru import BoundedLRU

# Permissions whose loss must be noticed soonest, even if an invalidation was lost.
ADMIN_PERMISSIONS = frozenset(
    {
        "org:admin",
        "token:manage",
        "image:admin",
        "authz:check",
        "token:self_rotate",
        "webhook:manage",
    }
)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    groups: tuple[str, ...]
    reason: str
    # Where it was reached: l1 (this process), cache (shared), db, or remote
    # (another deployment's decision point).
    source: str = "db"


_decisions: BoundedLRU[dict[str, Any]] = BoundedLRU(size=50_000)
local_cache_register(_decisions.clear)


def permission_class(permission: str) -> str:
    """Return the TTL class of a permission: `admin`, `read` or `write`."""
    if permission in ADMIN_PERMISSIONS:
        return "admin"
    return "read" if permission.endswith(":read") else "write"


def decision_ttl(permission: str, *, allowed: bool) -> int:
    """Return how long a decision may be reused, in seconds, whatever the generation says."""
    if not allowed:
        return int(settings.AUTH_CACHE_TTL_DENIED)
    return int(getattr(settings, f"AUTH_CACHE_TTL_{permission_class(permission).upper()}"))


def ttl_config() -> dict[str, int]:
    return {
        "read_seconds": settings.AUTH_CACHE_TTL_READ,
        "write_seconds": settings.AUTH_CACHE_TTL_WRITE,
        "admin_seconds": settings.AUTH_CACHE_TTL_ADMIN,
        "denied_seconds": settings.AUTH_CACHE_TTL_DENIED,
    }


def decision_key(organization_id: Id, subject: str, permission: str) -> str:
    return f"authz:dec:{organization_id}:{subject}:{permission}"


def _fresh(entry: dict[str, Any], generation: str) -> bool:
    return bool(entry["generation"] == generation and time.time() < entry["expires_at"])


def decision_cached(key: str, generation: str | None) -> Decision | None:
    """Return a still-valid cached decision, its source `l1` or `cache`; None if there is none.

    Without a generation (the shared cache is unreachable) nothing cached is trusted.
    """
    if generation is None or not settings.AUTH_CACHE_ENABLED:
        return None
    entry = _decisions.get(key)
    if entry is not None and _fresh(entry, generation):
        return _decision(entry, "l1")
    shared = (cache_get_many([key]) or {}).get(key)
    if shared is not None and _fresh(shared, generation):
        _decisions.put(key, shared)
        return _decision(shared, "cache")
    return None


def _decision(entry: dict[str, Any], source: str) -> Decision:
    return Decision(entry["allowed"], tuple(entry["groups"]), entry["reason"], source)


def decision_remember(
    key: str, generation: str | None, *, permission: str, decision: Decision
) -> None:
    """Keep a decision for its class's TTL, in this process and in the shared cache."""
    if generation is None or not settings.AUTH_CACHE_ENABLED:
        return
    ttl = decision_ttl(permission, allowed=decision.allowed)
    entry = {
        "generation": generation,
        "allowed": decision.allowed,
        "groups": list(decision.groups),
        "reason": decision.reason,
        "expires_at": time.time() + ttl,
    }
    _decisions.put(key, entry)
    cache_write("set", cache.set, key, entry, ttl)


def decisions_forget_local() -> None:
    """Drop this process's cached decisions (tests and benchmarks start cold with it)."""
    _decisions.clear()
