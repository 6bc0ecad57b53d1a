"""System checks: `check --deploy` warns of webhook settings meant for development only."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security, deploy=True)
def webhook_targets_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Warn when webhooks may reach this network's own addresses or travel unencrypted."""
    found: list[CheckMessage] = []
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        found.append(
            Warning(
                "WEBHOOK_ALLOW_PRIVATE_TARGETS is on: webhook endpoints may point at loopback "
                "and private addresses, so an organization admin can make the server call "
                "services inside its network.",
                hint="Leave WEBHOOK_ALLOW_PRIVATE_TARGETS unset in production.",
                id="webhooks.W001",
            )
        )
    if settings.WEBHOOK_ALLOW_HTTP:
        found.append(
            Warning(
                "WEBHOOK_ALLOW_HTTP is on: webhook endpoints may use plain http://, so events "
                "and their signatures travel unencrypted.",
                hint="Leave WEBHOOK_ALLOW_HTTP unset in production.",
                id="webhooks.W002",
            )
        )
    return found
