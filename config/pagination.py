"""Page-number pagination shared by every list endpoint."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import inline_serializer
from rest_framework import pagination, serializers


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=N&page_size=M`, with the page size capped by settings.API_MAX_PAGE_SIZE."""

    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE


def paginated(serializer_class: type[serializers.Serializer[Any]], *, cursor: bool = False) -> Any:
    """Return the schema of one page of `serializer_class` items, as list views answer it.

    Page-number pages carry `count`; cursor pages (`cursor=True`) do not.
    """
    name = serializer_class.__name__.removesuffix("Serializer")
    fields: dict[str, serializers.Field[Any, Any, Any, Any]] = {
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer_class(many=True),
    }
    if not cursor:
        fields = {"count": serializers.IntegerField(), **fields}
    return inline_serializer(name=f"Paginated{name}List", fields=fields)
