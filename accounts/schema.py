"""OpenAPI descriptions of the project's authentication classes."""

from drf_spectacular.authentication import SessionScheme


class ProjectSessionScheme(SessionScheme):
    target_class = "accounts.authentication.SessionAuthentication"
