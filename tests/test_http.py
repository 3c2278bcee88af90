"""Fetcher against real sockets (tests/local_http.py): no mocks of httpx."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from ingest.http import FetchResult, Fetcher
from ingest.netguard import Resolver
from ingest.settings import DEFAULT_USER_AGENT, HttpSettings
from tests.local_http import LocalServer, Request

pytestmark = pytest.mark.timeout(30)


def http_settings(**overrides: Any) -> HttpSettings:
    """Fast settings for tests: short timeouts and back-offs."""
    base: dict[str, Any] = {
        "connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 5.0,
        "retries": 2, "retry_backoff": 0.01, "max_retry_wait": 5.0,
    }
    return HttpSettings(**{**base, **overrides})


async def fetch_many(
    urls: list[str],
    settings: HttpSettings | None = None,
    *,
    private: bool = True,
    resolver: Resolver | None = None,
    trusted: Collection[tuple[str, int]] = (),
    **kwargs: Any,
) -> list[FetchResult]:
    fetcher = Fetcher(
        settings or http_settings(), allow_private_networks=private, resolver=resolver, trusted_endpoints=trusted
    )
    async with fetcher:
        return list(await asyncio.gather(*(fetcher.fetch(url, **kwargs) for url in urls)))


def fetch(url: str, settings: HttpSettings | None = None, **kwargs: Any) -> FetchResult:
    return asyncio.run(fetch_many([url], settings, **kwargs))[0]


def reply(status: int = 200, body: bytes = b"ok", **headers: str):  # type: ignore[no-untyped-def]
    return lambda req: (status, {k.replace("_", "-"): v for k, v in headers.items()}, body)


def resolve_to(address: str) -> Resolver:
    async def resolver(host: str, port: int) -> list[str]:
        return [address]

    return resolver


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    with LocalServer() as s:
        yield s


# --- basics -----------------------------------------------------------------


def test_fetch_returns_body_and_headers_as_received(server: LocalServer) -> None:
    server.route(
        "/page",
        lambda req: (200, [("Content-Type", "text/html; charset=UTF-8"), ("X-Odd", "A  b"), ("X-Dup", "1"),
                           ("X-Dup", "2")], b"<p>hi</p>"),
    )
    result = fetch(server.url("/page"), accept="text/html")
    assert result.ok and result.error is None and result.error_kind is None
    assert (result.status, result.body, result.redirects) == (200, b"<p>hi</p>", ())
    assert result.url == result.final_url == server.url("/page")
    assert result.content_type == "text/html; charset=UTF-8"
    assert result.headers["x-odd"] == "A  b" and result.headers["x-dup"] == "1, 2"
    assert result.fetched_at.tzinfo is not None and abs(datetime.now(UTC) - result.fetched_at) < timedelta(seconds=5)
    sent = server.requests[0].headers
    assert sent["user-agent"] == DEFAULT_USER_AGENT
    assert sent["accept"] == "text/html"
    assert sent["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in sent and "if-modified-since" not in sent


def test_default_accept_is_any(server: LocalServer) -> None:
    server.route("/", reply())
    fetch(server.url("/"))
    assert server.requests[0].headers["accept"] == "*/*"


def test_conditional_get_echoes_validators_byte_for_byte(server: LocalServer) -> None:
    etag = b'W/"caf\xc3\xa9-17"'.decode("latin-1")  # UTF-8 bytes, as some servers send them
    last_modified = "Wed, 21 Oct 2015 07:28:00 GMT"

    def handler(req: Request) -> tuple[int, dict[str, str], bytes]:
        if req.headers.get("if-none-match") == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"ETag": etag, "Last-Modified": last_modified}, b"<rss/>"

    server.route("/feed", handler)
    first = fetch(server.url("/feed"))
    assert first.ok and first.etag == etag and first.last_modified == last_modified
    second = fetch(server.url("/feed"), etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified and second.body is None and second.error is None and not second.ok
    sent = server.requests[1].headers
    assert sent["if-none-match"].encode("latin-1") == b'W/"caf\xc3\xa9-17"'
    assert sent["if-modified-since"] == last_modified


@pytest.mark.parametrize("url", ["ftp://example.com/feed", "file:///etc/passwd", "javascript:alert(1)", "http://",
                                 "http://[::1", "http://example.com:99999/", "http://example.com:0/", "http://xn--/",
                                 "not a url"])
def test_unsupported_urls_come_back_as_results(url: str) -> None:
    result = fetch(url, private=False)
    assert result.error_kind == "unsupported" and result.status is None and result.url == url


def test_environment_proxies_are_ignored(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalServer() as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.url("/"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        server.route("/", reply())
        assert fetch(server.url("/")).ok
        assert proxy.requests == []


# --- SSRF ---------------------------------------------------------------------

SSRF_HOSTS = ["127.0.0.1", "localhost", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
              "0.0.0.0", "[::1]", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1", "017700000001"]


@pytest.mark.parametrize("host", SSRF_HOSTS)
def test_private_targets_are_blocked(server: LocalServer, host: str) -> None:
    # Loopback forms point at a live server: without the guard they would succeed.
    server.route("/", reply())
    result = fetch(f"http://{host}:{server.port}/", private=False)
    assert result.error_kind == "blocked" and result.status is None, result
    assert "is not a public address" in str(result.error)
    assert "INGEST_ALLOW_PRIVATE_NETWORKS=1" in str(result.error)
    assert server.requests == []


def test_public_looking_name_resolving_to_loopback_is_blocked(server: LocalServer) -> None:
    server.route("/", reply())
    result = fetch(f"http://news.example:{server.port}/", private=False, resolver=resolve_to("127.0.0.1"))
    assert result.error_kind == "blocked"
    assert result.error == (
        "refused news.example: 127.0.0.1 is not a public address (set INGEST_ALLOW_PRIVATE_NETWORKS=1 for local sites)"
    )
    assert server.requests == []


def test_blocked_host_with_robots_is_still_blocked(server: LocalServer) -> None:
    result = fetch(server.url("/article"), private=False, obey_robots=True)
    assert result.error_kind == "blocked" and server.requests == []


@pytest.mark.parametrize("target", ["direct", "name", "metadata"])
def test_redirect_from_allowed_host_to_private_is_blocked(server: LocalServer, target: str) -> None:
    # `server` stands for a public site: it is the one trusted endpoint. The guard
    # runs at dial time, so the redirect target is checked like any first hop.
    with LocalServer() as internal:
        internal.route("/secret", reply(body=b"secret"))
        location = {
            "direct": internal.url("/secret"),
            "name": f"http://internal.example:{internal.port}/secret",
            "metadata": "http://169.254.169.254/latest/meta-data/",
        }[target]
        server.route("/go", reply(302, Location=location))
        result = fetch(server.url("/go"), private=False, resolver=resolve_to("127.0.0.1"), trusted=[server.endpoint])
        assert result.error_kind == "blocked", result
        assert result.redirects == ((302, location),) and result.final_url == location
        assert server.paths() == ["/go"] and internal.requests == []


def test_allowed_host_works_with_guard_on(server: LocalServer) -> None:
    server.route("/", reply())
    result = fetch(server.url("/"), private=False, trusted=[server.endpoint])
    assert result.ok


def test_dns_rebinding_is_checked_on_every_dial(server: LocalServer) -> None:
    answers = iter([["127.0.0.1"], ["127.0.0.2"]])  # trusted first, then a private address

    async def resolver(host: str, port: int) -> list[str]:
        return next(answers)

    server.route("/", reply(Connection="close"))  # forces a new dial for the second fetch

    async def main() -> list[FetchResult]:
        async with Fetcher(http_settings(), resolver=resolver, trusted_endpoints=[server.endpoint]) as fetcher:
            url = f"http://news.example:{server.port}/"
            return [await fetcher.fetch(url), await fetcher.fetch(url)]

    first, second = asyncio.run(main())
    assert first.ok and second.error_kind == "blocked" and len(server.requests) == 1


# --- redirects ----------------------------------------------------------------


def chain(server: LocalServer, length: int) -> None:
    statuses = itertools.cycle([301, 302, 303, 307, 308])
    for n in range(length, 0, -1):
        server.route(f"/r/{n}", reply(next(statuses), Location=f"/r/{n - 1}"))
    server.route("/r/0", reply(body=b"end"))


def test_redirects_are_followed_and_recorded(server: LocalServer) -> None:
    chain(server, 5)
    result = fetch(server.url("/r/5"))
    assert result.ok and result.body == b"end" and result.final_url == server.url("/r/0")
    assert result.redirects == tuple(
        (status, server.url(f"/r/{n}")) for status, n in zip([301, 302, 303, 307, 308], range(4, -1, -1))
    )


def test_more_than_max_redirects_fails(server: LocalServer) -> None:
    chain(server, 6)
    result = fetch(server.url("/r/6"))
    assert result.error_kind == "redirects" and result.error == "more than 5 redirects"
    assert len(result.redirects) == 5 and len(server.requests) == 6 and result.body is None


def test_redirect_loop_ends(server: LocalServer) -> None:
    server.route("/loop", reply(302, Location="/loop"))
    result = fetch(server.url("/loop"), http_settings(max_redirects=3))
    assert result.error_kind == "redirects" and result.error == "more than 3 redirects"
    assert len(server.requests) == 4


def test_relative_location_is_resolved(server: LocalServer) -> None:
    server.route("/a/b/page", reply(301, Location="../b/c?x=1"))
    server.route("/a/b/c", reply(body=b"c"))
    result = fetch(server.url("/a/b/page"))
    assert result.ok and result.redirects == ((301, server.url("/a/b/c?x=1")),)


def test_redirect_to_other_scheme_is_refused(server: LocalServer) -> None:
    server.route("/", reply(302, Location="file:///etc/passwd"))
    result = fetch(server.url("/"))
    assert result.error_kind == "unsupported" and len(server.requests) == 1
    assert [(status, location.startswith("file:")) for status, location in result.redirects] == [(302, True)]


@pytest.mark.parametrize("location", ["mailto:x@example.com", "http://example.com:99999/", "http://:0/",
                                      "http://xn--/"])
def test_unusable_redirects_come_back_as_results(server: LocalServer, location: str) -> None:
    # Some of these make httpx itself raise inside send(), although it follows no redirects.
    server.route("/", reply(302, Location=location))
    result = fetch(server.url("/"))
    assert result.error_kind == "unsupported" and len(server.requests) == 1


def test_redirect_without_location_is_an_http_error(server: LocalServer) -> None:
    server.route("/", reply(302))
    result = fetch(server.url("/"))
    assert result.error_kind == "http" and result.status == 302


# --- body cap -----------------------------------------------------------------


def test_body_at_cap_passes_and_one_more_byte_fails(server: LocalServer) -> None:
    server.route("/exact", reply(body=b"x" * 1000))
    server.route("/over", reply(body=b"x" * 1001))
    server.route("/over-chunked", lambda req: (200, {}, [b"x" * 500, b"x" * 501]))
    exact, over, chunked = asyncio.run(
        fetch_many([server.url("/exact"), server.url("/over"), server.url("/over-chunked")],
                   http_settings(max_body_bytes=1000))
    )
    assert exact.ok and exact.body == b"x" * 1000
    assert over.error_kind == "too_large" and over.body is None and over.status == 200 and not over.retryable
    assert chunked.error_kind == "too_large"


def test_content_length_over_cap_fails_before_reading(server: LocalServer) -> None:
    # Headers promise 1 GB, then the body stalls: only a check on the header can answer fast.
    server.route("/", lambda req: (200, {"Content-Length": str(10**9)}, [10.0, b"x"]))
    start = time.monotonic()
    result = fetch(server.url("/"))
    assert result.error_kind == "too_large" and time.monotonic() - start < 1.0


def test_endless_stream_without_length_is_cut_at_cap(server: LocalServer) -> None:
    server.route("/", lambda req: (200, {}, itertools.repeat(b"y" * 8192)))
    start = time.monotonic()
    result = fetch(server.url("/"), http_settings(max_body_bytes=256 * 1024))
    assert result.error_kind == "too_large" and time.monotonic() - start < 2.0


def gzip_bomb(gib: int = 1) -> bytes:
    """A valid gzip of ``gib`` GiB of zeros (~1 MB per GiB), built in well under a second.

    After a full flush each 1 MiB block of zeros compresses to the same bytes, so one is repeated.
    """
    zeros = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    blocks = gib * 1024
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + first + block * (blocks - 1) + deflate.flush() + struct.pack("<II", crc, (blocks << 20) & 0xFFFFFFFF)


def test_gzip_bomb_stops_at_cap_with_bounded_memory(server: LocalServer) -> None:
    bomb = gzip_bomb(1)
    assert len(bomb) < 2 << 20
    server.route("/", lambda req: (200, {"Content-Encoding": "gzip"}, bomb))
    tracemalloc.start()
    try:
        start = time.monotonic()
        result = fetch(server.url("/"))  # default cap: 15 MiB decoded
        elapsed = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.error_kind == "too_large" and result.body is None
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert elapsed < 5


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "raw-deflate"])
def test_compressed_bodies_are_decoded(server: LocalServer, encoding: str) -> None:
    text = b"<rss>" + b"news " * 50_000 + b"</rss>"
    if encoding in ("gzip", "x-gzip"):
        body = gzip.compress(text)
    elif encoding == "deflate":
        body = zlib.compress(text)
    else:
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        body, encoding = packer.compress(text) + packer.flush(), "deflate"
    server.route("/", reply(body=body, Content_Encoding=encoding))
    result = fetch(server.url("/"))
    assert result.ok and result.body == text


def test_trailing_bytes_after_gzip_end_are_ignored(server: LocalServer) -> None:
    server.route("/", lambda req: (200, {"Content-Encoding": "gzip"}, [gzip.compress(b"feed"), b"\0" * 100_000]))
    result = fetch(server.url("/"))
    assert result.ok and result.body == b"feed"


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_connections_are_reused(server: LocalServer, encoding: str) -> None:
    """Most sites send gzip: reading stopped where the gzip stream ended, before the response
    did, and every fetch opened a new connection (a TLS handshake each, on real sites)."""
    text = b"<rss>" + b"news " * 1_000 + b"</rss>"
    server.route("/", reply(body=gzip.compress(text) if encoding == "gzip" else text, Content_Encoding=encoding))
    results = asyncio.run(fetch_many([server.url("/")] * 3, http_settings(per_host_concurrency=1)))
    assert all(result.ok and result.body == text for result in results)
    assert len({request.peer for request in server.requests}) == 1


@pytest.mark.parametrize(("hosts", "connections"), [(2, 1), (3, 3)])
def test_connections_are_kept_for_twice_as_many_hosts_as_fetches_in_flight(hosts: int, connections: int) -> None:
    """One fetch in flight keeps two hosts' connections: a shared pool sized to the fetches in
    flight made hosts close each other's. A third host in turn closes the least recently used
    host's (idle sockets stay bounded), so each of three hosts reconnects every round."""
    with contextlib.ExitStack() as stack:
        sites = [stack.enter_context(LocalServer()) for _ in range(hosts)]
        for site in sites:
            site.route("/", reply(body=b"page"))

        async def rounds() -> None:
            async with Fetcher(http_settings(concurrency=1), allow_private_networks=True) as fetcher:
                for _ in range(3):
                    for site in sites:
                        assert (await fetcher.fetch(site.url("/"))).ok

        asyncio.run(rounds())
        assert [len({request.peer for request in site.requests}) for site in sites] == [connections] * hosts


