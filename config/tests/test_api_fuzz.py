"""Generated requests against the app's own OpenAPI schema, as an admin and as a viewer.

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
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image as PillowImage
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from conftest import login_client

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


CHECKS = [
    not_a_server_error,
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
def existing_ids(admin: Any, org: Any) -> dict[str, list[str]]:
    """Objects of the organization, made through the API, by the path parameter naming them."""
    from accounts.models import User
    from accounts.services.invitations import invitation_create
    from accounts.tests.factories import MembershipFactory, OrganizationFactory
    from config.celery import app as celery_app

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
    return {
        "group_id": [str(group["id"])],
        "user_id": [str(member.user_id), str(admin.id)],
        "invitation_id": [invited["id"], *(str(invitation.id) for invitation in received)],
        "token_id": [str(token["id"])],
        "image_id": [str(upload["image_id"])],
        "job_id": [str(upload["job_id"])],
        "vehicle_id": [str(report["vehicle_id"])],
    }


@pytest.fixture(params=["admin", "viewer"])
def caller(request: pytest.FixtureRequest) -> Any:
    """The member the requests are made as: the organization's admin, or a viewer."""
    return request.getfixturevalue(request.param)


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
def test_api_answers_within_its_schema(case, data, caller, existing_ids):
    sign_in = login_client(caller).sign_in
    known = {**existing_ids, "session_id": [str(sign_in.session.id)]}
    for name in list(case.path_parameters or {}):
        if name in known and data.draw(st.booleans(), label=f"existing {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(known[name]), label=name)
    with _connection_kept():
        case.call_and_validate(
            headers={"Authorization": f"Bearer {sign_in.tokens['access']}"}, checks=CHECKS
        )
