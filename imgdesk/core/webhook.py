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
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from imgdesk import __version__
from imgdesk.core.errors import SettingsError
from imgdesk.core.fetch import parse_retry_after
from imgdesk.core.repository import RequestInfo

logger = logging.getLogger(__name__)

EVENT_COMPLETED = "request.completed"
EVENT_FAILED = "request.failed"
EVENT_TEST = "test"

# Outcomes of one attempt.
DELIVERED = "delivered"
RETRY = "retry"
GIVE_UP = "give_up"

ATTEMPT_TIMEOUT_S = 15.0
CONNECT_TIMEOUT_S = 5.0
EXCERPT_CHARS = 500
_EXCERPT_BYTES = 4 * EXCERPT_CHARS  # enough bytes for 500 characters of UTF-8, mostly
MAX_RETRY_DELAY_S = 24 * 3600.0  # 20 doublings of a long first delay must stay sane
SECRET_PREFIX = "whsec_"
USER_AGENT = f"imgdesk/{__version__} (webhook)"


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
    """The event name for a finished request's status."""
    if status == "completed":
        return EVENT_COMPLETED
    if status == "failed":
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


def encode_body(payload: dict[str, Any]) -> str:
    """Compact ASCII JSON: encoded once, stored, and sent byte for byte on every attempt."""
    return json.dumps(payload, separators=(",", ":"))


def iso_utc(timestamp: float) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second (as the CLI prints times)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


# -- signing --------------------------------------------------------------------------------


def signing_key(secret: str) -> bytes:
    """The HMAC key: ``whsec_<base64>`` is decoded (Standard Webhooks), else UTF-8 bytes.

    Raises:
        SettingsError: a ``whsec_`` secret whose rest is not base64.
    """
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            # The message must not quote the secret: it may end up in a log or a dialog.
            raise SettingsError(
                "webhook_secret starts with whsec_ but the rest is not valid base64"
            ) from None
    return secret.encode("utf-8")


def check_secret(secret: str) -> None:
    """Raise :class:`SettingsError` now if ``secret`` can never sign (for settings and CLI)."""
    if secret:
        signing_key(secret)


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


def retry_delay(
    retry_number: int,
    first_delay_s: float,
    retry_after: float | None,
    retry_after_cap_s: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds before retry ``retry_number`` (1 for the first retry).

    A receiver's Retry-After wins, capped so a receiver cannot park an event for days;
    otherwise the delay doubles each time, with jitter so many senders do not retry in step.
    """
    if retry_after is not None:
        return min(retry_after, retry_after_cap_s)
    base = first_delay_s * 2.0 ** (retry_number - 1)
    return min(base * uniform(0.5, 1.5), MAX_RETRY_DELAY_S)


# -- one attempt ----------------------------------------------------------------------------


def post_once(
    url: str,
    msg_id: str,
    body: str,
    secret: str | None,
    *,
    timestamp: int | None = None,
    timeout_s: float = ATTEMPT_TIMEOUT_S,
    session: requests.Session | None = None,
) -> AttemptOutcome:
    """POST ``body`` to ``url`` once and classify the answer; never raises.

    Redirects are not followed (a receiver that moved must be re-configured, and following
    one would send a signed event to a place nobody chose). The connect, each read and the
    excerpt are bounded by ``timeout_s`` so one attempt stays near that total.
    """
    stamp = int(time.time()) if timestamp is None else timestamp
    started = time.monotonic()
    origin = url_origin(url)
    try:
        headers = webhook_headers(msg_id, stamp, body, secret)
    except SettingsError as error:
        return _outcome(GIVE_UP, stamp, started, error=str(error))
    own_session = session is None
    active = requests.Session() if session is None else session
    try:
        with active.post(
            url,
            data=body.encode("utf-8"),
            headers=headers,
            allow_redirects=False,
            stream=True,
            # Connect, then each read of the answer; the excerpt below keeps to the total.
            timeout=(min(CONNECT_TIMEOUT_S, timeout_s), timeout_s),
        ) as response:
            excerpt = _read_excerpt(response, started + timeout_s)
            return _classify(response, stamp, started, excerpt)
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidHeader,
    ) as error:
        return _outcome(GIVE_UP, stamp, started, error=f"not a usable webhook URL: {error}")
    except requests.exceptions.ConnectTimeout:
        return _outcome(RETRY, stamp, started, error=f"timed out connecting to {origin}")
    except requests.exceptions.ReadTimeout:
        return _outcome(
            RETRY, stamp, started, error=f"{origin} did not answer within {timeout_s:g} s"
        )
    except requests.exceptions.SSLError as error:
        return _outcome(
            RETRY, stamp, started, error=f"TLS with {origin} failed: {_root_reason(error)}"
        )
    except requests.exceptions.ConnectionError as error:
        return _outcome(
            RETRY, stamp, started, error=f"could not connect to {origin}: {_root_reason(error)}"
        )
    except requests.RequestException as error:
        return _outcome(RETRY, stamp, started, error=f"{type(error).__name__}: {error}")
    finally:
        if own_session:
            active.close()


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
        location = response.headers.get("Location", "?")
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


def _read_excerpt(response: requests.Response, deadline: float) -> str | None:
    """The start of the body, read within the deadline; a broken body only loses the excerpt."""
    data = b""
    try:
        for chunk in response.iter_content(1024):
            data += chunk
            if len(data) >= _EXCERPT_BYTES or time.monotonic() > deadline:
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


def _root_reason(error: BaseException) -> str:
    """The innermost OS-level reason (``Connection refused``) instead of urllib3's paragraph."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        pending.extend(a for a in current.args if isinstance(a, BaseException))
        pending.extend(
            e
            for e in (getattr(current, "reason", None), current.__cause__, current.__context__)
            if isinstance(e, BaseException)
        )
    return type(error).__name__
