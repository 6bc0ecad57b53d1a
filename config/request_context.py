"""Who and what a request is: its id, its trace, its client address, for logs and audit."""

from __future__ import annotations

import functools
import ipaddress
import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.http import HttpRequest

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# W3C Trace Context: version-traceid-parentid-flags, lowercase hex.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def new_request_id() -> str:
    """Return a fresh request id."""
    return uuid.uuid4().hex


def accepted_request_id(value: str | None) -> str | None:
    """Return the caller's request id if it is well formed, else None."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return None


def trace_id_from(traceparent: str | None) -> str | None:
    """Return the trace id of a valid W3C `traceparent` header, else None."""
    match = _TRACEPARENT.fullmatch((traceparent or "").strip())
    if not match:
        return None
    version, trace_id, parent_id, _flags = match.groups()
    if version == "ff" or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return None
    return trace_id


def current_request_id() -> str | None:
    """Return the id of the request (or task) being served in this context."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


@functools.lru_cache(maxsize=4096)
def normalized_ip(value: str | None) -> str | None:
    """Return the address in one canonical form (IPv4-mapped IPv6 as IPv4), or None.

    Kept per address: the same few clients and proxies call again and again.
    """
    try:
        address = ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's address, trusting only the configured number of proxies."""
    remote = normalized_ip(request.META.get("REMOTE_ADDR"))
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    # Each trusted proxy appends the address it received the request from,
    # so the client is the proxies-th entry from the right; anything further
    # left was written by the client itself and proves nothing.
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < proxies:
        return remote
    return normalized_ip(forwarded[-proxies]) or remote


@dataclass(frozen=True)
class Actor:
    """Who acts: a user, a service token, an anonymous caller or the system itself."""

    type: str
    id: str = ""
    display: str = ""

    def __str__(self) -> str:
        return f"{self.type}:{self.id}" if self.id else self.type


ANONYMOUS = Actor("anonymous")
SYSTEM = Actor("system", display="system")


@dataclass(frozen=True)
class ClientInfo:
    """Where a request comes from, as the audit log records it."""

    ip: str | None = None
    user_agent: str = ""


_actor: ContextVar[Actor | None] = ContextVar("vantage_actor", default=None)
_NO_CLIENT = ClientInfo()
_client: ContextVar[ClientInfo] = ContextVar("vantage_client", default=_NO_CLIENT)


def begin_context(*, client: ClientInfo, actor: Actor | None = None) -> None:
    """Start the context of one request or task: no principal known yet."""
    _client.set(client)
    _actor.set(actor)


def current_actor() -> Actor:
    """Return who is acting in this context: the authenticated principal, else anonymous."""
    return _actor.get() or ANONYMOUS


def current_client() -> ClientInfo:
    """Return the address and user agent of the request being served, if any."""
    return _client.get()


def bind_principal(actor: Actor, *, org: str | None = None) -> None:
    """Name the authenticated principal (and organization) in audit events and log lines."""
    _actor.set(actor)
    context: dict[str, str] = {"principal": str(actor)}
    if org:
        context["org"] = org
    structlog.contextvars.bind_contextvars(**context)


def bind_staff(request: HttpRequest) -> None:
    """Name the staff member acting in Django admin in audit events and log lines."""
    user = request.user
    bind_principal(Actor("user", str(user.pk), user.get_username()))
