"""A small HTTP/1.1 server on 127.0.0.1 for tests that need real sockets.

    with LocalServer() as server:
        server.route("/feed.xml", lambda req: (200, {"Content-Type": "application/rss+xml"}, b"<rss/>"))
        fetch(server.url("/feed.xml"))
        assert server.requests[0].headers["user-agent"].startswith("news-ingest/")

A handler gets a ``Request`` and returns ``(status, headers, body)``. ``body`` is
bytes (sent with Content-Length) or an iterable of chunks in which a number
means "sleep that many seconds" (drip-feeding, hanging); such bodies go out
chunked unless the headers give a Content-Length, and each chunk is flushed.
Connections stay open between requests (keep-alive) and every response is framed,
except that a body shorter than the Content-Length its headers give is sent and the
connection closed: a transfer cut short.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

Body = bytes | Iterable[bytes | float]
Headers = Mapping[str, str] | Iterable[tuple[str, str]]
Handler = Callable[["Request"], tuple[int, Headers, Body]]


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str
    """Path and query as sent."""
    path: str
    headers: dict[str, str]
    """Lower-case names; values latin-1 decoded, so byte-for-byte comparable."""
    body: bytes
    started: float
    """time.monotonic() when the request had been read."""
    peer: tuple[str, int]
    """The client's address and port: one per connection."""


class LocalServer:
    """Threaded HTTP/1.1 server with a route table and a log of what it received."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        # Requests whose handler is running. Time spent writing the response is left
        # out: the client may already send its next request before the write returns.
        self.in_flight = 0
        self.peak_in_flight = 0
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def endpoint(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> None:
        """Serve ``path`` (query string ignored) with ``handler``; unknown paths get 404."""
        self._routes[path] = handler

    def paths(self) -> list[str]:
        """Paths requested so far, in order."""
        return [r.path for r in self.requests]

    def sleep(self, seconds: float) -> None:
        """Sleep that ends early when the server stops, so hanging handlers do not linger."""
        self._stopping.wait(seconds)

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handle(self, request: Request) -> tuple[int, Headers, Body]:
        with self._lock:
            self.requests.append(request)
        handler = self._routes.get(request.path)
        if handler is None:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        return handler(request)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up early are normal in these tests; other errors still print."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def _make_handler(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30  # idle keep-alive connections end eventually

        def _serve(self) -> None:
            started = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command,
                target=self.path,
                path=urlsplit(self.path).path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
                started=started,
                peer=self.client_address[:2],
            )
            server._enter()
            try:
                status, headers, body = server._handle(request)
            except Exception as exc:  # a broken test handler shows up as a 500
                status, headers, body = 500, {"Content-Type": "text/plain"}, repr(exc).encode()
            finally:
                server._leave()
            try:
                self._respond(status, headers, body)
            except ConnectionError:
                self.close_connection = True

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

        def _respond(self, status: int, headers: Headers, body: Body) -> None:
            pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
            declared = next((int(value) for name, value in pairs if name.lower() == "content-length"), None)
            self.send_response_only(status)
            for name, value in pairs:
                self.send_header(name, value)
            if isinstance(body, bytes):
                if declared is None and status not in (204, 304):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                    self.close_connection = declared is not None and len(body) < declared
                return
            chunked = declared is None
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            sent = 0
            for part in body:
                if isinstance(part, (int, float)):
                    server.sleep(part)
                elif part:
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(part), part) if chunked else part)
                    self.wfile.flush()
                    sent += len(part)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.close_connection = declared is not None and sent < declared

        def log_message(self, format: str, *args: object) -> None:
            pass

    return _Handler
