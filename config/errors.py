"""RFC 9457 problem details: the one shape of every error the API answers.

Apps raise `DomainError` subclasses (or DRF/Django exceptions); the handlers
here turn each into `application/problem+json` with a stable `code` and the
request id. A 500 never carries exception text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions as drf

from config import metrics
from config.request_context import current_request_id

logger = structlog.get_logger("vantage.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"

# The code a bare status maps to when nothing more specific is known.
CODE_FOR_STATUS: dict[int, str] = {
    400: "VALIDATION_ERROR",
    401: "NOT_AUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "FILE_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}

# Titles clearer than the bare HTTP phrase, where the phrase misleads.
TITLE_FOR_CODE: dict[str, str] = {
    "VALIDATION_ERROR": "Invalid request",
    "NOT_AUTHENTICATED": "Not authenticated",
    "AUTHENTICATION_FAILED": "Authentication failed",
    "PERMISSION_DENIED": "Permission denied",
}

# Seconds a client is asked to wait when the database cannot be reached.
DATABASE_RETRY_AFTER = 5

INTERNAL_ERROR_DETAIL = (
    "An unexpected error occurred. It has been logged; quote the request id when reporting it."
)


class DomainError(Exception):
    """An error with an HTTP status and a stable code; apps subclass it."""

    status: int = 400
    code: str = "VALIDATION_ERROR"
    title: str | None = None
    default_detail: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail or self.title or HTTPStatus(self.status).phrase
        self.errors = errors
        self.headers = dict(headers or {})
        # RFC 9457 extension members: what a client needs to act on this error.
        self.extensions = dict(extensions or {})
        super().__init__(self.detail)


class InvalidInput(DomainError):
    """Bad input found beyond the serializer; names the field when there is one."""

    status = 400
    code = "VALIDATION_ERROR"

    def __init__(self, detail: str, *, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(detail, errors=[{"field": field, "message": detail, "code": code}])


class NotFound(DomainError):
    status = 404
    code = "NOT_FOUND"
    default_detail = "Not found."


class Conflict(DomainError):
    status = 409
    code = "CONFLICT"


class ServiceUnavailable(DomainError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    default_detail = "The service is temporarily unavailable; try again shortly."


def problem_response(
    *,
    status: int,
    code: str,
    detail: str,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> HttpResponse:
    """Return a problem-details response for the current request."""
    body: dict[str, Any] = {
        **(extensions or {}),
        "type": "about:blank",
        "title": title or TITLE_FOR_CODE.get(code) or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": current_request_id(),
    }
    if errors is None and code == "VALIDATION_ERROR":
        # Every validation error lists what is wrong, even when nothing names a field.
        errors = [{"field": None, "message": detail, "code": "invalid"}]
    if errors is not None:
        body["errors"] = errors
    response = JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    metrics.ERRORS.labels(code=code, status=str(status)).inc()
    return response


def _flatten_errors(detail: Any, field: str | None = None) -> list[dict[str, Any]]:
    """Return DRF's nested error detail as a flat list of field errors."""
    if isinstance(detail, Mapping):
        flat: list[dict[str, Any]] = []
        for key, value in detail.items():
            if isinstance(key, int):  # a ListField reports its items' errors by index
                path: str | None = f"{field}[{key}]"
            elif key in ("non_field_errors", "detail"):
                path = field
            else:
                path = f"{field}.{key}" if field else str(key)
            flat += _flatten_errors(value, path)
        return flat
    if isinstance(detail, list):
        flat = []
        for index, item in enumerate(detail):
            nested = isinstance(item, Mapping | list)
            flat += _flatten_errors(item, f"{field}[{index}]" if nested and field else field)
        return flat
    return [{"field": field, "message": str(detail), "code": getattr(detail, "code", "invalid")}]


