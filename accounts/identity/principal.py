"""Who is calling: the principal of a request, resolved without a database query when warm.

Three kinds of cache entry serve the hot path, all read in one round trip:

- `auth:sess:<sid>`: a login session's state (user, organization, revoked,
  last activity). Revoking writes a tombstone that is never overwritten by a
  reader, so a revoked session is refused on the next request everywhere.
- `auth:gen:<org>`: the organization's generation, a random value replaced
  after every committed change to its members, groups or state.
- `auth:member:<org>:<user>`: what a member may do (role, groups,
  permissions), valid only while it carries the current generation. A reader
  stamps it with the generation read *before* loading it from the database,
  so a change committed meanwhile makes it stale at once.

When the cache cannot be reached every answer comes from the database:
slower, never more permissive.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts import metrics
from accounts.caching.invalidations import (
    cache_write,
    invalidation_publish,
    local_cache_register,
)
from accounts.identity.records import MemberEntry, MemberView, PrincipalKind, SessionState
from accounts.models import Membership, Session
from accounts.ratelimits.tiers import organization_limits, tier_limits
from accounts.roles import role_permissions
from accounts.selectors import membership_for
from config.lru import BoundedLRU
from config.request_context import Actor

logger = structlog.get_logger("vantage.auth")

SESSION_TTL = 60
MEMBER_TTL = 300
# A member view kept in this process's memory, valid while its generation is
# the one read from the shared cache for the request (and no longer than this).
MEMBER_L1_TTL = 300
# Counters bound to their label once: labelling on the hot path costs a lock.
_LOOKUPS = {
    source: metrics.PRINCIPAL_LOOKUPS.labels(source=source) for source in ("l1", "cache", "db")
}
_member_l1: BoundedLRU[tuple[str, MemberView, float]] = BoundedLRU(size=10_000)
local_cache_register(_member_l1.clear)
# A tombstone outlives every access token issued before the revocation.
TOMBSTONE_TTL = 60 * 60 * 24


@dataclass(frozen=True)
class Principal:
    """An authenticated caller bound to one organization, with what it may do there."""

    kind: PrincipalKind
    id: str
    display: str
    organization_id: str
    organization_name: str
    organization_slug: str
    organization_tier: str
    role: str | None
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    permissions: frozenset[str] = frozenset()
    user_id: str | None = None
    session_id: str | None = None
    token_prefix: str | None = None
    # A token's creator and scopes: what it may do is their intersection.
    delegated_by: str | None = None
    scopes: frozenset[str] | None = None
    # Where what it may do was read from for this request: l1, cache or db;
    # when (wall clock) that was read from the database; and the organization's
    # generation read for this request (None when the shared cache is unreachable).
    source: str = "db"
    loaded_at: float = 0.0
    generation: str | None = None
    # The organization's effective limits (its tier's, with its overrides).
    limits: dict[str, int] = field(default_factory=dict)
    # A token's allow-list of client networks (empty: any address) and rotation family.
    allowed_ips: tuple[str, ...] = ()
    token_family: str | None = None
    # A person's address and full name, as the member view holds them (empty for a token).
    email: str = ""
    name: str = ""
    # A person's session: when a second factor was last proven (epoch seconds), and
    # whether it may only enrol one (its organization requires one, the person has none).
    mfa_verified_at: float | None = None
    mfa_enrolment_required: bool = False

    @property
    def actor(self) -> Actor:
        return Actor(self.kind, self.id, self.display)

    @property
    def person_id(self) -> str:
        """Return the person whose membership grants what this may do: the user, or the creator."""
        person = self.user_id or self.delegated_by
        if person is None:
            raise ValueError(f"{self.ref} acts for no person")
        return person

    @property
    def ref(self) -> str:
        """Return "<kind>:<id>", how records name who made them."""
        return f"{self.kind}:{self.id}"


# --- Cache keys and safe access ---------------------------------------------


def session_key(session_id: str | uuid.UUID) -> str:
    return f"auth:sess:{session_id}"


def generation_key(organization_id: str | uuid.UUID) -> str:
    return f"auth:gen:{organization_id}"


def member_key(organization_id: str, user_id: str) -> str:
    return f"auth:member:{organization_id}:{user_id}"


# --- Invalidation (called by services, effective after commit) --------------


def organization_changed(organization_id: str | uuid.UUID) -> None:
    """Make every cached member view of this organization stale once the change commits."""

    key = generation_key(organization_id)
    transaction.on_commit(
        lambda: invalidation_publish(key, lambda: cache.set(key, uuid.uuid4().hex, None))
    )


def session_changed(session: Session) -> None:
    """Replace the session's cached state once the change commits (e.g. another organization)."""
    state, key = session_state(session), session_key(session.id)
    transaction.on_commit(
        lambda: invalidation_publish(key, lambda: cache.set(key, state, SESSION_TTL))
    )


