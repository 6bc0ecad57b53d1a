"""Request ids, response timing, trace ids and structured, secret-free logs."""

import io
import json
import logging
import re

import pytest
import structlog

from config.logs import OUTPUT, REDACTED

pytestmark = pytest.mark.django_db


def test_client_request_id_is_echoed_and_logged(api_client, log_lines):
    response = api_client.get("/api/v1/health", HTTP_X_REQUEST_ID="client-req_42.a")

    assert response["X-Request-ID"] == "client-req_42.a"
    finished = [line for line in log_lines() if line["event"] == "request_finished"]
    assert len(finished) == 1
    line = finished[0]
    assert line["request_id"] == "client-req_42.a"
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/health"
    assert line["status"] == 200
    assert line["level"] == "info"
    assert isinstance(line["duration_ms"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line["timestamp"])


def test_every_log_line_of_a_request_carries_its_id(api_client, log_lines, settings):
    # A failing cache makes the health view log a warning mid-request.
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    api_client.get("/health", HTTP_X_REQUEST_ID="trace-me")

    lines = log_lines()
    assert {line["event"] for line in lines} >= {"health_check_failed", "request_finished"}
    assert all(line.get("request_id") == "trace-me" for line in lines)


@pytest.mark.parametrize(
    "sent",
    ["", "x" * 129, "has space", "semi;colon", "new\nline", "ünïcode", "../etc/passwd"],
)
def test_malformed_request_id_is_replaced(api_client, sent):
    response = api_client.get("/health", HTTP_X_REQUEST_ID=sent)

    assert response["X-Request-ID"] != sent
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_request_id_of_128_characters_is_accepted(api_client):
    sent = "A" * 128
    assert api_client.get("/health", HTTP_X_REQUEST_ID=sent)["X-Request-ID"] == sent


def test_each_request_without_an_id_gets_a_new_one(api_client):
    first = api_client.get("/health")["X-Request-ID"]
    second = api_client.get("/health")["X-Request-ID"]
    assert first != second


def test_response_time_header_is_in_milliseconds(api_client):
    response = api_client.get("/health")
    assert re.fullmatch(r"\d+\.\d{2}ms", response["X-Response-Time"])


def test_traceparent_trace_id_is_logged(api_client, log_lines):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    api_client.get("/health", HTTP_TRACEPARENT=f"00-{trace_id}-00f067aa0ba902b7-01")

    finished = next(line for line in log_lines() if line["event"] == "request_finished")
    assert finished["trace_id"] == trace_id


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "garbage",
    ],
)
def test_invalid_traceparent_is_ignored(api_client, log_lines, traceparent):
    response = api_client.get("/health", HTTP_TRACEPARENT=traceparent)

    assert response.status_code == 200
    finished = next(line for line in log_lines() if line["event"] == "request_finished")
    assert "trace_id" not in finished


@pytest.mark.urls("config.tests.urls")
def test_authenticated_principal_and_org_are_logged(member_client, member, org, log_lines):
    assert member_client.get("/api/test/private").status_code == 200

    finished = next(line for line in log_lines() if line["event"] == "request_finished")
    assert finished["principal"] == f"user:{member.pk}"
    assert finished["org"] == str(org.pk)


def test_client_ip_honours_trusted_proxy_count(api_client, log_lines, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    api_client.get("/health", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9", REMOTE_ADDR="10.0.0.2")
    settings.TRUSTED_PROXY_COUNT = 0
    api_client.get("/health", HTTP_X_FORWARDED_FOR="203.0.113.9", REMOTE_ADDR="10.0.0.2")

    finished = [line for line in log_lines() if line["event"] == "request_finished"]
    assert [line["ip"] for line in finished] == ["203.0.113.9", "10.0.0.2"]


def test_secrets_never_reach_the_logs(log_lines):
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXZhbHVl"
    service_token = "sk_" + "ab12" * 16
    logger = structlog.get_logger("vantage.tests")
    logger.info(
        "login_attempt",
        password="hunter2-correct-horse",
        refresh_token="opaque-refresh-value",
        headers={"Authorization": f"Bearer {jwt}", "X-API-Key": service_token, "Accept": "x"},
        note=f"client sent {service_token} and Bearer {jwt}",
    )

    output = str(log_lines())
    for secret in ("hunter2-correct-horse", "opaque-refresh-value", jwt, service_token):
        assert secret not in output
    line = log_lines()[0]
    assert line["password"] == REDACTED
    assert line["headers"]["Authorization"] == REDACTED
    assert line["headers"]["Accept"] == "x"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("sent sk_" + "ab12" * 16, "ab12" * 16),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
        ("password=hunter2", "hunter2"),
        ("Bearer\tvalue-after-a-tab", "value-after-a-tab"),
        ("Basic\u2003value-after-an-em-space", "value-after-an-em-space"),
        ("Bearer\nvalue-after-a-newline", "value-after-a-newline"),
    ],
)
def test_every_form_of_credential_is_redacted_in_any_text(log_lines, text, secret):
    structlog.get_logger("vantage.tests").info("note", text=text)

    assert secret not in str(log_lines())
    assert REDACTED in log_lines()[0]["text"]


def test_authorization_header_is_not_logged_by_a_request(api_client, log_lines):
    api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-but-secret-value")

    assert "wrong-but-secret-value" not in str(log_lines())


def test_a_line_beyond_ascii_reaches_a_stream_that_takes_ascii_only_as_json_escapes(log_lines):
    ascii_only = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    output, OUTPUT.stream = OUTPUT.stream, ascii_only
    try:
        structlog.get_logger("vantage.tests").info("note", text="café ☕ 🚗")
    finally:
        OUTPUT.stream = output
    ascii_only.flush()
    line = ascii_only.buffer.getvalue().decode("ascii")

    assert json.loads(line)["text"] == "café ☕ 🚗"


def test_other_libraries_lines_are_rendered_as_the_projects_are(log_lines):
    logging.getLogger("vantage.tests.stdlib").warning("note %s", "café 🚗")

    (line,) = [line for line in log_lines() if line["event"] == "note café 🚗"]
    assert line["logger"] == "vantage.tests.stdlib"


def test_values_orjson_refuses_are_still_logged(log_lines):
    structlog.get_logger("vantage.tests").info("odd", counts={200: 3}, path="/caf\udcff", big=2**70)

    (line,) = [line for line in log_lines() if line["event"] == "odd"]
    assert line["counts"] == {"200": 3}
    assert line["big"] == 2**70
    assert line["path"].startswith("/caf")


def test_a_log_stream_that_fails_never_fails_the_caller(capsys):
    broken = io.StringIO()
    broken.close()
    output, OUTPUT.stream = OUTPUT.stream, broken
    try:
        structlog.get_logger("vantage.tests").info("lost")  # no exception reaches here
    finally:
        OUTPUT.stream = output
    assert "ValueError" in capsys.readouterr().err
