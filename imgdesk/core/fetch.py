"""Download one image over HTTP(S) with the limits of the spec (section 3).

Every failure becomes an :class:`~imgdesk.core.errors.ImageError` with a code and a sentence a
shop owner understands. The limits hold against hostile or broken servers:

- only http and https, checked on the first URL and on every redirect hop;
- redirects are followed here, one hop at a time, and a redirect's body is never read;
- a total deadline per download, whole redirect chain included, on top of the connect and
  read timeouts, and a low-speed limit (curl's ``--speed-limit``): a server trickling one
  byte a second cannot hold a worker for minutes;
- the size limit counts *decoded* bytes while streaming, so a gzip bomb is stopped too;
- a URL's ``user:password@`` never appears in a message or a log line.

Use one session per worker thread (:func:`new_session`, see ``http_session``) and call
:func:`download`.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import logging
import math
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from http import HTTPStatus
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import requests.exceptions
import urllib3
import urllib3.exceptions

from imgdesk.core.errors import TRANSIENT_HTTP_STATUSES, ErrorCode, ImageError, http_code
from imgdesk.core.http_session import ImageSession, finish
from imgdesk.core.redact import redact_text, redact_url
from imgdesk.core.settings import Settings

logger = logging.getLogger(__name__)

# on_progress(bytes received so far, bytes announced or None), called by the download.
ProgressCallback = Callable[[int, int | None], None]

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ALLOWED_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Bytes asked of each read1() call. urllib3 caps the *decoded* output of one call at this
# size too, so at most limit + one chunk is ever buffered, even for a gzip bomb. Each read
# allocates this much first: under the engine's mmap threshold (engine._limit_heap_growth)
# the buffer comes from the heap, not from fresh pages (measured when the threshold was
# 1 MiB: 1 MiB reads cost 2.6 ms of CPU per 1.3 MB image, 256 KiB reads 2.0 ms). Large
# enough that the few Python frames of a read run rarely, holding the GIL the window needs.
_CHUNK_SIZE = 256 * 1024

# A Retry-After beyond a year means "do not come back"; a finite number reads better.
_RETRY_AFTER_MAX_S = 365 * 24 * 3600.0

_MIB = 1024 * 1024
_KIB = 1024

# The low-speed window is counted in this many buckets: a small fixed cost per read, and
# the limit acts within 1/30 of the window of the exact moment.
_SPEED_BUCKETS = 30

# Short explanations after the status phrase, for the statuses people actually meet.
_STATUS_HINTS = {
    400: "the server did not understand the request",
    401: "the image needs a login",
    403: "access to the image is forbidden",
    404: "the image is not there",
    405: "the server does not allow downloading this address",
    406: "the server would not send the image in any acceptable form",
    408: "the server gave up waiting for the request",
    410: "the image was removed for good",
    425: "the server asked to try again later",
    429: "too many requests, the server asked to slow down",
    451: "the image is blocked for legal reasons",
    500: "the server had an internal problem",
    502: "a gateway in front of the server got a bad answer",
    503: "the server is overloaded or down for maintenance",
    504: "a gateway in front of the server timed out",
}


@dataclass(frozen=True)
class Download:
    """A successfully downloaded body and what the server said about it.

    Attributes:
        data: the decoded body.
        http_status: the final status (2xx).
        final_url: the URL after redirects.
        content_type: the Content-Type header, informational only (the type is decided by
            magic bytes elsewhere).
        etag: the ETag header, if any.
        last_modified: the Last-Modified header, if any.
        elapsed_ms: wall time of the whole download, redirects included.
    """

    data: bytes = field(repr=False)
    http_status: int
    final_url: str
    content_type: str | None
    etag: str | None
    last_modified: str | None
    elapsed_ms: int

    @property
    def not_modified(self) -> bool:
        """True when the server answered 304 to a conditional request: nothing changed."""
        return self.http_status == 304


@dataclass(frozen=True)
class Validators:
    """What a server said about an earlier download, to ask "has it changed since?"."""

    etag: str | None
    last_modified: str | None

    def headers(self) -> dict[str, str]:
        """The conditional request headers (RFC 9110 section 13)."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


