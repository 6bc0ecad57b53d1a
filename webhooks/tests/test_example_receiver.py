"""docs/examples/webhook_receiver.py: it accepts genuine deliveries once and refuses forgeries."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from config.testing.processes import free_port
from config.testing.webhook_receiver import tls_certificate
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.services.deliveries import delivery_resend
from webhooks.services.events import webhook_event_emit
from webhooks.signing import secret_generate
from webhooks.tests.factories import RECEIVER_HOST, deliveries_run, endpoint_for

pytestmark = pytest.mark.django_db

EXAMPLE = Path(django_settings.BASE_DIR) / "docs" / "examples" / "webhook_receiver.py"


@pytest.fixture
def example(
    settings: Any, tmp_path: Path, resolver: dict[str, list[str]]
) -> Iterator[tuple[int, str, Path]]:
    """The example receiver over HTTPS on a free port; yields (port, its secret, its stdout)."""
    cert, key = tls_certificate(tmp_path, RECEIVER_HOST)
    settings.WEBHOOK_CA_BUNDLE = str(cert)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    resolver[RECEIVER_HOST] = ["127.0.0.1"]
    port, secret = free_port(), secret_generate()
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                str(EXAMPLE),
                "--port",
                str(port),
                "--cert",
                str(cert),
                "--key",
                str(key),
            ],
            env={"VANTAGE_WEBHOOK_SECRET": secret, "PATH": "/usr/bin:/bin"},
            stdout=stdout,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 20
        while "listening" not in err.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield port, secret, out
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_example_receiver_prints_each_genuine_event_once(
    org: Any, example: tuple[int, str, Path]
) -> None:
    port, secret, out = example
    url = f"https://{RECEIVER_HOST}:{port}/"
    endpoint_for(org, url=url, secret=secret)
    event = webhook_event_emit(organization_id=org.id, type="job.failed", data={"id": "j"})
    assert event is not None

    assert deliveries_run() == ["succeeded"]
    delivery_resend(delivery=WebhookDelivery.objects.get())
    assert deliveries_run() == ["succeeded"]

    lines = out.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [str(event.id)]


def test_the_example_receiver_refuses_another_secrets_signature(
    org: Any, example: tuple[int, str, Path]
) -> None:
    port, _, out = example
    endpoint_for(org, url=f"https://{RECEIVER_HOST}:{port}/")  # a secret of its own
    webhook_event_emit(organization_id=org.id, type="job.failed", data={"id": "j"})

    assert deliveries_run() == ["failed"]

    assert WebhookAttempt.objects.get().status_code == 400
    assert out.read_text() == ""
