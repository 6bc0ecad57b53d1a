"""Who and what a request is: its id, its trace, its client address, for logs and audit."""

from __future__ import annotations

import ipaddress
import re
import uuid

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


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's address, trusting only the configured number of proxies."""
    remote = request.META.get("REMOTE_ADDR") or None
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
    candidate = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def bind_principal(*, principal: str, org: str | None = None) -> None:
    """Add the authenticated principal (and organization) to every later log line."""
    context: dict[str, str] = {"principal": principal}
    if org:
        context["org"] = org
    structlog.contextvars.bind_contextvars(**context)
