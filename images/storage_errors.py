"""What the storage API raises when the storage itself fails: a disk, or an object store.

The filesystem raises OSError; django-storages' S3 backend lets botocore's
errors through (a refused or throttled request, an unreachable endpoint,
missing credentials), which are not OSErrors.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError, BotoCoreError, ClientError)
