"""Registering, changing, rotating and disabling an organization's webhook endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization, Role
from audit.services import audit_record
from config.errors import InvalidInput
from config.ids import Id
from webhooks import metrics
from webhooks.errors import EndpointUrlRefused, TargetRefused
from webhooks.models import WebhookEndpoint
from webhooks.network import url_check
from webhooks.signing import secret_generate

logger = structlog.get_logger("vantage.webhooks")

MAX_ENDPOINTS_PER_ORGANIZATION = 20


@dataclass(frozen=True)
class IssuedSecret:
    endpoint: WebhookEndpoint
    # The signing secret, shown this once.
    secret: str


def url_origin(url: str) -> str:
    """Return the URL's scheme, host and port only: its path may hold a credential (a chat
    service's incoming-webhook URL does), which the append-only audit log must not keep."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _audit(endpoint: WebhookEndpoint, action: str, **details: Any) -> None:
    audit_record(
        action=action,
        organization_id=endpoint.organization_id,
        resource_type="webhook_endpoint",
        resource_id=str(endpoint.id),
        details={"url": url_origin(endpoint.url), **details},
    )


def endpoint_url_checked(url: str) -> str:
    """Return the URL, or refuse it (400) when its form or its host's addresses are not allowed."""
    try:
        url_check(url)
    except TargetRefused as exc:
        raise EndpointUrlRefused(str(exc)) from exc
    return url


def endpoint_room_checked(*, organization: Organization) -> None:
    """Refuse (400) a new endpoint for an organization that has as many as it may register."""
    if WebhookEndpoint.objects.filter(organization=organization).count() >= (
        MAX_ENDPOINTS_PER_ORGANIZATION
    ):
        raise InvalidInput(
            f"An organization may register at most {MAX_ENDPOINTS_PER_ORGANIZATION} endpoints.",
            field="url",
        )


@transaction.atomic
def endpoint_create(
    *,
    organization: Organization,
    url: str,
    event_types: list[str],
    description: str = "",
    created_by_id: Id | None = None,
) -> IssuedSecret:
    """Register an endpoint; the answer carries its signing secret, shown this once."""
    endpoint_room_checked(organization=organization)
    secret = secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        organization=organization,
        url=endpoint_url_checked(url),
        description=description,
        event_types=sorted(set(event_types)),
        secret=secret,
        created_by_id=created_by_id,
    )
    _audit(endpoint, "webhook.endpoint_created", event_types=endpoint.event_types)
    return IssuedSecret(endpoint, secret)


@transaction.atomic
def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    description: str | None = None,
    event_types: list[str] | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change an endpoint's address, description, subscriptions or whether it is enabled."""
    changed: dict[str, Any] = {}
    if url is not None and url != endpoint.url:
        changed["url"] = {"from": url_origin(endpoint.url), "to": url_origin(url)}
        endpoint.url = endpoint_url_checked(url)
    if description is not None and description != endpoint.description:
        changed["description"] = description
        endpoint.description = description
    if event_types is not None and sorted(set(event_types)) != endpoint.event_types:
        endpoint.event_types = sorted(set(event_types))
        changed["event_types"] = endpoint.event_types
    if enabled is not None and enabled != endpoint.is_enabled:
        changed["enabled"] = enabled
        endpoint.is_enabled = enabled
        endpoint.disabled_at = None if enabled else timezone.now()
        endpoint.disabled_reason = "" if enabled else "Disabled by an administrator."
        endpoint.failing_since = None
    if not changed:
        return endpoint
    endpoint.updated_at = timezone.now()
    endpoint.save()
    action = "webhook.endpoint_disabled" if changed.get("enabled") is False else None
    _audit(endpoint, action or "webhook.endpoint_changed", changes=changed)
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint with its pending deliveries and its delivery log."""
    _audit(endpoint, "webhook.endpoint_deleted")
    endpoint.delete()


@transaction.atomic
def endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> IssuedSecret:
    """Give the endpoint a new secret; the previous one keeps signing for the overlap."""
    secret = secret_generate()
    overlap = timedelta(seconds=settings.WEBHOOK_SECRET_OVERLAP_SECONDS)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + overlap
    endpoint.secret = secret
    endpoint.updated_at = timezone.now()
    endpoint.save()
    _audit(
        endpoint,
        "webhook.secret_rotated",
        previous_valid_until=endpoint.previous_secret_expires_at.isoformat(),
    )
    return IssuedSecret(endpoint, secret)


def endpoint_signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    """Return the secrets that sign now: the current one, and the previous during the overlap."""
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > timezone.now():
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


@transaction.atomic
def endpoint_disable_failing(*, endpoint_id: Id) -> bool:
    """Disable an endpoint that has failed for WEBHOOK_DISABLE_AFTER_SECONDS; mail its
    organization's admins. Returns False if it is enabled no more, or not failing that long."""
    endpoint = WebhookEndpoint.objects.select_for_update().filter(id=endpoint_id).first()
    limit = timezone.now() - timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS)
    if endpoint is None or not endpoint.is_enabled or endpoint.failing_since is None:
        return False
    if endpoint.failing_since > limit:
        return False
    endpoint.is_enabled = False
    endpoint.disabled_at = timezone.now()
    endpoint.disabled_reason = (
        f"Every delivery failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC."
    )
    endpoint.save()
    _audit(endpoint, "webhook.endpoint_disabled", reason=endpoint.disabled_reason, automatic=True)
    metrics.ENDPOINTS_DISABLED.inc()
    transaction.on_commit(lambda: _disabled_mail(endpoint))
    logger.warning("webhook_endpoint_disabled", endpoint_id=str(endpoint.id))
    return True


def _disabled_mail(endpoint: WebhookEndpoint) -> None:
    admins = Membership.objects.filter(
        organization_id=endpoint.organization_id, role=Role.ADMIN, user__is_active=True
    ).values_list("user__email", flat=True)
    recipients = [email for email in admins if email]
    if not recipients:
        return
    send_mail(
        subject="[Vantage] A webhook endpoint was disabled",
        message=(
            # The origin only: a receiver's path may hold its credential (chat services').
            f"The webhook endpoint at {url_origin(endpoint.url)} "
            f'("{endpoint.description}") was disabled: {endpoint.disabled_reason} '
            "Fix the receiver, then enable the endpoint again on the Webhooks page or with "
            f'PATCH /api/v1/webhooks/endpoints/{endpoint.id} {{"enabled": true}}; '
            "the deliveries that failed can be sent again from its delivery log."
        ),
        from_email=None,
        recipient_list=recipients,
        fail_silently=True,
    )
