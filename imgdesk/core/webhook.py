"""One webhook attempt, the way Standard Webhooks v1 describes it (SPEC section 5).

Qt-free on purpose: the payload, the signature and a single synchronous POST are plain
functions, so they are tested without an event loop. Scheduling (the outbox, backoff,
restarts) lives in :mod:`imgdesk.engine.webhooks`.

A receiver verifies ``webhook-signature`` = ``v1,<base64 HMAC-SHA256>`` of
``"{webhook-id}.{webhook-timestamp}.{body}"``; the id is the same on every attempt of an
event, so the receiver can drop duplicates.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from imgdesk import __version__
from imgdesk.core.backoff import RetryDelay as RetryDelay  # re-exported
from imgdesk.core.backoff import retry_delay as retry_delay  # re-exported
from imgdesk.core.errors import SettingsError
from imgdesk.core.fetch import parse_retry_after
from imgdesk.core.redact import redact_text, redact_url
from imgdesk.core.repository import RequestInfo
from imgdesk.core.states import DeliveryStatus, RequestStatus

logger = logging.getLogger(__name__)

EVENT_COMPLETED = "request.completed"
EVENT_FAILED = "request.failed"
EVENT_TEST = "test"

# Outcomes of one attempt.
DELIVERED = str(DeliveryStatus.DELIVERED)
RETRY = "retry"
GIVE_UP = "give_up"

ATTEMPT_TIMEOUT_S = 15.0  # the whole attempt, however slowly the receiver answers
CONNECT_TIMEOUT_S = 5.0
EXCERPT_CHARS = 500
_EXCERPT_BYTES = 4 * EXCERPT_CHARS  # enough bytes for 500 characters of UTF-8, mostly
SECRET_PREFIX = "whsec_"
USER_AGENT = f"imgdesk/{__version__} (webhook)"

# Why an attempt was cut off from outside (see AttemptAbort).
DEADLINE = "deadline"
STOPPED = "stopped"

# The payload fields that say how a request ended: a finish with the same values as the
# request's last event is no news, so it queues no new event.
RESULT_FIELDS = ("event", "status", "total_images", "succeeded", "failed")


@dataclass(frozen=True)
class AttemptOutcome:
    """What came of one POST.

    Attributes:
        outcome: ``delivered`` (a 2xx answer), ``retry`` (worth trying again) or
            ``give_up`` (410 Gone, or a URL or secret that can never work).
        status_code: the HTTP status the receiver answered, None when there was no answer.
        error: what went wrong, in words; None when delivered.
        duration_ms: wall time of the attempt.
        response_excerpt: the start of the response body (at most 500 characters).
        retry_after: seconds the receiver asked us to wait (``Retry-After``), not capped.
        timestamp: the ``webhook-timestamp`` sent (Unix seconds).
    """

    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: int
    response_excerpt: str | None
    retry_after: float | None
    timestamp: int


# -- payload --------------------------------------------------------------------------------


def event_for(status: str) -> str:
    """The event name for a finished request's status.

    A request with any failed or cancelled image ends ``failed`` (SPEC 2), so its event is
    ``request.failed``; only a request whose every image succeeded is ``request.completed``.
    """
    if status == RequestStatus.COMPLETED:
        return EVENT_COMPLETED
    if status == RequestStatus.FAILED:
        return EVENT_FAILED
    raise ValueError(f"a request in state {status!r} has not finished")


def build_payload(request: RequestInfo) -> dict[str, Any]:
    """The JSON object of SPEC section 5 for a finished request."""
    return {
        "event": event_for(request.status),
        "request_id": request.id,
        "status": request.status,
        "csv_name": request.csv_name,
        "total_images": request.total,
        "succeeded": request.done,
        "failed": request.failed,
        "created_at": iso_utc(request.created_at),
        "finished_at": iso_utc(request.finished_at) if request.finished_at else None,
        "output_csv": request.output_csv,
    }


def sample_payload(now: float) -> dict[str, Any]:
    """A payload with the same keys as a real event, to check a receiver from the settings."""
    return {
        "event": EVENT_TEST,
        "request_id": None,
        "status": None,
        "csv_name": None,
        "total_images": 0,
        "succeeded": 0,
        "failed": 0,
        "created_at": iso_utc(now),
        "finished_at": iso_utc(now),
        "output_csv": None,
    }


def same_result(stored_body: str, payload: dict[str, Any]) -> bool:
    """Whether ``payload`` reports the same end (event, status, counts) as a stored body."""
    try:
        stored = json.loads(stored_body)
    except ValueError:
        return False
    if not isinstance(stored, dict):
        return False
    return all(stored.get(name) == payload.get(name) for name in RESULT_FIELDS)


def encode_body(payload: dict[str, Any]) -> str:
    """Compact ASCII JSON: encoded once, stored, and sent byte for byte on every attempt."""
    return json.dumps(payload, separators=(",", ":"))


def iso_utc(timestamp: float) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second (as the CLI prints times)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


# -- signing --------------------------------------------------------------------------------


def signing_key(secret: str, name: str = "webhook_secret") -> bytes:
    """The HMAC key: ``whsec_<base64>`` is decoded (Standard Webhooks), else UTF-8 bytes.

    The base64 may come without its ``=`` padding, as the Standard Webhooks and Svix
    verifiers accept it too. ``name`` is what the message calls the secret: the setting
    by default, a command-line flag when the CLI checks its own.

    Raises:
        SettingsError: a ``whsec_`` secret whose rest is not base64, or is empty.
    """
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode("utf-8")
    encoded = secret[len(SECRET_PREFIX) :]
    # The message must not quote the secret: it may end up in a log or a dialog.
    if not encoded:
        raise SettingsError(f"{name} is whsec_ with no key after it")
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(f"{name} starts with whsec_ but the rest is not valid base64") from None


def check_secret(secret: str, name: str = "webhook_secret") -> None:
    """Raise :class:`SettingsError` now if ``secret`` can never sign (for settings and CLI)."""
    if secret:
        signing_key(secret, name)


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_headers(msg_id: str, timestamp: int, body: str, secret: str | None) -> dict[str, str]:
    """The headers of one attempt; the signature only when a secret is set."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
    }
    if secret:
        headers["webhook-signature"] = sign(secret, msg_id, timestamp, body)
    return headers


