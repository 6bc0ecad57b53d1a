"""The classifier's fixtures: the exported model, sample photos and a real remote classifier."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from PIL import Image

from classifier.chain import probe_image
from classifier.health import trackers_forget
from classifier.tests.factories import REMOTE_TOKEN, classification_answer
from config.testing.processes import free_port


@pytest.fixture(scope="session")
def model_file() -> Path:
    """The exported model, exported now if this checkout has none yet."""
    path = Path(settings.CLASSIFIER_MODEL_PATH)
    if not path.exists():
        call_command("classifier_export_model", output=path)
    return path


@pytest.fixture
def onnx_ready(model_file: Path) -> Path:
    """Any test classifying with the `onnx` provider asks for this first."""
    return model_file


@pytest.fixture(autouse=True)
def _fresh_trackers() -> Iterator[None]:
    """Each test starts with no provider history in this process (the cache is emptied too)."""
    trackers_forget()
    yield
    trackers_forget()


class RemoteClassifier:
    """A real HTTP server on a free loopback port, answering classify-batch as told."""

    def __init__(self) -> None:
        self.status = 503
        self.delay = 0.0
        self.answer: Any = None  # the `results` list to send; one default answer per file if None
        self.requests: list[dict[str, Any]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                files = body.count(b'name="files"')
                remote.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "files": files, "body": body}
                )
                time.sleep(remote.delay)
                if remote.status != 200:
                    self._send(remote.status, {"code": "SERVICE_UNAVAILABLE"})
                    return
                results = remote.answer
                if results is None:
                    results = [classification_answer() for _ in range(files)]
                self._send(200, {"results": results, "total_time_ms": 30.0})

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test reads `requests` instead

        return Handler

    @property
    def calls(self) -> int:
        return len(self.requests)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def remote(settings: Any) -> Iterator[RemoteClassifier]:
    """A remote classifier, failing with 503 until told otherwise, configured as `remote`."""
    server = RemoteClassifier()
    server.start()
    settings.CLASSIFIER_REMOTE_URL = server.url
    settings.CLASSIFIER_REMOTE_TOKEN = REMOTE_TOKEN
    settings.CLASSIFIER_REMOTE_TIMEOUT = 2
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def photo() -> Image.Image:
    """A small picture, freshly opened as the pipeline hands images over."""
    return probe_image()
