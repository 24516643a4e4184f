"""How a body is read: many reads into one body, decoded only when it is content-coded.

An identity body (what imgdesk asks for) is read straight from the connection; a body with a
content coding goes through urllib3's decoder, whatever the header's spelling.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator

import pytest

from imgdesk.core import fetch
from imgdesk.core.fetch import download, new_session
from imgdesk.core.http_session import ImageSession
from imgdesk.core.settings import Settings
from tests.httpservers import HttpTestServer, chunked, respond, running_server

pytestmark = pytest.mark.timeout(30)

MIB = 1024 * 1024
SETTINGS = Settings(connect_timeout_s=5.0, read_timeout_s=5.0, total_timeout_s=20.0)
# Random bytes behind a JPEG's magic: no two reads look alike, so a lost or doubled read shows.
BIG_BODY = b"\xff\xd8\xff\xe0" + os.urandom(5 * MIB + 12345)


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with running_server() as running:
        yield running


@pytest.fixture
def session() -> Iterator[ImageSession]:
    with new_session(SETTINGS) as created:
        yield created


def _gzip(body: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


def test_a_body_of_many_reads_arrives_whole(server: HttpTestServer, session: ImageSession) -> None:
    assert len(BIG_BODY) > 20 * fetch._CHUNK_SIZE
    seen: list[tuple[int, int | None]] = []
    url = server.route("/big.jpg", respond(BIG_BODY, content_type="image/jpeg"))
    got = download(url, SETTINGS, session, on_progress=lambda n, of: seen.append((n, of)))
    assert got.data == BIG_BODY
    assert len(seen) > 1 and seen[-1] == (len(BIG_BODY), len(BIG_BODY))


def test_a_chunked_body_of_many_reads_arrives_whole(
    server: HttpTestServer, session: ImageSession
) -> None:
    pieces = [BIG_BODY[start : start + 300_000] for start in range(0, len(BIG_BODY), 300_000)]
    url = server.route("/big.jpg", chunked(pieces))
    assert download(url, SETTINGS, session).data == BIG_BODY


@pytest.mark.parametrize("coding", ["gzip", "GZIP", "x-gzip"])
def test_a_content_coded_body_is_decoded_whatever_the_spelling(
    server: HttpTestServer, session: ImageSession, coding: str
) -> None:
    url = server.route("/a.jpg", respond(_gzip(BIG_BODY), headers={"Content-Encoding": coding}))
    assert download(url, SETTINGS, session).data == BIG_BODY


@pytest.mark.parametrize("coding", ["identity", "Identity", ""])
def test_an_identity_body_is_kept_as_sent(
    server: HttpTestServer, session: ImageSession, coding: str
) -> None:
    # Bytes that look gzip-compressed stay as they are when the server names no coding.
    body = _gzip(BIG_BODY)
    url = server.route("/a.bin", respond(body, headers={"Content-Encoding": coding}))
    assert download(url, SETTINGS, session).data == body
