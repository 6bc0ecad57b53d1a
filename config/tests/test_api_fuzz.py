"""Generated requests against the app's own OpenAPI schema, as an admin, a viewer and a
service token holding only `image:read`.

Schemathesis reads GET /api/schema/ from the WSGI application in process and
sends every operation requests built from it: valid ones, invalid ones and
the boundary cases of each parameter. Every answer must be no 5xx, must match
the schema (status, content type, headers, body) and, when it is problem
details, must carry its `code` and the `request_id` of the response.

Each generated request signs in afresh, so an operation that ends the
caller's own session (logout, revoke-all, deleting the current session) is
fuzzed like any other without spoiling the requests after it; no operation
is excluded. Path parameters are either generated or, as Hypothesis chooses,
the id of an object that exists in the caller's organization (made through
the API before each operation, its image processed as a worker would), so
the success paths are reached too, not only 404s. The examples per operation
are bounded and the same on every run, so that the whole module runs in a
few minutes on two cores and a failure is reproducible.

A second organization, seeded with names and ids found nowhere else, lives
beside the caller's: no answer may carry any of them. Every operation taking
a body is also sent JSON nested a thousand levels deep and JSON larger than a
request body may be, and must answer a 4xx problem.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.test import Client
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image as PillowImage
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.testing.http import login_client
from config.wsgi import application

# Examples per operation and generation phase; the coverage phase adds each
# parameter's boundary cases on top, whatever this says.
MAX_EXAMPLES = 10

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "max-examples": MAX_EXAMPLES,
            # The same requests on every run: a failure here is reproducible.
            "deterministic": True,
            # No .hypothesis/ directory in the work tree.
            "database": "none",
            # The test signs in itself; generated credentials would only be refused.
            "with-security-parameters": False,
        },
    }
)

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG)


def problem_details_identify_themselves(ctx: Any, response: Any, case: Any) -> bool | None:
    """A problem-details answer names its `code` and the `request_id` of its response."""
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("application/problem+json"):
        return None
    body = json.loads(response.content)
    assert isinstance(body, dict), f"problem details are not an object: {body!r}"
    assert body.get("code"), f"problem details without a code: {body!r}"
    assert body.get("request_id"), f"problem details without a request_id: {body!r}"
    request_id = (response.headers.get("x-request-id") or [""])[0]
    assert body["request_id"] == request_id, (
        f"problem details name request {body['request_id']!r}, the response {request_id!r}"
    )
    return True


# What the second organization was seeded with, for the test running now.
_other_tenant_markers: list[str] = []


def other_tenant_markers_in(content: bytes) -> list[str]:
    """Return the second organization's names and ids that an answer carries."""
    text = content.decode(errors="replace").lower()
    return [marker for marker in _other_tenant_markers if marker.lower() in text]


def no_other_tenant_data(ctx: Any, response: Any, case: Any) -> bool | None:
    """No answer carries a name or id of another organization."""
    leaked = other_tenant_markers_in(response.content)
    assert not leaked, f"the answer carries another organization's {leaked}: {response.text[:300]}"
    return True


CHECKS = [
    not_a_server_error,
    no_other_tenant_data,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    problem_details_identify_themselves,
]


@contextmanager
def _connection_kept() -> Iterator[None]:
    """Keep the test's transaction open across a request to the WSGI application.

    The handler closes the database connection when a request ends, which
    would end the test's transaction; Django's own test client does the same
    as this around each request it makes.
    """
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _png() -> io.BytesIO:
    data = io.BytesIO()
    PillowImage.new("RGB", (64, 48), (200, 30, 30)).save(data, format="PNG")
    data.seek(0)
    data.name = "seed.png"
    return data


