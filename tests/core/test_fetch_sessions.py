"""A worker's session keeps its connection and its environment across images.

A second run asks for every image conditionally; each "304 Not Modified" must leave the
connection open for the next image, or every unchanged image pays a new TCP connection.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgdesk.core.errors import ErrorCode, ImageError
from imgdesk.core.fetch import Validators, download, new_session
from imgdesk.core.http_session import ImageSession
from imgdesk.core.settings import Settings
from tests.httpservers import (
    Exchange,
    HttpTestServer,
    RouteHandler,
    delayed,
    respond,
    running_server,
)
from tests.tls import loopback_certificate, server_context

pytestmark = pytest.mark.timeout(30)

SETTINGS = Settings(connect_timeout_s=5.0, read_timeout_s=5.0, total_timeout_s=10.0)
BODY = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 64
ETAG = '"v1"'
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with running_server() as running:
        yield running


@pytest.fixture
def session() -> Iterator[ImageSession]:
    with new_session(SETTINGS) as created:
        yield created


def _with_etag(body: bytes) -> RouteHandler:
    """200 with an ETag, or 304 when the client already has that version."""

    def handler(exchange: Exchange) -> None:
        if exchange.headers.get("If-None-Match") == ETAG:
            exchange.reply(304, b"", {"ETag": ETAG})
        else:
            exchange.reply(200, body, {"ETag": ETAG, "Content-Type": "image/jpeg"})

    return handler


def test_unchanged_images_keep_one_connection(
    server: HttpTestServer, session: ImageSession
) -> None:
    urls = [server.route(f"/{index}.jpg", _with_etag(BODY)) for index in range(10)]
    for url in urls:
        assert download(url, SETTINGS, session).data == BODY
    for url in urls:
        assert download(url, SETTINGS, session, Validators(ETAG, None)).not_modified
    assert server.connections == 1


def test_images_go_through_the_proxy_the_environment_named_at_the_first_request(
    server: HttpTestServer, session: ImageSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment is read once per origin, not on every image (it cost 0.1 ms each)."""
    with running_server() as proxy:
        for name in PROXY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        url = server.route("/a.jpg", respond(b"direct"))
        proxy.route("/a.jpg", respond(BODY))
        assert download(url, SETTINGS, session).data == BODY
        monkeypatch.delenv("HTTP_PROXY")
        assert download(url, SETTINGS, session).data == BODY  # still the same session's proxy
        assert proxy.hits("/a.jpg") == 2 and server.hits("/a.jpg") == 0
        with new_session(SETTINGS) as fresh:  # a new session reads the environment again
            assert download(url, SETTINGS, fresh).data == b"direct"


def test_a_cookie_set_on_a_redirect_hop_goes_with_the_next_hop(
    server: HttpTestServer, session: ImageSession
) -> None:
    def set_cookie_and_redirect(exchange: Exchange) -> None:
        exchange.reply(302, b"", {"Location": "/image.jpg", "Set-Cookie": "gate=open; Path=/"})

    def needs_the_cookie(exchange: Exchange) -> None:
        if exchange.headers.get("Cookie") == "gate=open":
            exchange.reply(200, BODY, {"Content-Type": "image/jpeg"})
        else:
            exchange.reply(403, b"no cookie")

    url = server.route("/gate", set_cookie_and_redirect)
    server.route("/image.jpg", needs_the_cookie)
    assert download(url, SETTINGS, session).data == BODY


def test_the_headers_imgdesk_sends_and_the_netrc_login(
    server: HttpTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login shop password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    url = server.route("/a.jpg", respond(BODY))
    with new_session(SETTINGS.replace(user_agent="imgdesk-test/1")) as fresh:
        assert download(url, SETTINGS, fresh).data == BODY
    sent = server.requests[-1].headers
    assert sent["User-Agent"] == "imgdesk-test/1"
    assert sent["Accept-Encoding"] == "identity"
    assert sent["Authorization"] == "Basic " + base64.b64encode(b"shop:s3cret").decode()


def test_a_url_with_spaces_and_accents_is_sent_percent_encoded(
    server: HttpTestServer, session: ImageSession
) -> None:
    paths: list[str] = []

    def record_path(exchange: Exchange) -> None:
        paths.append(exchange.path)
        exchange.reply(200, BODY, {"Content-Type": "image/jpeg"})

    server.route("/photos/caf%C3%A9%20cr%C3%A8me.jpg", record_path)
    assert download(server.url("/photos/café crème.jpg?v=1"), SETTINGS, session).data == BODY
    assert paths == ["/photos/caf%C3%A9%20cr%C3%A8me.jpg?v=1"]


def test_a_server_slower_than_the_connect_timeout_but_within_the_read_timeout_is_waited_for(
    server: HttpTestServer,
) -> None:
    """The connect timeout bounds the connection only, not the wait for the answer."""
    settings = Settings(connect_timeout_s=0.5, read_timeout_s=10.0, total_timeout_s=20.0)
    url = server.route("/slow.jpg", delayed(1.5, respond(BODY)))
    with new_session(settings) as fresh:
        assert download(url, settings, fresh).data == BODY


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[HttpTestServer, Path]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate, and that certificate."""
    cert, key = loopback_certificate(tmp_path)
    with running_server(server_context(cert, key)) as running:
        yield running, cert


def test_https_is_verified_against_the_ca_bundle_the_environment_names(
    https_server: tuple[HttpTestServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert = https_server
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    url = server.route("/a.jpg", respond(BODY))
    assert url.startswith("https://")
    with new_session(SETTINGS) as fresh:
        assert download(url, SETTINGS, fresh).data == BODY


def test_an_https_server_no_bundle_vouches_for_is_refused_in_one_sentence(
    https_server: tuple[HttpTestServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = https_server
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    url = server.route("/a.jpg", respond(BODY))
    with new_session(SETTINGS) as fresh, pytest.raises(ImageError) as raised:
        download(url, SETTINGS, fresh)
    assert raised.value.code == ErrorCode.CONNECTION
    assert raised.value.message.startswith("The secure connection to 127.0.0.1 failed (")
    assert "certificate verify failed" in raised.value.message
    assert server.hits("/a.jpg") == 0
