"""The service token pages: list, create (the secret shown once), rotate, revoke, allow-list."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts.api.token_serializers import (
    RevokeAllTokensSerializer,
    TokenCreateSerializer,
    TokenRevokeSerializer,
    TokenRotateSerializer,
    TokenUpdateSerializer,
)
from accounts.authz.pages import dashboard_page, signed_in_principal
from accounts.errors import FormRejected
from accounts.identity.principal import Principal
from accounts.models import Organization, ServiceToken
from accounts.roles import PERMISSION_DESCRIPTIONS, SCOPES, scope_held
from accounts.selectors import (
    organization_get,
    token_family_list,
    token_get,
    token_list,
    token_usage_series,
    token_usage_totals,
)
from accounts.services import token_policies, token_rotations
from accounts.services import tokens as token_services
from accounts.tokens.usage import token_usage_flush
from accounts.views.forms import (
    FORM_REFUSALS,
    GRACE_CHOICES,
    TOKENS_PER_PAGE,
    USAGE_DAYS,
    form_data,
    page_user,
    plural,
    post_only,
    refusal_messages,
    text_lines,
)
from accounts.views.token_secret import secret_redirect
from config.errors import DomainError

# --- Service tokens --------------------------------------------------------------------

SPARK_WIDTH = 120
SPARK_HEIGHT = 28


@dataclass(frozen=True)
class Sparkline:
    """A token's requests per day, drawn as an SVG polyline."""

    points: str
    total: int
    peak: int
    first_day: date
    last_day: date


@dataclass(frozen=True)
class TokenRow:
    token: ServiceToken
    status: str
    # While rotating: when the old secret stops working.
    grace_until: datetime | None
    usage: Sparkline
    # Whether the principal holds every scope of an active token (the service's rule).
    may_rotate: bool


def _sparkline(counts: list[int], since: date) -> Sparkline:
    peak = max(counts, default=0)
    step = SPARK_WIDTH / max(len(counts) - 1, 1)
    usable = SPARK_HEIGHT - 4
    points = " ".join(
        f"{index * step:.1f},{SPARK_HEIGHT - 2 - (count / peak * usable if peak else 0):.1f}"
        for index, count in enumerate(counts)
    )
    last = since + timedelta(days=len(counts) - 1)
    return Sparkline(points=points, total=sum(counts), peak=peak, first_day=since, last_day=last)


def _usage_flushed(tokens: list[ServiceToken]) -> None:
    """Move uses counted in the cache into the database, and into these rows."""
    ids = [str(token.id) for token in tokens]
    if not ids or not token_usage_flush(ids):
        return
    fresh = token_usage_totals(token_ids=ids)
    for token in tokens:
        row: dict[str, Any] = fresh.get(str(token.id), {})
        for name in ("usage_count", "last_used_at", "last_used_ip"):
            if name in row:
                setattr(token, name, row[name])


def _token_rows(principal: Principal, tokens: Iterable[ServiceToken]) -> list[TokenRow]:
    """The tokens with their status, grace end and last 30 days of use, in two queries."""
    tokens = list(tokens)
    _usage_flushed(tokens)
    now = timezone.now()
    since = now.date() - timedelta(days=USAGE_DAYS - 1)
    usage = token_usage_series(
        organization_id=principal.organization_id,
        token_ids=[token.id for token in tokens],
        since=since,
        days=USAGE_DAYS,
    )
    rows = []
    for token in tokens:
        status = token.status_at(now)
        counts = usage[str(token.id)]
        rows.append(
            TokenRow(
                token=token,
                status=status,
                grace_until=token.revoked_at if status == ServiceToken.Status.ROTATING else None,
                usage=_sparkline(counts, since),
                may_rotate=status == ServiceToken.Status.ACTIVE
                and all(scope_held(scope, principal.permissions) for scope in token.scopes),
            )
        )
    return rows


