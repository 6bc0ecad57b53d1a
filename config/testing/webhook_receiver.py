"""A real HTTPS webhook receiver on loopback, its self-signed certificate, and a resolver
the tests fill in (a stand-in for DNS, chosen through WEBHOOK_RESOLVER)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# What `table_resolve` answers: host name -> addresses. Tests fill it in and empty it.
RESOLVER_ANSWERS: dict[str, list[str]] = {}
TABLE_RESOLVER = "config.testing.webhook_receiver.table_resolve"


def table_resolve(host: str, port: int) -> list[str]:
    """Answer from RESOLVER_ANSWERS as DNS would; an unknown name fails as it does."""
    if host not in RESOLVER_ANSWERS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return list(RESOLVER_ANSWERS[host])


def tls_certificate(directory: Path, hostname: str) -> tuple[Path, Path]:
    """Write a self-signed certificate for `hostname` (and 127.0.0.1) and its key; return
    (certificate path, key path). The certificate is its own authority."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "receiver.pem", directory / "receiver.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 204
    # Seconds to wait before answering (to outlast the sender's timeout).
    delay: float = 0.0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds between the lines of the answer's head, sent one at a time (a slow drip).
    trickle: float = 0.0


class WebhookReceiver:
    """An HTTPS server on 127.0.0.1 recording every request; answers come from `answers`
    in turn (the last one repeats), 204 when none is given."""

    def __init__(self, cert_path: Path, key_path: Path) -> None:
        self.received: list[ReceivedRequest] = []
        self.answers: list[Answer] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.received.append(ReceivedRequest(self.path, headers, body))
                answer = receiver.next_answer()
                time.sleep(answer.delay)
                if answer.trickle:
                    self._trickle(answer)
                    return
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    pass  # the sender gave up waiting

            def _trickle(self, answer: Answer) -> None:
                lines = [f"HTTP/1.1 {answer.status} OK", *(f"X-Drip-{n}: x" for n in range(20))]
                try:
                    for line in lines:
                        self.wfile.write(line.encode() + b"\r\n")
                        time.sleep(answer.trickle)
                    self.wfile.write(b"Content-Length: 0\r\n\r\n")
                except OSError:
                    pass  # the sender gave up waiting
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def next_answer(self) -> Answer:
        if not self.answers:
            return Answer()
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