def new_session(settings: Settings) -> ImageSession:
    """A session for one worker thread: our User-Agent and Accept headers, no retries.

    Retries belong to the engine (it knows about backoff and Retry-After), and redirects to
    :func:`download`, so the session never does either on its own.
    """
    return ImageSession(
        {
            "User-Agent": settings.user_agent,
            "Accept": "image/jpeg, image/png, image/*;q=0.8, */*;q=0.5",
            # Images are compressed already; asking for them as they are spares the decoding
            # work. A server that compresses anyway is still decoded, within the size limit.
            "Accept-Encoding": "identity",
        }
    )


def download(
    url: str,
    settings: Settings,
    session: ImageSession,
    validators: Validators | None = None,
    on_progress: ProgressCallback | None = None,
) -> Download:
    """Fetch ``url`` within the limits of ``settings``, following redirects by hand.

    ``on_progress(bytes so far, length announced or None)`` hears of each chunk of the body.

    With ``validators`` the request is conditional: a 304 answer comes back as a
    :class:`Download` with no data whose ``not_modified`` is True. A body that averages
    under ``settings.low_speed_bytes_per_s`` over ``settings.low_speed_window_s`` ends with
    TIMEOUT (SPEC 3's low-speed limit).

    Raises:
        ImageError: with one of the codes of the spec; ``transient`` says whether another
            attempt may succeed and ``retry_after`` how long the server asked to wait.
    """
    started = time.monotonic()
    deadline = started + settings.total_timeout_s
    current = url.strip()
    _check_url(current, redirected_from=None)
    seen = {urldefrag(current).url}
    hops = 0
    while True:
        host = _host(current)
        if settings.block_private_addresses:
            _check_public_host(current)
        conditional = validators.headers() if validators else {}
        response = _send(session, current, settings, deadline, conditional)
        read_whole = False
        try:
            if response.status == 304 and validators is not None and conditional:
                read_whole = True  # a 304 has no body
                return _not_modified(response, current, validators, started)
            if response.status not in _REDIRECT_STATUSES:
                guard = _LowSpeedGuard(
                    settings.low_speed_bytes_per_s, settings.low_speed_window_s, time.monotonic()
                )
                data = _read_body(response, host, settings, deadline, guard, on_progress)
                read_whole = True
                elapsed_ms = int((time.monotonic() - started) * 1000)
                logger.debug(
                    "Downloaded %s: %s bytes in %s ms", _logged(current), len(data), elapsed_ms
                )
                return Download(
                    data=data,
                    http_status=response.status,
                    final_url=current,
                    content_type=response.headers.get("Content-Type"),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    elapsed_ms=elapsed_ms,
                )
            # A redirect's body is never read: its connection is closed, not reused.
            target = _redirect_target(response, current, host)
        finally:
            finish(response, read_whole=read_whole)
        hops += 1
        logger.debug(
            "Redirect %s of %s: %s -> %s", hops, _logged(url), _logged(current), _logged(target)
        )
        if hops > settings.max_redirects:
            raise ImageError(
                ErrorCode.TOO_MANY_REDIRECTS,
                f"The server {host} redirected more than {settings.max_redirects} times, "
                "so the download was stopped.",
            )
        _check_url(target, redirected_from=host)
        if urldefrag(target).url in seen:
            raise ImageError(
                ErrorCode.TOO_MANY_REDIRECTS,
                f"The server {host} redirects in a loop (back to {redact_url(target)}), "
                "so the download was stopped.",
            )
        seen.add(urldefrag(target).url)
        current = target


