"""One URL served by one APIView per HTTP method: each operation is a view of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
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
