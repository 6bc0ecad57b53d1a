"""The page that shows a new token's secret once, and how the secret reaches it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.authz.pages import dashboard_page, signed_in_principal
from accounts.models import ServiceToken
from accounts.selectors import token_get
from accounts.services.tokens import IssuedToken
from accounts.tokens.format import token_digest

# The secret travels from the POST that made it to the page that shows it in a cookie
# (post/redirect/get): short-lived, signed, bound to the browser session and the token, and
# deleted by the page that shows it. The server keeps only the secret's digest.
ISSUED_COOKIE = "vantage_token_secret"
ISSUED_COOKIE_SECONDS = 120
ISSUED_COOKIE_SALT = "accounts.views.tokens.secret"


def _secret_path(token: ServiceToken) -> str:
    return f"/tokens/{token.id}/secret/"


def secret_redirect(request: HttpRequest, issued: IssuedToken, *, rotated: bool) -> HttpResponse:
    """Send the browser to the page that shows the new secret once, carrying it in a cookie."""
    principal = signed_in_principal(request)
    value = signing.dumps(
        {
            "token": str(issued.token.id),
            "session": str(principal.session_id),
            "secret": issued.secret,
            "rotated": rotated,
        },
        salt=ISSUED_COOKIE_SALT,
    )
    response = redirect(_secret_path(issued.token))
    response.set_cookie(
        ISSUED_COOKIE,
        value,
        max_age=ISSUED_COOKIE_SECONDS,
        path=_secret_path(issued.token),
        secure=request.is_secure(),
        httponly=True,
        samesite="Strict",
    )
    return response


def _secret_carried(request: HttpRequest, token: ServiceToken) -> dict[str, Any] | None:
    """The cookie's secret of this token for this browser session, if fresh and genuine."""
    value = request.COOKIES.get(ISSUED_COOKIE)
    if not value:
        return None
    try:
        carried = signing.loads(value, salt=ISSUED_COOKIE_SALT, max_age=ISSUED_COOKIE_SECONDS)
    except signing.BadSignature:
        return None
    principal = signed_in_principal(request)
    genuine = (
        isinstance(carried, dict)
        and carried.get("token") == str(token.id)
        and carried.get("session") == str(principal.session_id)
        and isinstance(carried.get("secret"), str)
        and token_digest(carried["secret"]) == token.digest
    )
    return carried if genuine else None


@dashboard_page("token:manage")
def token_secret_page(request: HttpRequest, token_id: UUID) -> HttpResponse:
    """A new token's secret, shown once; loaded again, it says how to get a new one."""
    token = token_get(
        organization_id=signed_in_principal(request).organization_id, token_id=str(token_id)
    )
    carried = _secret_carried(request, token)
    context = {
        "token": token,
        "secret": carried["secret"] if carried else None,
        "rotated": carried["rotated"] if carried else token.rotated_from_id is not None,
    }
    response = render(request, "accounts/token_secret.html", context)
    response["Cache-Control"] = "no-store"
    if ISSUED_COOKIE in request.COOKIES:
        response.delete_cookie(ISSUED_COOKIE, path=_secret_path(token), samesite="Strict")
    return response
