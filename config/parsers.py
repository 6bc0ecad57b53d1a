"""Request body parsers: DRF's own, within limits of size, nesting and the characters text holds.

- A JSON body is read up to DATA_UPLOAD_MAX_MEMORY_SIZE bytes and no further (DRF
  reads a JSON stream whole, past Django's own limit); a larger one is `413`.
- A JSON document nested deeper than MAX_JSON_DEPTH arrays and objects is `400`:
  Python's parser and every walk of the data after it recurse once per level.
- A string holding a NUL character is `400` naming its field, whatever the database:
  PostgreSQL cannot store one in text, and no field of this API means one.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from config.errors import InvalidInput

MAX_JSON_DEPTH = 32
NUL = "\x00"
_READ_CHUNK = 64 * 1024


def field_path(parent: str | None, key: object) -> str:
    """Return the name of a nested field as validation errors name it: `data.tags[2]`."""
    if isinstance(key, int):
        return f"{parent or ''}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def _nul_refuse(field: str | None, *, in_key: bool = False) -> None:
    where = f"A key in `{field}`" if in_key and field else "A key" if in_key else f"`{field}`"
    raise InvalidInput(
        f"{where} holds a NUL character (\\u0000), which no text accepts.",
        field=field,
        code="null_characters_not_allowed",
    )


def _children(value: Any, path: str | None) -> list[tuple[str, Any]]:
    """Return the named children of an object or array, refusing keys that hold a NUL."""
    if isinstance(value, Mapping):
        for key in value:
            if NUL in str(key):
                _nul_refuse(path, in_key=True)
        return [(field_path(path, key), child) for key, child in value.items()]
    return [(field_path(path, index), child) for index, child in enumerate(value)]


def document_check(document: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse parsed JSON nested deeper than `max_depth` or holding a NUL in any string."""
    # An explicit stack: this check must not recurse on the depth it limits.
    pending: list[tuple[str | None, Any, int]] = [(None, document, 0)]
    while pending:
        path, value, depth = pending.pop()
        if isinstance(value, str):
            if NUL in value:
                _nul_refuse(path)
        elif isinstance(value, Mapping | list):
            if depth >= max_depth:
                raise InvalidInput(
                    f"The JSON body is nested more than {max_depth} levels deep.",
                    field=None,
                    code="nesting_too_deep",
                )
            pending.extend((name, child, depth + 1) for name, child in _children(value, path))


def _declared_length(parser_context: Mapping[str, Any] | None) -> int:
    request = (parser_context or {}).get("request")
    meta = getattr(request, "META", {})
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def body_read(stream: IO[bytes], parser_context: Mapping[str, Any] | None) -> bytes:
    """Return the body, refusing it (413) once it passes DATA_UPLOAD_MAX_MEMORY_SIZE."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and _declared_length(parser_context) > limit:
        raise RequestDataTooBig("The request body is larger than the JSON limit.")
    chunks: list[bytes] = []
    read = 0
    while chunk := stream.read(_READ_CHUNK):
        chunks.append(chunk)
        read += len(chunk)
        if limit is not None and read > limit:
            raise RequestDataTooBig("The request body is larger than the JSON limit.")
    return b"".join(chunks)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, bounded in size and depth, refusing NUL characters."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        body = io.BytesIO(body_read(stream, parser_context))
        try:
            document = super().parse(body, media_type, parser_context)
        except RecursionError:
            # Deeper than the interpreter's stack: far deeper than any accepted document.
            raise ParseError(
                f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep."
            ) from None
        document_check(document)
        return document


def form_check(data: QueryDict) -> None:
    """Refuse form fields whose names or values hold a NUL character."""
    for name, values in data.lists():
        if NUL in name:
            _nul_refuse(None, in_key=True)
        if any(isinstance(value, str) and NUL in value for value in values):
            _nul_refuse(name)


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, refusing NUL characters in the form's text fields."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        parsed = super().parse(stream, media_type, parser_context)
        form_check(parsed.data)
        return parsed