# -- backoff --------------------------------------------------------------------------------


# -- one attempt ----------------------------------------------------------------------------


class AttemptAbort:
    """Ends an attempt from any thread: its sockets are shut down, so a blocked read returns.

    requests has no deadline for a whole exchange (its read timeout is per socket read, so a
    receiver sending a byte a second keeps an attempt open for ever). :func:`post_once`
    fires one of these at the attempt's deadline, and the sender fires it when imgdesk
    stops, so a Ctrl-C never waits for a receiver.
    """

    def __init__(self) -> None:
        """Create an unfired switch with no socket yet."""
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._reason: str | None = None

    @property
    def reason(self) -> str | None:
        """``deadline`` or ``stopped`` once fired (the first reason wins), else None."""
        with self._lock:
            return self._reason

    def abort(self, reason: str) -> None:
        """Cut the attempt off now, for ``reason``."""
        with self._lock:
            if self._reason is None:
                self._reason = reason
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def track(self, sock: socket.socket) -> None:
        """Remember a socket of the attempt; shut it at once if the switch already fired."""
        with self._lock:
            self._sockets.append(sock)
            fired = self._reason is not None
        if fired:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for a TLS socket: it only touches the file
    # descriptor, which is safe while another thread is blocked reading it.
    with contextlib.suppress(OSError):  # already closed: nothing left to cut
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


# The AttemptAbort of the attempt running in this thread; connections register with it.
_current_attempt = threading.local()


def _track_new_socket(sock: socket.socket) -> None:
    abort: AttemptAbort | None = getattr(_current_attempt, "abort", None)
    if abort is not None:
        abort.track(sock)


class _TrackedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _track_new_socket(sock)
        return sock


class _TrackedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # tracked before the TLS handshake, so that is cut too
        _track_new_socket(sock)
        return sock


class _TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


_TRACKED_POOLS: dict[str, type[HTTPConnectionPool]] = {
    "http": _TrackedHTTPPool,
    "https": _TrackedHTTPSPool,
}


