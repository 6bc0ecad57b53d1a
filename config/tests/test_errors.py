"""Every error path answers RFC 9457 problem details (or an HTML page off the API)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from config.errors import INTERNAL_ERROR_DETAIL
from config.testing.http import assert_problem, signed_in_browser

pytestmark = pytest.mark.urls("config.tests.urls")

LEAKS = ("hunter2", "Traceback", "RuntimeError", "internal detail", "/srv")


# --- 400 ----------------------------------------------------------------------


def test_validation_error_lists_each_bad_field_including_list_items(api_client):
    response = api_client.post(
        "/api/test/validate",
        {"name": "toolong", "tags": ["ok", "toolong"]},
        format="json",
    )

    body = assert_problem(response, status=400, code="VALIDATION_ERROR", with_errors=True)
    assert body["title"] == "Invalid request"
    # A list item's error names the item by its index.
    assert body["errors"] == [
        {
            "field": "name",
            "message": "Ensure this field has no more than 5 characters.",
            "code": "max_length",
        },
        {"field": "count", "message": "This field is required.", "code": "required"},
        {
            "field": "tags[1]",
            "message": "Ensure this field has no more than 3 characters.",
            "code": "max_length",
        },
    ]
    assert body["detail"] == (
        "The request is invalid: name: Ensure this field has no more than 5 characters. "
        "(and 2 more)"
    )


def test_validation_error_for_missing_fields_names_the_first_in_detail(api_client):
    response = api_client.post("/api/test/validate", {}, format="json")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR", with_errors=True)
    assert [error["field"] for error in body["errors"]] == ["name", "count"]
    assert {error["code"] for error in body["errors"]} == {"required"}
    assert body["detail"].startswith("The request is invalid: name: This field is required.")
    assert body["detail"].endswith("(and 1 more)")


def test_validation_error_for_a_single_field_has_no_more_suffix(api_client):
    response = api_client.post("/api/test/validate", {"name": "ok", "count": 0}, format="json")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR", with_errors=True)
    assert body["errors"] == [
        {
            "field": "count",
            "message": "Ensure this value is greater than or equal to 1.",
            "code": "min_value",
        }
    ]
    assert body["detail"] == (
        "The request is invalid: count: Ensure this value is greater than or equal to 1."
    )


def test_malformed_json_body_is_a_validation_problem(api_client):
    response = api_client.post(
        "/api/test/validate", data="{not json", content_type="application/json"
    )

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert body["detail"].startswith("JSON parse error")


# --- 401, 403 -----------------------------------------------------------------


def test_missing_credentials_answer_401_with_bearer_challenge(api_client):
    response = api_client.get("/api/test/private")

    body = assert_problem(response, status=401, code="NOT_AUTHENTICATED")
    assert body["title"] == "Not authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_permission_denied_keeps_the_views_detail(api_client):
    response = api_client.get("/api/test/forbidden")

    body = assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert body["detail"] == "Permission denied: image:upload"


# --- 404 ----------------------------------------------------------------------


def test_unknown_api_path_answers_problem_404(api_client):
    response = api_client.get("/api/no-such-endpoint")

    body = assert_problem(response, status=404, code="NOT_FOUND")
    assert body["detail"] == "Not found."
    assert body["title"] == "Not Found"


@pytest.mark.urls("config.urls")
@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_an_unknown_api_path_is_404_for_every_method_even_from_a_signed_in_browser(member, method):
    browser = signed_in_browser(member.username)
    answer = getattr(browser, method)("/api/v1/no-such-path", content_type="application/json")

    # A browser session without a CSRF token still learns only that the path is unknown.
    assert_problem(answer, status=404, code="NOT_FOUND")
    assert answer.resolver_match.view_name == "api-unknown"


def test_unknown_page_answers_html_404_with_the_request_id():
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "404" in html
    assert "Not Found" in html
    assert response["X-Request-ID"] in html


def test_callers_request_id_is_echoed_in_the_problem(api_client):
    response = api_client.get("/api/no-such-endpoint", HTTP_X_REQUEST_ID="client-id.42_x")

    body = assert_problem(response, status=404, code="NOT_FOUND")
    assert body["request_id"] == "client-id.42_x"


# --- 405, 415 -----------------------------------------------------------------


def test_wrong_method_on_drf_view_answers_405_with_allow(api_client):
    response = api_client.post("/health")

    body = assert_problem(response, status=405, code="METHOD_NOT_ALLOWED")
    assert body["detail"] == 'Method "POST" not allowed.'
    assert "GET" in response["Allow"]
    assert "POST" not in response["Allow"]


def test_wrong_method_on_plain_view_is_rewritten_as_problem_keeping_allow():
    response = Client().get("/api/test/plain-post-only")

    body = assert_problem(response, status=405, code="METHOD_NOT_ALLOWED")
    assert body["detail"] == "Method Not Allowed."
    assert response["Allow"] == "POST"


def test_unsupported_content_type_answers_415(api_client):
    response = api_client.post("/api/test/validate", data="name=x", content_type="text/plain")

    body = assert_problem(response, status=415, code="UNSUPPORTED_MEDIA_TYPE")
    assert "text/plain" in body["detail"]


# --- 429 ----------------------------------------------------------------------


def test_throttled_answers_429_with_retry_after_rounded_up(api_client):
    response = api_client.get("/api/test/throttled")

    body = assert_problem(response, status=429, code="RATE_LIMIT_EXCEEDED")
    assert body["title"] == "Too Many Requests"
    assert response["Retry-After"] == "13"


# --- Domain errors --------------------------------------------------------------


def test_domain_error_carries_its_code_title_and_detail(api_client):
    response = api_client.get("/api/test/domain-error")

    body = assert_problem(response, status=400, code="IMAGE_DIMENSIONS_OUT_OF_RANGE")
    assert body["title"] == "Image dimensions out of range"
    assert body["detail"] == "The image is 10x10; it must be at least 32x32."


def test_domain_error_with_headers_passes_them_on(api_client):
    response = api_client.get("/api/test/domain-error", {"quota": "1"})

    body = assert_problem(response, status=429, code="QUOTA_EXCEEDED")
    assert body["detail"] == "Daily upload quota reached."
    assert body["title"] == "Too Many Requests"
    assert response["Retry-After"] == "3600"


# --- 500 ----------------------------------------------------------------------


def assert_no_leak(content: bytes) -> None:
    text = content.decode()
    for leak in LEAKS:
        assert leak not in text


def test_crash_in_drf_view_answers_generic_500_without_exception_text(api_client):
    response = api_client.get("/api/test/crash")

    body = assert_problem(response, status=500, code="INTERNAL_ERROR")
    assert body["detail"] == INTERNAL_ERROR_DETAIL
    assert body["title"] == "Internal Server Error"
    assert_no_leak(response.content)


def test_crash_in_plain_view_on_api_path_answers_generic_500_problem():
    response = Client(raise_request_exception=False).get("/api/test/plain-crash")

    body = assert_problem(response, status=500, code="INTERNAL_ERROR")
    assert body["detail"] == INTERNAL_ERROR_DETAIL
    assert_no_leak(response.content)


def test_crash_in_plain_view_off_api_answers_html_500_without_exception_text():
    response = Client(raise_request_exception=False).get("/test/plain-crash")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "500" in html
    assert response["X-Request-ID"] in html
    assert_no_leak(response.content)


def test_crash_is_logged_with_its_traceback_and_request_id(api_client, log_lines):
    response = api_client.get("/api/test/crash")

    assert response.status_code == 500
    request_id = response["X-Request-ID"]
    crashes = [
        line
        for line in log_lines()
        if line.get("event") == "unhandled_exception" and line.get("request_id") == request_id
    ]
    assert len(crashes) == 1
    crash = crashes[0]
    assert crash["level"] == "error"
    assert "Traceback" in crash["exception"]
    assert "RuntimeError" in crash["exception"]
    # The traceback keeps the message, less the credential it happened to contain.
    assert "hunter2" not in str(log_lines())


# --- Metrics ------------------------------------------------------------------


def _errors_counter(client: Any, *, code: str, status: str) -> float:
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer test-metrics-token")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            if sample.name == "vantage_http_errors_total" and sample.labels == {
                "code": code,
                "status": status,
            }:
                return sample.value
    return 0.0


def test_each_error_answer_increments_the_errors_metric(api_client):
    before = _errors_counter(api_client, code="NOT_FOUND", status="404")

    assert api_client.get("/api/no-such-endpoint").status_code == 404

    after = _errors_counter(api_client, code="NOT_FOUND", status="404")
    assert after == before + 1


def test_accept_without_json_is_406_problem_details(api_client):
    response = api_client.get("/api/v1/health", HTTP_ACCEPT="text/csv")

    body = assert_problem(response, status=406, code="NOT_ACCEPTABLE")
    assert body["title"] == "Not Acceptable"


def test_a_database_that_cannot_be_reached_answers_503_with_retry_after(api_client, log_lines):
    response = api_client.get("/api/test/database-down")

    body = assert_problem(response, status=503, code="SERVICE_UNAVAILABLE")
    assert body["detail"] == "The database cannot be reached; try again shortly."
    assert int(response["Retry-After"]) > 0
    assert_no_leak(response.content)
    assert "10.0.0.5" not in response.content.decode()
    assert any(line["event"] == "database_unavailable" for line in log_lines())


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["", "*/*", "application/json", "text/html, */*;q=0.8"])
def test_json_is_answered_to_any_accept_header_that_allows_it(api_client, accept):
    response = api_client.get("/health", HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_a_format_asked_for_in_the_query_is_still_negotiated(api_client):
    assert api_client.get("/health?format=json").status_code == 200
    assert_problem(api_client.get("/health?format=xml"), status=404, code="NOT_FOUND")
