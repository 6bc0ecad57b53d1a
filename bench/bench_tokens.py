"""Service tokens: a token-authenticated request against a JWT one, and verification at scale."""

from __future__ import annotations

import gc
import hashlib
import secrets
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from bench.harness import compare, report, request

BATCH = 20_000


def _org_admin() -> tuple[Any, Any, str]:
    from accounts.services.organizations import member_add, organization_create, user_create
    from accounts.services.sessions import auth_login

    org = organization_create(name="Bench tokens", slug="bench-tokens", tier="enterprise")
    user = user_create(
        username="bench-tokens", email="tokens@example.com", password="bench-passphrase-12345"
    )
    member_add(organization=org, user=user, role="admin")
    access = auth_login(login="bench-tokens", password="bench-passphrase-12345").tokens["access"]
    return org, user, access


def _filler_tokens(org: Any, user: Any, count: int) -> None:
    """Store `count` more tokens (random digests: only the table's size matters here)."""
    from accounts.models import ServiceToken

    expires = timezone.now() + timedelta(days=90)
    remaining = count
    while remaining:
        batch = []
        for _ in range(min(BATCH, remaining)):
            secret = "sk_" + secrets.token_hex(32)
            batch.append(
                ServiceToken(
                    organization=org,
                    name="filler",
                    scopes=["image:read"],
                    created_by=user,
                    expires_at=expires,
                    prefix=secret[:12],
                    digest=hashlib.sha256(secret.encode()).hexdigest(),
                )
            )
        ServiceToken.objects.bulk_create(batch, batch_size=5000)
        remaining -= len(batch)


def _verification(raw: str) -> dict[str, Any]:
    from accounts.tokens.format import token_digest
    from accounts.tokens.principal import principal_for_token
    from accounts.tokens.records import record_key

    key = record_key(token_digest(raw))

    def cold() -> None:
        cache.delete(key)
        principal_for_token(raw)

    def warm() -> None:
        principal_for_token(raw)

    return {"cold (database lookup)": cold, "warm (cached record)": warm}


def run() -> None:
    from accounts.services.tokens import token_create

    org, user, access = _org_admin()
    secret = token_create(
        organization=org, name="bench", scopes=["image:read", "token:manage"], created_by=user
    ).secret
    client = Client()
    results = compare(
        {
            "bare DRF view (baseline)": request(client, "/bench/bare"),
            "same view, JWT": request(
                client, "/bench/authenticated", HTTP_AUTHORIZATION=f"Bearer {access}"
            ),
            "same view, service token (X-API-Key)": request(
                client, "/bench/authenticated", HTTP_X_API_KEY=secret
            ),
        }
    )
    report("A request authenticated by a service token, against JWT", results)

    _filler_tokens(org, user, 1_000)
    gc.collect()
    at_1k = compare(_verification(secret), rounds=15, per_round=100)
    started = time.perf_counter()
    _filler_tokens(org, user, 999_000)
    print(f"stored 999,000 more tokens in {time.perf_counter() - started:.1f}s")
    gc.collect()  # the million model objects built to store them are garbage now
    at_1m = compare(_verification(secret), rounds=15, per_round=100)
    for index, kind in enumerate(("cold (database lookup)", "warm (cached record)")):
        report(
            f"Token verification, {kind}",
            [
                replace(at_1k[index], name="1,000 tokens stored"),
                replace(at_1m[index], name="1,000,000 tokens stored"),
            ],
        )
