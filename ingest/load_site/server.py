"""Serves the load site: one HTTP server per loopback address, all on one port.

Linux routes all of 127.0.0.0/8 to ``lo``, so 127.0.0.2, 127.0.0.3, ... are
distinct hosts to the fetcher (its per-host limits, robots.txt cache and
connection pools see 50 sites) without any DNS. Latency is a sleep before the
answer and bandwidth a paced write, both off the CPU, so thousands of requests
at 200 ms cost the server threads, not cores. Pages are rendered on request:
a 20,000-page site stays small in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import time
from collections import Counter
from datetime import datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from ingest.load_site.model import Host, LoadConfig, LoadModel
from ingest.load_site.render import ROBOTS_TXT, render_feed, render_page
from ingest.sample_site.render import CONTENT_TYPES
from ingest.sample_site.server import _etag_matches, _Handler as SampleHandler, _http_date, _Server as SampleServer, _wants_gzip

_CHUNK = 16 * 1024


class _Server(SampleServer):
    """The sample site's quiet threading server, bound to one host's address."""

    allow_reuse_address = True
    request_queue_size = 128
    site: LoadSite  # type: ignore[assignment]
    host: Host


class _Handler(SampleHandler):
    """The sample site's handler (HTTP/1.1, quiet, connection tracking, header writing) with load-site routing."""

    server_version = "LoadNews/1.0"
    timeout = 30
    server: _Server  # type: ignore[assignment]

    def _respond(self, *, send_body: bool) -> None:
        site, host, path = self.server.site, self.server.host, urlsplit(self.path).path
        found = site.resource(host, path)
        if site.config.latency:
            time.sleep(site.config.latency)
        if found is None:
            site.count("404")
            self._send(HTTPStatus.NOT_FOUND, b"not found", {"Content-Type": CONTENT_TYPES["text"]}, send_body)
            return
        body, kind, modified = found
        use_gzip = _wants_gzip(self.headers.get("Accept-Encoding")) and kind != "text"
        if use_gzip:
            body = site.compressed(host, path, body) if kind == "html" else _gzip(body)
        headers = {"Content-Type": CONTENT_TYPES[kind], "ETag": '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
                   "Last-Modified": _http_date(modified), "Vary": "Accept-Encoding", "Cache-Control": "no-cache"}
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        if self._unchanged(headers["ETag"], modified):
            site.count("304")
            headers.pop("Content-Type")
            self._send(HTTPStatus.NOT_MODIFIED, b"", headers, send_body=False)
            return
        site.count(kind)
        self._send(HTTPStatus.OK, body, headers, send_body)

    def _unchanged(self, etag: str, modified: datetime) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:  # RFC 9110: If-Modified-Since is ignored when If-None-Match is sent
            return _etag_matches(inm, (etag,))
        try:
            return modified.replace(microsecond=0) <= parsedate_to_datetime(self.headers.get("If-Modified-Since", ""))
        except (TypeError, ValueError):
            return False

    def _send(self, status: HTTPStatus, body: bytes, headers: dict[str, str], send_body: bool) -> None:
        """Status and headers as the sample site writes them, then the body paced to the configured bandwidth."""
        super()._send(status, body, headers, send_body=False)
        rate = self.server.site.config.bandwidth
        for start in range(0, len(body) if send_body else 0, _CHUNK):
            chunk = body[start:start + _CHUNK]
            if rate:
                time.sleep(len(chunk) / rate)  # before the write, so the last byte arrives when the rate says
            self.wfile.write(chunk)


