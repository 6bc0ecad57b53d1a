"""Shared builders of the identity tests: factory_boy rows, members, tokens through the API."""

import datetime as dt
import re
from typing import Any

import factory
from factory.django import DjangoModelFactory
from rest_framework.test import APIClient

from accounts.models import (
    Group,
    Membership,
    Organization,
    Role,
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
