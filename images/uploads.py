"""Refuse an oversized upload before its body is read, or as soon as it passes the limit.

Two guards, both in front of the multipart parser:

- the request's `Content-Length` against the principal's per-file limit, times the
  number of files the view takes, plus room for the form's other parts: a larger
  request is refused without reading a byte of it;
- an upload handler counting each file's bytes as the parser streams them: the file
  that passes the limit stops the parsing there, before it is spooled to disk.

`upload_validate` checks the size again on what it reads, for callers outside HTTP.
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from rest_framework.request import Request

from accounts.authz.permissions import principal_required
from accounts.identity.principal import Principal
from images.errors import FileTooLarge

# Room for the multipart boundaries, part headers and small fields (bucket, scale).
MULTIPART_ALLOWANCE = 64 * 1024


class FileSizeLimitHandler(FileUploadHandler):
    """Count each uploaded file's bytes and refuse the file that passes `max_bytes`.

    It passes every chunk on unchanged to the handlers after it, which store the file.
    """

    def __init__(self, request: HttpRequest, *, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.received = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            raise FileTooLarge(size_bytes=None, limit_bytes=self.max_bytes)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _content_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _size_handler_install(request: HttpRequest, principal: Principal) -> None:
    if any(isinstance(handler, FileSizeLimitHandler) for handler in request.upload_handlers):
        return
    max_bytes = principal.limits["max_file_size_bytes"]
    request.upload_handlers = [
        FileSizeLimitHandler(request, max_bytes=max_bytes),
        *request.upload_handlers,
    ]


def upload_size_guard(request: HttpRequest, principal: Principal, *, max_files: int = 1) -> None:
    """Refuse a request too large to hold `max_files` files within the principal's limit,
    and limit each file the parser will read.

    Call it once the principal is known and before the request's form is first read.
    """
    max_bytes = principal.limits["max_file_size_bytes"]
    length = _content_length(request)
    if length is not None and length > max_bytes * max_files + MULTIPART_ALLOWANCE:
        raise FileTooLarge(size_bytes=None, limit_bytes=max_bytes)
    if not hasattr(request, "_files"):
        _size_handler_install(request, principal)


class UploadSizeLimitMixin:
    """For an APIView taking uploads: apply `upload_size_guard` once the caller is known."""

    max_upload_files = 1

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # A browser session is known before authentication, whose CSRF check reads the
        # form: the file's limit must be in place before that read.
        session_principal = getattr(request._request, "principal", None)
        if session_principal is not None:
            _size_handler_install(request._request, session_principal)
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        upload_size_guard(
            request._request, principal_required(request), max_files=self.max_upload_files
        )
