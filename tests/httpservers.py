"""A small threaded HTTP server on 127.0.0.1 for tests, with misbehaviour on demand.

Each route is a callable that gets the :class:`Exchange` (the request handler) and answers
however it likes; the factories below build the usual ones: a plain answer, a redirect, a
body trickled byte by byte, a stall, a connection closed mid-body, chunked and gzip bodies,
and a sequence of answers for successive hits (503 first, then the image).

The server counts hits per path and the most requests it had in flight at once, so engine
tests can check that a URL was fetched once and that the concurrency limit held::

    with running_server() as server:
        url = server.route("/a.png", respond(png_bytes, content_type="image/png"))
        ...
        assert server.hits("/a.png") == 1
        assert server.max_in_flight <= 5

or, as a pytest fixture, ``http_server`` (registered by tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import struct
import sys
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

logger = logging.getLogger(__name__)

RouteHandler = Callable[["Exchange"], None]

# A client hanging up mid-answer is what many tests do on purpose.
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Exchange(BaseHTTPRequestHandler):
    """One request being answered; route handlers use the helpers below."""

    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like real servers
    timeout = 30  # an idle keep-alive connection is dropped after this many seconds
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        """Dispatch to the route."""
        self._dispatch(b"")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        """Read the body, then dispatch to the route (webhook tests)."""
        length = int(self.headers.get("Content-Length") or 0)
        self._dispatch(self.rfile.read(length))

    def reply(
        self, status: int = 200, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        """Send a whole answer with a correct Content-Length (unless ``headers`` set one)."""
        all_headers = {"Content-Length": str(len(body)), **(headers or {})}
        self.start(status, all_headers)
        self.write(body)

    def start(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        """Send the status line and headers; the body follows with :meth:`write`."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if (headers or {}).get("Connection", "").lower() == "close":
            self.close_connection = True
        self.end_headers()

    def write(self, data: bytes) -> None:
        """Send body bytes at once."""
        self.wfile.write(data)
        self.wfile.flush()

    def wait(self, seconds: float) -> bool:
        """Sleep, but wake when the server stops; True if the whole time passed."""
        return not self.server.owner.stopping.wait(seconds)

    def abort(self, *, reset: bool = False) -> None:
        """Drop the connection after this handler; ``reset`` sends a TCP RST, not a FIN."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # really closed once the handler's files are closed

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Log through logging instead of stderr."""
        logger.debug("test server: " + format, *args)

    def _dispatch(self, body: bytes) -> None:
        path = urlsplit(self.path).path
        owner = self.server.owner
        handler = owner._begin(
            RecordedRequest(self.command, path, dict(self.headers.items()), body)
        )
        try:
            handler(self)
        except _CLIENT_GONE:
            self.close_connection = True
        finally:
            owner._end()


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers its open connections so stop() can end them."""

    daemon_threads = True

    def __init__(self, owner: HttpTestServer) -> None:
        self.owner = owner
        self.open_sockets: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        super().__init__(("127.0.0.1", 0), Exchange)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.owner._lock:
            self.open_sockets.add(request)
            self.owner.connections += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.owner._lock:
            self.threads.add(threading.current_thread())
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.owner._lock:
                self.threads.discard(threading.current_thread())

    def shutdown_request(self, request: Any) -> None:
        with self.owner._lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up are expected; anything else is a bug in a route, kept for asserts.
        error = sys.exc_info()[1]  # called from an except block
        if not isinstance(error, _CLIENT_GONE):
            logger.error("test server route failed", exc_info=error)
            self.owner.errors.append(error)


class HttpTestServer:
    """A threaded HTTP server on 127.0.0.1 (port chosen by the OS) with a route table.

    Attributes:
        connections: TCP connections accepted so far (pool reuse shows as fewer).
        requests: every request received, in order.
        errors: exceptions raised by route handlers (should stay empty).
        stopping: set when the server stops; waiting handlers wake up on it.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, RouteHandler] = {}
        self._hits: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self.connections = 0
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException | None] = []
        self.stopping = threading.Event()
        self._httpd = _Server(self)
        if tls is not None:  # HTTPS: each accepted connection does its handshake first
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        host, port = self._httpd.server_address[:2]
        self.base_url = f"{'https' if tls else 'http'}://{host!s}:{port}"
        self.port = int(port)

    def start(self) -> HttpTestServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end open connections and waiting handlers, close the socket."""
        self.stopping.set()
        self._httpd.shutdown()
        with self._lock:
            sockets = list(self._httpd.open_sockets)
            threads = list(self._httpd.threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HttpTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path

    def route(self, path: str, handler: RouteHandler) -> str:
        """Serve ``path`` (query ignored) with ``handler``; returns its URL."""
        with self._lock:
            self._routes[path] = handler
        return self.url(path)

    def hits(self, path: str) -> int:
        """How many requests ``path`` received."""
        with self._lock:
            return self._hits[path]

    @property
    def total_hits(self) -> int:
        """How many requests all paths received."""
        with self._lock:
            return sum(self._hits.values())

    @property
    def in_flight(self) -> int:
        """Requests being answered right now."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests that were being answered at the same time."""
        with self._lock:
            return self._max_in_flight

    def reset_counters(self) -> None:
        """Forget hits, requests and the in-flight maximum (routes stay)."""
        with self._lock:
            self._hits.clear()
            self.requests.clear()
            self._max_in_flight = self._in_flight

    def _begin(self, request: RecordedRequest) -> RouteHandler:
        with self._lock:
            self._hits[request.path] += 1
            self.requests.append(request)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return self._routes.get(request.path, _not_found)

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1


