"""A URL whose operations are views of their own answers as one resource."""

from __future__ import annotations

from config.testing.http import assert_problem

TOKENS = "/api/v1/tokens"


def test_each_method_reaches_its_own_operation(admin_client):
    created = admin_client.post(TOKENS, {"name": "ci", "scopes": ["image:read"]}, format="json")
    assert created.status_code == 201, created.content
    token_id = created.json()["id"]

    assert admin_client.get(TOKENS).json()["results"][0]["id"] == token_id
    detail = f"{TOKENS}/{token_id}"
    renamed = admin_client.patch(detail, {"name": "ci-2"}, format="json")
    assert renamed.json()["name"] == "ci-2"
    assert admin_client.delete(detail, {}, format="json").status_code == 204
    assert admin_client.get(detail).json()["status"] == "revoked"


def test_a_method_no_operation_takes_is_405_naming_every_method_the_url_takes(admin_client):
    answer = admin_client.put(TOKENS, {}, format="json")

    assert_problem(answer, status=405, code="METHOD_NOT_ALLOWED")
    assert answer["Allow"] == "GET, HEAD, POST, OPTIONS"


def test_a_caller_it_does_not_know_is_401_whatever_the_method(api_client):
    assert_problem(api_client.put(TOKENS, {}, format="json"), status=401, code="NOT_AUTHENTICATED")


def test_options_and_head_answer_for_the_whole_url(admin_client):
    options = admin_client.options(TOKENS)
    head = admin_client.head(TOKENS)

    assert options.status_code == 200
    assert options["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert head.status_code == 200
    assert head.content == b""


def test_each_operation_keeps_its_own_permission(viewer_client, admin_client, org):
    # Reading one image takes image:read; deleting it takes image:delete, which a viewer lacks.
    missing = "/api/v1/images/00000000-0000-4000-8000-000000000000"
    assert_problem(viewer_client.get(missing), status=404, code="NOT_FOUND")
    assert_problem(viewer_client.delete(missing), status=403, code="PERMISSION_DENIED")


def test_the_schema_lists_each_operation_of_a_url_once(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    tokens = schema["paths"]["/api/v1/tokens"]
    assert {method: tokens[method]["operationId"] for method in tokens} == {
        "get": "tokens_list",
        "post": "tokens_create",
    }
    detail = schema["paths"]["/api/v1/tokens/{token_id}"]
    assert sorted(detail) == ["delete", "get", "patch"]
