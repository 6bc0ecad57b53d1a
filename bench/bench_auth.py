"""JWT authentication with the revocation check, against a bare DRF view."""

from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.harness import compare, report, request


def _signed_in_token() -> str:
    from accounts.services.organizations import member_add, organization_create, user_create
    from accounts.services.sessions import auth_login

    org = organization_create(name="Bench", slug="bench-auth", tier="enterprise")
    user = user_create(
        username="bench-user", email="bench@example.com", password="bench-passphrase-12345"
    )
    member_add(organization=org, user=user, role="user")
    return auth_login(login="bench-user", password="bench-passphrase-12345").tokens["access"]


def run() -> None:
    client = Client()
    bearer: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {_signed_in_token()}"}
    authenticated = request(client, "/bench/authenticated", **bearer)
    authenticated()  # warm the session and member caches
    with CaptureQueriesContext(connection) as queries:
        authenticated()
    results = compare(
        {
            "bare DRF view (baseline)": request(client, "/bench/bare"),
            "same view, JWT + revocation check + permission": authenticated,
            "GET /api/v1/auth/me (JWT, reads the user)": request(
                client, "/api/v1/auth/me", **bearer
            ),
        }
    )
    report("JWT authentication (warm caches)", results)
    print(f"database queries of an authenticated request, warm: {len(queries.captured_queries)}")
