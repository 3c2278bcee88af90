"""SSRF guard: decide whether an address the fetcher is about to dial is public.

Checks run on resolved addresses at connect time (see ``ingest.http``), so a
redirect or a DNS answer that changes between requests cannot reach a private
network. Python's ``ipaddress`` alone is not enough: ``100.64.0.1.is_private``
is False, and ``224.0.0.1``, ``::127.0.0.1`` and ``64:ff9b::7f00:1`` report
``is_global``; IPv4 embedded in IPv6 forms is therefore unwrapped and checked too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Collection
from ipaddress import IPv4Address, IPv6Address, IPv6Network

import anyio

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Async ``(host, port) -> addresses`` used instead of DNS (tests, custom resolvers)."""

# Refused whatever a given Python version's ``is_global`` says about them.
_REFUSED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "fe80::/10", "fc00::/7",
        # RFC 8215 local-use NAT64: not globally reachable, and where the IPv4
        # part sits depends on the operator's prefix length, so it cannot be unwrapped.
        "64:ff9b:1::/48",
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = IPv6Network("::/96")


def _embedded_ipv4(ip: IPv6Address) -> tuple[IPv4Address, ...]:
    """IPv4 addresses a packet to ``ip`` may end up at (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return (IPv4Address(ip.packed[-4:]),)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo
    return ()


def is_public_address(ip: str | IPAddress) -> bool:
    """True only for globally routable unicast addresses, embedded IPv4 included."""
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if address.is_multicast or not address.is_global:
        return False
    if any(address in net for net in _REFUSED if net.version == address.version):
        return False
    if isinstance(address, IPv6Address):
        return all(is_public_address(v4) for v4 in _embedded_ipv4(address))
    return True


class BlockedAddressError(OSError):
    """A connection target that is not public while private networks are not allowed."""

    def __init__(self, host: str, address: str) -> None:
        self.host = host
        self.address = address
        where = "" if host == address else f" {host}"
        super().__init__(f"refused{where}: {address} is not a public address")

    def __str__(self) -> str:
        return str(self.args[0])


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve_and_check(
    host: str,
    port: int,
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    trusted: Collection[tuple[str, int]] = (),
) -> list[str]:
    """Resolve ``host`` and return the addresses to dial, refusing non-public ones.

    Every address must pass, not just the first: a connect loop would otherwise
    fall through to the private one. ``trusted`` lists exact ``(address, port)``
    endpoints allowed although private (one local service, or a test server),
    a much narrower opening than ``allow_private``.
    """
    found = [host] if _is_literal(host) else await (resolver or _getaddrinfo)(host, port)
    addresses = list(dict.fromkeys(found))
    if not addresses:
        raise socket.gaierror(f"no addresses for {host}")
    if allow_private:
        return addresses
    allowed = {(ipaddress.ip_address(address), p) for address, p in trusted}
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if (ip, port) not in allowed and not is_public_address(ip):
            raise BlockedAddressError(host, address)
    return addresses