def test_unknown_content_encoding_is_unsupported(server: LocalServer) -> None:
    server.route("/", reply(body=b"\x8b\x02\x80", Content_Encoding="br"))
    result = fetch(server.url("/"))
    assert result.error_kind == "unsupported" and "br" in str(result.error)


# --- retries and timeouts -------------------------------------------------------


def counting(*responses: tuple[int, dict[str, str], bytes]):  # type: ignore[no-untyped-def]
    """Handler answering with ``responses`` in turn, repeating the last."""
    calls = itertools.count()
    return lambda req: responses[min(next(calls), len(responses) - 1)]


def test_503_is_retried_then_succeeds(server: LocalServer) -> None:
    server.route("/", counting((503, {}, b"busy"), (200, {}, b"fine")))
    result = fetch(server.url("/"))
    assert result.ok and result.body == b"fine" and len(server.requests) == 2


def test_persistent_503_gives_up_after_retries(server: LocalServer) -> None:
    server.route("/", reply(503, b"busy"))
    result = fetch(server.url("/"), http_settings(retries=2))
    assert result.error_kind == "http" and result.status == 503 and result.retryable and result.body is None
    assert result.error == "HTTP 503 Service Unavailable from 127.0.0.1"
    assert len(server.requests) == 3


def test_404_is_not_retried(server: LocalServer) -> None:
    result = fetch(server.url("/missing"))
    assert result.error_kind == "http" and result.status == 404 and not result.retryable
    assert len(server.requests) == 1


