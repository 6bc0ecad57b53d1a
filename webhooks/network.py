"""Sending one webhook request to an address checked against SSRF, and only to that address.

The host is resolved once, at send time; every address it resolves to must be
public (not loopback, private, link-local, multicast, reserved, unspecified or a
cloud metadata address, IPv4-mapped IPv6 included), and the connection goes to
the checked address itself, with the original host name in the `Host` header,
the TLS server name (SNI) and the certificate check. Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

from webhooks.errors import TargetRefused
from webhooks.transport import AttemptTransport

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance metadata services (AWS, GCP, Azure, ...; AWS's IPv6 one): never a target,
# whatever WEBHOOK_ALLOW_PRIVATE_TARGETS says.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
USER_AGENT = "Vantage-Webhooks/1"


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    # The path and query, sent as the request target.
    path: str
    # The Host header: the host as the URL names it, with a port other than the scheme's.
    host_header: str


@dataclass(frozen=True)
class WebhookResponse:
    status_code: int
    # The start of the body, at most WEBHOOK_RESPONSE_BODY_MAX_BYTES of it.
    body: str


# NAT64 (RFC 6052): the well-known prefix carries an IPv4 address in its last 32 bits; the
# local-use prefix (RFC 8215) may carry one anywhere, so it is refused whole.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
# The deprecated IPv4-compatible form ::a.b.c.d (:: and ::1 aside, which are not addresses of it).
IPV4_COMPATIBLE_PREFIX = ipaddress.ip_network("::/96")
NAT64_LOCAL_PREFIX = ipaddress.ip_network("64:ff9b:1::/48")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, Teredo,
    NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in IPV4_COMPATIBLE_PREFIX and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Return why `address` may not receive webhooks, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_refusal(embedded)
        if address in NAT64_LOCAL_PREFIX:
            return "a local NAT64 address"
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    reason = _private_reason(address)
    if (
        reason is not None
        and settings.WEBHOOK_ALLOW_PRIVATE_TARGETS
        and not (address.is_multicast or address.is_unspecified)
    ):
        return None  # development and tests deliver to their own machine
    return reason


def _private_reason(address: IPAddress) -> str | None:
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("site-local", getattr(address, "is_site_local", False)),
        ("private", address.is_private),
        ("not public", not address.is_global),
    )
    return next((f"a {name} address" for name, found in checks if found), None)


def target_parse(url: str) -> Target:
    """Return the URL's parts, or raise TargetRefused when its form is not allowed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused("The URL is malformed.") from exc
    schemes = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes:
        raise TargetRefused("The URL must start with https://.")
    if not parts.hostname:
        raise TargetRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("The URL may not carry a user name or password.")
    default_port = 443 if parts.scheme == "https" else 80
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    return Target(
        scheme=parts.scheme,
        host=host,
        port=port or default_port,
        path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        host_header=shown if port in (None, default_port) else f"{shown}:{port}",
    )


def system_resolve(host: str, port: int) -> list[str]:
    """Return the addresses the system's resolver gives for `host`."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(answer[4][0]) for answer in answers))


def _resolver() -> Callable[[str, int], list[str]]:
    resolve: Callable[[str, int], list[str]] = import_string(settings.WEBHOOK_RESOLVER)
    return resolve


def target_addresses(target: Target) -> list[IPAddress]:
    """Resolve the target's host and check every address; raise TargetRefused if any is refused."""
    try:
        addresses = [ipaddress.ip_address(target.host)]
    except ValueError:
        try:
            answers = _resolver()(target.host, target.port)
        except OSError as exc:
            raise TargetRefused(f"The host {target.host} could not be resolved.") from exc
        addresses = [ipaddress.ip_address(answer.split("%")[0]) for answer in answers]
    if not addresses:
        raise TargetRefused(f"The host {target.host} could not be resolved.")
    for address in addresses:
        reason = address_refusal(address)
        if reason is not None:
            raise TargetRefused(f"The host {target.host} resolves to {address}, {reason}.")
    return addresses


def url_check(url: str) -> None:
    """Raise TargetRefused unless the URL may be registered (its host resolves to public
    addresses now; it is checked again at every delivery)."""
    target_addresses(target_parse(url))


@cache
def _tls_context(bundle: str) -> ssl.SSLContext:
    if bundle:
        return ssl.create_default_context(cafile=bundle)
    return httpx.create_ssl_context()


def webhook_post(*, url: str, body: bytes, headers: dict[str, str]) -> WebhookResponse:
    """POST `body` to the URL's checked address within WEBHOOK_TIMEOUT_SECONDS in all;
    raise TargetRefused, or httpx.HTTPError (httpx.TimeoutException past the deadline)."""
    target = target_parse(url)
    address = target_addresses(target)[0]
    shown = f"[{address}]" if address.version == 6 else str(address)
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    transport = AttemptTransport(
        ssl_context=_tls_context(settings.WEBHOOK_CA_BUNDLE),
        address=str(address),
        deadline=time.monotonic() + timeout,
    )
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    with httpx.Client(
        transport=transport,
        follow_redirects=False,
        trust_env=False,  # never through a proxy of the environment: the checked address only
        timeout=httpx.Timeout(timeout),
    ) as client:
        request = client.build_request(
            "POST",
            f"{target.scheme}://{shown}:{target.port}{target.path}",
            content=body,
            # No compression: a small compressed answer could inflate past any cap in memory.
            headers={
                **headers,
                "Host": target.host_header,
                "User-Agent": USER_AGENT,
                "Accept-Encoding": "identity",
            },
            extensions=extensions,
        )
        response = client.send(request, stream=True)
        try:
            kept = _body_read(response)
        finally:
            response.close()
    return WebhookResponse(status_code=response.status_code, body=kept)


def _body_read(response: httpx.Response) -> str:
    """Read at most WEBHOOK_RESPONSE_BODY_MAX_BYTES of the body as sent; the rest is never read.

    The bytes as they came over the wire: an endpoint that compresses anyway is
    kept compressed (and shown garbled) rather than inflated past the cap.
    """
    cap = settings.WEBHOOK_RESPONSE_BODY_MAX_BYTES
    kept = b""
    for chunk in response.iter_raw():
        kept += chunk
        if len(kept) >= cap:
            break
    return kept[:cap].decode("utf-8", errors="replace")