def _tokens_render(
    request: HttpRequest,
    *,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
    values: Any = None,
) -> HttpResponse:
    principal = signed_in_principal(request)
    tokens = token_list(organization_id=principal.organization_id, with_rotations=True)
    page = Paginator(tokens, TOKENS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "rows": _token_rows(principal, page),
        "organization": organization_get(organization_id=principal.organization_id),
        "errors": errors or {},
        "values": values or {},
        "usage_days": USAGE_DAYS,
    }
    return render(request, "accounts/tokens.html", context, status=status)


@dashboard_page("token:manage")
def tokens_page(request: HttpRequest) -> HttpResponse:
    """The organization's service tokens: status, scopes, use, allow-list and rotations."""
    return _tokens_render(request)


def _token_render(
    request: HttpRequest,
    token_id: UUID,
    *,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
    values: Any = None,
) -> HttpResponse:
    principal = signed_in_principal(request)
    token = token_get(organization_id=principal.organization_id, token_id=str(token_id))
    family = token_family_list(
        organization_id=principal.organization_id, family_id=token.family_id or token.id
    )
    context = {
        "row": _token_rows(principal, [token])[0],
        "family": family,
        "grace_choices": GRACE_CHOICES,
        "errors": errors or {},
        "values": values or {"allowed_ips": "\n".join(token.allowed_ips or ())},
        "usage_days": USAGE_DAYS,
    }
    return render(request, "accounts/token.html", context, status=status)


@dashboard_page("token:manage")
def token_page(request: HttpRequest, token_id: UUID) -> HttpResponse:
    """One token: what it is, its rotation family, and the forms that change it."""
    return _token_render(request, token_id)


def _token_form_render(
    request: HttpRequest,
    organization: Organization,
    *,
    status: int = 200,
    refusal: DomainError | None = None,
) -> HttpResponse:
    principal = signed_in_principal(request)
    policy = token_policies.token_policy(organization)
    data = request.POST if request.method == "POST" else None
    context = {
        "scopes": [
            (scope, PERMISSION_DESCRIPTIONS[scope])
            for scope in SCOPES
            if scope_held(scope, principal.permissions)
        ],
        "policy": policy,
        "max_days": policy["max_lifetime_days"] or policy["service_max_lifetime_days"],
        "errors": refusal_messages(refusal) if refusal else [],
        # Shown beside the name too, where the person will change it.
        "name_errors": [
            error["message"]
            for error in (getattr(refusal, "errors", None) or ())
            if error.get("field") == "name"
        ],
        "values": {
            "name": data.get("name", "") if data else "",
            "scopes": data.getlist("scopes") if data else [],
            "expires_in_days": data.get("expires_in_days", "") if data else "",
            "allowed_ips": data.get("allowed_ips", "") if data else "",
        },
    }
    return render(request, "accounts/token_new.html", context, status=status)


@dashboard_page("token:manage", step_up=True)
def token_create_page(request: HttpRequest) -> HttpResponse:
    """The new-token form; once it is sent, the browser goes to the page showing the secret."""
    principal = signed_in_principal(request)
    organization = organization_get(organization_id=principal.organization_id)
    if request.method != "POST":
        return _token_form_render(request, organization)
    values: dict[str, Any] = {
        "name": request.POST.get("name", ""),
        "scopes": request.POST.getlist("scopes"),
        "allowed_ips": text_lines(request.POST.get("allowed_ips", "")),
    }
    if request.POST.get("expires_in_days", "").strip():
        values["expires_in_days"] = request.POST["expires_in_days"].strip()
    try:
        data = form_data(TokenCreateSerializer, values)
        issued = token_services.token_create(
            organization=organization,
            name=data["name"],
            scopes=data["scopes"],
            expires_in_days=data.get("expires_in_days"),
            created_by=page_user(principal),
            grantor=principal,
            allowed_ips=data["allowed_ips"],
        )
    except FORM_REFUSALS as exc:
        return _token_form_render(request, organization, status=exc.status, refusal=exc)
    return secret_redirect(request, issued, rotated=False)