def test_429_retry_after_is_honoured(server: LocalServer) -> None:
    server.route("/", counting((429, {"Retry-After": "1"}, b""), (200, {}, b"fine")))
    start = time.monotonic()
    result = fetch(server.url("/"))
    assert result.ok and 1.0 <= time.monotonic() - start < 3.0
    assert server.requests[1].started - server.requests[0].started >= 0.95


def test_long_retry_after_is_returned_without_waiting(server: LocalServer) -> None:
    server.route("/", reply(429, Retry_After="3600"))
    start = time.monotonic()
    result = fetch(server.url("/"))
    assert time.monotonic() - start < 1.0
    assert result.status == 429 and result.retry_after == 3600 and result.retryable and len(server.requests) == 1


def test_retry_after_http_date(server: LocalServer) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    server.route("/", reply(503, Retry_After=when))
    result = fetch(server.url("/"))
    assert result.retry_after is not None and 7190 < result.retry_after <= 7200
    assert len(server.requests) == 1


def test_hostile_numbers_do_not_raise(server: LocalServer) -> None:
    # "²".isdigit() is True but int("²") raises, in our parsing and in urllib.robotparser's.
    server.route("/robots.txt", reply(body="User-agent: *\nCrawl-delay: ²\nDisallow: /x\n".encode()))
    server.route("/busy", reply(503, Retry_After="²"))
    busy, blocked = asyncio.run(fetch_many([server.url("/busy"), server.url("/x")], obey_robots=True))
    assert busy.status == 503 and busy.retry_after is None
    assert blocked.error_kind == "robots"


