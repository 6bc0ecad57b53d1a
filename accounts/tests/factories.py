"""Shared builders of the identity tests: factory_boy rows, members, tokens through the API."""

import datetime as dt
import re
import time
from typing import Any

import factory
from factory.django import DjangoModelFactory
from rest_framework.test import APIClient

from accounts.identity.second_factors import (
    recovery_code_digest,
    recovery_codes_new,
    totp_code_now,
    totp_secret_new,
    totp_secret_seal,
)
from accounts.models import (
    Group,
    Membership,
    Organization,
    RecoveryCode,
    Role,
    TotpFactor,
    User,
)
from accounts.services import tokens as token_services
from config.testing.http import PASSWORD, assert_problem

TOKENS = "/api/v1/tokens"
SECRET = re.compile(r"^sk_[0-9a-f]{64}$")
TOKEN_FIELDS = {
    "id",
    "name",
    "prefix",
    "scopes",
    "created_by",
    "created_at",
    "expires_at",
    "last_used_at",
    "last_used_ip",
    "usage_count",
    "status",
    "revoked_at",
    "revoked_reason",
    "grace_until",
    "rotated_from",
    "family_id",
    "rotated_by",
    "self_rotated",
    "allowed_ips",
}
ORG_CURRENT = "/api/v1/orgs/current"


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    tier = Organization.Tier.PRO


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    name = factory.LazyAttribute(lambda u: u.username.title())
    password = factory.django.Password(PASSWORD)


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.USER


class GroupFactory(DjangoModelFactory):
    class Meta:
        model = Group

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"group-{n}")
    permissions = factory.LazyFunction(list)


def member_of(org: Organization, role: str, username: str) -> Any:
    """Make a user named `username` a member of `org` with `role`; return the user."""
    return MembershipFactory(organization=org, role=role, user__username=username).user


def detail_url(token_id: str) -> str:
    return f"{TOKENS}/{token_id}"


def rotate_url(token_id: str) -> str:
    return f"{TOKENS}/{token_id}/rotate"


def usage_url(token_id: str) -> str:
    return f"{TOKENS}/{token_id}/usage"


def create_token(client: APIClient, **body: Any) -> dict[str, Any]:
    """Create a token through the API and return the 201 body (with its secret)."""
    payload = {"name": "ci-pipeline", "scopes": ["image:read"], **body}
    response = client.post(TOKENS, payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def as_token(secret: str, path: str = ORG_CURRENT) -> Any:
    """Make one GET request authenticated by the service token."""
    return APIClient().get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")


def parse(value: str) -> dt.datetime:
    assert value.endswith("Z"), value
    return dt.datetime.fromisoformat(value)


def close_to(value: str, expected: dt.datetime, seconds: float = 30) -> bool:
    return abs(parse(value) - expected) < dt.timedelta(seconds=seconds)


def invalid(response: Any, field: str | None = None) -> dict[str, Any]:
    """Assert a 400 VALIDATION_ERROR listing its errors (naming `field` when given)."""
    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert body["errors"], body
    assert all({"field", "message", "code"} <= set(error) for error in body["errors"])
    if field is not None:
        fields = [error["field"] or "" for error in body["errors"]]
        assert any(name == field or name.startswith(f"{field}[") for name in fields), body
    return body


def issue(org: Any, creator: Any, name: str = "pipeline", **kwargs: Any) -> Any:
    kwargs.setdefault("scopes", ["image:read"])
    return token_services.token_create(organization=org, name=name, created_by=creator, **kwargs)


MFA_FACTORS = "/api/v1/auth/mfa/factors"
TOKEN_URL = "/api/v1/auth/token"
TOKEN_MFA_URL = "/api/v1/auth/token/mfa"
STEP_UP_URL = "/api/v1/auth/mfa/step-up"


def totp_factor_for(user: Any, name: str = "Phone") -> str:
    """Give the person a confirmed authenticator app that has accepted no code yet; its secret."""
    secret = totp_secret_new()
    TotpFactor.objects.create(
        user=user, name=name, secret=totp_secret_seal(secret), confirmed_at=dt.datetime.now(dt.UTC)
    )
    return secret


def recovery_codes_for(user: Any) -> list[str]:
    """Give the person ten fresh recovery codes; return them."""
    codes = recovery_codes_new()
    RecoveryCode.objects.filter(user=user).delete()
    for code in codes:
        RecoveryCode.objects.create(
            user=user, digest=recovery_code_digest(code, user_id=str(user.id))
        )
    return codes


def totp_code(secret: str, *, steps_ahead: int = 0) -> str:
    """The code the app shows now, or that many 30-second steps later (within clock drift)."""
    return totp_code_now(secret, at=time.time() + 30 * steps_ahead)


def mfa_challenge(username: str) -> str:
    """Sign in with the password of a person who has a factor; return the challenge id."""
    response = APIClient().post(
        TOKEN_URL, {"username": username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["code"] == "MFA_REQUIRED", body
    return str(body["challenge"])


def mfa_login_client(user: Any, secret: str, *, steps_ahead: int = 0) -> APIClient:
    """An API client signed in with the password and an authenticator-app code."""
    challenge = mfa_challenge(user.username)
    response = APIClient().post(
        TOKEN_MFA_URL,
        {"challenge": challenge, "code": totp_code(secret, steps_ahead=steps_ahead)},
        format="json",
    )
    assert response.status_code == 200, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return client
