"""The audit pages of the dashboard: the organization's log, filtered and paged newest first,
its export links, and a verification of its hash chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework import exceptions as drf_exceptions
from rest_framework.request import Request

from accounts.authz.pages import dashboard_page, signed_in_principal
from accounts.views.forms import error_messages
from audit.api.serializers import AuditEventFilterSerializer
from audit.api.views import AuditEventPagination
from audit.models import AuditEvent
from audit.selectors import audit_chain_verify, audit_event_list
from config.errors import NotFound

FILTERS = (
    "action",
    "actor_type",
    "actor_id",
    "outcome",
    "resource_type",
    "resource_id",
    "request_id",
    "since",
    "until",
)
# Offered as suggestions in the action filter: the contract's actions and the log's own.
KNOWN_ACTIONS = (
    "auth.login",
    "auth.login_failed",
    "auth.logout",
    "auth.token_refreshed",
    "auth.refresh_reuse_detected",
    "auth.session_revoked",
    "auth.org_switched",
    "token.created",
    "token.updated",
    "token.rotated",
    "token.revoked",
    "token.emergency_revoke",
    "token.used_after_revocation",
    "token.rotation_reuse_detected",
    "token.ip_denied",
    "token.expiring",
    "token.policy_changed",
    "authz.denied",
    "image.uploaded",
    "image.deleted",
    "org.member_added",
    "org.member_role_changed",
    "org.member_removed",
    "org.group_changed",
    "user.password_changed",
)
EXPORT_URL = "/api/v1/audit/events/export"


def _relative(url: str | None) -> str | None:
    """Return a link of this site without its scheme and host."""
    if not url:
        return None
    parts = urlsplit(url)
    return urlunsplit(("", "", parts.path, parts.query, ""))


def _moment(value: datetime | None) -> str:
    """Return a moment as a datetime-local input shows it (UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if value else ""


@dashboard_page("audit:read")
def audit_page(request: HttpRequest) -> HttpResponse:
    """The organization's audit events, newest first, filtered as the API filters them."""
    principal = signed_in_principal(request)
    raw = {name: value for name in FILTERS if (value := request.GET.get(name, "").strip())}
    context: dict[str, Any] = {
        "values": raw,
        "actions": KNOWN_ACTIONS,
        "actor_types": AuditEvent.ActorType.values,
        "outcomes": AuditEvent.Outcome.values,
    }
    filters = AuditEventFilterSerializer(data=raw)
    if not filters.is_valid():
        context["errors"] = error_messages(filters.errors)
        return render(request, "audit/events.html", context, status=400)
    chosen = filters.validated_data
    events = audit_event_list(organization_id=principal.organization_id, filters=chosen)
    paginator = AuditEventPagination()
    try:
        page: list[AuditEvent] = paginator.paginate_queryset(events, Request(request)) or []
    except drf_exceptions.NotFound:
        raise NotFound("That page of the log does not exist; start from the newest.") from None
    context.update(
        rows=[(event, json.dumps(event.details, indent=2, sort_keys=True)) for event in page],
        values={
            **raw,
            "since": _moment(chosen.get("since")),
            "until": _moment(chosen.get("until")),
        },
        next_page=_relative(paginator.get_next_link()),
        previous_page=_relative(paginator.get_previous_link()),
        export_jsonl=f"{EXPORT_URL}?{urlencode({**raw, 'format': 'jsonl'})}",
        export_csv=f"{EXPORT_URL}?{urlencode({**raw, 'format': 'csv'})}",
        filtered=bool(raw),
    )
    return render(request, "audit/events.html", context)


@dashboard_page("audit:read")
def audit_verify_page(request: HttpRequest) -> HttpResponse:
    """Walk the organization's hash chain, as `manage.py audit_verify` does, and show the result."""
    principal = signed_in_principal(request)
    checked, broken = audit_chain_verify(chain=str(principal.organization_id))
    context = {"checked": checked, "broken": broken}
    return render(request, "audit/verify.html", context)
