"""What the identity cache holds, as the hot path reads it.

Each record is a plain dict on the wire (the cache pickles it), typed here so
that every key read on the hot path is checked. Ids are strings; a status is
one of a few literals.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

# What a member view says of a user in an organization; only "ok" carries the rest.
MemberStatus = Literal["ok", "not_member", "user_inactive", "org_inactive"]
# Who a principal is: a person, or a service token acting for its creator.
PrincipalKind = Literal["user", "service_token"]


class MemberUser(TypedDict):
    id: str
    username: str
    email: str
    name: str


class MemberOrganization(TypedDict):
    id: str
    name: str
    slug: str
    tier: str
    limits: dict[str, int]


class MemberView(TypedDict):
    """What a user may do in an organization (`auth:member:<org>:<user>`)."""

    status: MemberStatus
    # When it was read from the database (wall clock).
    loaded_at: NotRequired[float]
    user: NotRequired[MemberUser]
    organization: NotRequired[MemberOrganization]
    role: NotRequired[str]
    groups: NotRequired[dict[str, tuple[str, ...]]]


class MemberEntry(TypedDict):
    """A member view in the shared cache, valid while `generation` is the organization's."""

    generation: str
    view: MemberView


class SessionState(TypedDict):
    """A login session's state (`auth:sess:<sid>`); a tombstone holds `revoked` alone."""

    revoked: bool
    user_id: NotRequired[str]
    organization_id: NotRequired[str]
    # Epoch seconds.
    last_activity: NotRequired[float]
    # Session.Kind: api or browser.
    kind: NotRequired[str]
    # When a second factor was last proven in it (epoch seconds), and whether it may only
    # enrol one (its organization requires a factor the person lacked at sign-in).
    mfa_verified_at: NotRequired[float | None]
    mfa_enrolment_required: NotRequired[bool]
