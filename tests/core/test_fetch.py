"""Tests for imgdesk.core.fetch against a real HTTP server on 127.0.0.1 (no mocking)."""

from __future__ import annotations

import email.utils
import gzip
import logging
import socket
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from imgdesk.core import fetch
from imgdesk.core.errors import ErrorCode, ImageError
from imgdesk.core.fetch import Download, download, is_transient, new_session, parse_retry_after
from imgdesk.core.http_session import ImageSession
from imgdesk.core.settings import Settings
from tests.httpservers import (
    Exchange,
    HttpTestServer,
    RouteHandler,
    chunked,
    gzip_zeros,
    gzipped,
    redirect,
    respond,
    running_server,
    sequence,
    stall,
    trickle,
    truncated,
)

pytestmark = pytest.mark.timeout(20)

KIB = 1024
MIB = 1024 * 1024
BODY = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8  # JPEG magic, then filler

# Short limits keep the whole file to a few seconds.
FAST = Settings(
    connect_timeout_s=2.0,
    read_timeout_s=2.0,
    total_timeout_s=5.0,
    max_download_bytes=64 * KIB,
)


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with running_server() as running:
        yield running


@pytest.fixture
def session() -> Iterator[ImageSession]:
    with new_session(FAST) as created:
        yield created


def fail(url: str, session: ImageSession, settings: Settings = FAST) -> ImageError:
    """Download ``url`` and return the ImageError it must raise."""
    with pytest.raises(ImageError) as caught:
        download(url, settings, session)
    return caught.value


# --- success -----------------------------------------------------------------------------


def test_success_returns_body_and_headers(server: HttpTestServer, session: ImageSession) -> None:
    url = server.route(
        "/a.jpg",
        respond(
            BODY,
            headers={"ETag": '"abc123"', "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"},
            content_type="image/jpeg",
        ),
    )
    result = download(url, FAST, session)
    assert isinstance(result, Download)
    assert result.data == BODY
    assert result.http_status == 200
    assert result.final_url == url
    assert result.content_type == "image/jpeg"
    assert result.etag == '"abc123"'
    assert result.last_modified == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert result.elapsed_ms >= 0
    assert "data" not in repr(result)  # megabytes must not end up in logs


def test_missing_validators_are_none(server: HttpTestServer, session: ImageSession) -> None:
    result = download(server.route("/a", respond(BODY)), FAST, session)
    assert (result.etag, result.last_modified, result.content_type) == (None, None, None)


def test_session_sends_user_agent_and_reuses_connection(
    server: HttpTestServer, session: ImageSession
) -> None:
    url = server.route("/a.jpg", respond(BODY))
    for _ in range(3):
        download(url, FAST, session)
    assert server.requests[0].headers["User-Agent"] == FAST.user_agent
    assert server.connections == 1  # the body was read to the end, so the pool kept it


def test_body_without_content_length(server: HttpTestServer, session: ImageSession) -> None:
    url = server.route("/a", respond(BODY, content_length=False))
    assert download(url, FAST, session).data == BODY


def test_chunked_body(server: HttpTestServer, session: ImageSession) -> None:
    url = server.route("/a", chunked([BODY[:100], BODY[100:]]))
    assert download(url, FAST, session).data == BODY


def test_gzip_body_is_decoded(server: HttpTestServer, session: ImageSession) -> None:
    url = server.route("/a", gzipped(BODY))
    assert download(url, FAST, session).data == BODY


def test_body_exactly_at_limit(server: HttpTestServer, session: ImageSession) -> None:
    body = bytes(FAST.max_download_bytes)
    assert download(server.route("/a", respond(body)), FAST, session).data == body


# --- HTTP statuses -------------------------------------------------------------------------


def test_404_is_permanent(server: HttpTestServer, session: ImageSession) -> None:
    error = fail(server.url("/missing.jpg"), session)
    assert error.code == "http_404"
    assert error.http_status == 404
    assert not error.transient
    assert not is_transient(error)
    assert error.message == "The server 127.0.0.1 answered 404 Not Found: the image is not there."


def test_500_is_transient(server: HttpTestServer, session: ImageSession) -> None:
    error = fail(server.route("/a", respond(b"oops", 500)), session)
    assert (error.code, error.http_status, error.transient) == ("http_500", 500, True)
    assert "500 Internal Server Error" in error.message
    assert error.retry_after is None


