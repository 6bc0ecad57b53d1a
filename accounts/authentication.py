"""DRF authentication classes that also name the principal in the request's logs."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication
from rest_framework.request import Request

from config.request_context import bind_principal


class SessionAuthentication(authentication.SessionAuthentication):
    """The dashboard's Django session, with CSRF enforced on unsafe methods."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is not None:
            bind_principal(principal=f"user:{result[0].pk}")
        return result
