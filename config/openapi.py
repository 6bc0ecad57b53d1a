"""OpenAPI schema additions: every operation documents its problem-details answers."""

from __future__ import annotations

from typing import Any

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