def test_unknown_status_still_reported(server: HttpTestServer, session: ImageSession) -> None:
    error = fail(server.route("/a", respond(b"", 499)), session)
    assert (error.code, error.transient) == ("http_499", False)
    assert "499" in error.message


def test_429_retry_after_seconds(server: HttpTestServer, session: ImageSession) -> None:
    error = fail(server.route("/a", respond(b"", 429, {"Retry-After": "7"})), session)
    assert (error.code, error.transient, error.retry_after) == ("http_429", True, 7.0)
    assert "wait 7 s" in error.message


def test_503_retry_after_http_date(server: HttpTestServer, session: ImageSession) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    error = fail(server.route("/a", respond(b"", 503, {"Retry-After": when})), session)
    assert error.code == "http_503"
    assert error.transient
    assert error.retry_after is not None
    assert 27 <= error.retry_after <= 31


def test_retry_after_over_cap_is_permanent(server: HttpTestServer, session: ImageSession) -> None:
    settings = FAST.replace(retry_after_cap_s=60.0)
    url = server.route("/a", respond(b"", 503, {"Retry-After": "3600"}))
    error = fail(url, session, settings)
    assert (error.code, error.transient, error.retry_after) == ("http_503", False, 3600.0)
    assert "3600 s" in error.message
    assert "60 s" in error.message


def test_retry_after_ignored_on_permanent_status(
    server: HttpTestServer, session: ImageSession
) -> None:
    error = fail(server.route("/a", respond(b"", 403, {"Retry-After": "5"})), session)
    assert (error.code, error.transient, error.retry_after) == ("http_403", False, None)


def test_sequence_of_answers(server: HttpTestServer, session: ImageSession) -> None:
    url = server.route("/a", sequence(respond(b"", 503), respond(BODY)))
    assert fail(url, session).code == "http_503"
    assert download(url, FAST, session).data == BODY
    assert server.hits("/a") == 2


# --- parse_retry_after ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "  ", "soon", "-5", "1.5", "Wed, 99 Foo 2015"])
def test_parse_retry_after_garbage(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_parse_retry_after_forms() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("9" * 5000) == 365 * 24 * 3600.0
    assert parse_retry_after(email.utils.formatdate(now + 90, usegmt=True), now=now) == 90.0
    assert parse_retry_after(email.utils.formatdate(now - 90, usegmt=True), now=now) == 0.0
    # A date with "-0000" parses without a zone; it is still GMT.
    naive = email.utils.formatdate(now + 10).rsplit(" ", 1)[0] + " -0000"
    assert parse_retry_after(naive, now=now) == 10.0


# --- redirects -----------------------------------------------------------------------------


def test_redirect_chain_followed(server: HttpTestServer, session: ImageSession) -> None:
    server.route("/a", redirect(server.url("/b"), 301))
    server.route("/b", redirect("/c", 307))
    server.route("/c", redirect(server.url("/d"), 308))
    server.route("/d", respond(BODY))
    result = download(server.url("/a"), FAST, session)
    assert result.data == BODY
    assert result.final_url == server.url("/d")
    assert [server.hits(p) for p in ("/a", "/b", "/c", "/d")] == [1, 1, 1, 1]


def test_relative_redirect(server: HttpTestServer, session: ImageSession) -> None:
    server.route("/img/old/a.jpg", redirect("../new/b.jpg", 303))
    server.route("/img/new/b.jpg", respond(BODY))
    result = download(server.url("/img/old/a.jpg"), FAST, session)
    assert result.final_url == server.url("/img/new/b.jpg")


def test_exactly_max_redirects_is_fine(server: HttpTestServer, session: ImageSession) -> None:
    for hop in range(5):
        server.route(f"/r{hop}", redirect(f"/r{hop + 1}"))
    server.route("/r5", respond(BODY))
    assert download(server.url("/r0"), FAST, session).data == BODY


def test_too_many_redirects(server: HttpTestServer, session: ImageSession) -> None:
    for hop in range(10):
        server.route(f"/r{hop}", redirect(f"/r{hop + 1}"))
    error = fail(server.url("/r0"), session)
    assert (error.code, error.transient) == (ErrorCode.TOO_MANY_REDIRECTS, False)
    assert "more than 5" in error.message
    assert server.total_hits == 6  # the first request plus five redirects, no more


def test_redirect_limit_from_settings(server: HttpTestServer, session: ImageSession) -> None:
    server.route("/a", redirect("/b"))
    error = fail(server.url("/a"), session, FAST.replace(max_redirects=0))
    assert error.code == ErrorCode.TOO_MANY_REDIRECTS


def test_redirect_loop(server: HttpTestServer, session: ImageSession) -> None:
    server.route("/a", redirect("/b"))
    server.route("/b", redirect("/a"))
    error = fail(server.url("/a"), session)
    assert (error.code, error.transient) == (ErrorCode.TOO_MANY_REDIRECTS, False)
    assert "loop" in error.message
    assert server.total_hits == 2


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://127.0.0.1/a.jpg", "javascript:alert(1)"]
)
def test_redirect_to_other_scheme_is_invalid(
    server: HttpTestServer, session: ImageSession, location: str
) -> None:
    error = fail(server.route("/a", redirect(location)), session)
    assert (error.code, error.transient) == (ErrorCode.INVALID_URL, False)
    assert "redirected" in error.message


