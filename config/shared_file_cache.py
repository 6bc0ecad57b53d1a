"""A cache in files that every process of one host shares, for the embedded default.

Django's file cache reads and writes whole files atomically, but its `add`
and `incr` read, then write: two processes counting at once could lose a
count. Here both run under an exclusive lock on a file beside the entries,
and `incr` keeps the entry's expiry (Django's gives it the default timeout,
so a counter meant to live an hour would be forgotten after five minutes).
"""

from __future__ import annotations

import fcntl
import os
import pickle
import time
import zlib
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
            try:
                # Where Django's file cache keeps the key (not in its type stubs).
                path = self._key_to_file(key, version)  # type: ignore[attr-defined]
                with open(path, "rb") as entry:
                    expiry = pickle.load(entry)  # noqa: S301 (this cache's own file)
                    value = pickle.loads(zlib.decompress(entry.read()))  # noqa: S301
            except FileNotFoundError:
                value, expiry = None, 0.0
            now = time.time()
            if value is None or (expiry is not None and expiry <= now):
                raise ValueError(f"Key '{key}' not found")
            total = int(value) + delta
            # The time it had left; None: it never expires.
            self.set(key, total, None if expiry is None else expiry - now, version)
            return total
