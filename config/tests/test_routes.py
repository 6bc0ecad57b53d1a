"""A URL whose operations are views of their own answers as one resource."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpResponse
from django.urls import Resolver404, URLResolver, include, path
from django.urls.resolvers import RoutePattern

from config.routes import by_first_segment
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


# --- Routes grouped by their first segment ----------------------------------


def _view(name: str) -> Any:
    def view(request: Any, **kwargs: Any) -> HttpResponse:
        return HttpResponse(name)

    return view


def _names(patterns: list[Any], url: str) -> str:
    match = URLResolver(RoutePattern(""), patterns).resolve(url)
    return str(match.url_name)


def test_grouped_routes_resolve_and_reverse_as_before():
    routes = [
        path("images", _view("list"), name="list"),
        path("images/limits", _view("limits"), name="limits"),
        path("tokens/<uuid:token_id>", _view("token"), name="token"),
        path("images/<uuid:image_id>", _view("image"), name="image"),
    ]
    grouped = by_first_segment("api/", routes)

    assert _names(grouped, "api/images") == "list"
    assert _names(grouped, "api/images/limits") == "limits"
    image = "0b7c5d2e-4f60-4a8e-9d1c-2e3f4a5b6c7d"
    assert _names(grouped, f"api/images/{image}") == "image"
    assert _names(grouped, f"api/tokens/{image}") == "token"
    # Two groups and the route of the bare segment.
    assert len(grouped) == 3
    for missing in ("api/nothing", "api/images/nothing", "images/limits"):
        with pytest.raises(Resolver404):
            URLResolver(RoutePattern(""), grouped).resolve(missing)


def test_no_route_moves_ahead_of_a_route_it_came_after():
    # The converter route would take "images/limits" too: it came first, so it still wins.
    routes = [
        path("<str:kind>/limits", _view("any-limits"), name="any-limits"),
        path("images/limits", _view("limits"), name="limits"),
        path("images/upload", _view("upload"), name="upload"),
    ]
    assert _names(by_first_segment("", routes), "images/limits") == "any-limits"
    assert _names(by_first_segment("", routes), "images/upload") == "upload"

    routes = [routes[1], routes[0], routes[2]]
    assert _names(by_first_segment("", routes), "images/limits") == "limits"
    assert _names(by_first_segment("", routes), "files/limits") == "any-limits"


def test_an_unknown_api_path_in_a_group_or_outside_every_group_is_a_problem_404(api_client):
    for url in ("/api/v1/images/no-such-thing", "/api/v1/no-such-thing"):
        assert_problem(api_client.get(url), status=404, code="NOT_FOUND")


def test_no_route_moves_ahead_of_an_include_it_came_after():
    routes = [
        path("images/x", _view("x"), name="x"),
        path("images/", include([path("y", _view("from-include"), name="from-include")])),
        path("images/y", _view("later"), name="later"),
    ]
    assert _names(by_first_segment("", routes), "images/y") == "from-include"
    assert _names(by_first_segment("", routes), "images/x") == "x"
