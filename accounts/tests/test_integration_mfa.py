"""Second factors across server processes: a challenge, a passkey ceremony and a step-up
begun through one process are finished through another, and a code is accepted once."""

import time

import httpx
import pytest

from accounts.tests.factories import (
    PASSWORD,
    MembershipFactory,
    OrganizationFactory,
    totp_code,
    totp_factor_for,
)
from config.testing.passkeys import SoftwareAuthenticator

pytestmark = pytest.mark.integration

ORIGIN = "http://localhost:8000"
# A short step-up window, for the test to outlive it.
SETTINGS = {"WEBAUTHN_RP_ID": "localhost", "WEBAUTHN_ORIGINS": ORIGIN, "MFA_STEP_UP_SECONDS": "2"}


def _post(server, path: str, body: dict | None = None, access: str | None = None):
    headers = {"Authorization": f"Bearer {access}"} if access else {}
    return httpx.post(f"{server.url}{path}", json=body or {}, headers=headers, timeout=10)


def _challenge(server, username: str) -> str:
    response = _post(server, "/api/v1/auth/token", {"username": username, "password": PASSWORD})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "MFA_REQUIRED"
    return response.json()["challenge"]


def test_challenge_from_one_process_is_answered_at_another_and_a_code_works_once(
    server_processes,
):
    org = OrganizationFactory(slug="twoproc-mfa")
    user = MembershipFactory(organization=org, role="admin", user__username="mfa-ada").user
    secret = totp_factor_for(user)
    first, second = server_processes(count=2)

    code = totp_code(secret)
    signed_in = _post(
        second,
        "/api/v1/auth/token/mfa",
        {"challenge": _challenge(first, user.username), "code": code},
    )

    assert signed_in.status_code == 200, signed_in.text
    replay = _post(
        first,
        "/api/v1/auth/token/mfa",
        {"challenge": _challenge(second, user.username), "code": code},
    )
    assert replay.status_code == 401
    assert replay.json()["code"] == "MFA_CODE_INVALID"


def test_passkey_ceremonies_and_step_up_span_processes(server_processes):
    org = OrganizationFactory(slug="twoproc-passkey")
    user = MembershipFactory(organization=org, role="admin", user__username="mfa-bea").user
    first, second = server_processes(count=2, **SETTINGS)
    access = _post(
        first, "/api/v1/auth/token", {"username": user.username, "password": PASSWORD}
    ).json()["access"]
    authenticator = SoftwareAuthenticator(origin=ORIGIN)

    options = _post(first, "/api/v1/auth/mfa/webauthn/options", access=access).json()
    registered = _post(
        second,
        "/api/v1/auth/mfa/webauthn",
        {"name": "Key", "credential": authenticator.register(options)},
        access=access,
    )
    assert registered.status_code == 201, registered.text

    challenge = _challenge(second, user.username)
    sign_in_options = _post(
        first, "/api/v1/auth/token/mfa/webauthn-options", {"challenge": challenge}
    ).json()
    answer = {"challenge": challenge, "webauthn": authenticator.sign(sign_in_options)}
    pair = _post(second, "/api/v1/auth/token/mfa", answer)
    assert pair.status_code == 200, pair.text

    time.sleep(2.5)  # the check made by enrolling the passkey is too old now
    token = {"name": "ci", "scopes": ["image:read"]}
    refused = _post(first, "/api/v1/tokens", token, access=access)
    assert refused.json()["code"] == "MFA_STEP_UP_REQUIRED", refused.text
    step_up_options = _post(
        second, "/api/v1/auth/mfa/step-up/webauthn-options", access=access
    ).json()
    stepped = _post(
        first,
        "/api/v1/auth/mfa/step-up",
        {"webauthn": authenticator.sign(step_up_options)},
        access=access,
    )
    assert stepped.status_code == 200, stepped.text
    created = _post(second, "/api/v1/tokens", token, access=access)
    assert created.status_code == 201, created.text
