"""A web worker's memory per request: huge images are decoded one at a time, reduced.

A real gunicorn worker serves the requests. Its resident set is read from /proc,
its peak reset just before each measured request, once it has served a small
classification: the model it loads once per process is not a request's cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from accounts.tests.factories import PASSWORD, MembershipFactory, OrganizationFactory
from images.tests.factories import solid_png

Answer = TypeVar("Answer")

SIDE = 8192
BATCH = 32
MAX_BATCH_GROWTH_MB = 300
MAX_UPLOAD_GROWTH_MB = 64
REQUEST_TIMEOUT = 180
# Requests one worker serves at once: its threads (config/gunicorn.py). They take turns at
# decoding a picture whole (268 MB at most); each holds its own small share besides.
PARALLEL = 4
MAX_PARALLEL_GROWTH_MB = 400


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    """An 8192x8192 PNG of 200 KB that decodes to 256 MiB."""
    return solid_png(SIDE, (200, 30, 30))


def _worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = children.read_text().split()
        if pids:
            return int(pids[0])
        time.sleep(0.1)
    raise AssertionError("gunicorn started no worker")


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for process {pid}")


def peak_growth_mb(pid: int, request: Callable[[], Answer]) -> tuple[Answer, float]:
    """Return the answer and how far the process's resident set rose above its size before."""
    before = _status_mb(pid, "VmRSS")
    # Writing 5 resets the process's peak resident set (VmHWM) to its current size.
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    response = request()
    return response, _status_mb(pid, "VmHWM") - before


@pytest.fixture
def served(server_processes: Any, huge_png: bytes) -> dict[str, Any]:
    """A one-worker server, a member's access token, and the worker warmed by a classification."""
    org = OrganizationFactory(slug="memory")
    MembershipFactory(organization=org, role="user", user__username="mona")
    (server,) = server_processes(count=1, workers=1, GUNICORN_TIMEOUT="300")
    signed_in = httpx.post(
        f"{server.url}/api/v1/auth/token",
        json={"username": "mona", "password": PASSWORD},
        timeout=REQUEST_TIMEOUT,
    )
    assert signed_in.status_code == 200, signed_in.text
    headers = {"Authorization": f"Bearer {signed_in.json()['access']}"}
    small = solid_png(64, (10, 120, 200))
    warm = httpx.post(
        f"{server.url}/api/v1/vehicle/classify",
        files={"file": ("small.png", small, "image/png")},
        headers=headers,
        timeout=REQUEST_TIMEOUT,
    )
    assert warm.status_code == 200, warm.text
    return {"url": server.url, "headers": headers, "pid": _worker_pid(server.process.pid)}


def test_a_batch_of_32_huge_pngs_is_answered_within_300_mb(served, huge_png):
    files = [("files", (f"huge-{index}.png", huge_png, "image/png")) for index in range(BATCH)]

    response, growth = peak_growth_mb(
        served["pid"],
        lambda: httpx.post(
            f"{served['url']}/api/v1/vehicle/classify-batch",
            files=files,
            headers=served["headers"],
            timeout=REQUEST_TIMEOUT,
        ),
    )

    assert response.status_code == 200, response.text
    assert response.json()["succeeded"] == BATCH
    assert growth <= MAX_BATCH_GROWTH_MB, f"the worker grew by {growth:.0f} MB"


def test_parallel_batches_take_turns_at_decoding_whole(served, huge_png):
    files = [("files", (f"huge-{index}.png", huge_png, "image/png")) for index in range(4)]

    def batch() -> httpx.Response:
        return httpx.post(
            f"{served['url']}/api/v1/vehicle/classify-batch",
            files=files,
            headers=served["headers"],
            timeout=REQUEST_TIMEOUT,
        )

    def parallel() -> list[httpx.Response]:
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            return list(pool.map(lambda _: batch(), range(PARALLEL)))

    responses, growth = peak_growth_mb(served["pid"], parallel)

    assert [response.status_code for response in responses] == [200] * PARALLEL
    assert growth <= MAX_PARALLEL_GROWTH_MB, f"the worker grew by {growth:.0f} MB"


def test_uploading_a_huge_png_does_not_decode_it_whole(served, huge_png):
    response, growth = peak_growth_mb(
        served["pid"],
        lambda: httpx.post(
            f"{served['url']}/api/v1/images/upload",
            files={"file": ("huge.png", huge_png, "image/png")},
            headers=served["headers"],
            timeout=REQUEST_TIMEOUT,
        ),
    )

    assert response.status_code == 202, response.text
    assert growth <= MAX_UPLOAD_GROWTH_MB, f"the worker grew by {growth:.0f} MB"
