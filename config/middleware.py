"""Project-wide request plumbing in one step: ids, timing, metrics, the log line, problem details.

Every request passes here first and last, so this one layer does what would
otherwise take five: each costs a call frame, and the per-request price of
the whole stack is paid by every API call (docs/operations.md, "Where the
time goes").
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import structlog
from corsheaders import middleware as cors
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware import common as django_common
from django.utils.cache import patch_vary_headers
from django.utils.module_loading import import_string
from django_prometheus.middleware import Metrics
from prometheus_client import Counter, Histogram

from config.errors import CODE_FOR_STATUS, is_api_request, problem_response
from config.lru import BoundedLRU
from config.metrics import REQUESTS_IN_FLIGHT
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


_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"}
)


_Children = tuple[Counter, Counter, Counter, Histogram]


class _RequestMetrics:
    """The request series (django-prometheus' names, as the dashboards read them), labelled once.

    Labelling a series takes a lock and a lookup; the labelled children of
    each (view, method, status) are kept, so a request costs seven updates.
    """

    def __init__(self) -> None:
        self.metrics = Metrics.get_instance()
        self._children: BoundedLRU[_Children] = BoundedLRU(size=4096)

    def children(self, view: str, method: str, status: str) -> _Children:
        key = (view, method, status)
        found = self._children.get(key)
        if found is None:
            m = self.metrics
            found = (
                m.requests_by_method.labels(method=method),
                m.responses_by_status.labels(status=status),
                m.responses_by_status_view_method.labels(status=status, view=view, method=method),
                m.requests_latency_by_view_method.labels(view=view, method=method),
            )
            self._children.put(key, found)
        return found

    def record(self, request: HttpRequest, status: int, seconds: float) -> None:
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match is not None else None) or "<unnamed view>"
        method = request.method if request.method in _METHODS else "<invalid method>"
        by_method, by_status, by_view, latency = self.children(view, str(method), str(status))
        m = self.metrics
        m.requests_total.inc()
        m.responses_total.inc()
        m.requests_latency_before.observe(seconds)
        by_method.inc()
        by_status.inc()
        by_view.inc()
        latency.observe(seconds)


class RequestMiddleware:
    """Give each request an id bound to every log line; count it in flight; time, count and log it.

    On an API path, a bare error response (a plain 405, say) is rewritten as
    problem details, and the rate-limit headers of the request's outcome go
    out with whatever answer it gets.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.metrics = _RequestMetrics()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        REQUESTS_IN_FLIGHT.inc()
        # The headers straight from the environ: request.headers would build a copy of them all.
        meta = request.META
        request_id = accepted_request_id(meta.get("HTTP_X_REQUEST_ID")) or new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        structlog.contextvars.clear_contextvars()
        ip = client_ip(request)
        begin_context(client=ClientInfo(ip=ip, user_agent=meta.get("HTTP_USER_AGENT", "")[:512]))
        context = {
            "request_id": request_id,
            "method": request.method,
            "path": request.path,
            "ip": ip,
        }
        trace_id = trace_id_from(meta.get("HTTP_TRACEPARENT"))
        if trace_id:
            context["trace_id"] = trace_id
        structlog.contextvars.bind_contextvars(**context)
        try:
            response = self.get_response(request)
            if response.status_code >= 400:
                response = _problem_details(request, response)
            outcome = getattr(request, "rate_limit", None)
            if outcome is not None:
                for name, value in outcome.headers().items():
                    if name not in response:
                        response[name] = value
            seconds = time.perf_counter() - started
            duration_ms = round(seconds * 1000, 2)
            response["X-Request-ID"] = request_id
            response["X-Response-Time"] = f"{duration_ms:.2f}ms"
            self.metrics.record(request, response.status_code, seconds)
            log = logger.error if response.status_code >= 500 else logger.info
            log("request_finished", status=response.status_code, duration_ms=duration_ms)
            return response
        finally:
            REQUESTS_IN_FLIGHT.dec()
            # Nothing of this request may linger in the thread after it.
            structlog.contextvars.clear_contextvars()
            begin_context(client=ClientInfo())

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        """Count an exception a view let escape (Django answers it with a 500 page)."""
        self.metrics.metrics.exceptions_by_type.labels(type=type(exception).__name__).inc()


def _problem_details(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """Return an API path's bare error response rewritten as problem details."""
    if (
        response.streaming
        or "json" in response.get("Content-Type", "")
        or not is_api_request(request)
    ):
        return response
    status = response.status_code
    rewritten: HttpResponse = problem_response(
        status=status,
        code=CODE_FOR_STATUS.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR"),
        detail=HTTPStatus(status).phrase + ".",
        headers={
            name: value for name, value in response.items() if name.lower() not in _BODY_HEADERS
        },
    )
    return rewritten


class CommonMiddleware(django_common.CommonMiddleware):
    """Django's, without the search for a slash-ended twin of an unknown API path.

    No API route ends in a slash, so for an unknown `/api/v1/...` path that
    search (two more passes over every route) could never succeed.
    """

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        if request.path_info.startswith("/api/v1/"):
            return False
        return bool(super().should_redirect_with_slash(request))


class CorsMiddleware(cors.CorsMiddleware):
    """django-cors-headers', reading the request headers it needs from the environ.

    It asks `request.headers` for the preflight's and the origin's headers,
    which copies every header of the request; a call without an Origin (a
    program's, not a browser page's) gets what it would get (`Vary: origin`)
    without that copy.
    """

    def check_preflight(self, request: HttpRequest) -> HttpResponseBase | None:
        if "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META:
            return super().check_preflight(request)
        request._cors_enabled = self.is_enabled(request)  # type: ignore[attr-defined]
        return None

    def add_response_headers(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if request.META.get("HTTP_ORIGIN"):
            return super().add_response_headers(request, response)
        enabled = getattr(request, "_cors_enabled", None)
        if enabled is None:
            enabled = self.is_enabled(request)
        if enabled:
            patch_vary_headers(response, ("origin",))
        return response


# A view or template that asks for its own policy (decorators, a nonce) gets
# django-csp's full treatment; every other answer carries the standing policy.
_PER_RESPONSE_POLICY = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt",
    "_csp_exempt_ro",
)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's, with the standing policy built once rather than for every response."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            hasattr(response, name) for name in _PER_RESPONSE_POLICY
        ):
            return super().process_response(request, response)
        if settings.DEBUG and response.status_code in (500, 404):
            return response  # Django's debug pages, as django-csp leaves them
        for header, (policy, excluded) in _standing_policies().items():
            if policy and header not in response and not request.path_info.startswith(excluded):
                response[header] = policy
        # As django-csp: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response


@functools.cache
def _standing_policies() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Return each CSP header's standing value and the path prefixes it skips."""
    policies = {}
    for header, setting, report_only in (
        (HEADER, "CONTENT_SECURITY_POLICY", False),
        (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
    ):
        configured = getattr(settings, setting, None) or {}
        excluded = tuple(configured.get("EXCLUDE_URL_PREFIXES", None) or ())
        policies[header] = (build_policy(report_only=report_only), excluded)
    return policies


@receiver(setting_changed)
def _policies_forget(*, setting: str, **_: Any) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _standing_policies.cache_clear()


ViewHook = Callable[[HttpRequest, Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]


class BrowserMiddleware:
    """The middleware only a browser needs (settings.BROWSER_MIDDLEWARE), kept off API calls.

    Sessions, CSRF, Django's user, the login session and messages serve the
    dashboard and the API calls its pages make with their session cookie. An
    API call without that cookie (a program's, with a JWT or a service token)
    passes straight through: it pays for none of them. The group keeps
    Django's order and hooks: each layer is wrapped as Django wraps it, and
    their `process_view` hooks run here, in order, for the requests they saw.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        handler: Callable[[HttpRequest], Any] = get_response
        view_hooks: list[ViewHook] = []
        for path in reversed(settings.BROWSER_MIDDLEWARE):
            layer = import_string(path)(handler)
            if hasattr(layer, "process_view"):
                view_hooks.insert(0, layer.process_view)
            handler = convert_exception_to_response(layer)
        self.browser: Callable[[HttpRequest], HttpResponseBase] = handler
        self.view_hooks = view_hooks

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if is_api_request(request) and settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return self.get_response(request)
        request._browser_lane = True  # type: ignore[attr-defined]
        return self.browser(request)

    def process_view(
        self,
        request: HttpRequest,
        view: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        if not getattr(request, "_browser_lane", False):
            return None
        for hook in self.view_hooks:
            response = hook(request, view, args, kwargs)
            if response is not None:
                return response
        return None
