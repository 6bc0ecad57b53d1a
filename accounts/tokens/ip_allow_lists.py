"""A service token's allow-list of client networks: cleaned once, checked on every request.

The check runs on the hot path after the token is identified: its networks
come with the token's cached record and are parsed once per process, so it
costs neither a database nor a cache round trip.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

from config.errors import InvalidInput

MAX_ALLOWED_IPS = 32

_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def allowed_ips_clean(values: Iterable[object], *, field: str = "allowed_ips") -> list[str]:
    """Return the networks in canonical form ("10.0.0.0/24", "2001:db8::/32"), or raise 400.

    A bare address is a network of one; host bits under the prefix are refused,
    since "10.0.0.7/24" most likely means a mistake rather than 10.0.0.0/24.
    """
    cleaned: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(
                "Each entry must be an IPv4 or IPv6 address or network.", field=field
            )
        try:
            network = ipaddress.ip_network(value.strip(), strict=True)
        except ValueError:
            raise InvalidInput(_not_a_network(value.strip()), field=field) from None
        if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
            # Clients are matched by their IPv4 address, as ::ffff:a.b.c.d is written.
            mapped = network.network_address.ipv4_mapped
            network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
        if network.prefixlen == 0:
            raise InvalidInput(
                f"{value.strip()!r} allows every address, which is no allow-list: "
                "name the client networks the token is used from.",
                field=field,
            )
        if str(network) not in cleaned:
            cleaned.append(str(network))
    if len(cleaned) > MAX_ALLOWED_IPS:
        raise InvalidInput(
            f"At most {MAX_ALLOWED_IPS} networks; {len(cleaned)} were given.", field=field
        )
    _refuse_whole_space(cleaned, field=field)
    return cleaned


def _not_a_network(value: str) -> str:
    """Return why `value` is no network, as a person would say it."""
    try:
        meant = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"“{value}” is not an IP address or network, such as 203.0.113.0/24."
    return f"“{value}” has bits set after the /{meant.prefixlen}: did you mean {meant}?"


# The widest network an allow-list may name, and the most addresses all its
# networks may cover together (four such networks): a list near the whole
# address space, e.g. 0.0.0.0/1 and 128.0.0.0/2, is no allow-list either.
WIDEST_PREFIX = {4: 8, 6: 16}
NETWORKS_OF_THE_WIDEST = 4


def _refuse_whole_space(entries: list[str], *, field: str) -> None:
    """Raise 400 when a network, or all together, allow too large a part of the address space."""
    networks = [ipaddress.ip_network(entry) for entry in entries]
    for network in networks:
        widest = WIDEST_PREFIX[network.version]
        if network.prefixlen < widest:
            raise InvalidInput(
                f"{network} allows {_share(network.num_addresses, network.version)} of all "
                f"IPv{network.version} addresses: an allow-list names the client networks the "
                f"token is used from, none wider than /{widest}.",
                field=field,
            )
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    for version, merged in (
        (4, list(ipaddress.collapse_addresses(v4))),
        (6, list(ipaddress.collapse_addresses(v6))),
    ):
        covered = sum(network.num_addresses for network in merged)
        widest = WIDEST_PREFIX[version]
        if covered > NETWORKS_OF_THE_WIDEST * 2 ** ((32 if version == 4 else 128) - widest):
            raise InvalidInput(
                f"Together these networks allow {_share(covered, version)} of all IPv{version} "
                f"addresses, more than {NETWORKS_OF_THE_WIDEST} networks of /{widest}: name "
                "the client networks the token is used from.",
                field=field,
            )


def _share(count: int, version: int) -> str:
    share = count / 2 ** (32 if version == 4 else 128)
    return f"{share:.0%}" if share >= 0.01 else f"{share:.2g}".replace("e-0", "e-")


@functools.lru_cache(maxsize=4096)
def _ranges(entries: tuple[str, ...]) -> tuple[tuple[int, int, int], ...]:
    """Each network as integers (IP version, first address, netmask): a match is a mask."""
    networks = (ipaddress.ip_network(entry) for entry in entries)
    return tuple((n.version, int(n.network_address), int(n.netmask)) for n in networks)


@functools.lru_cache(maxsize=65_536)
def _address(ip: str) -> Address | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is still that IPv4 client.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def ip_allowed(entries: Sequence[str], ip: str | None) -> bool:
    """Tell whether the client address lies in one of the networks (an empty list allows all)."""
    if not entries:
        return True
    address = _address(ip) if ip else None
    if address is None:
        return False
    version, value = address.version, int(address)
    return any(v == version and value & mask == first for v, first, mask in _ranges(tuple(entries)))
