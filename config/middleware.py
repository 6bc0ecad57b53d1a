"""Project-wide request plumbing: request ids, timing, logging, problem details."""

from __future__ import annotations

import time
from collections.abc import Callable
from http import HTTPStatus

import structlog
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from config.errors import CODE_FOR_STATUS, is_api_request, problem_response
from config.request_context import (
    ClientInfo,
    accepted_request_id,
    begin_context,
    client_ip,
    new_request_id,
    trace_id_from,
)

logger = structlog.get_logger("vantage.request")

# Headers that describe the body being replaced; every other header (Allow,
# Retry-After, security and CORS headers) is kept on the rewritten response.
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})


class RequestContextMiddleware:
    """Give each request an id, bind it to every log line, and time the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        request_id = accepted_request_id(request.headers.get("X-Request-ID")) or new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        structlog.contextvars.clear_contextvars()
        ip = client_ip(request)
        begin_context(
            client=ClientInfo(ip=ip, user_agent=request.headers.get("User-Agent", "")[:512])
        )
        context = {
            "request_id": request_id,
            "method": request.method,
            "path": request.path,
            "ip": ip,
        }
        trace_id = trace_id_from(request.headers.get("traceparent"))
        if trace_id:
            context["trace_id"] = trace_id
        structlog.contextvars.bind_contextvars(**context)
        try:
            response = self.get_response(request)
            duration_ms = (time.perf_counter() - started) * 1000
            response["X-Request-ID"] = request_id
            response["X-Response-Time"] = f"{duration_ms:.2f}ms"
            log = logger.error if response.status_code >= 500 else logger.info
            log("request_finished", status=response.status_code, duration_ms=round(duration_ms, 2))
            return response
        finally:
            # Nothing of this request may linger in the thread after it.
            structlog.contextvars.clear_contextvars()
            begin_context(client=ClientInfo())


class ProblemDetailsMiddleware:
    """Rewrite a bare error response on an API path (a plain 405, say) as problem details."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or response.streaming
            or "json" in response.get("Content-Type", "")
            or not is_api_request(request)
        ):
            return response
        status = response.status_code
        rewritten: HttpResponse = problem_response(
            status=status,
            code=CODE_FOR_STATUS.get(
                status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR"
            ),
            detail=HTTPStatus(status).phrase + ".",
            headers={
                name: value for name, value in response.items() if name.lower() not in _BODY_HEADERS
            },
        )
        return rewritten