def test_redirect_without_location(server: HttpTestServer, session: ImageSession) -> None:
    error = fail(server.route("/a", respond(b"", 302)), session)
    assert (error.code, error.http_status, error.transient) == ("http_302", 302, False)


def test_redirect_body_is_not_read(server: HttpTestServer, session: ImageSession) -> None:
    """A redirect with an endless body must not be read (requests' own handling would)."""

    def endless_redirect(exchange: Exchange) -> None:
        exchange.start(302, {"Location": "/b", "Content-Length": str(100 * MIB)})
        while exchange.wait(0.01):
            exchange.write(bytes(64 * KIB))

    server.route("/a", endless_redirect)
    server.route("/b", respond(BODY))
    started = time.monotonic()
    assert download(server.url("/a"), FAST, session).data == BODY
    assert time.monotonic() - started < 1.0


# --- size limits ---------------------------------------------------------------------------


def test_content_length_over_limit(server: HttpTestServer, session: ImageSession) -> None:
    def announce_only(exchange: Exchange) -> None:
        exchange.start(200, {"Content-Length": str(50 * MIB)})
        exchange.wait(5)  # the body never comes: the client must not wait for it

    started = time.monotonic()
    error = fail(server.route("/a", announce_only), session)
    assert (error.code, error.transient) == (ErrorCode.TOO_LARGE, False)
    assert "50 MiB" in error.message
    assert "64 KiB" in error.message
    assert time.monotonic() - started < 1.0


def test_chunked_body_over_limit(server: HttpTestServer, session: ImageSession) -> None:
    url = server.route("/a", chunked([bytes(16 * KIB)] * 1000))  # 16 MiB announced nowhere
    error = fail(url, session)
    assert (error.code, error.transient) == (ErrorCode.TOO_LARGE, False)
    assert error.message == "The image at 127.0.0.1 is larger than the 64 KiB limit."


def test_unannounced_body_over_limit(server: HttpTestServer, session: ImageSession) -> None:
    url = server.route("/a", respond(bytes(MIB), content_length=False))
    assert fail(url, session).code == ErrorCode.TOO_LARGE


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    bomb = gzip_zeros(50 * MIB)
    assert len(bomb) < 100 * KIB
    return bomb