@dashboard_page("token:manage", step_up=True)
@post_only("/tokens/{token_id}/")
def token_rotate_page(request: HttpRequest, token_id: UUID) -> HttpResponse:
    """Issue the token's successor (its secret shown once); the old one works for the grace."""
    principal = signed_in_principal(request)
    token = token_get(organization_id=principal.organization_id, token_id=str(token_id))
    try:
        # Without a grace period given, the API's default applies.
        grace = (
            {"grace_seconds": request.POST["grace_seconds"]}
            if "grace_seconds" in request.POST
            else {}
        )
        data = form_data(TokenRotateSerializer, grace)
        issued = token_rotations.token_rotate(
            token=token, grace_seconds=data["grace_seconds"], grantor=principal
        )
    except FORM_REFUSALS as exc:
        return _token_render(
            request, token_id, status=exc.status, errors={"rotate": refusal_messages(exc)}
        )
    return secret_redirect(request, issued, rotated=True)


@dashboard_page("token:manage")
@post_only("/tokens/{token_id}/")
def token_revoke_page(request: HttpRequest, token_id: UUID) -> HttpResponse:
    """Revoke the token: refused from its next request on."""
    principal = signed_in_principal(request)
    token = token_get(organization_id=principal.organization_id, token_id=str(token_id))
    try:
        data = form_data(TokenRevokeSerializer, {"reason": request.POST.get("reason", "").strip()})
    except FORM_REFUSALS as exc:
        return _token_render(
            request, token_id, status=exc.status, errors={"revoke": refusal_messages(exc)}
        )
    if token_services.token_revoke(token=token, reason=data.get("reason", "")):
        messages.success(request, f"The token {token.name} ({token.prefix}…) is revoked.")
    else:
        messages.info(request, f"The token {token.name} ({token.prefix}…) was revoked already.")
    return redirect(f"/tokens/{token.id}/")


@dashboard_page("token:manage", step_up=True)
@post_only("/tokens/{token_id}/")
def token_allowed_ips_page(request: HttpRequest, token_id: UUID) -> HttpResponse:
    """Replace the token's allow-list of client networks (empty: any address)."""
    principal = signed_in_principal(request)
    token = token_get(organization_id=principal.organization_id, token_id=str(token_id))
    text = request.POST.get("allowed_ips", "")
    try:
        data = form_data(TokenUpdateSerializer, {"allowed_ips": text_lines(text)})
        token = token_services.token_update(token=token, allowed_ips=data["allowed_ips"])
    except FORM_REFUSALS as exc:
        return _token_render(
            request,
            token_id,
            status=exc.status,
            errors={"allowed_ips": refusal_messages(exc)},
            values={"allowed_ips": text},
        )
    networks = ", ".join(token.allowed_ips) or "any address"
    messages.success(request, f"The token {token.name} may now be used from {networks}.")
    return redirect(f"/tokens/{token.id}/")


@dashboard_page("token:manage", step_up=True)
@post_only("/tokens/")
def tokens_revoke_all_page(request: HttpRequest) -> HttpResponse:
    """Emergency: revoke every token of the organization, once its slug is typed to confirm."""
    organization = organization_get(organization_id=signed_in_principal(request).organization_id)
    reason = request.POST.get("reason", "").strip()
    try:
        data = form_data(RevokeAllTokensSerializer, {"reason": reason})
        if request.POST.get("confirm", "").strip() != organization.slug:
            raise FormRejected(
                [f"Type the organization's slug, {organization.slug}, exactly, to confirm."]
            )
        revoked = token_services.tokens_revoke_all(organization=organization, reason=data["reason"])
    except FORM_REFUSALS as exc:
        return _tokens_render(
            request,
            status=exc.status,
            errors={"revoke_all": refusal_messages(exc)},
            values={"reason": reason},
        )
    messages.warning(request, f"Emergency revocation: {plural(revoked, 'token')} revoked.")
    return redirect("/tokens/")
