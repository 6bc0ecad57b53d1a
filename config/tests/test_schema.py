"""The OpenAPI schema: served, complete, documenting problem details, and valid."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from django.core.management import call_command

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
PROBLEM_REF = "#/components/schemas/Problem"


def _fetch_schema(client: Any, *, as_json: bool) -> dict[str, Any]:
    response = client.get("/api/schema/", {"format": "json"} if as_json else {})
    assert response.status_code == 200
    content_type = response["Content-Type"]
    assert content_type.startswith("application/vnd.oai.openapi")
    if as_json:
        assert "json" in content_type
        return json.loads(response.content)
    return yaml.safe_load(response.content)


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


@pytest.mark.parametrize("as_json", [False, True], ids=["yaml", "json"])
def test_schema_is_an_openapi_3_document(api_client, as_json):
    schema = _fetch_schema(api_client, as_json=as_json)

    assert str(schema["openapi"]).startswith("3.")
    assert schema["info"]["title"] == "Vantage API"
    assert _operations(schema)


@pytest.mark.parametrize("as_json", [False, True], ids=["yaml", "json"])
def test_every_operation_documents_problem_details_as_its_default_answer(api_client, as_json):
    schema = _fetch_schema(api_client, as_json=as_json)

    for path, method, operation in _operations(schema):
        default = operation["responses"].get("default")
        assert default, f"{method.upper()} {path} has no default response"
        assert default["content"]["application/problem+json"]["schema"] == {"$ref": PROBLEM_REF}


def test_problem_schema_requires_code_and_request_id(api_client):
    schema = _fetch_schema(api_client, as_json=True)

    problem = schema["components"]["schemas"]["Problem"]
    assert {"code", "request_id"} <= set(problem["required"])
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    assert {"field", "message", "code"} <= set(problem["properties"]["errors"]["items"]["required"])


def test_schema_documents_health_and_metrics(api_client):
    schema = _fetch_schema(api_client, as_json=True)

    for path in ("/health", "/api/v1/health", "/metrics"):
        assert "get" in schema["paths"].get(path, {}), f"GET {path} is not documented"
    versioned = schema["paths"]["/api/v1/health"]["get"]["responses"]
    assert {"200", "503"} <= set(versioned)
    metrics = schema["paths"]["/metrics"]["get"]["responses"]["200"]
    assert "text/plain" in metrics["content"]


def test_schema_command_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert target.is_file()
    assert target.stat().st_size > 0
    document = yaml.safe_load(target.read_text())
    assert str(document["openapi"]).startswith("3.")
    assert "/health" in document["paths"]


def test_operation_ids_are_named_by_operation(api_client):
    schema = _fetch_schema(api_client, as_json=True)
    ids = [operation["operationId"] for _, _, operation in _operations(schema)]

    assert len(ids) == len(set(ids))
    assert not [name for name in ids if name.startswith("api_") or name.endswith("_retrieve")]
    assert {
        "images_upload",
        "images_list",
        "images_get",
        "tokens_rotate",
        "tokens_create",
        "auth_token",
        "audit_events_list",
    } <= set(ids)


def test_either_service_token_header_is_its_own_security_requirement(api_client):
    schema = _fetch_schema(api_client, as_json=True)
    operation = schema["paths"]["/api/v1/images/limits"]["get"]

    assert {"serviceTokenBearer": []} in operation["security"]
    assert {"serviceTokenApiKey": []} in operation["security"]
    assert schema["paths"]["/api/v1/auth/token"]["post"]["security"] == []


def test_pages_rate_limits_request_ids_and_idempotency_keys_are_documented(api_client):
    schema = _fetch_schema(api_client, as_json=True)
    images = schema["paths"]["/api/v1/images"]["get"]
    upload = schema["paths"]["/api/v1/images/upload"]["post"]
    audit = schema["paths"]["/api/v1/audit/events"]["get"]

    assert {"page", "page_size"} <= {parameter["name"] for parameter in images["parameters"]}
    assert {"cursor", "page_size"} <= {parameter["name"] for parameter in audit["parameters"]}
    assert images["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PaginatedImageList"
    )
    assert "Idempotency-Key" in {parameter["name"] for parameter in upload["parameters"]}
    assert "Location" in upload["responses"]["202"]["headers"]
    assert {"X-Request-ID", "RateLimit"} <= set(images["responses"]["200"]["headers"])
    assert "Retry-After" in images["responses"]["429"]["headers"]
    assert set(schema["components"]["headers"]) >= {"Retry-After", "X-Request-ID", "Location"}


def test_the_schema_and_docs_are_read_in_a_window_of_their_own(api_client, settings, monkeypatch):
    from accounts.ratelimits.limits import RateLimitRule
    from config.api_docs import DocsPage, SchemaApi

    settings.RATE_LIMIT_ENABLED = True
    narrow = RateLimitRule(group="docs", per_minute=12)
    monkeypatch.setattr(SchemaApi, "rate_limit", narrow)
    monkeypatch.setattr(DocsPage, "rate_limit", narrow)
    anonymous = settings.TIER_LIMITS["anonymous"]["requests_per_minute"]

    # More reads than the anonymous API window holds, all answered.
    answers = [api_client.get("/api/schema/").status_code for _ in range(anonymous + 1)]
    assert answers == [200] * (anonymous + 1)
    assert api_client.get("/api/docs/").status_code == 200
    # The docs' window is full; the API's anonymous window was never touched.
    refused = api_client.get("/api/schema/")
    assert refused.status_code == 429
    assert refused["Retry-After"]
    assert api_client.get("/api/v1/images/limits").status_code == 401
