"""The container's health check: GET /health from the web server in the same container.

Exits 0 when the app answers 200 (healthy, or degraded: cache or broker down)
and 1 otherwise (503 unhealthy: the database is down; no answer; any other
status). Django refuses a Host header that is not in DJANGO_ALLOWED_HOSTS, so
the request names one it accepts: HEALTHCHECK_HOST when set, else the first
entry of DJANGO_ALLOWED_HOSTS. The port is HEALTHCHECK_PORT, else the one of
GUNICORN_BIND. Standard library only, so it runs without Django's settings.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = "8000"
TIMEOUT_SECONDS = 4.0


def request_host() -> str:
    """Return a Host header value that the app's DJANGO_ALLOWED_HOSTS accepts."""
    explicit = os.environ.get("HEALTHCHECK_HOST", "").strip()
    if explicit:
        return explicit
    for entry in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(","):
        # ".example.com" allows example.com itself as well as its subdomains.
        host = entry.strip().lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def request_port() -> str:
    """Return the port the web server listens on in this container."""
    explicit = os.environ.get("HEALTHCHECK_PORT", "").strip()
    if explicit:
        return explicit
    bind = os.environ.get("GUNICORN_BIND", "")
    _, separator, port = bind.rpartition(":")
    return port if separator and port.isdigit() else DEFAULT_PORT


def main() -> int:
    """Ask /health once; return the exit status for the container runtime."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{request_port()}/health",
        headers={"Host": request_host(), "Accept": "application/json"},
    )
    try:
        # A fixed http URL on the loopback, never one from input.
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        sys.stderr.write(f"vantage health check: no answer ({type(exc).__name__})\n")
        return 1
    if status != 200:
        sys.stderr.write(f"vantage health check: GET /health answered {status}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
