"""Content negotiation: DRF's, with the answer to the commonest Accept headers known at once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

# What programs send (or nothing at all): the first renderer answers, as DRF would decide.
_ANYTHING = frozenset({"", "*/*"})


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, skipping the parse of an Accept header that leaves no choice."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        accept = request.META.get("HTTP_ACCEPT", "")
        if not format_suffix and renderers and not request._request.META.get("QUERY_STRING"):
            renderer = renderers[0]
            if accept in _ANYTHING or accept == renderer.media_type:
                return renderer, renderer.media_type
        selected: tuple[BaseRenderer, str] = super().select_renderer(
            request, renderers, format_suffix
        )
        return selected


class JsonToBrowsers(ContentNegotiation):
    """Negotiate as every API view does, but answer a browser's text/html with the JSON."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            if "text/html" not in request.META.get("HTTP_ACCEPT", "") or not renderers:
                raise
            return renderers[0], renderers[0].media_type