def _not_modified(
    response: urllib3.BaseHTTPResponse, url: str, validators: Validators, started: float
) -> Download:
    """The answer to a conditional request the server says is unchanged (304)."""
    # A 304 has no body (http.client reads none): the connection goes back for the next
    # image instead of being closed (measured: a new TCP connection for each unchanged
    # image of a second run).
    return Download(
        data=b"",
        http_status=304,
        final_url=url,
        content_type=None,
        etag=response.headers.get("ETag") or validators.etag,
        last_modified=response.headers.get("Last-Modified") or validators.last_modified,
        elapsed_ms=int((time.monotonic() - started) * 1000),
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date).

    Returns None when the header is absent or unreadable, and never a negative number (a
    date in the past means "now"). ``now`` is a Unix time, for tests.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        # float() of a huge digit string is inf; keep the number printable.
        return min(float(text), _RETRY_AFTER_MAX_S)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are always GMT; "-0000" parses without a zone.
        when = when.replace(tzinfo=UTC)
    reference = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - reference), _RETRY_AFTER_MAX_S)


def is_transient(error: ImageError) -> bool:
    """Whether another attempt may succeed (a convenience for ``error.transient``)."""
    return error.transient


def _send(
    session: ImageSession,
    url: str,
    settings: Settings,
    deadline: float,
    headers: dict[str, str] | None = None,
) -> urllib3.BaseHTTPResponse:
    """Send one GET and return the response (headers read, body not yet)."""
    host = _host(url)
    remaining = _remaining(deadline, host, settings)
    connect_timeout = min(settings.connect_timeout_s, remaining)
    read_timeout = min(settings.read_timeout_s, remaining)
    try:
        return session.get(
            url, headers or {}, urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        )
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
        requests.exceptions.URLRequired,
        urllib3.exceptions.LocationParseError,
        UnicodeError,
    ) as exc:
        raise ImageError(
            ErrorCode.INVALID_URL,
            f"The address {redact_url(url)!r} is not a valid web address ({_reason(exc)}).",
        ) from exc
    # A refused or unresolvable connection is a NewConnectionError, a kind of ConnectTimeout.
    except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ProxyError) as exc:
        raise _connection_error(host, exc) from exc
    except urllib3.exceptions.ConnectTimeoutError as exc:
        raise _timeout_error(
            host,
            settings,
            connect_timeout < settings.connect_timeout_s,
            f"did not accept a connection within {_seconds(connect_timeout)} s",
        ) from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise _timeout_error(
            host,
            settings,
            read_timeout < settings.read_timeout_s,
            f"did not answer within {_seconds(read_timeout)} s",
        ) from exc
    except urllib3.exceptions.SSLError as exc:
        raise ImageError(
            ErrorCode.CONNECTION,
            f"The secure connection to {host} failed ({_reason(exc)}).",
            transient=True,
        ) from exc
    except (urllib3.exceptions.ProtocolError, OSError) as exc:
        raise _connection_error(host, exc) from exc
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise ImageError(
            ErrorCode.CONNECTION,
            f"The request to {host} failed ({_reason(exc)}).",
            transient=True,
        ) from exc