def session_revoked(session_id: str | uuid.UUID) -> None:
    """Refuse this session everywhere from the next request on, once the revocation commits."""

    key = session_key(session_id)
    transaction.on_commit(
        lambda: invalidation_publish(key, lambda: cache.set(key, {"revoked": True}, TOMBSTONE_TTL))
    )


# --- Session state ------------------------------------------------------------


def session_state(session: Session) -> SessionState:
    return {
        "revoked": session.revoked_at is not None,
        "user_id": str(session.user_id),
        "organization_id": str(session.organization_id),
        "last_activity": session.last_activity.timestamp(),
        "kind": session.kind,
        "mfa_verified_at": session.mfa_verified_at.timestamp() if session.mfa_verified_at else None,
        "mfa_enrolment_required": session.mfa_enrolment_required,
    }


def session_state_load(session_id: str) -> SessionState | None:
    """Return a session's state from the database (None if it does not exist)."""
    session = Session.objects.filter(id=session_id).first()
    return session_state(session) if session is not None else None


def session_state_cache(session_id: str, state: SessionState) -> None:
    # add, never set: a tombstone written meanwhile must win over this read.
    cache_write("add", cache.add, session_key(session_id), state, SESSION_TTL)


def session_activity_touch(session_id: str, state: SessionState) -> None:
    """Record activity at most once a minute per session."""
    now = time.time()
    if now - state["last_activity"] < 60:
        return
    Session.objects.filter(id=session_id, revoked_at__isnull=True).update(
        last_activity=timezone.now()
    )
    # Dropped, never overwritten: this request's copy may predate a revocation
    # whose tombstone is in the cache now. The next request reads the database.
    cache_write("delete", cache.delete, session_key(session_id))


# --- Member view --------------------------------------------------------------


def member_view_load(*, organization_id: str, user_id: str) -> MemberView:
    """Return what the user may do in the organization, read from the database."""
    membership: Membership | None = membership_for(user_id=user_id, organization_id=organization_id)
    if membership is None:
        return {"status": "not_member"}
    user, org = membership.user, membership.organization
    if not user.is_active:
        return {"status": "user_inactive"}
    if not org.is_active:
        return {"status": "org_inactive"}
    groups = {g.name: tuple(sorted(g.permissions)) for g in membership.groups.all()}
    return {
        "status": "ok",
        "loaded_at": time.time(),
        "user": {
            "id": str(user.id),
            "username": user.username,
            "email": user.email,
            "name": user.name,
        },
        "organization": {
            "id": str(org.id),
            "name": org.name,
            "slug": org.slug,
            "tier": org.tier,
            "limits": organization_limits(org),
        },
        "role": membership.role,
        "groups": groups,
    }


class MemberLookup(NamedTuple):
    view: MemberView
    # l1 (this process), cache (shared) or db.
    source: str
    # The organization's generation the view is valid for; None without the shared cache.
    generation: str | None