def _validation_detail(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "The request is invalid."
    first = errors[0]
    where = f"{first['field']}: " if first["field"] else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"The request is invalid: {where}{first['message']}{more}"


_DRF_CODES: dict[type[drf.APIException], str] = {
    drf.ValidationError: "VALIDATION_ERROR",
    drf.ParseError: "VALIDATION_ERROR",
    drf.NotAuthenticated: "NOT_AUTHENTICATED",
    drf.AuthenticationFailed: "AUTHENTICATION_FAILED",
    drf.PermissionDenied: "PERMISSION_DENIED",
    drf.NotFound: "NOT_FOUND",
    drf.MethodNotAllowed: "METHOD_NOT_ALLOWED",
    drf.NotAcceptable: "NOT_ACCEPTABLE",
    drf.UnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
    drf.Throttled: "RATE_LIMIT_EXCEEDED",
}


def _drf_problem(exc: drf.APIException) -> HttpResponse:
    code = getattr(exc, "problem_code", None) or next(
        (_DRF_CODES[cls] for cls in type(exc).__mro__ if cls in _DRF_CODES),
        CODE_FOR_STATUS.get(exc.status_code, "INTERNAL_ERROR"),
    )
    status = exc.status_code
    headers: dict[str, str] = {}
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        # DRF downgrades these to 403 when no authenticator offers a
        # challenge; the contract says 401 with a Bearer challenge.
        status = 401
        headers["WWW-Authenticate"] = getattr(exc, "auth_header", None) or 'Bearer realm="api"'
    wait = getattr(exc, "wait", None)
    if isinstance(exc, drf.Throttled) and wait is not None:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    if isinstance(exc, drf.ValidationError):
        errors = _flatten_errors(exc.detail)
        return problem_response(
            status=status, code=code, detail=_validation_detail(errors), errors=errors
        )
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
    return problem_response(status=status, code=code, detail=str(detail), headers=headers)


def exception_to_problem(exc: BaseException) -> HttpResponse:
    """Return the problem-details response for any exception raised while serving."""
    if isinstance(exc, DomainError):
        return problem_response(
            status=exc.status,
            code=exc.code,
            detail=exc.detail,
            title=exc.title,
            errors=exc.errors,
            headers=exc.headers,
            extensions=exc.extensions,
        )
    if isinstance(exc, drf.APIException):
        return _drf_problem(exc)
    if isinstance(exc, Http404):
        return problem_response(status=404, code="NOT_FOUND", detail="Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return problem_response(
            status=403, code="PERMISSION_DENIED", detail="You do not have permission to do this."
        )
    if isinstance(exc, RequestDataTooBig):
        return problem_response(
            status=413, code="FILE_TOO_LARGE", detail="The request body is too large."
        )
    if isinstance(exc, TooManyFieldsSent | SuspiciousOperation):
        return problem_response(
            status=400, code="VALIDATION_ERROR", detail="The request could not be accepted."
        )
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is down or unreachable: nothing was done, and a retry may succeed.
        logger.error("database_unavailable", exc_info=exc)
        return problem_response(
            status=503,
            code="SERVICE_UNAVAILABLE",
            detail="The database cannot be reached; try again shortly.",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
        )
    logger.error("unhandled_exception", exc_info=exc)
    return problem_response(status=500, code="INTERNAL_ERROR", detail=INTERNAL_ERROR_DETAIL)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse:
    """DRF's EXCEPTION_HANDLER: every error in an API view becomes problem details."""
    # Imported here: DRF's views module loads this project's authentication
    # classes while it initializes, and they import this module.
    from rest_framework.views import set_rollback

    set_rollback()
    return exception_to_problem(exc)


# --- Django's own error views -------------------------------------------------


def is_api_request(request: HttpRequest) -> bool:
    """Tell whether an error for this request should be answered as problem details."""
    if request.path.startswith("/api/") or request.path in ("/health", "/metrics"):
        return True
    accept = request.headers.get("Accept", "")
    return "json" in accept and "text/html" not in accept


def _error_page(request: HttpRequest, status: int, code: str, detail: str) -> HttpResponse:
    if is_api_request(request):
        return problem_response(status=status, code=code, detail=detail)
    return render(
        request,
        "errors/error.html",
        {"status": status, "title": HTTPStatus(status).phrase, "detail": detail},
        status=status,
    )


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(request, 400, "VALIDATION_ERROR", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(
        request, 403, "PERMISSION_DENIED", "You do not have permission to see this page."
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(request, 404, "NOT_FOUND", "Not found.")


def server_error(request: HttpRequest) -> HttpResponse:
    return _error_page(request, 500, "INTERNAL_ERROR", INTERNAL_ERROR_DETAIL)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return _error_page(
        request,
        403,
        "PERMISSION_DENIED",
        "The form or request was missing a valid CSRF token; reload the page and try again.",
    )