def _read_body(
    raw: urllib3.BaseHTTPResponse,
    host: str,
    settings: Settings,
    deadline: float,
    guard: _LowSpeedGuard,
    on_progress: ProgressCallback | None = None,
) -> bytes:
    """Check the status, then stream the decoded body within the size, speed and time limits."""
    if not 200 <= raw.status < 300:
        raise _status_error(raw, host, settings)
    limit = settings.max_download_bytes
    announced = raw.length_remaining
    if announced is not None and announced > limit:
        raise ImageError(
            ErrorCode.TOO_LARGE,
            f"The image at {host} is {_size(announced)}, larger than the {_size(limit)} limit.",
        )
    # An identity body (what we ask for) skips urllib3's decoded-data buffer, a copy per read.
    decode = _is_encoded(raw)
    chunks: list[bytes] = []
    total = 0
    while True:
        remaining = _remaining(deadline, host, settings)
        read_timeout = min(settings.read_timeout_s, remaining)
        too_slow_in = guard.seconds_left(time.monotonic())
        if too_slow_in <= 0:
            raise guard.error(host, time.monotonic())
        # http.client has no deadline of its own; clipping the socket timeout before each
        # read bounds how long one read1() may wait for its first byte.
        _set_socket_timeout(raw, min(read_timeout, too_slow_in))
        try:
            chunk = raw.read1(_CHUNK_SIZE, decode_content=decode)
        except urllib3.exceptions.ReadTimeoutError as exc:
            if too_slow_in < read_timeout:
                raise guard.error(host, time.monotonic()) from exc
            raise _timeout_error(
                host,
                settings,
                read_timeout < settings.read_timeout_s,
                f"stopped sending data for {_seconds(read_timeout)} s",
            ) from exc
        except urllib3.exceptions.DecodeError as exc:
            raise ImageError(
                ErrorCode.CONNECTION,
                f"The server {host} sent compressed data that cannot be unpacked.",
                transient=True,
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if announced is not None and _caused_by(exc, urllib3.exceptions.IncompleteRead):
                message = (
                    f"The server {host} closed the connection before sending the whole "
                    f"image (it announced {_size(announced)})."
                )
            elif _caused_by(exc, ConnectionResetError):
                message = f"The server {host} reset the connection during the download."
            else:
                message = f"The connection to {host} broke during the download ({_reason(exc)})."
            raise ImageError(ErrorCode.CONNECTION, message, transient=True) from exc
        # Speed is what came over the wire, before decoding (a gzip bomb is fast, not slow).
        guard.count(raw.tell(), time.monotonic())
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise ImageError(
                ErrorCode.TOO_LARGE,
                f"The image at {host} is larger than the {_size(limit)} limit.",
            )
        chunks.append(chunk)
        if on_progress is not None:
            on_progress(total, announced)
    if total == 0:
        raise ImageError(ErrorCode.EMPTY, f"The server {host} sent an empty answer, no image.")
    return b"".join(chunks)


def _is_encoded(response: urllib3.BaseHTTPResponse) -> bool:
    """Whether the body comes with a content coding (gzip, ...) that urllib3 must undo."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    return encoding not in ("", "identity")


def _status_error(response: urllib3.BaseHTTPResponse, host: str, settings: Settings) -> ImageError:
    """The error for a non-2xx final status, with Retry-After for transient ones."""
    status = response.status
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = response.reason or ""
    if status in _STATUS_HINTS:
        hint = _STATUS_HINTS[status]
    elif 400 <= status < 500:
        hint = "the server refused the request"
    elif 500 <= status < 600:
        hint = "the server had a problem"
    else:
        hint = "that is not an image"
    message = f"The server {host} answered {status} {phrase}".rstrip() + f": {hint}."
    transient = status in TRANSIENT_HTTP_STATUSES
    retry_after = None
    if transient:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None and retry_after > settings.retry_after_cap_s:
            # Waiting that long would hold the request hostage; fail it with the reason.
            transient = False
            message += (
                f" It asked to wait {_seconds(retry_after)} s, longer than the "
                f"{_seconds(settings.retry_after_cap_s)} s imgdesk waits at most."
            )
        elif retry_after is not None:
            message += f" It asked to wait {_seconds(retry_after)} s before trying again."
    return ImageError(
        http_code(status), message, transient=transient, http_status=status, retry_after=retry_after
    )


def _redirect_target(response: urllib3.BaseHTTPResponse, current: str, host: str) -> str:
    """The absolute URL a redirect points to."""
    location = response.headers.get("Location")
    if not location or not location.strip():
        status = response.status
        raise ImageError(
            http_code(status),
            f"The server {host} answered {status} {HTTPStatus(status).phrase} "
            "but did not say where the image moved to.",
            http_status=status,
        )
    # http.client decodes headers as Latin-1; servers mostly send UTF-8 (requests does this too).
    with contextlib.suppress(UnicodeError):
        location = location.encode("latin-1").decode("utf-8")
    return urljoin(current, location.strip())


def _check_url(url: str, *, redirected_from: str | None) -> None:
    """Refuse anything but an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in _ALLOWED_SCHEMES and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        valid = False
    if valid:
        return
    if redirected_from is None:
        message = (
            f"The address {redact_url(url)!r} is not an absolute http:// or https:// web address."
        )
    else:
        message = (
            f"The server {redirected_from} redirected to {redact_url(url)!r}, "
            "which is not an http:// or https:// web address."
        )
    raise ImageError(ErrorCode.INVALID_URL, message)


def _check_public_host(url: str) -> None:
    """Refuse a host that resolves to a loopback, private or otherwise local address.

    This guards against a CSV (or a redirect) pointing at the user's own network. The
    connection resolves the name again, so a DNS server that changes its answer in between
    can still slip through; it is a safety net, not a firewall.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    try:
        addresses = _resolve(host, port)
    except UnicodeError as exc:
        raise ImageError(
            ErrorCode.INVALID_URL, f"The address {redact_url(url)!r} has an invalid host name."
        ) from exc
    except OSError as exc:
        raise ImageError(
            ErrorCode.CONNECTION,
            f"Could not find the server {host} (the name does not resolve).",
            transient=True,
        ) from exc
    for text in addresses:
        address = _ip(text)
        if _is_local(address):
            raise ImageError(
                ErrorCode.INVALID_URL,
                f"The server {host} is on a private or local network address ({address}); "
                "private addresses are blocked in settings.",
            )


def _resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, as text (a seam for tests)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address, with an IPv6 zone dropped and an IPv4-mapped IPv6 address unwrapped."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_local(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for any address that is not global (loopback, private, carrier-grade NAT, …)."""
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    )


