"""The one fetcher for feeds, robots.txt and article pages.

httpx does the HTTP; this module adds what a crawler of untrusted URLs needs and
httpx leaves to the caller: an SSRF check at dial time (every redirect hop and
every DNS answer), a cap on decoded bytes enforced while streaming, manual
redirects, retries with back-off, one deadline per fetch, and per-host politeness.
``fetch`` reports trouble in the result instead of raising.
"""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import itertools
import random
import ssl
import time
import zlib
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

import anyio
import httpcore
import httpx

from ingest.netguard import BlockedAddressError, Resolver, resolve_and_check
from ingest.robots import ROBOTS_MAX_BYTES, RobotsCache, RobotsRules
from ingest.settings import HttpSettings

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SCHEMES = ("http", "https")
_STEP = 64 * 1024
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
_ORIGINS_PER_PLACE = 2  # origins whose connections are kept, per fetch in flight (``concurrency``)
_MAX_TRAILING = 64 * 1024  # bytes after the end of a compressed body read on, to keep the connection
_PRIVATE_HINT = "set INGEST_ALLOW_PRIVATE_NETWORKS=1 for local sites"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one fetch produced. Failures are data, so one bad host never stops a batch."""

    url: str
    """The URL asked for."""
    final_url: str
    """The URL of the last request, after redirects."""
    status: int | None
    """Final HTTP status; None when no response arrived."""
    body: bytes | None
    """Decompressed body; None for 304 and failures."""
    headers: dict[str, str]
    """Final response headers: lower-case names, values byte-for-byte (latin-1 decoded)."""
    fetched_at: datetime
    error: str | None = None
    error_kind: str | None = None
    """"http", "network", "timeout", "too_large", "blocked", "robots" (disallowed), "robots_unavailable"
    (robots.txt could not be read: try later), "redirects" or "unsupported"."""
    retry_after: float | None = None
    """Seconds the server asked us to wait (Retry-After), if it said."""
    redirects: tuple[tuple[int, str], ...] = ()
    """(status, absolute Location) for each redirect followed."""

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def retryable(self) -> bool:
        """Worth trying again later: the network failed or the server was busy."""
        if self.error_kind in ("network", "timeout", "robots_unavailable"):
            return True
        return self.error_kind == "http" and self.status is not None and (self.status == 429 or self.status >= 500)


def _failure(url: str, kind: str, message: str) -> FetchResult:
    return FetchResult(url, url, None, None, {}, _now(), error=message, error_kind=kind)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves names itself and dials only addresses that pass the SSRF guard.

    It connects to the checked IP literal, so DNS cannot answer differently
    between check and connect; TLS still uses the URL's host name for SNI and
    certificate checks, because httpcore starts TLS on the returned stream.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver | None = None,
        trusted: Collection[tuple[str, int]] = (),
    ) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        self._trusted = trusted
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await resolve_and_check(
                    host, port, allow_private=self._allow_private, resolver=self._resolver, trusted=self._trusted
                )
        except BlockedAddressError:
            raise
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc

        async def dial(address: str) -> httpcore.AsyncNetworkStream:
            return await self._backend.connect_tcp(
                address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
            )

        for address in addresses[:-1]:
            with suppress(httpcore.ConnectError, httpcore.ConnectTimeout):
                return await dial(address)
        return await dial(addresses[-1])


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """certifi's CAs (or SSL_CERT_FILE/SSL_CERT_DIR), loaded once: each load takes ~40 ms."""
    return httpx.create_ssl_context()


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose every connection dials through a ``GuardedBackend``.

    httpx 0.28 has no public way to pass a network backend, so the pool the
    parent builds is replaced by an equivalent one using ours.
    """

    def __init__(self, backend: GuardedBackend, *, limits: httpx.Limits) -> None:
        ssl_context = _ssl_context()
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

    @property
    def idle(self) -> bool:
        """No connection of this pool is connecting or carrying a request."""
        return all(connection.is_idle() or connection.is_closed() for connection in self._pool.connections)


class OriginPools(httpx.AsyncBaseTransport):
    """A small connection pool per origin, for the most recently used ``max_origins`` origins.

    httpcore's pool walks every connection it holds on every request and release, and
    polls each idle socket (``has_expired``): one pool shared by a batch's hosts, each
    keeping its connections alive, spent more CPU on that walk than reconnecting cost.
    Here a walk covers one host's few connections. Idle pools beyond ``max_origins`` are
    closed, oldest first, so idle sockets stay bounded however many hosts a run meets.
    """

    def __init__(self, backend: GuardedBackend, *, keepalive: int, max_origins: int) -> None:
        self._backend = backend
        self._limits = httpx.Limits(max_connections=None, max_keepalive_connections=keepalive)
        self._max_origins = max_origins
        self._pools: dict[tuple[str, str, int | None], GuardedTransport] = {}  # oldest use first

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = (request.url.scheme, request.url.host, request.url.port)
        transport = self._pools.pop(origin, None) or GuardedTransport(self._backend, limits=self._limits)
        self._pools[origin] = transport
        response = await transport.handle_async_request(request)
        # Now that this request holds a connection, its own pool is not idle and stays.
        await self._close_idle()
        return response

    async def _close_idle(self) -> None:
        excess = len(self._pools) - self._max_origins
        if excess <= 0:
            return
        idle = list(itertools.islice((origin for origin, transport in self._pools.items() if transport.idle), excess))
        for origin in idle:
            await self._pools.pop(origin).aclose()

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for transport in pools:
            await transport.aclose()


class _Decoder:
    """Undoes gzip/deflate at most 64 KiB of output at a time.

    httpx inflates each network read in one call: one 64 KiB read of a gzip bomb
    becomes ~64 MB before a cap can look at it (272 MB peak under a 15 MiB cap).
    """

    def __init__(self, content_encoding: str) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c not in ("", "identity")]
        if len(codings) > 1 or (codings and codings[0] not in _WBITS):
            raise ValueError(f"unsupported Content-Encoding: {content_encoding}")
        self.identity = not codings
        self._zlib = None if self.identity else zlib.decompressobj(_WBITS[codings[0]])
        self._raw_deflate_possible = codings == ["deflate"]

    @property
    def finished(self) -> bool:
        """The compressed stream has ended; zlib would pile anything after it into ``unused_data``."""
        return self._zlib is not None and self._zlib.eof

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            yield data
            return
        while data:
            try:
                out = self._zlib.decompress(data, _STEP)
            except zlib.error:
                if not self._raw_deflate_possible:
                    raise
                # "deflate" should be zlib-wrapped, but some servers send raw deflate.
                self._raw_deflate_possible = False
                self._zlib = zlib.decompressobj(-15)
                continue
            self._raw_deflate_possible = False
            data = self._zlib.unconsumed_tail
            yield out

    def flush(self) -> Iterator[bytes]:
        if self._zlib is not None:
            yield self._zlib.flush()


async def _read_body(response: httpx.Response, decoder: _Decoder, limit: int, truncate: bool) -> bytes | None:
    """The decoded body, or None as soon as it passes ``limit`` (cut there when ``truncate``)."""
    body = bytearray()

    def fits(pieces: Iterable[bytes]) -> bool:
        for piece in pieces:
            room = limit - len(body)
            body.extend(piece[:room])
            if len(piece) > room:
                return False
        return True

    trailing = 0
    async for raw in response.aiter_raw():
        if decoder.finished:
            # Read on to the response's end (normally nothing is left), or the connection
            # cannot go back to the pool: stopping where the gzip stream ended made every
            # fetch of a gzip page open a new connection. Bytes after it are dropped unread
            # by zlib (it would pile them up), and many of them are not worth the connection.
            trailing += len(raw)
            if trailing > _MAX_TRAILING:
                break
            continue
        if not fits(decoder.feed(raw)):
            return bytes(body) if truncate else None
    if not fits(decoder.flush()):
        return bytes(body) if truncate else None
    return bytes(body)


def _received_headers(response: httpx.Response) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in response.headers.raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _header_bytes(value: str) -> bytes:
    """Encode a stored validator back to the bytes it was received as."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _number(value: str) -> int | None:
    """A non-negative decimal, or None; ``str.isdigit`` alone lets "²" through to ``int()``."""
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date."""
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return float(seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - _now()).total_seconds())


def _host(url: httpx.URL) -> str:
    """The host as dialled; ``URL.host`` IDNA-decodes and raises on labels like "xn--"."""
    return url.raw_host.decode("ascii")


def _unfetchable(url: httpx.URL) -> str | None:
    """Why ``url`` cannot be fetched, or None."""
    if url.scheme not in _SCHEMES or not url.raw_host:
        return f"not an http(s) URL: {url}"
    if url.port is not None and not 0 < url.port < 65536:  # httpx accepts any number
        return f"invalid port in {url}"
    return None


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _describe(url: httpx.URL, exc: Exception) -> str:
    detail = str(exc)
    return f"{_host(url)}: {type(exc).__name__}" + (f": {detail}" if detail else "")


class _Budget:
    """Seconds left for one fetch.

    Time spent queueing for a politeness slot is not charged: a queue of pages
    for one slow or Crawl-delayed host would otherwise turn into timeouts.
    """

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    @contextmanager
    def charged(self) -> Iterator[None]:
        start = time.monotonic()
        try:
            with anyio.fail_after(max(self.left, 0.0)):
                yield
        finally:
            self.left -= time.monotonic() - start


class _HostGate:
    """Request slots for one origin and the start spacing its Crawl-delay asks for."""

    def __init__(self, slots: int) -> None:
        self.slots = anyio.Semaphore(slots)
        self.delay = 0.0
        self._next_start = 0.0

    def reserve(self) -> float:
        """Claim the next start time; returns the seconds to wait for it."""
        now = time.monotonic()
        start = max(now, self._next_start)
        self._next_start = start + self.delay
        return start - now


class Fetcher:
    """Fetches URLs politely and safely; use as ``async with Fetcher(settings) as f``."""

    def __init__(
        self,
        settings: HttpSettings,
        *,
        allow_private_networks: bool = False,
        resolver: Resolver | None = None,
        trusted_endpoints: Collection[tuple[str, int]] = (),
    ) -> None:
        self._settings = settings
        backend = GuardedBackend(allow_private=allow_private_networks, resolver=resolver, trusted=trusted_endpoints)
        # What is in flight is bounded here (``_slots`` and the host gates), not by the pools,
        # which keep connections for reuse: a pool sized to ``concurrency`` held fewer than a
        # batch's hosts × places (50 × 2), and hosts closed each other's connections.
        pools = OriginPools(backend, keepalive=settings.per_host_concurrency, max_origins=_ORIGINS_PER_PLACE * settings.concurrency)
        self._client = httpx.AsyncClient(
            transport=pools,
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            # Only what _Decoder can undo in bounded steps.
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        self._slots = anyio.Semaphore(settings.concurrency)
        self._gates: dict[str, _HostGate] = {}
        agent = settings.user_agent.split("/")[0].strip()
        self._robots = RobotsCache(self._fetch_robots, agent, settings.robots_ttl)

    async def __aenter__(self) -> Fetcher:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.__aexit__(exc_type, exc, tb)

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        obey_robots: bool = False,
        accept: str | None = None,
        turn_taken: bool = False,
    ) -> FetchResult:
        """GET ``url``; validators are echoed exactly, and trouble comes back as ``error``.
        ``turn_taken``: the caller has waited for this origin's next start with ``turn``."""
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, UnicodeError) as exc:  # idna errors are not InvalidURL
            return _failure(url, "unsupported", f"invalid URL: {exc}")
        problem = _unfetchable(target)
        if problem is not None:
            return _failure(url, "unsupported", problem)
        if obey_robots:
            rules = await self.robots(url)
            if not rules.allows(str(target)):
                kind, reason = rules.refusal or ("robots", "disallowed by robots.txt")
                return _failure(url, kind, reason)
        headers = {"Accept": _header_bytes(accept or "*/*")}
        if etag is not None:
            headers["If-None-Match"] = _header_bytes(etag)
        if last_modified is not None:
            headers["If-Modified-Since"] = _header_bytes(last_modified)
        return await self._fetch(url, target, headers, limit=self._settings.max_body_bytes, truncate=False, turn_taken=turn_taken)

    async def turn(self, url: str, *, obey_robots: bool = False) -> None:
        """Reserve the next start ``url``'s origin allows (its Crawl-delay) and wait for it,
        holding no slot; the ``fetch(url, turn_taken=True)`` that follows starts without
        waiting again. A caller that bounds its own work in progress (``ingest.batch``)
        need not hold a place through a Crawl-delayed host's waits."""
        try:
            origin = _origin(httpx.URL(url))
        except (httpx.InvalidURL, UnicodeError):
            return  # fetch reports it
        if obey_robots:
            await self.robots(url)  # the Crawl-delay is known before the first reservation
        await anyio.sleep(self._gate(origin).reserve())

    async def robots(self, url: str) -> RobotsRules:
        """robots.txt rules for ``url``'s origin (cached); starts spacing requests by its Crawl-delay."""
        origin = _origin(httpx.URL(url))
        rules = await self._robots.rules(origin)
        self._gate(origin).delay = min(rules.crawl_delay or 0.0, self._settings.max_crawl_delay)
        return rules

    async def _fetch_robots(self, url: str) -> FetchResult:
        headers = {"Accept": b"text/plain, */*;q=0.5"}
        return await self._fetch(url, httpx.URL(url), headers, limit=ROBOTS_MAX_BYTES, truncate=True)

    def _gate(self, origin: str) -> _HostGate:
        gate = self._gates.get(origin)
        if gate is None:
            gate = self._gates[origin] = _HostGate(self._settings.per_host_concurrency)
        return gate

    async def _fetch(
        self, requested: str, url: httpx.URL, headers: dict[str, bytes], *, limit: int, truncate: bool, turn_taken: bool = False
    ) -> FetchResult:
        """Follow redirects by hand so each hop is checked, counted and recorded."""
        budget = _Budget(self._settings.total_timeout)
        hops: list[tuple[int, str]] = []
        while True:
            result = await self._with_retries(url, headers, budget, limit, truncate, turn_taken)
            turn_taken = False  # the turn was for the first request only
            status = result.status
            location = result.headers.get("location")
            if result.error is not None or status not in _REDIRECTS or location is None:
                break
            if len(hops) >= self._settings.max_redirects:
                error = f"more than {self._settings.max_redirects} redirects"
                result = dataclasses.replace(result, error=error, error_kind="redirects")
                break
            try:
                url = url.join(location)
            except (httpx.InvalidURL, UnicodeError) as exc:
                result = dataclasses.replace(result, error=f"bad redirect {location!r}: {exc}", error_kind="unsupported")
                break
            hops.append((status, str(url)))
            problem = _unfetchable(url)
            if problem is not None:
                result = dataclasses.replace(result, error=f"redirect refused: {problem}", error_kind="unsupported")
                break
        return dataclasses.replace(result, url=requested, redirects=tuple(hops))

    async def _with_retries(
        self, url: httpx.URL, headers: dict[str, bytes], budget: _Budget, limit: int, truncate: bool, turn_taken: bool
    ) -> FetchResult:
        result = await self._attempt(url, headers, budget, limit, truncate, turn_taken)
        for attempt in range(self._settings.retries):
            wait = self._retry_wait(result, attempt, budget)
            if wait is None:
                break
            await anyio.sleep(wait)
            budget.left -= wait
            result = await self._attempt(url, headers, budget, limit, truncate, False)
        return result

    def _retry_wait(self, result: FetchResult, attempt: int, budget: _Budget) -> float | None:
        """Seconds to wait before another attempt, or None to give the result back now."""
        if not result.retryable:
            return None
        wait = self._settings.retry_backoff * 2**attempt * random.uniform(1.0, 1.25)
        if result.retry_after is not None:
            if result.retry_after > self._settings.max_retry_wait:
                return None  # the caller backs off; retry_after tells it how long
            wait = max(wait, result.retry_after)
        return wait if wait < budget.left else None

    async def _attempt(
        self, url: httpx.URL, headers: dict[str, bytes], budget: _Budget, limit: int, truncate: bool, turn_taken: bool
    ) -> FetchResult:
        """One request, inside the per-host and global slots, charged to the budget."""
        gate = self._gate(_origin(url))
        async with gate.slots:
            if not turn_taken:
                await anyio.sleep(gate.reserve())
            async with self._slots:
                try:
                    with budget.charged():
                        return await self._exchange(url, headers, limit, truncate)
                except TimeoutError:
                    total = self._settings.total_timeout
                    return _failure(str(url), "timeout", f"{_host(url)}: no complete response within {total:g} s")
                except BlockedAddressError as exc:
                    return _failure(str(url), "blocked", f"{exc} ({_PRIVATE_HINT})")
                except httpx.TimeoutException as exc:
                    return _failure(str(url), "timeout", _describe(url, exc))
                except httpx.LocalProtocolError as exc:  # e.g. a validator with a line break
                    return _failure(str(url), "unsupported", _describe(url, exc))
                except (httpx.InvalidURL, UnicodeError) as exc:
                    # httpx parses Location even with follow_redirects=False, and some bad ones raise this.
                    return _failure(str(url), "unsupported", _describe(url, exc))
                except (httpx.HTTPError, OSError, zlib.error) as exc:
                    return _failure(str(url), "network", _describe(url, exc))

    async def _exchange(self, url: httpx.URL, headers: dict[str, bytes], limit: int, truncate: bool) -> FetchResult:
        async with self._client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            received = _received_headers(response)
            result = FetchResult(
                str(url), str(url), status, None, received, _now(), retry_after=_retry_after(received.get("retry-after"))
            )
            if status == 304 or (status in _REDIRECTS and "location" in received):
                return result
            if not 200 <= status < 300:
                reason = f" {response.reason_phrase}" if response.reason_phrase else ""
                error = f"HTTP {status}{reason} from {_host(url)}"
                return dataclasses.replace(result, error=error, error_kind="http")
            try:
                decoder = _Decoder(received.get("content-encoding", ""))
            except ValueError as exc:
                return dataclasses.replace(result, error=str(exc), error_kind="unsupported")
            length = _number(received.get("content-length", ""))
            too_large = dataclasses.replace(result, error=f"body larger than {limit} bytes", error_kind="too_large")
            if decoder.identity and not truncate and length is not None and length > limit:
                return too_large
            body = await _read_body(response, decoder, limit, truncate)
            return too_large if body is None else dataclasses.replace(result, body=body)