def test_connection_refused_is_a_network_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = fetch(f"http://127.0.0.1:{port}/", http_settings(retries=1))
    assert result.error_kind == "network" and result.retryable and result.status is None
    assert result.error is not None and result.error.startswith("127.0.0.1: ConnectError")


def test_unresolvable_name_is_a_network_error() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = fetch("http://nowhere.example/", http_settings(retries=0), resolver=resolver)
    assert result.error_kind == "network" and "cannot resolve nowhere.example" in str(result.error)


def test_hanging_server_times_out_within_total(server: LocalServer) -> None:
    def hang(req: Request) -> tuple[int, dict[str, str], bytes]:
        server.sleep(30)
        return 200, {}, b"late"

    server.route("/", hang)
    start = time.monotonic()
    result = fetch(server.url("/"), http_settings(read_timeout=0.3, total_timeout=1.0))
    assert result.error_kind == "timeout" and result.retryable and "127.0.0.1" in str(result.error)
    assert time.monotonic() - start < 1.5


def test_drip_feeding_server_times_out_within_total(server: LocalServer) -> None:
    server.route("/", lambda req: (200, {}, itertools.chain.from_iterable(itertools.repeat([b"x", 0.1], 1000))))
    start = time.monotonic()
    result = fetch(server.url("/"), http_settings(read_timeout=1.0, total_timeout=1.0))
    assert result.error_kind == "timeout" and result.error == "127.0.0.1: no complete response within 1 s"
    assert time.monotonic() - start < 1.5