class _LowSpeedGuard:
    """Ends a body that averages under a rate over a sliding window (curl's --speed-limit).

    Wire bytes are summed in buckets of 1/30 of the window, each dated by its end, so the
    limit errs towards the server by at most one bucket. The window starts with the body.
    """

    def __init__(self, bytes_per_s: float, window_s: float, started: float) -> None:
        self._bytes_per_s = bytes_per_s
        self._window_s = window_s
        self._minimum = bytes_per_s * window_s  # bytes each window must bring
        self._bucket_s = window_s / _SPEED_BUCKETS
        self._started = started
        self._counted = 0
        self._buckets: deque[tuple[float, int]] = deque()  # (end time, bytes), oldest first

    def count(self, received: int, now: float) -> None:
        """Note that ``received`` bytes in all have arrived by ``now``."""
        added = received - self._counted
        if added <= 0:
            return
        self._counted = received
        end = self._started + (int((now - self._started) / self._bucket_s) + 1) * self._bucket_s
        if self._buckets and self._buckets[-1][0] == end:
            self._buckets[-1] = (end, self._buckets[-1][1] + added)
        else:
            self._buckets.append((end, added))

    def received_in_window(self, now: float) -> int:
        """Bytes that arrived in the window ending ``now``."""
        while self._buckets and self._buckets[0][0] + self._window_s <= now:
            self._buckets.popleft()
        return sum(count for _end, count in self._buckets)

    def seconds_left(self, now: float) -> float:
        """Seconds until the body is too slow if nothing more arrives (<= 0: it is now)."""
        if self._minimum <= 0:
            return math.inf
        in_window = self.received_in_window(now)
        # No verdict before one whole window; then old buckets leave it one by one.
        when = max(now, self._started + self._window_s)
        for end, count in self._buckets:
            if in_window < self._minimum:
                break
            when = end + self._window_s
            in_window -= count
        return when - now

    def error(self, host: str, now: float) -> ImageError:
        """The TIMEOUT error that ends a body too slow at ``now``."""
        received = self.received_in_window(now)
        window = _seconds(self._window_s)
        if received == 0:
            message = f"The server {host} stopped sending data for {window} s."
        else:
            message = (
                f"The server {host} sent only {_size(received)} in the last {window} s "
                f"(less than {_size(int(self._bytes_per_s))}/s), so the download was stopped."
            )
        return ImageError(ErrorCode.TIMEOUT, message, transient=True)


