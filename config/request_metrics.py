"""Requests in flight: a gauge raised as a request comes in and lowered as it leaves.

Its own middleware, first after django-prometheus' first, so that it counts
every request the app sees. It costs two writes to this process's metrics
file per request: no lock beyond the gauge's own, no I/O, no round trip.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from config.metrics import REQUESTS_IN_FLIGHT


class RequestsInFlightMiddleware:
    """Count the requests this process is handling."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.inc = REQUESTS_IN_FLIGHT.inc
        self.dec = REQUESTS_IN_FLIGHT.dec

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        self.inc()
        try:
            return self.get_response(request)
        finally:
            self.dec()
