"""Real processes beside the tests: gunicorn servers and a Celery worker on the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings


class WorkerProcess:
    """A real `celery worker` process running beside the tests, and what it logged."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue  # a library printing plain text to stdout
        return lines

    def stop(self) -> None:
        """Ask the worker to stop; kill it if it has not within 20 seconds."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def wait_for_log(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        """Return the first line the worker logged that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if predicate(line):
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-4000:]
        raise AssertionError(f"the worker did not log the expected line in {timeout}s:\n{tail}")


def worker_spawn(
    *,
    log_path: Path,
    name: str,
    solo: bool = False,
    own_session: bool = False,
    **env_overrides: str,
) -> WorkerProcess:
    """Start a real `celery worker` on the test database and return it once it is ready.

    `solo` runs tasks in the worker's own process (no prefork child);
    `own_session` makes it lead a process group, so a test can signal it whole.
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url_for_subprocess(),
        **env_overrides,
    }
    pool = ["--pool", "solo"] if solo else ["--pool", "prefork", "--concurrency", "1"]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                *pool,
                "--loglevel",
                "INFO",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"{name}-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=own_session,
        )
    worker = WorkerProcess(process, log_path)
    try:
        worker.wait_for_log(lambda line: "ready" in str(line.get("event", "")), timeout=60)
    except AssertionError:
        process.kill()
        process.wait(timeout=10)
        raise
    return worker


def database_url_for_subprocess() -> str:
    """Return a DATABASE_URL naming the database the tests are using right now."""
    from django.db import connection

    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    user = params.get("USER") or ""
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    credentials = f"{user}{password}@" if user else ""
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{params['NAME']}"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A real gunicorn server of this project, on its own port and process."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"

    def wait_until_ready(
        self, timeout: float = 60, *, path: str = "/health", ready: tuple[int, ...] = (200, 503)
    ) -> None:
        """Wait until `path` answers one of the `ready` statuses (by default: /health answers)."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}{path}", timeout=2).status_code in ready:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-4000:]
        raise AssertionError(f"server on port {self.port} did not start:\n{tail}")


def server_spawn(
    *, log_path: Path, port: int | None = None, workers: int = 1, **env_overrides: str
) -> ServerProcess:
    """Start a real gunicorn server of this project on the current test database.

    It is not ready yet: call its `wait_until_ready()`.
    """
    port = port or free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url_for_subprocess(),
        **env_overrides,
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "-c",
                "config/gunicorn.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                "4",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return ServerProcess(process, port, log_path)