@contextlib.contextmanager
def running_server(tls: ssl.SSLContext | None = None) -> Iterator[HttpTestServer]:
    """A started :class:`HttpTestServer` (HTTPS with ``tls``), stopped on exit."""
    with HttpTestServer(tls) as server:
        yield server


@pytest.fixture
def http_server() -> Iterator[HttpTestServer]:
    """Pytest fixture: a running :class:`HttpTestServer` for one test."""
    with running_server() as server:
        yield server


# --- route handler factories ---------------------------------------------------------------


def _not_found(exchange: Exchange) -> None:
    exchange.reply(404, b"not found", {"Content-Type": "text/plain"})


def respond(
    body: bytes = b"",
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    *,
    content_type: str | None = None,
    content_length: bool = True,
) -> RouteHandler:
    """Answer ``status`` with ``body``; without ``content_length`` the close ends the body."""
    extra = dict(headers or {})
    if content_type is not None:
        extra["Content-Type"] = content_type

    def handler(exchange: Exchange) -> None:
        if content_length:
            exchange.reply(status, body, extra)
        else:
            exchange.start(status, {**extra, "Connection": "close"})
            exchange.write(body)

    return handler


def redirect(location: str, status: int = 302) -> RouteHandler:
    """Answer a redirect to ``location`` (absolute or relative, sent as is)."""
    return respond(b"", status, {"Location": location})


