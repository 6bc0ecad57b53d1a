"""OpenAPI schema additions: operation ids named by operation, problem-details answers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular import generators
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter

# What an operation does, by method, where the path alone does not say it.
_ACTIONS = {"GET": "get", "POST": "create", "PUT": "replace", "PATCH": "update", "DELETE": "delete"}


# Operations that take an Idempotency-Key: a retried request answers its first answer.
IDEMPOTENT_OPERATIONS = ("images_upload", "images_upscale")


_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="1 to 255 characters the client chooses per file: the same request sent "
    "again with the same key and file gets the first answer again for 24 hours, and creates "
    "nothing.",
)


def _page_parameters(*, cursor: bool) -> list[OpenApiParameter]:
    size = OpenApiParameter(
        "page_size",
        int,
        description="Items per page "
        f"(at most {settings.API_MAX_PAGE_SIZE} for pages, 500 for cursors).",
    )
    if cursor:
        where = OpenApiParameter(
            "cursor",
            str,
            description="Where the page starts: the `cursor` of the `next` or "
            "`previous` link of the page before; absent for the first page.",
        )
    else:
        where = OpenApiParameter("page", int, description="The page number, from 1.")
    return [where, size]


class OperationSchema(AutoSchema):
    """The schema of an operation, its id named for client generators (`images_upload`)."""

    def _page_kind(self) -> str | None:
        """Return `page` or `cursor` when the operation answers one page of a list."""
        if self.method != "GET":
            return None
        response = self.get_response_serializers()
        name = getattr(response, "__name__", "") or type(response).__name__
        if not (name.startswith("Paginated") and name.endswith("List")):
            return None
        fields = getattr(response, "_declared_fields", {})
        return "page" if "count" in fields else "cursor"

    def get_override_parameters(self) -> list[Any]:
        """Return the declared parameters, with the pagination ones of a list operation."""
        parameters = list(super().get_override_parameters())
        kind = self._page_kind()
        if kind:
            parameters += _page_parameters(cursor=kind == "cursor")
        if self.get_operation_id() in IDEMPOTENT_OPERATIONS:
            parameters.append(_IDEMPOTENCY_KEY)
        return parameters

    def get_operation_id(self) -> str:
        """Return the path's words, with the method's action only where the path needs one."""
        words = [token.replace("-", "_") for token in self._tokenize_path()] or ["root"]
        if not self.path.startswith("/api/"):
            words = ["service", *words]  # /health and /metrics, beside the API's own
        if self.method == "GET" and (self._page_kind() or self._is_list_view()):
            return "_".join([*words, "list"])
        # A view of `config.routes.operations` answers one method of a URL that takes several.
        taken = getattr(self.view, "url_methods", None) or self.view.allowed_methods
        methods = {method for method in taken if method in _ACTIONS}
        # A path serving one method names its operation itself: images/upload, auth/me.
        if len(methods) == 1 and not self.path.rstrip("/").endswith("}"):
            return "_".join(words)
        return "_".join([*words, _ACTIONS[self.method]])


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Forbidden"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599, "example": 403},
        "detail": {"type": "string", "example": "Permission denied: image:upload"},
        "code": {"type": "string", "example": "PERMISSION_DENIED"},
        "request_id": {"type": "string", "nullable": True, "example": "6f1c2e0a9b8d4c55"},
        "challenge": {
            "type": "string",
            "format": "uuid",
            "description": "With MFA_REQUIRED: the sign-in challenge to answer at "
            "POST /api/v1/auth/token/mfa.",
        },
        "methods": {
            "type": "array",
            "items": {"type": "string", "enum": ["totp", "webauthn", "recovery_code"]},
            "description": "With MFA_REQUIRED: the second factors this person may prove.",
        },
        "expires_in": {
            "type": "integer",
            "description": "With MFA_REQUIRED: seconds the challenge stays valid.",
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message", "code"],
                "properties": {
                    "field": {"type": "string", "nullable": True},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
    },
}

_PROBLEM_RESPONSE: dict[str, Any] = {
    "description": "An error, as problem details with a stable `code`.",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def add_problem_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook adding the Problem schema as every `default` answer."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            operation.setdefault("responses", {}).setdefault("default", _PROBLEM_RESPONSE)
    return result


_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id, as sent when valid, else a new one; in every log line "
        "and problem of the request.",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'The window closest to its limit: `"name";r=<left>;t=<seconds to reset>`.',
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": (
            'Every window that applies: `"name";q=<limit>;w=<seconds>`, comma-separated.'
        ),
        "schema": {"type": "string"},
    },
    "X-RateLimit-Limit": {
        "description": "The limit of that window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in that window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "Seconds until that window starts again.",
        "schema": {"type": "integer"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    },
    "Location": {"description": "Where the created job is followed.", "schema": {"type": "string"}},
}
_RATE_LIMIT_HEADERS = (
    "RateLimit",
    "RateLimit-Policy",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)


def _header_refs(*names: str) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _problem(description: str, *headers: str) -> dict[str, Any]:
    return {**_PROBLEM_RESPONSE, "description": description, "headers": _header_refs(*headers)}


def add_response_headers(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook documenting the headers every answer carries."""
    result.setdefault("components", {})["headers"] = _HEADERS
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            limited = any(requirement for requirement in operation.get("security", []))
            if not limited:
                operation["security"] = []  # anyone may call it: no credential at all
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                names = ["X-Request-ID"]
                if limited and code.startswith("2"):
                    names += _RATE_LIMIT_HEADERS
                if code == "202" and operation.get("operationId") in IDEMPOTENT_OPERATIONS:
                    names.append("Location")
                response["headers"] = {**response.get("headers", {}), **_header_refs(*names)}
            if limited:
                responses.setdefault(
                    "429",
                    _problem(
                        "Too many requests in a window of the caller's tier.",
                        "X-Request-ID",
                        "Retry-After",
                        *_RATE_LIMIT_HEADERS,
                    ),
                )
            responses.setdefault(
                "503",
                _problem("A dependency is unavailable for a while.", "X-Request-ID", "Retry-After"),
            )
    return result


class EndpointEnumerator(generators.EndpointEnumerator):
    """Lists each operation of a URL served by `config.routes.operations` under its own view."""

    def should_include_endpoint(self, path: str, callback: Any) -> bool:
        return hasattr(callback, "operations") or super().should_include_endpoint(path, callback)

    def get_allowed_methods(self, callback: Any) -> list[str]:
        if hasattr(callback, "operations"):
            return list(callback.operations)
        return super().get_allowed_methods(callback)

    def _get_api_endpoints(self, patterns: Any, prefix: str) -> list[tuple[Any, ...]]:
        return [
            (path, regex, method, getattr(callback, "operations", {}).get(method, callback))
            for path, regex, method, callback in super()._get_api_endpoints(patterns, prefix)
        ]


class SchemaGenerator(generators.SchemaGenerator):
    endpoint_inspector_cls = EndpointEnumerator
