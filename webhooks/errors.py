"""Webhooks' domain errors, each with its status and stable code."""

from __future__ import annotations

from config.errors import DomainError


class EndpointUrlRefused(DomainError):
    status = 400
    code = "VALIDATION_ERROR"
    title = "Invalid request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors=[{"field": "url", "message": detail, "code": "invalid"}])


class EndpointDisabled(DomainError):
    status = 409
    code = "CONFLICT"
    default_detail = "The endpoint is disabled: enable it first."


class TargetRefused(Exception):
    """The URL or an address its host resolves to may not receive webhooks."""
