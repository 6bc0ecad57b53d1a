"""`make bench`: run every bench/bench_*.py module against a fresh test database."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time

import django


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    django.setup()
    import logging

    # Log lines are still rendered (their cost is part of every request) but
    # not printed between the figures.
    from config.logs import OUTPUT

    devnull = open(os.devnull, "w")  # noqa: SIM115
    OUTPUT.stream = devnull
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    from django.conf import settings
    from django.db import connection
    from django.test.utils import override_settings, setup_test_environment

    import bench

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    only = set(sys.argv[1:])
    print(
        f"database: {connection.vendor} ({test_db}); cache: {settings.CACHES['default']['BACKEND']}"
    )
    try:
        with override_settings(ROOT_URLCONF="bench.urls"):
            for module in pkgutil.iter_modules(bench.__path__):
                if not module.name.startswith("bench_") or (only and module.name not in only):
                    continue
                started = time.perf_counter()
                importlib.import_module(f"bench.{module.name}").run()
                print(f"({module.name}: {time.perf_counter() - started:.1f}s)")
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