@pytest.mark.timeout(10)
def test_gzip_bomb_stopped_quickly_with_bounded_memory(
    server: HttpTestServer, session: ImageSession, gzip_bomb: bytes
) -> None:
    url = server.route("/bomb", respond(gzip_bomb, headers={"Content-Encoding": "gzip"}))
    settings = FAST.replace(max_download_bytes=MIB)
    started = time.monotonic()
    tracemalloc.start()
    try:
        error = fail(url, session, settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (error.code, error.transient) == (ErrorCode.TOO_LARGE, False)
    assert "1 MiB" in error.message
    assert peak < 4 * MIB  # limit + one chunk + decoder state, far from 50 MiB
    assert time.monotonic() - started < 2.0


# --- broken connections --------------------------------------------------------------------


def test_body_shorter_than_content_length(server: HttpTestServer, session: ImageSession) -> None:
    error = fail(server.route("/a", truncated(BODY[:100], announced=len(BODY))), session)
    assert (error.code, error.transient) == (ErrorCode.CONNECTION, True)
    assert "before sending the whole image" in error.message


def test_connection_reset_mid_body(server: HttpTestServer, session: ImageSession) -> None:
    url = server.route("/a", truncated(BODY[:100], announced=len(BODY), reset=True))
    error = fail(url, session)
    assert (error.code, error.transient) == (ErrorCode.CONNECTION, True)
    assert "reset the connection" in error.message


def test_connection_refused(session: ImageSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = fail(f"http://127.0.0.1:{port}/a.jpg", session)
    assert (error.code, error.transient) == (ErrorCode.CONNECTION, True)
    assert "refused" in error.message


def test_dns_failure(session: ImageSession) -> None:
    error = fail("http://no-such-host.invalid/a.jpg", session)
    assert (error.code, error.transient) == (ErrorCode.CONNECTION, True)
    assert "no-such-host.invalid" in error.message


def test_broken_chunked_encoding(server: HttpTestServer, session: ImageSession) -> None:
    def bad_chunks(exchange: Exchange) -> None:
        exchange.start(200, {"Transfer-Encoding": "chunked"})
        exchange.write(b"10\r\n" + BODY[:16] + b"\r\nzz\r\nnonsense")
        exchange.abort()

    error = fail(server.route("/a", bad_chunks), session)
    assert (error.code, error.transient) == (ErrorCode.CONNECTION, True)


def test_bad_gzip(server: HttpTestServer, session: ImageSession) -> None:
    url = server.route(
        "/a", respond(b"this is not gzip at all", headers={"Content-Encoding": "gzip"})
    )
    error = fail(url, session)
    assert (error.code, error.transient) == (ErrorCode.CONNECTION, True)
    assert "compressed" in error.message


# --- timeouts ------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_trickle_stopped_by_total_deadline(server: HttpTestServer, session: ImageSession) -> None:
    # Each byte comes well within the read timeout; only the total deadline can stop it.
    settings = FAST.replace(read_timeout_s=1.0, total_timeout_s=1.5)
    url = server.route("/a", trickle(BODY, delay_s=0.1))
    started = time.monotonic()
    error = fail(url, session, settings)
    elapsed = time.monotonic() - started
    assert (error.code, error.transient) == (ErrorCode.TIMEOUT, True)
    assert error.message == "The download from 127.0.0.1 took longer than 1.5 s and was stopped."
    assert 1.4 <= elapsed < 2.2


@pytest.mark.timeout(10)
def test_deadline_covers_the_redirect_chain(server: HttpTestServer, session: ImageSession) -> None:
    settings = FAST.replace(read_timeout_s=1.0, total_timeout_s=1.0)

    def slow_redirect(target: str) -> RouteHandler:
        def handler(exchange: Exchange) -> None:
            if exchange.wait(0.4):  # each hop is well within the read timeout
                exchange.reply(302, b"", {"Location": target})

        return handler

    for hop in range(5):
        server.route(f"/r{hop}", slow_redirect(f"/r{hop + 1}"))
    started = time.monotonic()
    error = fail(server.url("/r0"), session, settings)
    assert error.code == ErrorCode.TIMEOUT
    assert "took longer than 1 s" in error.message
    assert time.monotonic() - started < 1.6


@pytest.mark.timeout(10)
def test_stall_after_headers_hits_read_timeout(
    server: HttpTestServer, session: ImageSession
) -> None:
    settings = FAST.replace(read_timeout_s=0.5, total_timeout_s=5.0)
    started = time.monotonic()
    error = fail(server.route("/a", stall()), session, settings)
    assert (error.code, error.transient) == (ErrorCode.TIMEOUT, True)
    assert "stopped sending data for 0.5 s" in error.message
    assert time.monotonic() - started < 1.5


@pytest.mark.timeout(10)
def test_stall_before_headers_hits_read_timeout(
    server: HttpTestServer, session: ImageSession
) -> None:
    settings = FAST.replace(read_timeout_s=0.5, total_timeout_s=5.0)
    error = fail(server.route("/a", stall(send_headers=False)), session, settings)
    assert (error.code, error.transient) == (ErrorCode.TIMEOUT, True)
    assert "did not answer within 0.5 s" in error.message


@pytest.mark.timeout(10)
def test_stall_ends_at_deadline_when_it_comes_first(
    server: HttpTestServer, session: ImageSession
) -> None:
    settings = FAST.replace(read_timeout_s=30.0, total_timeout_s=1.0)
    started = time.monotonic()
    error = fail(server.route("/a", stall()), session, settings)
    assert error.code == ErrorCode.TIMEOUT
    assert "took longer than 1 s" in error.message
    assert time.monotonic() - started < 1.6


# --- empty bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("handler", [respond(b""), respond(b"", 204), chunked([])])
def test_empty_body(server: HttpTestServer, session: ImageSession, handler: RouteHandler) -> None:
    error = fail(server.route("/a", handler), session)
    assert (error.code, error.transient) == (ErrorCode.EMPTY, False)


# --- invalid URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "not a url",
        "cdn.example/a.jpg",
        "//cdn.example/a.jpg",
        "ftp://cdn.example/a.jpg",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "http:///a.jpg",
        "http://exa mple.com/a.jpg",
        "http://example.com:99999/a.jpg",
        "http://[::1/a.jpg",
    ],
)
def test_invalid_url(session: ImageSession, url: str) -> None:
    error = fail(url, session)
    assert (error.code, error.transient) == (ErrorCode.INVALID_URL, False)


