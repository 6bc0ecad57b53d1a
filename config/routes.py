"""How the API's routes are laid out: one APIView per operation, routes grouped by prefix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch, URLPattern, URLResolver, include, path
from django.urls.resolvers import RoutePattern
from rest_framework.views import APIView

_HANDLERS = ("get", "post", "put", "patch", "delete")


def operations(*views: type[APIView]) -> Callable[..., HttpResponseBase]:
    """Return the view of a URL that hands each request to the APIView of its method.

    HEAD goes where GET goes; OPTIONS and any other method to the first view, which
    answers for the whole URL (405 naming every method it takes).
    """
    takes = sorted({name.upper() for view in views for name in _HANDLERS if hasattr(view, name)})
    by_method: dict[str, Callable[..., HttpResponseBase]] = {}
    handlers = []
    for view in views:
        # The URL's own subclass of each view knows every method the URL takes (the schema
        # names an operation by whether its path takes one method or several).
        bound: type[APIView] = type(
            view.__name__, (view,), {"__module__": view.__module__, "url_methods": takes}
        )
        handler = bound.as_view()
        handlers.append(handler)
        for name in _HANDLERS:
            if hasattr(view, name):
                if name.upper() in by_method:
                    raise ValueError(f"two views of one URL answer {name.upper()}")
                by_method[name.upper()] = handler
    if "GET" in by_method:
        by_method["HEAD"] = by_method["GET"]
    allowed = [*sorted(by_method), "OPTIONS"]
    first = handlers[0]

    def dispatch(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        handler = by_method.get(request.method or "")
        if handler is not None:
            return handler(request, *args, **kwargs)
        # OPTIONS, or a method no operation takes: the first view answers as DRF does (401
        # to a caller it does not know, before anything else), for the whole URL.
        response = first(request, *args, **kwargs)
        if response.status_code in (200, 405):
            response["Allow"] = ", ".join(allowed)
        return response

    # Each APIView checks CSRF itself, for session-authenticated calls only, as DRF does.
    dispatch.csrf_exempt = True  # type: ignore[attr-defined]
    dispatch.operations = {  # type: ignore[attr-defined]
        method: handler for method, handler in by_method.items() if method != "HEAD"
    }
    return dispatch


def by_first_segment(
    prefix: str, patterns: Sequence[URLPattern | URLResolver]
) -> list[URLPattern | URLResolver]:
    """Return `patterns` under `prefix`, the routes of each first path segment grouped.

    Django tries a URL's routes one by one: a path near the end of a long list
    (or no route at all, for a 404) costs a match attempt per route. Grouped,
    a path is checked against one prefix per segment (a string comparison),
    then matched in its own group only. The order of matching is kept: a
    route that could take a path of a group (a converter first, a regex, an
    include) is left where it is and closes the groups before it, so no route
    moves ahead of one it came after.
    """
    grouped: list[URLPattern | URLResolver] = []
    groups: dict[str, list[URLPattern]] = {}
    for pattern in patterns:
        route = str(pattern.pattern)
        head, slash, rest = route.partition("/")
        routed = isinstance(pattern.pattern, RoutePattern)
        if not (routed and slash and "<" not in head and isinstance(pattern, URLPattern)):
            # A route of one literal segment ("images") takes that path alone; anything
            # else left in place (a converter, a regex, an include) could take a path
            # of an open group, whose later routes must not move ahead of it.
            if not (routed and isinstance(pattern, URLPattern) and "<" not in route):
                groups = {}
            grouped.append(_prefixed(prefix, pattern))
            continue
        if head not in groups:
            groups[head] = []
            grouped.append(SegmentRoutes(RoutePattern(f"{prefix}{head}/"), groups[head]))
        groups[head].append(path(rest, pattern.callback, pattern.default_args, pattern.name))
    return grouped


class SegmentRoutes(URLResolver):
    """The routes under one path prefix; a path outside it is passed over without an error.

    Django's resolver reports a prefix that does not match by raising, and
    the list it sits in catches that: each group a path passes costs an
    exception. A group answers "not mine" (None) as a single route does.
    """

    def resolve(self, path: Any) -> ResolverMatch | None:  # type: ignore[override]
        if self.pattern.match(str(path)) is None:
            return None
        return super().resolve(path)


def _prefixed(prefix: str, pattern: URLPattern | URLResolver) -> URLPattern | URLResolver:
    if isinstance(pattern, URLPattern) and isinstance(pattern.pattern, RoutePattern):
        route = f"{prefix}{pattern.pattern}"
        return path(route, pattern.callback, pattern.default_args, pattern.name)
    return path(prefix, include([pattern]))
