"""A filesystem storage on a disk of a given size, chosen through STORAGES in tests.

It fails as a full disk fails: a write that does not fit leaves the part that
did fit behind and raises ENOSPC. Every file under its location counts
against the size, whoever wrote it, so a test can fill the disk with a file
of its own.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage


class SmallDiskStorage(FileSystemStorage):
    """A FileSystemStorage holding at most `capacity_bytes` in all."""

    def __init__(self, *, capacity_bytes: int, **options: Any) -> None:
        super().__init__(**options)
        self.capacity_bytes = capacity_bytes

    def used_bytes(self) -> int:
        """Return the bytes every file under the storage's location holds now."""
        root = Path(self.location)
        return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())

    def _save(self, name: str, content: Any) -> str:
        content.seek(0)
        data = content.read()
        free = max(0, self.capacity_bytes - self.used_bytes())
        if len(data) <= free:
            return str(super()._save(name, ContentFile(data)))  # type: ignore[misc]
        super()._save(name, ContentFile(data[:free]))  # type: ignore[misc]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path(name))
