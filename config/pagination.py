"""Page-number pagination shared by every list endpoint."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import inline_serializer
from rest_framework import pagination, serializers
from rest_framework.exceptions import NotFound


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


class SequenceCursorPagination(pagination.CursorPagination):
    """Cursor pagination over an integer column; a cursor it did not give out is refused."""

    def decode_cursor(self, request: Any) -> pagination.Cursor | None:
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        # DRF passes the position to the query as it was sent; a non-number fails there.
        try:
            position = int(cursor.position)
        except ValueError:
            raise NotFound(self.invalid_cursor_message) from None
        # Beyond a 64-bit column the database refuses the number instead of comparing it.
        if not -(2**63) <= position < 2**63:
            raise NotFound(self.invalid_cursor_message)
        return cursor
