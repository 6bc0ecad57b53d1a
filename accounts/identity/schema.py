"""OpenAPI descriptions of the project's authentication classes."""

from typing import Any

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ProjectSessionScheme(SessionScheme):
    target_class = "accounts.identity.authentication.SessionAuthentication"


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.identity.authentication.JWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from POST /api/v1/auth/token.",
        }


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.identity.authentication.ServiceTokenAuthentication"
    name = ["serviceTokenBearer", "serviceTokenApiKey"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        # Either header carries the token: two requirements (OR), not one with both (AND).
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "sk_ + 64 hex",
                "description": "A service token: Authorization: Bearer sk_...",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "A service token: X-API-Key: sk_...",
            },
        ]