class _AttemptAdapter(HTTPAdapter):
    """requests' adapter, with connections whose sockets the attempt's abort switch knows."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _TRACKED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # A SOCKS proxy has pool classes of its own; it keeps them (and per-read timeouts).
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _TRACKED_POOLS
        return manager


def _attempt_session() -> requests.Session:
    session = requests.Session()
    adapter = _AttemptAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def post_once(
    url: str,
    msg_id: str,
    body: str,
    secret: str | None,
    *,
    timestamp: int | None = None,
    timeout_s: float = ATTEMPT_TIMEOUT_S,
    abort: AttemptAbort | None = None,
) -> AttemptOutcome:
    """POST ``body`` to ``url`` once and classify the answer; never raises.

    ``timeout_s`` is the deadline of the whole attempt (connect, send, answer and excerpt),
    however slowly the receiver answers. ``abort`` lets another thread cut the attempt off
    (the sender does when imgdesk stops). Redirects are not followed: a receiver that moved
    must be re-configured, and following one would send a signed event to a place nobody
    chose.
    """
    stamp = int(time.time()) if timestamp is None else timestamp
    started = time.monotonic()
    try:
        headers = webhook_headers(msg_id, stamp, body, secret)
    except SettingsError as error:
        return _outcome(GIVE_UP, stamp, started, error=str(error))
    switch = AttemptAbort() if abort is None else abort
    watchdog = threading.Timer(timeout_s, switch.abort, args=(DEADLINE,))
    watchdog.daemon = True
    session = _attempt_session()
    _current_attempt.abort = switch
    watchdog.start()
    try:
        with session.post(
            url,
            data=body.encode("utf-8"),
            headers=headers,
            allow_redirects=False,
            stream=True,
            # Per socket operation; the watchdog holds the attempt to its total deadline.
            timeout=(min(CONNECT_TIMEOUT_S, timeout_s), timeout_s),
        ) as response:
            excerpt = _read_excerpt(response)
            return _classify(response, stamp, started, excerpt)
    except requests.RequestException as error:
        outcome, message = _describe_failure(error, switch.reason, url_origin(url), timeout_s)
        return _outcome(outcome, stamp, started, error=message)
    finally:
        watchdog.cancel()
        _current_attempt.abort = None
        session.close()


def _describe_failure(
    error: requests.RequestException, aborted: str | None, origin: str, timeout_s: float
) -> tuple[str, str]:
    """The outcome and the sentence for an attempt that got no answer."""
    if aborted == DEADLINE:
        return RETRY, f"{origin} did not answer within {timeout_s:g} s"
    if aborted == STOPPED:
        return RETRY, f"stopped before {origin} answered: imgdesk was shutting down"
    # Fixed words, never the URL: it may carry credentials or a token.
    if isinstance(error, requests.exceptions.InvalidSchema):
        return GIVE_UP, "not a usable webhook URL: only http:// and https:// are supported"
    if isinstance(error, requests.exceptions.MissingSchema):
        return GIVE_UP, "not a usable webhook URL: it does not start with http:// or https://"
    if isinstance(error, requests.exceptions.InvalidURL):
        return GIVE_UP, "not a usable webhook URL: its host or port cannot be read"
    if isinstance(error, requests.exceptions.InvalidHeader):
        return GIVE_UP, f"a webhook header could not be sent: {redact_text(str(error))}"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return RETRY, f"timed out connecting to {origin}"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return RETRY, f"{origin} did not answer within {timeout_s:g} s"
    if isinstance(error, requests.exceptions.SSLError):
        return RETRY, f"TLS with {origin} failed: {_root_reason(error)}"
    if isinstance(error, requests.exceptions.ConnectionError):
        # RemoteDisconnected is a ConnectionResetError too: ask about it first.
        if _caused_by(error, http.client.RemoteDisconnected):
            return RETRY, f"the receiver at {origin} closed the connection without answering"
        if _caused_by(error, urllib3.exceptions.NewConnectionError):
            return RETRY, f"could not connect to {origin}: {_root_reason(error)}"
        if _caused_by(error, ConnectionResetError):
            return RETRY, f"the receiver at {origin} reset the connection before answering"
        return RETRY, f"the connection to {origin} failed: {_root_reason(error)}"
    return RETRY, f"{type(error).__name__}: {redact_text(str(error))}"


def _classify(
    response: requests.Response, stamp: int, started: float, excerpt: str | None
) -> AttemptOutcome:
    code = response.status_code
    if 200 <= code < 300:
        return _outcome(DELIVERED, stamp, started, code=code, excerpt=excerpt)
    if code == HTTPStatus.GONE:
        # Standard Webhooks and Svix: 410 means the receiver wants no more of these.
        return _outcome(
            GIVE_UP,
            stamp,
            started,
            code=code,
            excerpt=excerpt,
            error="HTTP 410 Gone: the receiver asked to stop sending",
        )
    if 300 <= code < 400:
        location = redact_url(response.headers.get("Location", "?"), hide_query=True)
        error = f"HTTP {code}: redirected to {location}; webhook redirects are not followed"
    else:
        error = f"HTTP {code} {_phrase(code)}".rstrip()
    return _outcome(
        RETRY,
        stamp,
        started,
        code=code,
        excerpt=excerpt,
        error=error,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def _outcome(
    outcome: str,
    stamp: int,
    started: float,
    *,
    code: int | None = None,
    error: str | None = None,
    excerpt: str | None = None,
    retry_after: float | None = None,
) -> AttemptOutcome:
    return AttemptOutcome(
        outcome=outcome,
        status_code=code,
        error=error,
        duration_ms=round((time.monotonic() - started) * 1000),
        response_excerpt=excerpt,
        retry_after=retry_after,
        timestamp=stamp,
    )


def _read_excerpt(response: requests.Response) -> str | None:
    """The start of the body; a broken body (or one cut at the deadline) only loses the rest."""
    data = b""
    try:
        for chunk in response.iter_content(1024):
            data += chunk
            if len(data) >= _EXCERPT_BYTES:
                break
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        logger.debug("webhook response body unreadable: %s", error)
    text = data.decode("utf-8", errors="replace").strip()
    return text[:EXCERPT_CHARS] or None


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` only: what logs may show of a URL that can carry a token."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an invalid URL"
    return f"{parts.scheme}://{host}{port}"


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and everything it wraps (args, ``reason``, causes), each once."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(a for a in current.args if isinstance(a, BaseException))
        pending.extend(
            e
            for e in (getattr(current, "reason", None), current.__cause__, current.__context__)
            if isinstance(e, BaseException)
        )


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(cause, kind) for cause in _causes(error))


def _root_reason(error: BaseException) -> str:
    """The innermost OS-level reason (``Connection refused``) instead of urllib3's paragraph."""
    for cause in _causes(error):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    return type(error).__name__
