"""Writing images' files so that a failed write never leaves a part of one behind.

On a filesystem the file is written under a hidden name beside its own and
renamed over it once complete and on disk (a rename replaces a file whole).
An object store replaces an object whole or not at all, so there the file is
written at its own name directly.
"""

from __future__ import annotations

import os
import uuid

import structlog
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from images.storage_errors import STORAGE_ERRORS

logger = structlog.get_logger("vantage.images")


def file_write(*, name: str, data: bytes) -> str:
    """Write `data` at exactly `name`, whole or not at all (replacing any file); return it."""
    try:
        final = default_storage.path(name)
    except NotImplementedError:
        return _object_put(name, data)
    folder, base = os.path.split(name)
    staged = os.path.join(folder, f".{base}.{uuid.uuid4().hex[:12]}.partial")
    try:
        written = default_storage.path(default_storage.save(staged, ContentFile(data)))
        _flush(written)
        os.replace(written, final)
    except BaseException:
        file_discard(staged)
        raise
    _flush(os.path.dirname(final))  # the rename itself survives a crash
    return name


def _object_put(name: str, data: bytes) -> str:
    written = default_storage.save(name, ContentFile(data))
    if written != name:
        file_discard(written)
        raise ImproperlyConfigured("The image storage must overwrite files (file_overwrite).")
    return name


def _flush(path: str) -> None:
    """Have the file's or folder's contents on the disk before going on."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def file_discard(name: str) -> None:
    """Delete the file if it is there; a storage failing to is logged, never raised."""
    try:
        default_storage.delete(name)
    except STORAGE_ERRORS as exc:
        logger.warning("image_file_not_deleted", path=name, error_type=type(exc).__name__)
