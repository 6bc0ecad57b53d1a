"""What each tier may do, and an organization's effective limits with its own overrides."""

from __future__ import annotations

from typing import Any

from django.conf import settings

# The limits an organization may override one by one.
LIMIT_FIELDS = ("requests_per_minute", "uploads_per_day", "max_file_size_bytes")


def tier_limits(tier: str) -> dict[str, int]:
    """Return a tier's numbers (anonymous, free, pro or enterprise)."""
    return dict(settings.TIER_LIMITS[tier])


def tier_pages_per_minute(tier: str) -> int:
    """Return how many dashboard pages a principal of the tier may load a minute."""
    return int(settings.TIER_PAGES_PER_MINUTE[tier])


def organization_limits(organization: Any) -> dict[str, int]:
    """Return the organization's effective limits: its tier's, with its overrides applied."""
    limits = tier_limits(organization.tier)
    for name in LIMIT_FIELDS:
        value = getattr(organization, name)
        if value is not None:
            limits[name] = int(value)
    return limits
