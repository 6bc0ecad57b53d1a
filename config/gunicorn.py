"""Gunicorn settings: `gunicorn config.wsgi -c config/gunicorn.py`, tuned from the environment."""

import os

from config.concurrency import web_workers
from config.logs import log_format_default, logging_config
from config.paths import prometheus_multiproc_dir

# The master marks dead workers in the metrics directory, so it needs the
# same one before prometheus_client loads.
prometheus_multiproc_dir()

from prometheus_client import multiprocess  # noqa: E402

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = web_workers()
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = max_requests // 10
# Behind a TLS proxy, trust its X-Forwarded-* headers (set to its address).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None
errorlog = "-"
logconfig_dict = logging_config(
    level=os.environ.get("LOG_LEVEL", "INFO").upper(),
    fmt=log_format_default("stdout"),
)
# Gunicorn's own lines in the same format, instead of its plain-text handlers; no
# access log, since the app logs every request with its id.
logconfig_dict["loggers"].update(
    {
        "gunicorn.error": {"handlers": ["structured"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    }
)


def child_exit(server: object, worker: object) -> None:
    """Drop a dead worker's live gauges from the multiprocess metrics."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
