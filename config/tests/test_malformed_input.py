"""Malformed input answers a 4xx problem and changes nothing: deep nesting, oversized
bodies, cursors the API never gave out, NUL characters in any text."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from classifier.models import VehicleReport
from config.parsers import MAX_JSON_DEPTH
from config.testing.http import assert_problem, login_client
from images.models import Image as StoredImage

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token"
REPORT_URL = "/api/v1/vehicle/report"
AUDIT_URL = "/api/v1/audit/events"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _post_raw(client, url: str, body: str | bytes):
    return client.generic("POST", url, body, content_type="application/json")


@pytest.mark.parametrize("depth", [1_000, 50_000])
def test_deeply_nested_json_is_refused_with_a_problem(api_client, depth, log_lines):
    response = _post_raw(api_client, TOKEN_URL, _nested(depth))

    assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert not [line for line in log_lines() if line.get("level") == "error"]


def test_json_nested_past_the_limit_is_refused_before_the_view_sees_it(member_client):
    data = json.loads(_nested(MAX_JSON_DEPTH))  # one level is the report's own object
    response = member_client.post(
        REPORT_URL, {"vehicle_id": "truck-7", "data": {"deep": data}}, format="json"
    )

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert body["errors"][0]["code"] == "nesting_too_deep"
    assert str(MAX_JSON_DEPTH) in body["detail"]
    assert not VehicleReport.objects.exists()


def test_json_nested_within_the_limit_is_accepted(member_client):
    data = json.loads(_nested(MAX_JSON_DEPTH - 2))
    response = member_client.post(
        REPORT_URL, {"vehicle_id": "truck-7", "data": {"deep": data}}, format="json"
    )

    assert response.status_code == 201, response.content


def test_a_json_body_over_the_memory_limit_is_refused_unread(member_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4_096
    body = json.dumps({"vehicle_id": "truck-7", "data": {"note": "x" * 8_000}})

    response = _post_raw(member_client, REPORT_URL, body)

    assert_problem(response, status=413, code="FILE_TOO_LARGE")
    assert not VehicleReport.objects.exists()


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"vehicle_id": "truck-7", "data": {"note": "gate\u0000 3"}}, "data.note"),
        ({"vehicle_id": "truck-7", "data": {"seen": ["ok", "\u0000"]}}, "data.seen[1]"),
        ({"vehicle_id": "truck-7", "data": {"a\u0000": "key"}}, "data"),
        ({"vehicle_id": "truck\u00007"}, "vehicle_id"),
    ],
)
def test_a_nul_character_anywhere_in_json_is_refused_naming_the_field(
    member_client, document, field
):
    response = member_client.post(REPORT_URL, document, format="json")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["code"] == "null_characters_not_allowed"
    assert not VehicleReport.objects.exists()


def test_a_nul_character_in_sign_in_is_refused_naming_the_field(api_client, member):
    response = api_client.post(TOKEN_URL, {"username": "bob\u0000", "password": "x"}, format="json")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert body["errors"][0]["field"] == "username"


def test_a_nul_character_in_a_form_field_is_refused_naming_the_field(member_client):
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(picture, format="JPEG")
    upload = SimpleUploadedFile("red.jpg", picture.getvalue(), content_type="image/jpeg")
    response = member_client.post(
        "/api/v1/images/upload", {"file": upload, "bucket": "fleet\u0000"}, format="multipart"
    )

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert body["errors"][0]["field"] == "bucket"
    assert not StoredImage.objects.exists()


def test_a_nul_character_in_a_query_filter_is_refused_naming_the_field(admin_client):
    response = admin_client.get(AUDIT_URL, {"action": "auth\u0000login"})

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert body["errors"][0]["field"] == "action"


def _cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("p=not-a-number"),
        _cursor("p=1e3"),
        _cursor("p=" + "9" * 30),
        _cursor("r=yes"),
        _cursor("o=-1"),
        "%%%not-base64",
        base64.b64encode(b"\xff\xfe").decode(),
        "\u00e9t\u00e9",
    ],
)
def test_a_cursor_the_api_did_not_give_out_is_refused(admin_client, cursor, log_lines):
    response = admin_client.get(AUDIT_URL, {"cursor": cursor})

    assert_problem(response, status=404, code="NOT_FOUND")
    assert not [line for line in log_lines() if line.get("level") == "error"]


def test_a_cursor_the_api_gave_out_still_pages(admin, admin_client):
    for _ in range(2):
        login_client(admin)  # each sign-in is an audit event
    first = admin_client.get(AUDIT_URL, {"page_size": 1})
    assert first.status_code == 200, first.content
    next_link = first.json()["next"]
    assert next_link

    second = admin_client.get(next_link)

    assert second.status_code == 200, second.content
