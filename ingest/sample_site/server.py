"""A loopback HTTP server for the sample site (stdlib ``http.server`` only).

It behaves like a well-run news CDN so the fetcher's conditional requests and
compression can be tested: strong ETags, Last-Modified, 304s, gzip, 404s, and
tracking parameters ignored when routing. Every request is logged in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from ingest.sample_site.content import load_site
from ingest.sample_site.feeds import sitemap_path
from ingest.sample_site.render import CONTENT_TYPES, Resource, render_site

TRACKING_PREFIXES = ("utm_",)
TRACKING_PARAMS = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid", "ref"})
NOT_FOUND = b"<!DOCTYPE html>\n<html lang=\"en\"><head><title>Not found</title></head><body><h1>404 Not Found</h1></body></html>\n"


class RequestRecord(NamedTuple):
    """One request as received: raw target (query included) and its headers."""

    method: str
    path: str
    headers: Message


@dataclass(frozen=True)
class _Variant:
    body: bytes
    etag: str


@dataclass(frozen=True)
class _Entry:
    resource: Resource
    identity: _Variant
    gzip: _Variant

    @classmethod
    def of(cls, resource: Resource) -> _Entry:
        packed = gzip.compress(resource.body, compresslevel=6, mtime=0)
        return cls(resource, _Variant(resource.body, _etag(resource.body)), _Variant(packed, _etag(packed)))


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _http_date(dt: datetime) -> str:
    return format_datetime(dt.astimezone(UTC).replace(microsecond=0), usegmt=True)


def _wants_gzip(header: str | None) -> bool:
    for token in (header or "").split(","):
        name, _, params = token.strip().partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip"):
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        return q > 0
    return False


def _etag_matches(header: str, etags: tuple[str, ...]) -> bool:
    """Weak comparison, as RFC 9110 prescribes for If-None-Match."""
    wanted = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in wanted or any(t in wanted for t in etags)


def route_key(target: str) -> list[str]:
    """Paths to look up for a request target, most specific first; tracking params never matter."""
    parts = urlsplit(target)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith(TRACKING_PREFIXES) and k.lower() not in TRACKING_PARAMS]
    keys = [f"{parts.path}?{urlencode(sorted(kept))}"] if kept else []
    return keys + [parts.path]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    site: SampleSite

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up are normal; stay quiet about them."""


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SampleNews/1.0"
    timeout = 15
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the request log lives in ``SampleSite.requests``."""

    def setup(self) -> None:
        super().setup()
        self.server.site._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.site._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, *, send_body: bool) -> None:
        site = self.server.site
        site._log(RequestRecord(self.command, self.path, self.headers))
        entry = site._lookup(self.path)
        if entry is None:
            self._send(HTTPStatus.NOT_FOUND, NOT_FOUND, {"Content-Type": CONTENT_TYPES["html"]}, send_body)
            return
        use_gzip = _wants_gzip(self.headers.get("Accept-Encoding"))
        variant = entry.gzip if use_gzip else entry.identity
        headers = {
            "Content-Type": entry.resource.content_type,
            "ETag": variant.etag,
            "Last-Modified": _http_date(entry.resource.last_modified),
            "Vary": "Accept-Encoding",
            "Cache-Control": "no-cache",
        }
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        if self._not_modified(entry):
            headers.pop("Content-Type")
            self._send(HTTPStatus.NOT_MODIFIED, b"", headers, send_body=False)
            return
        self._send(HTTPStatus.OK, variant.body, headers, send_body)

    def _not_modified(self, entry: _Entry) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:  # RFC 9110: If-Modified-Since is ignored when If-None-Match is sent
            return _etag_matches(inm, (entry.identity.etag, entry.gzip.etag))
        ims = self.headers.get("If-Modified-Since")
        if not ims:
            return False
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return entry.resource.last_modified.replace(microsecond=0) <= since

    def _send(self, status: HTTPStatus, body: bytes, headers: dict[str, str], send_body: bool) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != HTTPStatus.NOT_MODIFIED:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)


class SampleSite:
    """The running site. Use as a context manager, or call ``close()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        server_cls = _Server6 if ":" in host else _Server
        self._server = server_cls((host, port), _Handler)
        self._server.site = self
        self.host = host
        self.port: int = self._server.server_address[1]
        public = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        netloc = f"[{public}]" if ":" in public else public
        self.base_url = f"http://{netloc}:{self.port}"
        self._entries = {path: _Entry.of(res) for path, res in render_site(self.base_url).items()}
        self._requests: list[RequestRecord] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, name="sample-site", daemon=True)

    # -- lifecycle
    def start(self) -> SampleSite:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # keep-alive connections would otherwise keep being served
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> SampleSite:
        if not self._thread.is_alive():
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- public helpers
    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    @property
    def feeds(self) -> list[tuple[str, str]]:
        """(outlet id, feed URL) for every outlet."""
        return [(o.id, self.url(o.feed.path)) for o in load_site().outlets.values()]

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def write_feeds_file(self, path: str | Path) -> Path:
        """Write ``feeds: [{name, url, sitemap}]`` YAML listing every outlet's feed and news sitemap."""
        lines = ["feeds:"]
        for outlet in load_site().outlets.values():
            lines += [f"  - name: {json.dumps(outlet.id)}", f"    url: {json.dumps(self.url(outlet.feed.path))}",
                      f"    sitemap: {json.dumps(self.url(sitemap_path(outlet)))}"]
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return out

    # -- used by the handler
    def _lookup(self, target: str) -> _Entry | None:
        for key in route_key(target):
            if key in self._entries:
                return self._entries[key]
        return None

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)


def serve(host: str = "127.0.0.1", port: int = 0) -> SampleSite:
    """Start the site in a daemon thread; ``port=0`` picks a free port."""
    return SampleSite(host, port).start()
