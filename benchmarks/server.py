"""A fast static image server on 127.0.0.1, serving bytes from memory.

Any path whose last segment is a corpus file name serves that file, so one corpus can stand
behind many distinct URLs (``/p17/0003_2000x2000_jpeg.jpg``). Answers carry a strong ETag and
a Last-Modified date and honour ``If-None-Match`` / ``If-Modified-Since`` with 304, like a
CDN. ``GET /__stats`` returns the counters as JSON; ``POST /__change/<name>`` replaces a file
with other bytes (new ETag, new date), so a benchmark can check that a changed image is redone.

:meth:`ImageServer.watch` times a client process from the server's side: from the first
image request to the last image response, with that process's CPU time at both ends.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# A fixed date, so a second run sees the same Last-Modified as the first.
_EPOCH = 1_700_000_000.0


@dataclass(frozen=True)
class _Entry:
    body: bytes
    etag: str
    last_modified: str
    modified: float
    content_type: str


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real CDN
    disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms ACK stalls
    server: _HTTPServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        if path == "/__stats":
            self._send(200, json.dumps(owner.stats()).encode(), "application/json")
            return
        entry = owner.entry(path.rsplit("/", 1)[-1])
        if entry is None:
            owner.count("404")
            self._send(404, b"not found", "text/plain")
            return
        owner.timeline.request_started()
        conditional = "If-None-Match" in self.headers or "If-Modified-Since" in self.headers
        owner.count("conditional" if conditional else "plain")
        if self._not_modified(entry):
            owner.count("304")
            self.send_response(304)
            self._validators(entry)
            self.end_headers()
        else:
            owner.count("200", len(entry.body))
            self._send(200, entry.body, entry.content_type, entry)
        self.wfile.flush()
        owner.timeline.response_sent()

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        if path.startswith("/__change/") and self.server.owner.change(path.rsplit("/", 1)[-1]):
            self._send(204, b"", "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent: a log line per request would cost more than the answer."""

    def _not_modified(self, entry: _Entry) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            # If-None-Match wins over If-Modified-Since (RFC 9110, 13.1.3).
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return entry.etag in tags or "*" in tags
        since = self.headers.get("If-Modified-Since")
        if since is None:
            return False
        try:
            return email.utils.parsedate_to_datetime(since).timestamp() >= entry.modified
        except (TypeError, ValueError):
            return False

    def _validators(self, entry: _Entry) -> None:
        self.send_header("ETag", entry.etag)
        self.send_header("Last-Modified", entry.last_modified)
        self.send_header("Cache-Control", "max-age=0, must-revalidate")

    def _send(
        self, status: int, body: bytes, content_type: str, entry: _Entry | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if entry is not None:
            self._validators(entry)
        self.end_headers()
        self.wfile.write(body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    owner: ImageServer

    def process_request(self, request: Any, client_address: Any) -> None:
        """Count TCP connections: a client that reuses them opens few."""
        self.owner.count("connections")
        super().process_request(request, client_address)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) of process ``pid`` so far; None once it is gone.

    Read from ``/proc/<pid>/stat`` (clock ticks, 10 ms): fine for runs of several seconds.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: count the fields after its closing ")".
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


@dataclass
class Timeline:
    """Image requests as one client process made them, seen from the server.

    Attributes:
        pid: the watched process (0: none; the times are still kept).
        first_request: ``time.perf_counter()`` when the first image request arrived.
        last_response: when the last image response was sent.
        cpu_at_first: the watched process's CPU seconds at ``first_request``.
        cpu_at_last: its CPU seconds at ``last_response``.
        responses: image responses sent.
    """

    pid: int = 0
    first_request: float | None = None
    last_response: float | None = None
    cpu_at_first: float | None = None
    cpu_at_last: float | None = None
    responses: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def request_started(self) -> None:
        """Note the first request's time and the client's CPU then."""
        with self._lock:
            if self.first_request is None:
                self.first_request = time.perf_counter()
                self.cpu_at_first = process_cpu_s(self.pid) if self.pid else None

    def response_sent(self) -> None:
        """Note the time and the client's CPU: the last call wins."""
        with self._lock:
            self.last_response = time.perf_counter()
            self.responses += 1
            if self.pid:
                cpu = process_cpu_s(self.pid)
                if cpu is not None:
                    self.cpu_at_last = cpu


class ImageServer:
    """Serves named files from memory on 127.0.0.1 in a background thread.

    Use as a context manager; ``base_url`` is ``http://127.0.0.1:<port>``.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self._lock = threading.Lock()
        self.timeline = Timeline()
        self._entries = {name: _entry(name, body, _EPOCH) for name, body in files.items()}
        self._counters: Counter[str] = Counter()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """Where the files are served."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def entry(self, name: str) -> _Entry | None:
        """The file served under ``name``."""
        return self._entries.get(name)

    def count(self, what: str, body_bytes: int = 0) -> None:
        """Add one to a counter (and the bytes sent)."""
        with self._lock:
            self._counters[what] += 1
            self._counters["bytes"] += body_bytes

    def watch(self, pid: int) -> Timeline:
        """Start a new timeline of image requests, reading the CPU time of process ``pid``.

        Call it before the process makes its first request (right after starting it).
        """
        self.timeline = Timeline(pid)
        return self.timeline

    def stats(self) -> dict[str, int]:
        """The counters: connections, plain and conditional requests, 200, 304, 404, bytes."""
        with self._lock:
            return dict(self._counters)

    def change(self, name: str) -> bool:
        """Serve other bytes under ``name``: another file of the same kind, never the same."""
        current = self._entries.get(name)
        if current is None:
            return False
        suffix = name.rsplit("_", 1)[-1]
        others = sorted(n for n in self._entries if n != name and n.endswith(suffix))
        bodies = [self._entries[n].body for n in others if self._entries[n].body != current.body]
        if not bodies:
            return False
        modified = max(current.modified, time.time()) + 1
        self._entries[name] = _entry(name, bodies[0], modified)
        return True


def _entry(name: str, body: bytes, modified: float) -> _Entry:
    content_type = "image/png" if name.endswith(".png") else "image/jpeg"
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return _Entry(body, etag, email.utils.formatdate(modified, usegmt=True), modified, content_type)
