"""Finding a service token from a command line: by id or by its (non-secret) prefix."""

from __future__ import annotations

import uuid

from django.core.management.base import CommandError

from accounts.models import ServiceToken


def token_by_id_or_prefix(value: str) -> ServiceToken:
    """Return the one token with this id or prefix; a clear error otherwise."""
    tokens = ServiceToken.objects.select_related("organization", "created_by")
    try:
        found = list(tokens.filter(id=uuid.UUID(value)))
    except ValueError:
        if not value.startswith("sk_") or len(value) < 6:
            raise CommandError(
                f"{value!r} is neither a token id nor a token prefix (sk_...)."
            ) from None
        found = list(tokens.filter(prefix__startswith=value[:12]))
    if not found:
        raise CommandError(f"No service token {value!r}.")
    if len(found) > 1:
        raise CommandError(f"{value!r} matches {len(found)} tokens; give the id instead.")
    return found[0]
