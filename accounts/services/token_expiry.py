"""Service tokens about to expire: listed, and announced once per threshold to the admins."""

from __future__ import annotations

from datetime import timedelta

import structlog
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership, Organization, Role, ServiceToken, TokenExpiryNotice
from accounts.services.tokens import _audit
from accounts.tokens.documents import token_document
from webhooks.services.events import webhook_event_emit

logger = structlog.get_logger("vantage.tokens")


def tokens_expiring(*, organization: Organization | None, days: int) -> list[ServiceToken]:
    """Active tokens expiring within `days`, soonest first."""
    now = timezone.now()
    tokens = (
        ServiceToken.objects.select_related("organization", "created_by")
        .filter(expires_at__gt=now, expires_at__lte=now + timedelta(days=days))
        .filter(revoked_at__isnull=True)  # a rotating token is being replaced already
        .order_by("expires_at")
    )
    if organization is not None:
        tokens = tokens.filter(organization=organization)
    return list(tokens)


def token_expiry_notify(*, days: int | None = None) -> int:
    """Announce each token's coming expiry once per threshold (audit + mail to org admins).

    The thresholds are the configured ones (7 and 1 days), plus `days` if given.
    """
    thresholds = sorted({*settings.TOKEN_EXPIRY_THRESHOLDS_DAYS, *([days] if days else [])})
    sent = 0
    for token in tokens_expiring(organization=None, days=max(thresholds)):
        remaining = token.expires_at - timezone.now()
        threshold = next(t for t in thresholds if remaining <= timedelta(days=t))
        if _notify_once(token, threshold):
            sent += 1
    return sent


def _notify_once(token: ServiceToken, threshold: int) -> bool:
    try:
        with transaction.atomic():
            TokenExpiryNotice.objects.create(token=token, threshold_days=threshold)
            _audit(
                token,
                "token.expiring",
                expires_at=token.expires_at.isoformat(),
                threshold_days=threshold,
            )
            webhook_event_emit(
                organization_id=token.organization_id,
                type="token.expiring",
                data={**token_document(token), "threshold_days": threshold},
            )
    except IntegrityError:
        return False  # announced at this threshold already
    admins = Membership.objects.filter(
        organization=token.organization, role=Role.ADMIN, user__is_active=True
    ).values_list("user__email", flat=True)
    recipients = [email for email in admins if email]
    if recipients:
        send_mail(
            subject=f"[Vantage] Service token {token.name!r} expires soon",
            message=(
                f"The service token {token.name} ({token.prefix}…) of {token.organization.name} "
                f"expires at {token.expires_at:%Y-%m-%d %H:%M} UTC. Rotate it before then: "
                "POST /api/v1/tokens/{id}/rotate or manage.py rotate_service_token."
            ).replace("{id}", str(token.id)),
            from_email=None,
            recipient_list=recipients,
            fail_silently=False,
        )
    logger.info("token_expiry_notified", token_id=str(token.id), threshold_days=threshold)
    return True
