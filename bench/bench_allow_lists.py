"""A service token's IP allow-list: a request with 32 networks to check against one with none.

Goal: the allow-listed request costs no more than 1.05x the other, since the
networks come with the token's cached record and are parsed once per process.
The client's address matches only the last network, so every entry is tried.
"""

from __future__ import annotations

from typing import Any

from django.test import Client

from bench.harness import compare, report, request


def _admin() -> tuple[Any, Any]:
    from accounts.services.organizations import member_add, organization_create, user_create

    org = organization_create(name="Bench allow-lists", slug="bench-allow-lists", tier="enterprise")
    user = user_create(
        username="bench-allow", email="allow@example.com", password="bench-passphrase-12345"
    )
    member_add(organization=org, user=user, role="admin")
    return org, user


def run() -> None:
    from accounts.services.tokens import token_create

    org, user = _admin()
    networks = [f"10.{index}.0.0/16" for index in range(31)] + ["127.0.0.0/8"]
    plain = token_create(
        organization=org, name="plain", scopes=["image:read"], created_by=user
    ).secret
    listed = token_create(
        organization=org,
        name="listed",
        scopes=["image:read"],
        created_by=user,
        allowed_ips=networks,
    ).secret
    client = Client()
    results = compare(
        {
            "service token, no allow-list (baseline)": request(
                client, "/bench/authenticated", HTTP_X_API_KEY=plain
            ),
            "service token, 32-network allow-list": request(
                client, "/bench/authenticated", HTTP_X_API_KEY=listed
            ),
        },
        # Many short rounds: each pair of measurements is taken close together in time.
        rounds=101,
        per_round=25,
    )
    report(
        "A token request with a 32-entry IP allow-list, against one without (goal <= 1.05x)",
        results,
    )