# --- robots.txt ---------------------------------------------------------------


def test_robots_disallow_is_obeyed(server: LocalServer) -> None:
    server.route("/robots.txt", reply(body=b"User-agent: *\nDisallow: /private\n"))
    server.route("/public", reply())
    server.route("/private/x", reply())
    public, private = asyncio.run(
        fetch_many([server.url("/public"), server.url("/private/x")], obey_robots=True)
    )
    assert public.ok
    assert private.error_kind == "robots" and private.error == "disallowed by robots.txt"
    assert "/private/x" not in server.paths() and server.paths().count("/robots.txt") == 1


def test_robots_matches_product_token(server: LocalServer) -> None:
    server.route("/robots.txt", reply(body=b"User-agent: news-ingest\nDisallow: /\n\nUser-agent: *\nAllow: /\n"))
    assert fetch(server.url("/a"), obey_robots=True).error_kind == "robots"
    other = http_settings(user_agent="otherbot/2.0")
    server.route("/a", reply())
    assert fetch(server.url("/a"), other, obey_robots=True).ok


def test_feeds_fetched_without_robots_ignore_it(server: LocalServer) -> None:
    server.route("/robots.txt", reply(body=b"User-agent: *\nDisallow: /\n"))
    server.route("/feed", reply())
    assert fetch(server.url("/feed")).ok and server.paths() == ["/feed"]


