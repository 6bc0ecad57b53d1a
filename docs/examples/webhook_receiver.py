#!/usr/bin/env python3
"""Receive Vantage webhooks: verify each signature, skip repeats, print each event as JSON.

Usage: webhook_receiver.py [--port N] [--cert FILE --key FILE]

Environment:
  VANTAGE_WEBHOOK_SECRET  the endpoint's signing secret, whsec_... (required). During a
                          rotation set both, separated by a space: either one is accepted.

Vantage delivers over HTTPS only: serve this behind a TLS-terminating proxy, or give
--cert and --key to serve HTTPS itself. Each accepted event is printed on one line of
stdout; everything else goes to stderr.

Answers: 204 for an event accepted (or seen before: deliveries are at least once, so the
same `webhook-id` may come again); 400 when the signature, timestamp or body is wrong
(Vantage retries it, so a receiver with the wrong secret shows in the delivery log).
Standard library only; the Standard Webhooks libraries verify the same way:
    from standardwebhooks.webhooks import Webhook
    event = Webhook(secret).verify(body, headers)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import ssl
import sys
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A signature older or newer than this is refused, so a captured request cannot be replayed later.
TOLERANCE_SECONDS = 5 * 60
MAX_BODY_BYTES = 1_000_000
# The ids of the events seen lately: a repeated delivery is acknowledged, not processed again.
SEEN_IDS_KEPT = 10_000


def _say(message: str) -> None:
    sys.stderr.write(f"webhook-receiver: {message}\n")
    sys.stderr.flush()


class Refused(Exception):
    """The request is not a genuine, fresh Vantage event."""


def verified(secrets: list[str], headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """Return the event if a secret signed it within the tolerance; raise Refused otherwise."""
    message_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "").split()
    if not (message_id and timestamp.isdigit() and signatures):
        raise Refused("missing webhook-id, webhook-timestamp or webhook-signature")
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        raise Refused("the timestamp is too old or too new")
    signed = f"{message_id}.{timestamp}.".encode() + body
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for candidate in signatures:
            version, _, value = candidate.partition(",")
            if version == "v1" and hmac.compare_digest(value, expected):
                event: dict[str, Any] = json.loads(body)
                return event
    raise Refused("no signature matches")


def handler_for(secrets: list[str]) -> type[BaseHTTPRequestHandler]:
    seen: OrderedDict[str, None] = OrderedDict()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413)
                return
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                event = verified(secrets, headers, body)
            except (Refused, ValueError) as exc:
                _say(f"refused: {exc}")
                self._answer(400)
                return
            if event["id"] not in seen:
                seen[event["id"]] = None
                if len(seen) > SEEN_IDS_KEPT:
                    seen.popitem(last=False)
                sys.stdout.write(json.dumps(event) + "\n")
                sys.stdout.flush()
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            _say(format % args)

    return Receiver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--cert", help="a PEM certificate to serve HTTPS with")
    parser.add_argument("--key", help="the certificate's PEM private key")
    options = parser.parse_args()
    secrets = os.environ.get("VANTAGE_WEBHOOK_SECRET", "").split()
    if not secrets or not all(secret.startswith("whsec_") for secret in secrets):
        _say("Set VANTAGE_WEBHOOK_SECRET to the endpoint's secret (whsec_...).")
        return 2
    server = ThreadingHTTPServer((options.host, options.port), handler_for(secrets))
    if options.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(options.cert, options.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    _say(f"listening on {options.host}:{options.port}")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