def _created(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.content
    return dict(response.json())


@pytest.fixture
def existing_ids(admin: Any, org: Any, settings: Any) -> dict[str, list[str]]:
    """Objects of the organization, made through the API, by the path parameter naming them."""
    from accounts.models import User
    from accounts.services.invitations import invitation_create
    from accounts.tests.factories import MembershipFactory, OrganizationFactory
    from config.celery import app as celery_app
    from config.testing.webhook_receiver import RESOLVER_ANSWERS, TABLE_RESOLVER

    # Webhook hosts resolve through a table, never DNS: only the seeded endpoint's name does.
    settings.WEBHOOK_RESOLVER = TABLE_RESOLVER
    RESOLVER_ANSWERS.clear()
    RESOLVER_ANSWERS["hooks.example.com"] = ["93.184.215.14"]

    client = login_client(admin)
    group = _created(
        client.post(
            "/api/v1/orgs/current/groups",
            {"name": "editors", "permissions": ["image:read"]},
            format="json",
        )
    )
    member = MembershipFactory(organization=org, role="user", user__username="erin")
    invited = _created(
        client.post(
            "/api/v1/orgs/current/invitations",
            {"email": "newcomer@example.com", "role": "user", "groups": ["editors"]},
            format="json",
        ),
        status=202,
    )
    # Invitations of another organization to everyone of this one, to accept or decline.
    other = OrganizationFactory(slug="fuzz-other")
    received = [
        invitation_create(organization=other, email=user.email, role="viewer")
        for user in User.objects.filter(memberships__organization=org)
    ]
    token = _created(
        client.post("/api/v1/tokens", {"name": "ci", "scopes": ["image:read"]}, format="json")
    )
    upload = _created(
        client.post("/api/v1/images/upload", {"file": _png()}, format="multipart"), status=202
    )
    # Processed as a worker would, so the image has its thumbnail and classification.
    celery_app.loader.import_default_modules()
    outcome = celery_app.tasks["images.job_run"].apply(args=[upload["job_id"]])
    assert outcome.successful(), outcome.traceback
    report = _created(
        client.post(
            "/api/v1/vehicle/report",
            {"vehicle_id": "truck-7", "image_id": upload["image_id"], "data": {"seen": "gate"}},
            format="json",
        )
    )
    endpoint = _created(
        client.post(
            "/api/v1/webhooks/endpoints",
            {"url": "https://hooks.example.com/in", "event_types": ["job.succeeded"]},
            format="json",
        )
    )
    ping = _created(client.post(f"/api/v1/webhooks/endpoints/{endpoint['id']}/ping"), status=202)
    return {
        "endpoint_id": [str(endpoint["id"])],
        "delivery_id": [str(ping["id"])],
        "group_id": [str(group["id"])],
        "user_id": [str(member.user_id), str(admin.id)],
        "invitation_id": [invited["id"], *(str(invitation.id) for invitation in received)],
        "token_id": [str(token["id"])],
        "image_id": [str(upload["image_id"])],
        "job_id": [str(upload["job_id"])],
        "vehicle_id": [str(report["vehicle_id"])],
    }


@pytest.fixture
def other_tenant(db: None) -> Iterator[list[str]]:
    """Another organization with one of each thing, under names found nowhere else."""
    from accounts.services.tokens import token_create
    from accounts.tests.factories import GroupFactory, MembershipFactory, OrganizationFactory
    from classifier.models import VehicleReport
    from images.tests.factories import ImageFactory
    from webhooks.tests.factories import endpoint_for

    other: Any = OrganizationFactory(name="Globex Hidden Works", slug="globex-hidden")
    owner = MembershipFactory(
        organization=other,
        role="admin",
        user__username="zelda-globex",
        user__email="zelda@globex-hidden.example",
        user__name="Zelda Globexian",
    ).user
    group = GroupFactory(organization=other, name="globex-auditors", permissions=["image:read"])
    image = ImageFactory(organization=other, filename="globex-blueprints.jpg")
    token = token_create(
        organization=other, name="globex-deploy", scopes=["image:read"], created_by=owner
    ).token
    report = VehicleReport.objects.create(
        organization=other,
        vehicle_id="globex-truck-9",
        data={"seen": "globex-yard"},
        reported_by=f"user:{owner.id}",
        reported_by_display="Zelda Globexian",
    )
    endpoint = endpoint_for(other, url="https://hooks.globex-hidden.example/in")
    markers = [
        "globex",
        str(other.id),
        str(owner.id),
        str(group.id),
        str(image.id),
        str(token.id),
        token.prefix,
        str(report.id),
        str(endpoint.id),
        endpoint.secret,
    ]
    _other_tenant_markers[:] = markers
    yield markers
    _other_tenant_markers.clear()


@dataclass(frozen=True)
class Caller:
    """Who the requests are made as, and how each request is given fresh credentials."""

    name: str
    credentials: Callable[[], tuple[dict[str, str], dict[str, list[str]]]]


def _member_caller(user: Any) -> Caller:
    def credentials() -> tuple[dict[str, str], dict[str, list[str]]]:
        sign_in = login_client(user).sign_in
        headers = {"Authorization": f"Bearer {sign_in.tokens['access']}"}
        return headers, {"session_id": [str(sign_in.session.id)]}

    return Caller(user.username, credentials)


def _token_caller(org: Any, admin: Any) -> Caller:
    from accounts.services.tokens import token_create

    def credentials() -> tuple[dict[str, str], dict[str, list[str]]]:
        # A name of its own each time: a live token's name is taken in its organization.
        issued = token_create(
            organization=org,
            name=f"narrow-{uuid.uuid4().hex[:8]}",
            scopes=["image:read"],
            created_by=admin,
        )
        return {"Authorization": f"Bearer {issued.secret}"}, {}

    return Caller("narrow-token", credentials)


@pytest.fixture(params=["admin", "viewer", "narrow_token"])
def caller(request: pytest.FixtureRequest, org: Any, admin: Any) -> Caller:
    """The organization's admin, a viewer, or a service token holding only image:read."""
    if request.param == "narrow_token":
        return _token_caller(org, admin)
    return _member_caller(request.getfixturevalue(request.param))


@pytest.mark.django_db
@schema.given(data=st.data())
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    # Fixtures are per operation, not per example, by design (see the module's docstring).
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_api_answers_within_its_schema(case, data, caller, existing_ids, other_tenant):
    headers, session = caller.credentials()
    known = {**existing_ids, **session}
    for name in list(case.path_parameters or {}):
        if name in known and data.draw(st.booleans(), label=f"existing {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(known[name]), label=name)
    with _connection_kept():
        case.call_and_validate(headers=headers, checks=CHECKS)


def _operations_with_bodies() -> list[tuple[str, str]]:
    """Return the method and path of every operation whose request has a body."""
    document = json.loads(Client().get("/api/schema/?format=json").content)
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]


def _bad_bodies() -> dict[str, bytes]:
    limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return {
        "nested": b"[" * 1_000 + b"]" * 1_000,
        "nested-in-an-object": b'{"data": ' + b"[" * 100 + b"]" * 100 + b"}",
        "oversized": b'{"name": "' + b"x" * limit + b'"}',
    }


@pytest.mark.django_db
def test_deep_and_oversized_bodies_answer_a_problem_everywhere(caller, existing_ids, other_tenant):
    known = {name: values[0] for name, values in existing_ids.items()}
    bad_bodies = _bad_bodies()
    failures = []
    for method, template in _operations_with_bodies():
        path = re.sub(r"\{(\w+)\}", lambda found: known.get(found[1], str(uuid.uuid4())), template)
        for kind, body in bad_bodies.items():
            headers, _ = caller.credentials()
            client = APIClient()
            response = client.generic(
                method,
                path,
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=headers["Authorization"],
            )
            problem = response.get("Content-Type", "").startswith("application/problem+json")
            if not (400 <= response.status_code < 500 and problem):
                failures.append(f"{method} {path} {kind}: {response.status_code}")
            if leaked := other_tenant_markers_in(response.content):
                failures.append(f"{method} {path} {kind}: carries {leaked}")
    assert not failures, failures