def test_url_whitespace_and_path_spaces_are_tolerated(
    server: HttpTestServer, session: ImageSession
) -> None:
    server.route("/my%20image.jpg", respond(BODY))
    assert download("  " + server.url("/my image.jpg") + "\n", FAST, session).data == BODY


# --- private address blocking --------------------------------------------------------------


def test_private_addresses_allowed_by_default(
    server: HttpTestServer, session: ImageSession
) -> None:
    assert not Settings().block_private_addresses
    assert download(server.route("/a", respond(BODY)), FAST, session).data == BODY


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_addresses_blocked_when_asked(
    server: HttpTestServer, session: ImageSession, host: str
) -> None:
    server.route("/a", respond(BODY))
    url = f"http://{host}:{server.port}/a"
    error = fail(url, session, FAST.replace(block_private_addresses=True))
    assert (error.code, error.transient) == (ErrorCode.INVALID_URL, False)
    assert "private addresses are blocked in settings" in error.message
    assert server.total_hits == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/a.jpg",
        "http://192.168.0.10/a.jpg",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/a.jpg",
        "http://0.0.0.0/a.jpg",
        "http://224.0.0.1/a.jpg",
        "http://[::1]/a.jpg",
        "http://[::ffff:127.0.0.1]/a.jpg",
        "http://[fe80::1]/a.jpg",
        "http://[fd00::1]/a.jpg",
    ],
)
def test_private_address_literals_blocked(session: ImageSession, url: str) -> None:
    error = fail(url, session, FAST.replace(block_private_addresses=True))
    assert error.code == ErrorCode.INVALID_URL


