"""A real S3-compatible server on 127.0.0.1 for tests, and a proxy that misbehaves on demand.

The server is moto's standalone server (``moto[server]``), started once per test session on
a free port. Each test gets a fresh bucket (``s3_bucket``) and the keys of an IAM user that
may do everything (``S3Bucket.writer``) and of one that may only read (``S3Bucket.reader``).

moto does not check signatures unless asked: the ``s3_auth`` fixture turns checking on for
one test (wrong keys, missing permission). It stays off otherwise because moto answers 500
to presigned URLs while checking is on (it expects an ``Authorization`` header).

``s3_proxy`` stands between the client and moto: it can answer 503/500 to the next N
requests, or cut the connection in the middle of every large upload body::

    def test_retried(s3_bucket, s3_proxy):
        s3_proxy.fail_next(3, status=503)
        ...  # talk to s3_proxy.endpoint instead of s3_bucket.endpoint

A test module uses them with ``from tests.s3server import s3_auth, s3_bucket, ...  # noqa``.
"""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import socket
import struct
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

logger = logging.getLogger(__name__)

REGION = "us-east-1"
# Headers that describe one hop, not the message: the proxy never forwards them.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


@dataclass(frozen=True)
class S3Keys:
    """An access key and its secret."""

    access_key: str
    secret_key: str


@dataclass(frozen=True)
class S3Server:
    """The running moto server and the IAM users made for the session."""

    endpoint: str
    writer: S3Keys
    reader: S3Keys


@dataclass(frozen=True)
class S3Bucket:
    """A fresh, empty bucket of one test."""

    name: str
    endpoint: str
    region: str
    writer: S3Keys
    reader: S3Keys


def free_port() -> int:
    """A port nothing listens on (right now) on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _iam_user(iam: Any, name: str, actions: list[str]) -> S3Keys:
    """An IAM user allowed ``actions`` on every resource, and its new access key."""
    iam.create_user(UserName=name)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
    }
    iam.put_user_policy(UserName=name, PolicyName="imgdesk-test", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return S3Keys(key["AccessKeyId"], key["SecretAccessKey"])


def set_moto_auth(endpoint: str, enabled: bool) -> None:
    """Make moto check signatures and permissions of every request from now on (or stop)."""
    count = b"0" if enabled else b"inf"
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=count,
        method="POST",
        # Not a form: moto reads the raw body.
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """Pytest fixture: moto's S3 server on 127.0.0.1 for the whole session."""
    import boto3  # moto's own dependency, used only to set up IAM users
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        writer = _iam_user(iam, "imgdesk-writer", ["s3:*"])
        reader = _iam_user(iam, "imgdesk-reader", ["s3:GetObject", "s3:ListBucket"])
        yield S3Server(endpoint, writer, reader)
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Bucket:
    """Pytest fixture: a new, empty bucket on the session's server."""
    name = f"imgdesk-test-{secrets.token_hex(4)}"
    request = urllib.request.Request(f"{s3_server.endpoint}/{name}", method="PUT")
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
    return S3Bucket(name, s3_server.endpoint, REGION, s3_server.writer, s3_server.reader)


@pytest.fixture
def s3_auth(s3_bucket: S3Bucket) -> Iterator[S3Bucket]:
    """Pytest fixture: ``s3_bucket`` with moto checking keys and permissions for this test."""
    set_moto_auth(s3_bucket.endpoint, True)
    try:
        yield s3_bucket
    finally:
        set_moto_auth(s3_bucket.endpoint, False)


def incomplete_uploads(bucket: S3Bucket) -> list[str]:
    """The keys of the bucket's multipart uploads that were neither completed nor aborted."""
    with urllib.request.urlopen(f"{bucket.endpoint}/{bucket.name}?uploads", timeout=30) as answer:
        text = answer.read().decode()
    keys = []
    for chunk in text.split("<Upload>")[1:]:
        keys.append(chunk.split("<Key>", 1)[1].split("</Key>", 1)[0])
    return keys


