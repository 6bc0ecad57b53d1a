"""Fixtures of the webhooks tests: a real HTTPS receiver on loopback and a resolver to steer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.testing.webhook_receiver import (
    RESOLVER_ANSWERS,
    TABLE_RESOLVER,
    WebhookReceiver,
    tls_certificate,
)
from webhooks.tests.factories import RECEIVER_HOST


@pytest.fixture
def resolver(settings: Any) -> Iterator[dict[str, list[str]]]:
    """Host names resolve through this table (no DNS); fill it in per test."""
    settings.WEBHOOK_RESOLVER = TABLE_RESOLVER
    RESOLVER_ANSWERS.clear()
    yield RESOLVER_ANSWERS
    RESOLVER_ANSWERS.clear()


@pytest.fixture
def receiver(
    settings: Any, tmp_path: Path, resolver: dict[str, list[str]]
) -> Iterator[WebhookReceiver]:
    """An HTTPS receiver on 127.0.0.1 named RECEIVER_HOST, its certificate trusted through
    WEBHOOK_CA_BUNDLE; delivering to loopback is allowed for it."""
    cert_path, key_path = tls_certificate(tmp_path, RECEIVER_HOST)
    settings.WEBHOOK_CA_BUNDLE = str(cert_path)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    resolver[RECEIVER_HOST] = ["127.0.0.1"]
    server = WebhookReceiver(cert_path, key_path)
    server.start()
    yield server
    server.stop()
