"""An organization's service token policy: a bound on lifetimes, an allow-list required."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import Organization
from audit.services import audit_record
from config.errors import InvalidInput

# A keyword argument not given, as distinct from one given as None.
UNCHANGED: Any = object()


@transaction.atomic
def token_policy_set(
    *,
    organization: Organization,
    max_lifetime_days: int | object | None = UNCHANGED,
    require_allowed_ips: bool | object = UNCHANGED,
) -> Organization:
    """Change the organization's token policy (None lifts the lifetime bound); audited.

    It applies to tokens created or rotated from now on.
    """
    organization = Organization.objects.select_for_update(no_key=True).get(id=organization.id)
    changes: dict[str, Any] = {}
    if max_lifetime_days is not UNCHANGED:
        if max_lifetime_days is not None and (
            not isinstance(max_lifetime_days, int)
            or not 1 <= max_lifetime_days <= settings.TOKEN_MAX_LIFETIME_DAYS
        ):
            raise InvalidInput(
                f"max_lifetime_days must be between 1 and {settings.TOKEN_MAX_LIFETIME_DAYS}, "
                "or null for no bound beyond the service's.",
                field="max_lifetime_days",
            )
        if max_lifetime_days != organization.token_max_lifetime_days:
            changes["max_lifetime_days"] = {
                "from": organization.token_max_lifetime_days,
                "to": max_lifetime_days,
            }
            organization.token_max_lifetime_days = max_lifetime_days
    if require_allowed_ips is not UNCHANGED:
        if not isinstance(require_allowed_ips, bool):
            raise InvalidInput(
                "require_allowed_ips must be true or false.", field="require_allowed_ips"
            )
        if require_allowed_ips != organization.require_allowed_ips:
            changes["require_allowed_ips"] = {
                "from": organization.require_allowed_ips,
                "to": require_allowed_ips,
            }
            organization.require_allowed_ips = require_allowed_ips
    if changes:
        organization.save(update_fields=["token_max_lifetime_days", "require_allowed_ips"])
        audit_record(
            action="token.policy_changed",
            organization_id=organization.id,
            organization_display=organization.slug,
            resource_type="organization",
            resource_id=str(organization.id),
            details=changes,
        )
    return organization


def token_policy(organization: Organization) -> dict[str, Any]:
    """Return the organization's token policy as the API shows it."""
    return {
        "max_lifetime_days": organization.token_max_lifetime_days,
        "require_allowed_ips": organization.require_allowed_ips,
        "service_max_lifetime_days": settings.TOKEN_MAX_LIFETIME_DAYS,
    }
