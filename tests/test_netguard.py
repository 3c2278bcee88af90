"""The SSRF guard on its own, and at the dial level (GuardedBackend) against a real socket."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from ingest.http import GuardedBackend
from ingest.netguard import BlockedAddressError, is_public_address, resolve_and_check
from tests.local_http import LocalServer

REFUSED = [
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.255.0.9",
    "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.168.1.1", "192.0.0.1", "198.18.0.1",
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "fe80::1", "fe80::1%1", "fc00::1", "fd12:3456::1", "ff02::1", "ff0e::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "::127.0.0.1", "::10.0.0.1",  # IPv4-compatible
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::808:808",  # NAT64, RFC 8215 local-use
    "2002:7f00:1::1", "2002:a00:1::",  # 6to4
    "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:808:808:8000:63bf:3fff:fdd2",  # Teredo
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
          "2002:808:808::1"]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(address)


def test_python_ipaddress_gaps_are_covered() -> None:
    # The reasons the guard cannot just use is_private / is_global.
    assert not ipaddress.ip_address("100.64.0.1").is_private
    for sneaky in ("224.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1"):
        assert ipaddress.ip_address(sneaky).is_global
        assert not is_public_address(sneaky)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "017700000001", "127.1", "0", "::1", "::ffff:127.0.0.1"]
)
def test_resolution_forms_of_loopback_are_blocked(host: str) -> None:
    with pytest.raises(BlockedAddressError) as caught:
        run(resolve_and_check(host, 80, allow_private=False))
    assert caught.value.address in {"127.0.0.1", "0.0.0.0", "::1", "::ffff:127.0.0.1"}
    assert "is not a public address" in str(caught.value)
    assert run(resolve_and_check(host, 80, allow_private=True))


def test_blocked_error_names_host_and_address() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    with pytest.raises(BlockedAddressError, match=r"refused news\.example: 127\.0\.0\.1 is not a public address"):
        run(resolve_and_check("news.example", 443, allow_private=False, resolver=resolver))


def test_any_private_answer_blocks_the_name() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.1.2.3"]

    with pytest.raises(BlockedAddressError) as caught:
        run(resolve_and_check("mixed.example", 80, allow_private=False, resolver=resolver))
    assert caught.value.address == "10.1.2.3"


def test_public_answers_are_returned_in_order_without_duplicates() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "93.184.215.14"]

    found = run(resolve_and_check("example.com", 80, allow_private=False, resolver=resolver))
    assert found == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]


def test_ip_literals_bypass_the_resolver() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise AssertionError("a literal must not be resolved")

    with pytest.raises(BlockedAddressError):
        run(resolve_and_check("10.0.0.1", 80, allow_private=False, resolver=resolver))


def test_trusted_endpoint_is_exact() -> None:
    trusted = [("127.0.0.1", 8080)]
    assert run(resolve_and_check("127.0.0.1", 8080, allow_private=False, trusted=trusted)) == ["127.0.0.1"]
    with pytest.raises(BlockedAddressError):
        run(resolve_and_check("127.0.0.1", 8081, allow_private=False, trusted=trusted))
    with pytest.raises(BlockedAddressError):
        run(resolve_and_check("127.0.0.2", 8080, allow_private=False, trusted=trusted))


def test_backend_refuses_before_dialling() -> None:
    with LocalServer() as server:
        server.route("/", lambda req: (200, {}, b"hi"))

        async def main() -> None:
            backend = GuardedBackend(allow_private=False)
            with pytest.raises(BlockedAddressError):
                await backend.connect_tcp("127.0.0.1", server.port, timeout=2)

        run(main())
        assert server.requests == []


def test_backend_dials_the_checked_address_not_the_name() -> None:
    # "news.example" has no DNS here: connecting at all proves the dial used the resolver's answer.
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    with LocalServer() as server:
        server.route("/", lambda req: (200, {}, b"hi"))

        async def main() -> bytes:
            backend = GuardedBackend(allow_private=False, resolver=resolver, trusted=[server.endpoint])
            stream = await backend.connect_tcp("news.example", server.port, timeout=2)
            try:
                await stream.write(b"GET / HTTP/1.1\r\nHost: news.example\r\nConnection: close\r\n\r\n")
                return await stream.read(65536)
            finally:
                await stream.aclose()

        assert run(main()).startswith(b"HTTP/1.1 200")
        assert server.requests[0].headers["host"] == "news.example"


def test_backend_falls_through_to_the_next_checked_address() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.2", "127.0.0.1"]  # nothing listens on 127.0.0.2

    with LocalServer() as server:

        async def main() -> None:
            backend = GuardedBackend(allow_private=True, resolver=resolver)
            stream = await backend.connect_tcp("two.example", server.port, timeout=2)
            await stream.aclose()

        run(main())
