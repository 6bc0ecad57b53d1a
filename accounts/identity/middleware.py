"""Tie a browser's Django session to its login Session, so revoking one ends the other."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponseBase

from accounts.errors import AuthenticationFailed
from accounts.identity.authentication import BROWSER_SESSION_KEY, principal_for_session
from config.request_context import bind_principal


class BrowserSessionMiddleware:
    """Resolve a signed-in browser's principal, or sign it out if its session has ended."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request.principal = None  # type: ignore[attr-defined]
        session = getattr(request, "session", None)
        session_id = session.get(BROWSER_SESSION_KEY) if session is not None else None
        if session_id:
            try:
                principal = principal_for_session(
                    session_id=str(session_id), user_id=None, organization_id=None
                )
            except AuthenticationFailed:
                logout(request)
            else:
                request.principal = principal  # type: ignore[attr-defined]
                bind_principal(principal.actor, org=principal.organization_id)
        return self.get_response(request)