@pytest.mark.parametrize("status", [404, 403, 410])
def test_robots_4xx_allows_all(server: LocalServer, status: int) -> None:
    server.route("/robots.txt", reply(status))
    server.route("/page", reply())
    assert fetch(server.url("/page"), obey_robots=True).ok


def test_robots_5xx_disallows_all(server: LocalServer) -> None:
    server.route("/robots.txt", reply(500))
    result = fetch(server.url("/page"), obey_robots=True)
    assert result.error_kind == "robots_unavailable" and result.retryable
    assert result.error == "robots.txt unavailable: HTTP 500 Internal Server Error from 127.0.0.1"
    assert set(server.paths()) == {"/robots.txt"}  # retried, page never asked for


def test_robots_unreachable_disallows_all(server: LocalServer) -> None:
    def hang(req: Request) -> tuple[int, dict[str, str], bytes]:
        server.sleep(30)
        return 200, {}, b""

    server.route("/robots.txt", hang)
    result = fetch(server.url("/page"), http_settings(read_timeout=0.2, total_timeout=0.5), obey_robots=True)
    assert result.error_kind == "robots_unavailable" and str(result.error).startswith("robots.txt unavailable: ")
    assert "/page" not in server.paths()


def test_large_robots_is_cut_not_refused(server: LocalServer) -> None:
    padding = b"# " + b"x" * 1000 + b"\n"
    server.route("/robots.txt", reply(body=b"User-agent: *\nDisallow: /a\n" + padding * 600))
    server.route("/b", reply())
    results = asyncio.run(fetch_many([server.url("/a"), server.url("/b")], obey_robots=True))
    assert [r.error_kind for r in results] == ["robots", None]


def test_robots_is_fetched_once_per_origin_under_concurrency(server: LocalServer) -> None:
    def slow_robots(req: Request) -> tuple[int, dict[str, str], bytes]:
        server.sleep(0.2)
        return 200, {}, b"User-agent: *\nAllow: /\n"

    server.route("/robots.txt", slow_robots)
    for n in range(6):
        server.route(f"/p{n}", reply())
    results = asyncio.run(fetch_many([server.url(f"/p{n}") for n in range(6)], obey_robots=True))
    assert all(r.ok for r in results)
    assert server.paths().count("/robots.txt") == 1