def trickle(
    body: bytes,
    *,
    delay_s: float,
    chunk_size: int = 1,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> RouteHandler:
    """Announce the whole length, then send ``chunk_size`` bytes every ``delay_s`` seconds."""

    def handler(exchange: Exchange) -> None:
        exchange.start(status, {"Content-Length": str(len(body)), **(headers or {})})
        for start in range(0, len(body), chunk_size):
            if not exchange.wait(delay_s):
                exchange.abort()
                return
            exchange.write(body[start : start + chunk_size])

    return handler


def stall(seconds: float = 60.0, *, send_headers: bool = True) -> RouteHandler:
    """Send nothing (or only the headers of a 1000-byte body) for ``seconds``, then hang up."""

    def handler(exchange: Exchange) -> None:
        if send_headers:
            exchange.start(200, {"Content-Length": "1000", "Content-Type": "image/jpeg"})
        exchange.wait(seconds)
        exchange.abort()

    return handler


def truncated(body: bytes, *, announced: int, reset: bool = False) -> RouteHandler:
    """Lie about Content-Length: announce ``announced`` bytes, send ``body``, hang up."""

    def handler(exchange: Exchange) -> None:
        exchange.start(200, {"Content-Length": str(announced), "Content-Type": "image/jpeg"})
        exchange.write(body)
        exchange.abort(reset=reset)

    return handler


def chunked(
    parts: Iterable[bytes], status: int = 200, headers: Mapping[str, str] | None = None
) -> RouteHandler:
    """Send ``parts`` with Transfer-Encoding: chunked (no Content-Length).

    ``parts`` is kept as a list; repeat one bytes object to send a lot cheaply.
    """
    kept = list(parts)

    def handler(exchange: Exchange) -> None:
        exchange.start(status, {"Transfer-Encoding": "chunked", **(headers or {})})
        for part in kept:
            if part:
                exchange.write(b"%x\r\n%s\r\n" % (len(part), part))
        exchange.write(b"0\r\n\r\n")

    return handler


def gzipped(
    body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> RouteHandler:
    """Send ``body`` gzip-compressed with Content-Encoding: gzip, whatever the client asked."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = compressor.compress(body) + compressor.flush()
    return respond(data, status, {"Content-Encoding": "gzip", **(headers or {})})


def gzip_zeros(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed without ever holding them all (a gzip bomb)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    out = []
    for start in range(0, size, len(block)):
        out.append(compressor.compress(block[: min(len(block), size - start)]))
    out.append(compressor.flush())
    return b"".join(out)


def sequence(*handlers: RouteHandler) -> RouteHandler:
    """Answer the n-th hit with the n-th handler; the last one answers every later hit."""
    lock = threading.Lock()
    calls = 0

    def handler(exchange: Exchange) -> None:
        nonlocal calls
        with lock:
            index = min(calls, len(handlers) - 1)
            calls += 1
        handlers[index](exchange)

    return handler


def delayed(delay_s: float, handler: RouteHandler) -> RouteHandler:
    """Wait ``delay_s`` before answering with ``handler`` (to overlap requests)."""

    def wrapper(exchange: Exchange) -> None:
        if exchange.wait(delay_s):
            handler(exchange)
        else:
            exchange.abort()

    return wrapper


# --- answers let through by the test ---------------------------------------------------------


def _client_gone(connection: socket.socket) -> bool:
    """Whether the client closed its end: a waiting HTTP client sends nothing, so data to
    read means end of file (or a reset)."""

    readable, _, _ = select.select([connection], [], [], 0)
    if not readable:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Gate:
    """Holds answers back until the test lets a number of them through (see :func:`gated`).

    A request waiting at the gate is in flight for the client, so a test knows for certain
    that work is under way, and how much can finish, whatever the machine's speed. A waiting
    request whose client hangs up (killed) gives up without using a pass.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._passes = 0
        self._open = False

    def allow(self, count: int) -> None:
        """Let ``count`` more answers through."""
        with self._condition:
            self._passes += count
            self._condition.notify_all()

    def close(self) -> None:
        """Take back the passes not used yet: nothing more gets through."""
        with self._condition:
            self._passes = 0
            self._open = False

    def open(self) -> None:
        """Let every answer through from now on."""
        with self._condition:
            self._open = True
            self._condition.notify_all()

    def wait_for_pass(self, exchange: Exchange) -> bool:
        """Wait for a pass; False if the client hangs up or the server stops first."""
        while not exchange.server.owner.stopping.is_set():
            if _client_gone(exchange.connection):
                return False
            with self._condition:
                if self._open:
                    return True
                if self._passes > 0:
                    self._passes -= 1
                    return True
                self._condition.wait(0.02)
        return False


def gated(gate: Gate, handler: RouteHandler) -> RouteHandler:
    """Answer with ``handler`` once ``gate`` lets this request through."""

    def wrapper(exchange: Exchange) -> None:
        if gate.wait_for_pass(exchange):
            handler(exchange)
        else:
            exchange.abort()

    return wrapper