def test_private_address_checked_on_every_hop(
    server: HttpTestServer, session: ImageSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first host passes the check, the redirect to a local name must not."""
    real_resolve = fetch._resolve

    def resolve(host: str, port: int) -> list[str]:
        # Pretend the first hop is a public server; the connection still goes to loopback.
        return ["93.184.216.34"] if host == "127.0.0.1" else real_resolve(host, port)

    monkeypatch.setattr(fetch, "_resolve", resolve)
    server.route("/a", redirect(f"http://localhost:{server.port}/b"))
    server.route("/b", respond(BODY))
    error = fail(server.url("/a"), session, FAST.replace(block_private_addresses=True))
    assert error.code == ErrorCode.INVALID_URL
    assert "localhost" in error.message
    assert (server.hits("/a"), server.hits("/b")) == (1, 0)


def test_gzip_helper_round_trips() -> None:
    assert gzip.decompress(gzip_zeros(3 * MIB + 5)) == bytes(3 * MIB + 5)


# --- conditional requests -----------------------------------------------------------------


def test_validators_make_the_request_conditional_and_304_means_not_modified(
    server: HttpTestServer, session: ImageSession
) -> None:
    url = server.route("/a.jpg", respond(b"", 304, {"ETag": '"v2"'}))
    validators = fetch.Validators(etag='"v1"', last_modified="Tue, 01 Sep 2026 10:00:00 GMT")
    got = download(url, FAST, session, validators)
    assert got.not_modified and got.data == b""
    assert got.etag == '"v2"'
    assert got.last_modified == "Tue, 01 Sep 2026 10:00:00 GMT"  # kept from the validators
    [seen] = server.requests
    assert seen.headers.get("If-None-Match") == '"v1"'
    assert seen.headers.get("If-Modified-Since") == "Tue, 01 Sep 2026 10:00:00 GMT"


def test_a_304_to_an_unconditional_request_is_an_error(
    server: HttpTestServer, session: ImageSession
) -> None:
    url = server.route("/a.jpg", respond(b"", 304))
    with pytest.raises(ImageError) as caught:
        download(url, FAST, session)
    assert caught.value.code == "http_304"


# --- low-speed limit -----------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_trickle_ends_at_the_low_speed_limit_long_before_the_deadline(
    server: HttpTestServer, session: ImageSession
) -> None:
    # One byte every 0.1 s never trips the 5 s read timeout; only the low-speed limit
    # (1 KiB/s over 1 s here, 1 KiB/s over 30 s by default) can stop it before the deadline.
    settings = FAST.replace(
        read_timeout_s=5.0, total_timeout_s=60.0, low_speed_bytes_per_s=KIB, low_speed_window_s=1.0
    )
    url = server.route("/a", trickle(BODY, delay_s=0.1))
    started = time.monotonic()
    with pytest.raises(ImageError) as caught:
        download(url, settings, session)
    elapsed = time.monotonic() - started
    error = caught.value
    assert (error.code, error.transient) == (ErrorCode.TIMEOUT, True)
    # Only the low-speed limit words it so (the read timeout is 5 s): "sent only 9 bytes in
    # the last 1 s", or, if a busy machine starved the server for that second, "stopped
    # sending data for 1 s".
    assert " in the last 1 s (less than 1 KiB/s)" in error.message or (
        "stopped sending data for 1 s" in error.message
    )
    assert elapsed < 15.0  # the window is 1 s; the deadline, 60 s


@pytest.mark.timeout(30)
def test_steady_download_above_the_low_speed_limit_succeeds(
    server: HttpTestServer, session: ImageSession
) -> None:
    # 1 KiB every 0.1 s for about 2.4 s, through a limit of 256 bytes/s over 3 s: only three
    # whole seconds without a single chunk (a starved server thread) could trip it.
    body = BODY + bytes(22 * KIB)
    settings = FAST.replace(
        read_timeout_s=5.0, total_timeout_s=60.0, low_speed_bytes_per_s=256, low_speed_window_s=3.0
    )
    url = server.route("/a", trickle(body, delay_s=0.1, chunk_size=KIB))
    got = download(url, settings, session)
    assert got.data == body


@pytest.mark.timeout(10)
def test_stall_after_headers_still_ends_by_the_read_timeout(
    server: HttpTestServer, session: ImageSession
) -> None:
    settings = FAST.replace(
        read_timeout_s=0.5, total_timeout_s=60.0, low_speed_bytes_per_s=KIB, low_speed_window_s=2.0
    )
    url = server.route("/a", stall())
    with pytest.raises(ImageError) as caught:
        download(url, settings, session)
    assert caught.value.code == ErrorCode.TIMEOUT
    assert "stopped sending data for 0.5 s" in caught.value.message


def test_low_speed_guard_counts_a_sliding_window() -> None:
    """Exact bookkeeping, on made-up clock readings: 1000 bytes/s is too slow for 1024."""
    guard = fetch._LowSpeedGuard(1024, 30.0, started=100.0)
    assert guard.seconds_left(100.0) == pytest.approx(30.0)
    received = 0
    for second in range(1, 30):
        received += 1000
        guard.count(received, now=100.0 + second)
    assert guard.seconds_left(129.5) == pytest.approx(0.5)  # 29 000 bytes < 30 720
    assert guard.seconds_left(130.0) <= 0
    assert guard.received_in_window(130.0) == 29_000
    error = guard.error("cdn.example", now=130.0)
    assert (error.code, error.transient) == (ErrorCode.TIMEOUT, True)
    assert error.message == (
        "The server cdn.example sent only 28.3 KiB in the last 30 s (less than 1 KiB/s), "
        "so the download was stopped."
    )
    assert guard.error("cdn.example", now=200.0).message == (
        "The server cdn.example stopped sending data for 30 s."
    )


def test_low_speed_guard_lets_a_download_at_the_limit_go_on() -> None:
    guard = fetch._LowSpeedGuard(1024, 30.0, started=0.0)
    received = 0
    for second in range(1, 120):
        received += 1100
        guard.count(received, now=float(second))
        assert guard.seconds_left(float(second)) > 0, second


def test_low_speed_limit_of_zero_is_off() -> None:
    guard = fetch._LowSpeedGuard(0, 30.0, started=0.0)
    assert guard.seconds_left(1000.0) == float("inf")


# --- credentials in URLs -------------------------------------------------------------------

SECRET = "s3cret-Pa55"


def assert_no_secret(error: ImageError, caplog: pytest.LogCaptureFixture) -> None:
    assert SECRET not in error.message
    assert SECRET not in str(error)
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def with_userinfo(url: str) -> str:
    return url.replace("http://", f"http://shop:{SECRET}@", 1)


def test_no_password_when_the_port_refuses(
    session: ImageSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = fail(with_userinfo(f"http://127.0.0.1:{port}/a.jpg"), session)
    assert error.code == ErrorCode.CONNECTION
    assert_no_secret(error, caplog)


def test_no_password_on_a_404(
    server: HttpTestServer, session: ImageSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    error = fail(with_userinfo(server.url("/missing.jpg")), session)
    assert error.code == "http_404"
    assert_no_secret(error, caplog)


def test_no_password_in_a_redirect_loop(
    server: HttpTestServer, session: ImageSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.route("/a", redirect("/b"))
    server.route("/b", redirect("/a"))
    error = fail(with_userinfo(server.url("/a")), session)
    assert error.code == ErrorCode.TOO_MANY_REDIRECTS
    assert "http://***@127.0.0.1:" in error.message  # still says where it went
    assert_no_secret(error, caplog)


def test_no_password_in_the_logs_of_a_redirected_download(
    server: HttpTestServer, session: ImageSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.route("/a", redirect("/b"))
    server.route("/b", respond(BODY))
    assert download(with_userinfo(server.url("/a")), FAST, session).data == BODY
    assert server.requests[0].headers["Authorization"].startswith("Basic ")  # still sent
    assert any("Redirect" in record.getMessage() for record in caplog.records)
    assert all(SECRET not in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "location", [f"ftp://shop:{SECRET}@127.0.0.1/a.jpg", f"javascript://shop:{SECRET}@x/"]
)
def test_no_password_in_a_redirect_to_another_scheme(
    server: HttpTestServer,
    session: ImageSession,
    caplog: pytest.LogCaptureFixture,
    location: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    error = fail(server.route("/a", redirect(location)), session)
    assert error.code == ErrorCode.INVALID_URL
    assert_no_secret(error, caplog)


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://shop:{SECRET}@cdn.example/a.jpg",
        f"http://shop:{SECRET}@exa mple.com/a.jpg",
        f"http://shop:{SECRET}@a..b/a.jpg",
        f"http://shop:{SECRET}@127.0.0.1:99999/a.jpg",
        f"http://shop:{SECRET}@[::1/a.jpg",
    ],
)
def test_no_password_in_an_invalid_address(
    session: ImageSession, caplog: pytest.LogCaptureFixture, url: str
) -> None:
    caplog.set_level(logging.DEBUG)
    error = fail(url, session)
    assert error.code == ErrorCode.INVALID_URL
    assert_no_secret(error, caplog)


def test_no_password_when_private_addresses_are_blocked(
    server: HttpTestServer, session: ImageSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = with_userinfo(server.route("/a", respond(BODY)))
    error = fail(url, session, FAST.replace(block_private_addresses=True))
    assert error.code == ErrorCode.INVALID_URL
    assert_no_secret(error, caplog)