class LoadSite:
    """The running load site. Use as a context manager (``with serve(model) as site``) or call ``close()``."""

    def __init__(self, model: LoadModel, port: int = 0) -> None:
        self.model = model
        self.config: LoadConfig = model.config
        self._servers = _bind_all(model.hosts, port)
        self.port: int = self._servers[0].server_address[1]
        self.published = len(model.pages)  # pages with a lower id are online; lower it to hold the newest back
        self._feeds = {h.address: {h.feed_path(f): f for f in range(self.config.feeds_per_host)} for h in model.hosts}
        self._counts: Counter[str] = Counter()
        self._conns: set[socket.socket] = set()
        self._compressed: dict[tuple[str, str], bytes] = {}  # (address, path) -> gzipped page
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=s.serve_forever, name=f"load-{s.host.name}", daemon=True) for s in self._servers]
        for server in self._servers:
            server.site = self

    def base_url(self, host: Host) -> str:
        return f"http://{host.address}:{self.port}"

    def feed_urls(self) -> list[tuple[str, str]]:
        """(feed name, URL) of every feed of every host."""
        return [(f"{h.name}-{path.rsplit('/', 1)[1].removesuffix('.xml')}", self.base_url(h) + path)
                for h in self.model.hosts for path in self._feeds[h.address]]

    def write_feeds_file(self, path: Path) -> Path:
        """``feeds.yaml`` listing every feed (names and URLs need no quoting)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("feeds:\n" + "".join(f"  - name: {name}\n    url: {url}\n" for name, url in self.feed_urls()), encoding="utf-8")
        return path

    def write_pages(self, folder: Path) -> list[Path]:
        """Every article page as served (identity encoding), one file each: the extraction baseline reads these.
        Each is also compressed once here, as it will be served (see ``compressed``)."""
        written = []
        for page in self.model.pages:
            host = self.model.hosts[page.host]
            out = folder / host.name / f"{page.id}.html"
            out.parent.mkdir(parents=True, exist_ok=True)
            body = render_page(self.model, page, self.base_url(host))
            out.write_bytes(body)
            self.compressed(host, page.path, body)
            written.append(out)
        return written

    def compressed(self, host: Host, path: str, body: bytes) -> bytes:
        """The page ``body`` at ``path``, gzipped once. News sites serve pages from a cache; compressing each
        page on request here took 0.6 ms of the benchmark's two cores per page, beside the pass it measures
        (about 15 MB cached per 1,000 pages, in the benchmark's own process)."""
        key = (host.address, path)
        with self._lock:
            cached = self._compressed.get(key)
        if cached is None:
            cached = _gzip(body)
            with self._lock:
                self._compressed[key] = cached
        return cached

    def resource(self, host: Host, path: str) -> tuple[bytes, str, datetime] | None:
        """(body, kind, last modified) at ``path`` on ``host``, or None."""
        if path == "/robots.txt":
            return ROBOTS_TXT, "text", self.model.pages[-1].published
        page = self.model.by_host[host.address].get(path)
        if page is not None and page.id < self.published:
            return render_page(self.model, page, self.base_url(host)), "html", page.published
        feed = self._feeds[host.address].get(path)
        if feed is None:
            return None
        items = [page for page in self.model.feeds[host.index, feed] if page.id < self.published]
        return render_feed(host, feed, items, self.base_url(host)), "rss", items[0].published if items else self.model.pages[-1].published

    @property
    def counts(self) -> Counter[str]:
        """Responses so far by kind: ``html``, ``rss``, ``text`` (robots.txt), ``304``, ``404``."""
        with self._lock:
            return Counter(self._counts)

    def count(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        """Called by the handler: open keep-alive connections are shut on ``close()``."""
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def start(self) -> LoadSite:
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        for server, thread in zip(self._servers, self._threads, strict=True):
            if thread.is_alive():
                server.shutdown()
            server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> LoadSite:
        if not self._threads[0].is_alive():
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _gzip(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=5, mtime=0)


def _bind_all(hosts: list[Host], port: int, attempts: int = 20) -> list[_Server]:
    """One server per host address on a shared port; with ``port=0`` the first address picks it and the rest follow."""
    for _ in range(attempts):
        servers: list[_Server] = []
        try:
            for host in hosts:
                server = _Server((host.address, port or (servers[0].server_address[1] if servers else 0)), _Handler)
                server.host = host
                servers.append(server)
            return servers
        except OSError:
            for server in servers:
                server.server_close()
            if port:
                raise
    raise OSError(f"no port free on all of {hosts[0].address}..{hosts[-1].address}")


def serve(model: LoadModel, port: int = 0) -> LoadSite:
    """Start every host's server in daemon threads; ``port=0`` picks a port free on every address."""
    return LoadSite(model, port).start()