def test_robots_ttl_expires(server: LocalServer) -> None:
    server.route("/robots.txt", reply(body=b"User-agent: *\nAllow: /\n"))
    server.route("/p", reply())

    async def main() -> None:
        async with Fetcher(http_settings(robots_ttl=0), allow_private_networks=True) as fetcher:
            for _ in range(3):
                assert (await fetcher.fetch(server.url("/p"), obey_robots=True)).ok

    asyncio.run(main())
    assert server.paths().count("/robots.txt") == 3


def test_crawl_delay_spaces_requests_and_is_capped(server: LocalServer) -> None:
    server.route("/robots.txt", reply(body=b"User-agent: *\nCrawl-delay: 5\n"))
    for n in range(4):
        server.route(f"/p{n}", reply())

    async def main() -> float | None:
        async with Fetcher(http_settings(max_crawl_delay=0.3), allow_private_networks=True) as fetcher:
            pages = [fetcher.fetch(server.url(f"/p{n}"), obey_robots=True) for n in range(4)]
            assert all(r.ok for r in await asyncio.gather(*pages))
            return (await fetcher.robots(server.url("/"))).crawl_delay

    start = time.monotonic()
    assert asyncio.run(main()) == 5.0
    assert time.monotonic() - start < 3.0  # capped at 0.3 s, not 5 s
    starts = [r.started for r in server.requests if r.path != "/robots.txt"]
    assert len(starts) == 4
    assert all(later - earlier >= 0.25 for earlier, later in itertools.pairwise(starts))


def test_a_turn_taken_before_a_fetch_is_its_crawl_delay_wait(server: LocalServer) -> None:
    """``turn`` waits for the origin's next start (reading robots.txt first) and the fetch
    after it does not wait again: requests stay spaced by the delay, once each."""
    server.route("/robots.txt", reply(body=b"User-agent: *\nCrawl-delay: 5\n"))  # capped at 0.5 s below
    for n in range(3):
        server.route(f"/p{n}", reply())

    async def main() -> None:
        async with Fetcher(http_settings(max_crawl_delay=0.5), allow_private_networks=True) as fetcher:
            for n in range(3):
                await fetcher.turn(server.url(f"/p{n}"), obey_robots=True)
                assert (await fetcher.fetch(server.url(f"/p{n}"), obey_robots=True, turn_taken=True)).ok

    asyncio.run(main())
    starts = [r.started for r in server.requests if r.path != "/robots.txt"]
    assert len(starts) == 3
    assert all(0.45 <= later - earlier < 0.95 for earlier, later in itertools.pairwise(starts)), starts


# --- politeness -----------------------------------------------------------------


def test_per_host_concurrency_is_never_exceeded(server: LocalServer) -> None:
    def slow(req: Request) -> tuple[int, dict[str, str], bytes]:
        server.sleep(0.15)
        return 200, {}, b"ok"

    server.route("/", slow)
    results = asyncio.run(fetch_many([server.url("/")] * 8, http_settings(per_host_concurrency=2)))
    assert all(r.ok for r in results)
    assert server.peak_in_flight == 2


def test_global_concurrency_is_never_exceeded() -> None:
    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def slow(req: Request) -> tuple[int, dict[str, str], bytes]:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.1)
        with lock:
            state["now"] -= 1
        return 200, {}, b"ok"

    with LocalServer() as a, LocalServer() as b, LocalServer() as c:
        urls = []
        for s in (a, b, c):
            s.route("/", slow)
            urls += [s.url("/")] * 4
        results = asyncio.run(fetch_many(urls, http_settings(concurrency=3, per_host_concurrency=2)))
    assert all(r.ok for r in results)
    assert state["peak"] == 3
    assert max(s.peak_in_flight for s in (a, b, c)) <= 2
