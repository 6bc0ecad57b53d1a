"""What the storage API raises when the storage itself fails: a disk, or an object store.

The filesystem raises OSError; django-storages' S3 backend lets botocore's
errors through (a refused or throttled request, an unreachable endpoint,
missing credentials), which are not OSErrors.
"""

from __future__ import annotations

import errno

from botocore.exceptions import BotoCoreError, ClientError

STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError, BotoCoreError, ClientError)

# A disk or quota that is full, and the object stores' ways of saying the same.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
FULL_S3_CODES = frozenset({"XMinioStorageFull", "InsufficientStorage"})


def storage_full(exc: BaseException) -> bool:
    """Tell whether a storage error says there is no room left (rather than no storage)."""
    if isinstance(exc, OSError):
        return exc.errno in FULL_ERRNOS
    if isinstance(exc, ClientError):
        answer = exc.response
        code = answer.get("Error", {}).get("Code", "")
        return (
            code in FULL_S3_CODES or answer.get("ResponseMetadata", {}).get("HTTPStatusCode") == 507
        )
    return False


def storage_error_code(exc: BaseException) -> str:
    """Return the stable code of a storage failure: full, or unavailable."""
    return "INSUFFICIENT_STORAGE" if storage_full(exc) else "STORAGE_UNAVAILABLE"
