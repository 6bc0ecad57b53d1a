"""The OpenAPI schema and its browsable page, served in a rate-limit window of their own."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.ratelimits.limits import RateLimitRule

# Reading the docs is counted apart from the API's own calls: a client
# generator or a person reading them never spends the anonymous window that
# signing in needs, nor a principal's API window.
DOCS_RATE_LIMIT = RateLimitRule(group="docs", per_minute=settings.API_DOCS_PER_MINUTE)


class SchemaApi(SpectacularAPIView):
    """The OpenAPI schema."""

    rate_limit = DOCS_RATE_LIMIT


class DocsPage(SpectacularSwaggerSplitView):
    """The browsable API documentation, reading the schema."""

    rate_limit = DOCS_RATE_LIMIT
