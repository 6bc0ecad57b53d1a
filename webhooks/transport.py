"""An httpx transport for one webhook attempt: one deadline for the whole attempt, and a
connection to the checked address only.

httpx's timeouts bound each socket operation, so an endpoint answering a byte at a
time could hold a worker without end; here every connect, read and write gets what
is left of the attempt's deadline, and an attempt past it fails as a timeout.
"""

from __future__ import annotations

import ssl
import time
import typing

import httpcore
import httpx


def _left(deadline: float, timeout: float | None, error: type[Exception]) -> float:
    """Return the seconds an operation may take: what is left of the deadline, at most."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the attempt's time is up")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(self._deadline, timeout, httpcore.ConnectTimeout)
        secured = self._stream.start_tls(ssl_context, server_hostname, left)
        return DeadlineStream(secured, self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """Connects only to `address`, and within the deadline."""

    def __init__(self, *, address: str, deadline: float) -> None:
        self._address = address
        self._deadline = deadline
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        if host.strip("[]") != self._address:
            raise httpcore.ConnectError(f"{host} is not the address that was checked")
        stream = self._backend.connect_tcp(
            self._address,
            port,
            _left(self._deadline, timeout, httpcore.ConnectTimeout),
            local_address,
            socket_options,
        )
        return DeadlineStream(stream, self._deadline)


class AttemptTransport(httpx.HTTPTransport):
    """httpx's transport over a DeadlineBackend: one connection, no retries, no proxy."""

    def __init__(self, *, ssl_context: ssl.SSLContext, address: str, deadline: float) -> None:
        super().__init__(verify=ssl_context, trust_env=False, retries=0)
        # httpx makes its connection pool without a choice of network backend: the same
        # pool, over the attempt's backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=1,
            retries=0,
            network_backend=DeadlineBackend(address=address, deadline=deadline),
        )
