"""Running the token management commands in tests, as an operator would."""

from __future__ import annotations

import io
from typing import Any

from django.core.management import call_command

from accounts.models import ServiceToken
from accounts.tokens.format import token_digest


def run(*args: Any) -> str:
    """Run a management command; return what it printed on stdout."""
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def create(org_slug: str, name: str, scopes: str = "image:read", *extra: str) -> tuple[str, str]:
    """Create a token with the command; return (its secret, everything printed)."""
    out = run("create_service_token", "--org", org_slug, "--name", name, "--scopes", scopes, *extra)
    return out.splitlines()[-1], out


def token_for(secret: str) -> ServiceToken:
    return ServiceToken.objects.get(digest=token_digest(secret))
