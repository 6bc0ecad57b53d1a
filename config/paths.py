"""Where the running app keeps its files, for settings and for the gunicorn master alike."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    """Return the directory the embedded default writes to (database, broker, media, metrics)."""
    return Path(os.environ.get("VANTAGE_VAR_DIR") or BASE_DIR / "var")


def prometheus_multiproc_dir() -> Path:
    """Set (if unset) and return the metrics directory shared by a host's processes.

    It must be set before prometheus_client is first imported in a process.
    """
    path = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(var_dir() / "prometheus")))
    path.mkdir(parents=True, exist_ok=True)
    return path
