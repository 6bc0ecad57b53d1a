"""Slow clients cannot starve the web server: nginx, as deploy/nginx/ configures it, buffers them.

A real gunicorn server behind a real nginx running the shipped template.
Twenty connections send their headers or their body a few bytes at a time
while /health, asked through nginx, must keep answering within 1 s. Debian's
nginx package is needed (`make test-tools` installs it); where the tests run as
root or in CI a missing nginx fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import string
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings

from config.testing.processes import ServerProcess, free_port

TEMPLATE = Path(settings.BASE_DIR) / "deploy" / "nginx" / "vantage.conf.template"
SLOW_CONNECTIONS = 20
HEALTH_SECONDS = 1.0
MAIN_CONFIG = """
worker_processes 1;
daemon off;
{user}
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {directory}/vantage.conf;
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    if os.geteuid() == 0 or os.environ.get("CI"):
        pytest.fail("nginx is not installed: `make test-tools` installs Debian's package")
    pytest.skip("nginx is not installed: `make test-tools` installs Debian's package")


@pytest.fixture
def nginx_in_front(tmp_path: Path) -> Iterator[Callable[[ServerProcess], str]]:
    """Start nginx with the shipped configuration in front of a server; return its URL."""
    binary = nginx_binary()
    processes: list[subprocess.Popen[bytes]] = []

    def start(server: ServerProcess) -> str:
        directory, port = tmp_path / "nginx", free_port()
        directory.mkdir()
        variables = {
            "VANTAGE_UPSTREAM": f"127.0.0.1:{server.port}",
            "NGINX_PORT": f"127.0.0.1:{port}",
            "NGINX_CLIENT_MAX_BODY_SIZE": "101m",
        }
        # Only these three, as the image's envsubst does: nginx's own $variables stay.
        rendered = string.Template(TEMPLATE.read_text()).safe_substitute(variables)
        (directory / "vantage.conf").write_text(rendered)
        user = "user root root;" if os.geteuid() == 0 else ""
        (directory / "nginx.conf").write_text(MAIN_CONFIG.format(directory=directory, user=user))
        command = [
            binary,
            "-p",
            str(directory),
            "-e",
            str(directory / "error.log"),
            "-c",
            str(directory / "nginx.conf"),
        ]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        processes.append(subprocess.Popen(command, stderr=subprocess.DEVNULL))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/nginx-health", timeout=1)
            except httpx.HTTPError:
                time.sleep(0.1)
            else:
                return url
        raise AssertionError((directory / "error.log").read_text()[-2000:])

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def slow_connections(port: int, count: int) -> list[socket.socket]:
    """Open connections that have sent only part of their header, or of their body."""
    opened = []
    for index in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if index % 2:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        else:
            sock.sendall(
                b"POST /api/v1/images/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"
            )
        opened.append(sock)
    return opened


def drip(connections: list[socket.socket]) -> None:
    """Send each connection a little more: a header line, or a few bytes of body."""
    for index, sock in enumerate(connections):
        sock.sendall(b"X-Slow: 1\r\n" if index % 2 else b"\xff" * 8)


def health_while_dripping(url: str, connections: list[socket.socket], seconds: float) -> list[Any]:
    """Ask /health again and again while the connections drip; return (status, seconds) pairs."""
    answers: list[Any] = []
    last_drip = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if time.monotonic() - last_drip >= 1:
            drip(connections)
            last_drip = time.monotonic()
        started = time.monotonic()
        try:
            status: int | str = httpx.get(f"{url}/health", timeout=5).status_code
        except httpx.TimeoutException:
            status = "timeout"
        answers.append((status, round(time.monotonic() - started, 3)))
        time.sleep(0.2)
    return answers


def test_twenty_slow_clients_do_not_slow_health_down(
    server_processes: Any, nginx_in_front: Any
) -> None:
    (server,) = server_processes(count=1, workers=1)
    url = nginx_in_front(server)
    connections = slow_connections(int(url.rsplit(":", 1)[1]), SLOW_CONNECTIONS)
    try:
        answers = health_while_dripping(url, connections, seconds=6)
    finally:
        for sock in connections:
            sock.close()

    assert len(answers) >= 10, answers
    assert all(status == 200 for status, _ in answers), answers
    assert max(took for _, took in answers) < HEALTH_SECONDS, answers


def test_the_proxy_passes_the_client_address_and_refuses_oversized_bodies_as_problems(
    server_processes: Any, nginx_in_front: Any
) -> None:
    (server,) = server_processes(count=1, workers=1, TRUSTED_PROXY_COUNT="1")
    url = nginx_in_front(server)

    # A client's own X-Forwarded-For is kept to the left of what nginx appends.
    response = httpx.get(f"{url}/health", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5)
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    logged = [
        json.loads(line)
        for line in server.log_path.read_text().splitlines()
        if request_id in line and line.startswith("{")
    ]
    assert {line["ip"] for line in logged if line.get("event") == "request_finished"} == {
        "127.0.0.1"
    }

    size = 102 * 1024 * 1024  # past the 101 MB the template is given here
    chunks = (b"\0" * 65536 for _ in range(size // 65536))
    headers = {"Content-Type": "image/jpeg", "Content-Length": str(size)}
    too_large = httpx.post(
        f"{url}/api/v1/images/upload", content=chunks, headers=headers, timeout=30
    )
    assert too_large.status_code == 413
    assert too_large.headers["Content-Type"] == "application/problem+json"
    body = too_large.json()
    assert (body["code"], body["status"]) == ("FILE_TOO_LARGE", 413)
    assert body["request_id"] == too_large.headers["X-Request-ID"]
