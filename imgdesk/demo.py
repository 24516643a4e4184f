"""The sample catalogue behind ``imgdesk demo``, served from a loopback HTTP server.

A new user sees the whole flow with no setup and no internet: the bundled product pictures
(``imgdesk/resources/demo/images``) are served on 127.0.0.1 and a CSV pointing at them is
written from the template ``imgdesk/resources/demo/catalogue.csv``, whose URLs start with
``{base}``. A few URLs misbehave on purpose, so failures and retries show up too:

- ``/images/<name>`` of a picture that is not bundled answers ``404 Not Found``;
- ``/html/<name>`` answers ``200 OK`` with a web page instead of a picture;
- ``/flaky/<name>`` answers ``503 Service Unavailable`` the first two times, then the picture.

So the sample request, run with the default settings, ends ``failed`` with exactly the
:data:`PLANNED_FAILURES` and every other image done: :func:`unplanned_outcomes` checks that.

Qt-free, so the window and a script can both use it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from imgdesk.core.paths import resource_path
from imgdesk.core.repository import ImageInfo
from imgdesk.core.states import ImageStatus

logger = logging.getLogger(__name__)

DEMO_CSV_NAME = "imgdesk-demo-catalogue.csv"
FLAKY_FAILURES = 2
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
# The sample request's failures by design: the URL path of each and its error code.
PLANNED_FAILURES = {
    "/images/sneaker-black-2.jpg": "http_404",
    "/html/tote-black-2.jpg": "not_an_image",
}

_HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Product</title></head>"
    b"<body><h1>This page is not a picture</h1>"
    b"<p>A shop linked its product page where the image should be.</p></body></html>\n"
)


class DemoServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) serving the demo pictures.

    Args:
        latency_s: how long each answer waits, so progress is visible in the window
            (loopback would otherwise finish before the eye can follow).
    """

    def __init__(self, latency_s: float = 0.3) -> None:
        self.latency_s = latency_s
        folder = resource_path("demo/images")
        # Only these files are ever read: a request path never reaches the file system.
        self._pictures = {
            path.name: path for path in folder.iterdir() if path.suffix in CONTENT_TYPES
        }
        self._lock = threading.Lock()
        self._flaky_hits: dict[str, int] = {}
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, once started."""
        if self._httpd is None:
            raise RuntimeError("the demo server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Bind a free loopback port and serve from a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("the demo server is already running")
        self._httpd = _Server(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns at once
            name="imgdesk-demo-server",
            daemon=True,
        )
        self._thread.start()
        logger.info("demo server listening on %s", self.base_url)

    def stop(self) -> None:
        """Stop serving and close the socket; answers in progress end with their threads."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None
        logger.info("demo server stopped")

    def _answer(self, path: str) -> tuple[int, str, bytes]:
        """The status, content type and body for a request path."""
        route, _, name = unquote(urlsplit(path).path).lstrip("/").partition("/")
        if route == "html":
            return HTTPStatus.OK, "text/html; charset=utf-8", _HTML_PAGE
        if route == "flaky":
            with self._lock:
                hits = self._flaky_hits.get(name, 0) + 1
                self._flaky_hits[name] = hits
            if hits <= FLAKY_FAILURES:
                body = b"Service temporarily unavailable, try again.\n"
                return HTTPStatus.SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", body
        elif route != "images":
            name = ""
        picture = self._pictures.get(name)
        if picture is None:
            return HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"Not found.\n"
        return HTTPStatus.OK, CONTENT_TYPES[picture.suffix], picture.read_bytes()


def write_demo_csv(folder: Path, base_url: str) -> Path:
    """Write the sample catalogue with its URLs pointing at ``base_url``; returns its path."""
    template = resource_path("demo/catalogue.csv").read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DEMO_CSV_NAME
    path.write_bytes(template.replace(b"{base}", base_url.rstrip("/").encode("ascii")))
    return path


def unplanned_outcomes(images: Iterable[ImageInfo]) -> list[str]:
    """How a finished sample request differs from its design; empty when it is as planned.

    Planned: each URL of :data:`PLANNED_FAILURES` failed with its code, every other image is
    done (the flaky one after its retries).
    """
    problems = []
    for image in images:
        planned_code = PLANNED_FAILURES.get(urlsplit(image.url).path)
        ended = f"{image.status} ({image.error_code})" if image.error_code else image.status
        if planned_code is None:
            if image.status != ImageStatus.DONE:
                problems.append(f"{image.url} ended {ended}, not done")
        elif image.status != ImageStatus.FAILED or image.error_code != planned_code:
            problems.append(f"{image.url} ended {ended}, not failed ({planned_code})")
    return problems


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow answer never keeps the app from quitting

    def __init__(self, demo: DemoServer) -> None:
        self.demo = demo
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Usually the app hanging up mid-answer (cancel, quit); not worth a traceback on stderr.
        logger.debug("demo server: answer to %s broke off", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the engine's sessions expect
    timeout = 15  # drop idle keep-alive connections
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        demo = self.server.demo
        status, content_type, body = demo._answer(self.path)
        time.sleep(demo.latency_s)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class's name
        logger.debug("demo server: %s", format % args)