def object_keys(bucket: S3Bucket) -> list[str]:
    """Every key in the bucket, read straight from the server (not through imgdesk)."""
    url = f"{bucket.endpoint}/{bucket.name}?list-type=2"
    with urllib.request.urlopen(url, timeout=30) as answer:
        text = answer.read().decode()
    return [part.split("</Key>", 1)[0] for part in text.split("<Key>")[1:]]


@dataclass(frozen=True)
class ProxiedRequest:
    """One request the proxy received, and what became of it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body_size: int
    outcome: str  # "forwarded", "failed" (answered an error itself) or "cut"


@dataclass(frozen=True)
class _Failure:
    """An error the proxy answers instead of forwarding."""

    status: int
    code: str
    message: str


class _ProxyHandler(BaseHTTPRequestHandler):
    """Forwards one request to moto, unless the proxy's owner asks for misbehaviour."""

    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _ProxyServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle()

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("s3 proxy: " + format, *args)

    def _handle(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        action = owner._decide(length)
        if action == "cut":
            # Take half the body, then reset the connection: the client sees it die mid-upload.
            self.rfile.read(length // 2)
            owner._record(ProxiedRequest(self.command, parts.path, query, length, "cut"))
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        body = self.rfile.read(length) if length else b""
        if isinstance(action, _Failure):
            owner._record(ProxiedRequest(self.command, parts.path, query, length, "failed"))
            message = action.message or f"test proxy answers {action.status}"
            error = (
                f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{action.code}</Code>"
                f"<Message>{message}</Message></Error>"
            ).encode()
            self.send_response(action.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(error)
            return
        self._forward(body, ProxiedRequest(self.command, parts.path, query, length, "forwarded"))

    def _forward(self, body: bytes, record: ProxiedRequest) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.owner.upstream_port, 30)
        try:
            # The original Host header is kept: it is part of what the client signed.
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    upstream.putheader(name, value)
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            answer = upstream.getresponse()
            payload = answer.read()
            # Recorded before the client hears back, so a test that waited for it sees it.
            self.server.owner._record(record)
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            announced = answer.getheader("Content-Length")
            head = self.command == "HEAD"
            self.send_header(
                "Content-Length", announced if head and announced else str(len(payload))
            )
            self.end_headers()
            if not head:
                self.wfile.write(payload)
        finally:
            upstream.close()


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: S3Proxy) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("s3 proxy: a client went away", exc_info=True)


class S3Proxy:
    """A reverse proxy on 127.0.0.1 in front of the S3 server, with faults on demand.

    Attributes:
        endpoint: the URL to give the client instead of the server's.
        requests: every request received, in order.
    """

    def __init__(self, upstream_endpoint: str) -> None:
        self.upstream_port = int(urlsplit(upstream_endpoint).port or 80)
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._cut_bodies_over: int | None = None
        self.requests: list[ProxiedRequest] = []
        self._httpd = _ProxyServer(self)
        host, port = self._httpd.server_address[:2]
        self.endpoint = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def start(self) -> S3Proxy:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=30)

    def fail_next(
        self, count: int, status: int = 503, code: str = "ServiceUnavailable", message: str = ""
    ) -> None:
        """Answer ``status`` (an S3 error ``code``) to the next ``count`` requests."""
        with self._lock:
            self._failures.extend([_Failure(status, code, message)] * count)

    def cut_bodies_over(self, size: int | None) -> None:
        """Cut the connection halfway through every request body larger than ``size`` bytes."""
        with self._lock:
            self._cut_bodies_over = size

    def outcomes(self, method: str, outcome: str) -> list[ProxiedRequest]:
        """The requests with this method that had this outcome."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.outcome == outcome]

    def _decide(self, body_size: int) -> _Failure | str | None:
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
            if self._cut_bodies_over is not None and body_size > self._cut_bodies_over:
                return "cut"
            return None

    def _record(self, request: ProxiedRequest) -> None:
        with self._lock:
            self.requests.append(request)


@pytest.fixture
def s3_proxy(s3_bucket: S3Bucket) -> Iterator[S3Proxy]:
    """Pytest fixture: an :class:`S3Proxy` in front of the server of ``s3_bucket``."""
    proxy = S3Proxy(s3_bucket.endpoint).start()
    try:
        yield proxy
    finally:
        proxy.stop()
