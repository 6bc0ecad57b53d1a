"""A cache in files that every process of one host shares, for the embedded default.

Django's file cache reads and writes whole files atomically, but its `add`
and `incr` read, then write: two processes counting at once could lose a
count. Here both run under an exclusive lock on a file beside the entries.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache

LOCK_NAME = "entries.lock"  # not a ".djcache" file: never listed, culled or cleared


class SharedFileCache(FileBasedCache):
    """Django's file cache with `add` and `incr` atomic across processes and threads."""

    def __init__(self, dir: str, params: dict[str, Any]) -> None:
        super().__init__(dir, params)
        self._directory = os.path.abspath(dir)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(self._directory, exist_ok=True)  # removed with var/ while running
        with open(os.path.join(self._directory, LOCK_NAME), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        with self._locked():
            return bool(super().add(key, value, timeout, version))

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        with self._locked():
            return int(super().incr(key, delta, version))