def _remaining(deadline: float, host: str, settings: Settings) -> float:
    """Seconds left before the deadline; raise TIMEOUT when none are left."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _deadline_error(host, settings)
    return remaining


def _timeout_error(host: str, settings: Settings, clipped: bool, what: str) -> ImageError:
    """A TIMEOUT error, worded for the deadline when the deadline shortened the timeout."""
    if clipped:
        return _deadline_error(host, settings)
    return ImageError(ErrorCode.TIMEOUT, f"The server {host} {what}.", transient=True)


def _deadline_error(host: str, settings: Settings) -> ImageError:
    return ImageError(
        ErrorCode.TIMEOUT,
        f"The download from {host} took longer than {_seconds(settings.total_timeout_s)} s "
        "and was stopped.",
        transient=True,
    )


def _connection_error(host: str, exc: BaseException) -> ImageError:
    """Word a connection failure by its cause: DNS, refused, reset or other."""
    if _caused_by(exc, urllib3.exceptions.NameResolutionError):
        message = f"Could not find the server {host} (the name does not resolve)."
    elif _caused_by(exc, ConnectionRefusedError):
        message = f"The server {host} refused the connection."
    elif _caused_by(exc, ConnectionResetError):
        message = f"The server {host} reset the connection."
    else:
        message = f"Could not connect to the server {host} ({_reason(exc)})."
    return ImageError(ErrorCode.CONNECTION, message, transient=True)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` or anything it wraps (args, cause, context, reason) is a ``kind``."""
    pending: list[Any] = [exc]
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            return True
        pending.extend(item.args)
        pending.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
    return False


def _reason(exc: BaseException) -> str:
    """The innermost useful text of an exception, for the end of a message.

    urllib3 and requests wrap the operating system's error two or three times; the
    innermost one says what happened ("Connection reset by peer"). urllib3 puts URLs into
    its texts, so any ``user:password@`` in them is hidden.
    """
    for inner in (getattr(exc, "reason", None), *reversed(exc.args)):
        if isinstance(inner, BaseException):
            return _reason(inner)
    if isinstance(exc, OSError) and exc.strerror:
        return redact_text(exc.strerror, hide_query=False)
    return redact_text(str(exc), hide_query=False) or type(exc).__name__


def _logged(url: str) -> str:
    """``url`` for a log line: userinfo and query values hidden (see :func:`_shown`)."""
    return redact_url(redact_url(url), hide_query=True)


def _set_socket_timeout(raw: urllib3.BaseHTTPResponse, seconds: float) -> None:
    """Set the timeout of the socket under a streamed response, if it still has one."""
    connection = raw.connection
    sock = getattr(connection, "sock", None) if connection is not None else None
    if sock is not None:
        sock.settimeout(seconds)


def _host(url: str) -> str:
    """The host name for messages."""
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url


def _seconds(value: float) -> str:
    """120.0 -> "120", 1.5 -> "1.5"."""
    return f"{value:.1f}".removesuffix(".0")


def _size(value: int) -> str:
    """A byte count in MiB, KiB or bytes, as people read it."""
    if value >= _MIB:
        return f"{value / _MIB:.1f}".removesuffix(".0") + " MiB"
    if value >= _KIB:
        return f"{value / _KIB:.1f}".removesuffix(".0") + " KiB"
    return f"{value} bytes"