def member_view(
    *, organization_id: str, user_id: str, cached: dict[str, Any] | None
) -> MemberLookup:
    """Return the member view, where it came from and the generation it is valid for.

    `cached` is the request's get_many result holding the organization's
    generation; a view from this process's memory (l1) or from the shared
    cache is used only while it carries that generation. Without the shared
    cache (None) the database answers and the in-process copy is not used.
    """
    if cached is None or not settings.AUTH_CACHE_ENABLED:
        _LOOKUPS["db"].inc()
        return MemberLookup(
            member_view_load(organization_id=organization_id, user_id=user_id), "db", None
        )
    generation = cached.get(generation_key(organization_id))
    if generation is None:
        generation = uuid.uuid4().hex
        if not cache_write("add", cache.add, generation_key(organization_id), generation, None):
            generation = (
                cache_write("get", cache.get, generation_key(organization_id)) or generation
            )
    local = _member_l1.get((str(organization_id), str(user_id)))
    if local is not None and local[0] == generation and time.monotonic() < local[2]:
        _LOOKUPS["l1"].inc()
        return MemberLookup(local[1].copy(), "l1", generation)
    entry: MemberEntry | None = cached.get(member_key(organization_id, user_id))
    if entry is not None and entry.get("generation") == generation:
        _LOOKUPS["cache"].inc()
        member_view_remember(organization_id, user_id, generation, entry["view"], shared=False)
        return MemberLookup(entry["view"].copy(), "cache", generation)
    return member_view_reload(
        organization_id=organization_id, user_id=user_id, generation=generation
    )


def member_view_known(*, organization_id: str, user_id: str) -> MemberView | None:
    """Return this process's copy of an 'ok' member view, whatever its generation: a guess."""
    local = _member_l1.get((str(organization_id), str(user_id)))
    return local[1] if local is not None and local[1].get("status") == "ok" else None


def member_view_reload(
    *, organization_id: str, user_id: str, generation: str | None
) -> MemberLookup:
    """Read the member view from the database and keep it for `generation` (None: keep nothing)."""
    _LOOKUPS["db"].inc()
    view = member_view_load(organization_id=organization_id, user_id=user_id)
    if generation is not None:
        member_view_remember(organization_id, user_id, generation, view, shared=True)
    return MemberLookup(view, "db", generation)


def member_view_remember(
    organization_id: str, user_id: str, generation: str, view: MemberView, *, shared: bool
) -> None:
    """Keep a member view in this process and, if `shared`, in the shared cache."""
    expires = time.monotonic() + MEMBER_L1_TTL
    _member_l1.put((str(organization_id), str(user_id)), (generation, view, expires))
    if shared:
        entry: MemberEntry = {"generation": generation, "view": view}
        cache_write("set", cache.set, member_key(organization_id, user_id), entry, MEMBER_TTL)


def principal_from_view(
    view: MemberView,
    *,
    session_id: str | None = None,
    source: str = "db",
    generation: str | None = None,
    mfa_verified_at: float | None = None,
    mfa_enrolment_required: bool = False,
) -> Principal:
    """Build a user principal from an 'ok' member view (and its session's second-factor state)."""
    groups = {name: tuple(perms) for name, perms in view["groups"].items()}
    permissions = role_permissions(view["role"]).union(*groups.values())
    user, org = view["user"], view["organization"]
    return Principal(
        kind="user",
        id=user["id"],
        display=user["username"],
        organization_id=org["id"],
        organization_name=org["name"],
        organization_slug=org["slug"],
        organization_tier=org["tier"],
        role=view["role"],
        groups=groups,
        permissions=frozenset(permissions),
        user_id=user["id"],
        session_id=str(session_id) if session_id else None,
        source=source,
        loaded_at=view.get("loaded_at", 0.0),
        generation=generation,
        limits=org.get("limits") or tier_limits(org["tier"]),
        email=user.get("email") or "",
        name=user.get("name") or "",
        mfa_verified_at=mfa_verified_at,
        mfa_enrolment_required=mfa_enrolment_required,
    )
