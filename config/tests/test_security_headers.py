"""Security, tracing and CORS headers on every response, and a CSP-clean Swagger UI."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.urls("config.tests.urls")

RESPONSE_TIME = re.compile(r"^\d+\.\d{2}ms$")
ALLOWED_ORIGIN = "https://app.example.com"


def csp_directive(response: Any, name: str) -> list[str]:
    """Return the sources of one directive of the response's Content-Security-Policy."""
    for directive in response["Content-Security-Policy"].split(";"):
        parts = directive.split()
        if parts and parts[0] == name:
            return parts[1:]
    raise AssertionError(f"no {name} in {response['Content-Security-Policy']!r}")


def assert_security_headers(response: Any) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    script_src = csp_directive(response, "script-src")
    assert script_src
    assert "'unsafe-inline'" not in script_src
    assert "'unsafe-eval'" not in script_src
    assert response["X-Request-ID"]
    assert RESPONSE_TIME.match(response["X-Response-Time"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        ("/health", 200, "application/json"),
        ("/api/no-such-endpoint", 404, "application/problem+json"),
        ("/api/test/crash", 500, "application/problem+json"),
        ("/api/docs/", 200, "text/html"),
    ],
)
def test_every_response_carries_security_and_tracing_headers(path, status, content_type):
    response = Client(raise_request_exception=False).get(path)

    assert response.status_code == status
    assert response["Content-Type"].startswith(content_type)
    assert_security_headers(response)


def test_rewritten_plain_405_keeps_security_headers():
    response = Client().get("/api/test/plain-post-only")

    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert_security_headers(response)


def test_callers_well_formed_request_id_is_kept_and_bad_one_replaced():
    client = Client()

    kept = client.get("/api/no-such-endpoint", HTTP_X_REQUEST_ID="abc.DEF_123-x")
    replaced = client.get("/api/no-such-endpoint", HTTP_X_REQUEST_ID="bad id;<script>")

    assert kept["X-Request-ID"] == "abc.DEF_123-x"
    assert replaced["X-Request-ID"] != "bad id;<script>"
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,128}", replaced["X-Request-ID"])


# --- HSTS ---------------------------------------------------------------------


@override_settings(SECURE_HSTS_SECONDS=31536000)
def test_no_hsts_over_plain_http():
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    assert not response.has_header("Strict-Transport-Security")


@override_settings(SECURE_HSTS_SECONDS=31536000)
def test_hsts_over_https_when_configured():
    response = Client().get("/api/docs/", secure=True)

    assert response.status_code == 200
    assert "max-age=31536000" in response["Strict-Transport-Security"]


# --- CORS ---------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(CORS_ALLOWED_ORIGINS=[ALLOWED_ORIGIN])
def test_cors_allows_a_listed_origin_and_exposes_the_request_id(api_client):
    response = api_client.get("/api/v1/health", HTTP_ORIGIN=ALLOWED_ORIGIN)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    exposed = [
        name.strip().lower() for name in response["Access-Control-Expose-Headers"].split(",")
    ]
    assert "x-request-id" in exposed


@pytest.mark.django_db
@override_settings(CORS_ALLOWED_ORIGINS=[ALLOWED_ORIGIN])
def test_cors_ignores_an_unlisted_origin(api_client):
    response = api_client.get("/api/v1/health", HTTP_ORIGIN="https://evil.example.com")

    assert response.status_code == 200
    assert not response.has_header("Access-Control-Allow-Origin")


@override_settings(CORS_ALLOWED_ORIGINS=[ALLOWED_ORIGIN])
def test_cors_preflight_from_a_listed_origin_succeeds(api_client):
    response = api_client.options(
        "/api/v1/health",
        HTTP_ORIGIN=ALLOWED_ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in response["Access-Control-Allow-Methods"]


@pytest.mark.django_db
@override_settings(CORS_ALLOWED_ORIGINS=[ALLOWED_ORIGIN])
def test_a_call_without_an_origin_is_granted_nothing_but_told_answers_vary_by_origin(api_client):
    response = api_client.get("/api/v1/health")

    assert response.status_code == 200
    assert "origin" in [name.strip().lower() for name in response["Vary"].split(",")]
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


@override_settings(CORS_ALLOWED_ORIGINS=[ALLOWED_ORIGIN])
def test_an_options_call_without_a_preflight_header_is_not_a_preflight(api_client):
    response = api_client.options("/api/v1/health", HTTP_ORIGIN=ALLOWED_ORIGIN)

    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert response["Content-Type"].startswith("application/json")


# --- Swagger UI ---------------------------------------------------------------


class _AssetCollector(HTMLParser):
    """Collect every <script> (its attributes and text) and every <link> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, Any]] = []
        self.links: list[dict[str, str | None]] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append({"attrs": dict(attrs), "text": ""})
            self._in_script = True
        elif tag == "link":
            self.links.append(dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1]["text"] += data


def _swagger_assets(client: Any) -> _AssetCollector:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    collector = _AssetCollector()
    collector.feed(response.content.decode())
    return collector


def _is_external(url: str) -> bool:
    return url.startswith(("http://", "https://", "//"))


def test_swagger_ui_has_no_inline_script(api_client):
    assets = _swagger_assets(api_client)

    assert assets.scripts
    for script in assets.scripts:
        assert script["attrs"].get("src")
        assert not script["text"].strip()


def test_swagger_ui_loads_scripts_and_styles_from_this_origin_only(api_client):
    assets = _swagger_assets(api_client)

    script_urls = [script["attrs"]["src"] for script in assets.scripts]
    style_urls = [
        link["href"] for link in assets.links if link.get("rel") in ("stylesheet", "icon")
    ]
    assert style_urls
    for url in script_urls + style_urls:
        assert url
        assert not _is_external(url)
        assert url.startswith("/")
    static_urls = [url for url in script_urls + style_urls if "?script" not in url]
    assert static_urls
    assert all(url.startswith("/static/") for url in static_urls)


def test_swagger_ui_settings_script_is_served_as_javascript(api_client):
    assets = _swagger_assets(api_client)

    [script_url] = [
        script["attrs"]["src"] for script in assets.scripts if "?script" in script["attrs"]["src"]
    ]
    response = api_client.get(script_url)

    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
    assert b"SwaggerUIBundle" in response.content
    assert_security_headers(response)
