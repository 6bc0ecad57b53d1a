"""How many web processes serve the app: gunicorn's setting, and what the rate limiter assumes."""

from __future__ import annotations

import multiprocessing
import os


def web_workers() -> int:
    """Return the number of gunicorn workers: WEB_CONCURRENCY, else a default by deployment.

    The embedded default keeps its cache, rate limits and permission cache in
    process memory, so it must run a single web process; with Redis, scale out.
    """
    default = multiprocessing.cpu_count() * 2 + 1 if os.environ.get("REDIS_URL") else 1
    return int(os.environ.get("WEB_CONCURRENCY", str(default)))
