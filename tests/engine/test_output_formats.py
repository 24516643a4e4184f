"""Output formats and sizes through the engine (SPEC 9): files, rows, events, retries, reuse.

Each request is written with the output settings it was recorded with, whatever the
engine's settings say by then; every check opens the real output file.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from pytestqt.qtbot import QtBot

from imgdesk.core.output import OutputSettings
from imgdesk.core.repository import Repository
from imgdesk.engine.engine import ImageEvent
from tests import images
from tests.engine.conftest import FAST, create_request
from tests.engine.test_engine import EngineFactory, by_url, run
from tests.httpservers import HttpTestServer, respond

PHOTO = images.make_jpeg(320, 240, "photo", 92, gps=True)
PILLOW_NAMES = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}


def magic_format(data: bytes) -> str:
    """The format named by a file's first bytes."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:12] == b"ftypavif":
        return "avif"
    return "unknown"


def opened(path: str | None, output_format: str) -> Image.Image:
    """The output file, checked to be its format by its bytes and decoded in full."""
    assert path is not None
    data = Path(path).read_bytes()
    assert magic_format(data) == output_format, path
    im = Image.open(io.BytesIO(data), formats=[PILLOW_NAMES[output_format]])
    im.load()
    return im


def test_a_request_is_written_in_its_own_format_and_size(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    a = http_server.route("/a.jpg", respond(PHOTO))
    webp = OutputSettings(format="webp", quality=60, max_width=100)
    # The engine's settings would make JPEG: the request's own settings win.
    engine = make_engine(FAST.replace(output=OutputSettings(format="jpeg")))
    events: list[ImageEvent] = []
    engine.image_finished.connect(events.append)
    request_id = create_request(repo, [("1", "Blue Shirt", [a]), ("2", "Same again", [a])], webp)

    assert run(qtbot, engine, request_id) == "completed"

    first, twin = repo.list_images(request_id)
    assert first.output_path is not None and first.output_path.endswith("_blue-shirt_1.webp")
    assert first.output_url is not None and first.output_url.endswith(".webp")
    im = opened(first.output_path, "webp")
    assert im.size == (first.width, first.height) == (100, 75)
    assert not im.getexif() and "exif" not in im.info  # the GPS position is gone
    for image in (first, twin):  # the twin shares the output, and says so too
        assert (image.output_format, image.note) == ("webp", None)
    assert sorted((e.serial, e.output_format, e.note) for e in events) == [
        ("1", "webp", None),
        ("2", "webp", None),
    ]


def test_kept_originals_and_outputs_over_the_target_are_noted(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    # A JPEG made at quality 20: re-encoding it at 95 would only make it bigger.
    small = images.make_jpeg(160, 120, "photo", 20, gps=True)
    kept_url = http_server.route("/kept.jpg", respond(small))
    big_url = http_server.route("/big.jpg", respond(PHOTO))
    engine = make_engine()
    events: list[ImageEvent] = []
    engine.image_finished.connect(events.append)
    kept_request = create_request(repo, [("1", "Kept", [kept_url])], OutputSettings(quality=95))
    over_request = create_request(repo, [("1", "Big", [big_url])], OutputSettings(target_size_kb=1))

    assert run(qtbot, engine, kept_request) == "completed"
    assert run(qtbot, engine, over_request) == "completed"

    [kept] = repo.list_images(kept_request)
    assert (kept.output_format, kept.note) == ("jpeg", "kept_original")
    im = opened(kept.output_path, "jpeg")
    assert im.size == (160, 120) and not im.getexif()  # the same picture, its metadata gone
    assert kept.output_bytes is not None and kept.output_bytes < len(small)
    [over] = repo.list_images(over_request)
    assert (over.output_format, over.note) == ("jpeg", "over_target")
    assert over.output_bytes is not None and over.output_bytes > 1024  # kept anyway, noted
    opened(over.output_path, "jpeg")
    assert sorted(event.note or "" for event in events) == ["kept_original", "over_target"]


def test_a_retry_uses_the_requests_own_output_settings(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    good = http_server.route("/good.jpg", respond(PHOTO))
    later = http_server.url("/later.jpg")  # 404 for now
    webp = OutputSettings(format="webp", max_height=60)
    engine = make_engine()
    request_id = create_request(repo, [("1", "Shirt", [good, later])], webp)
    assert run(qtbot, engine, request_id) == "failed"
    # Meanwhile the defaults for new requests changed to AVIF.
    avif = FAST.replace(output=OutputSettings(format="avif"))
    repo.save_settings(avif)
    engine.set_settings(avif)
    http_server.route("/later.jpg", respond(PHOTO))

    with qtbot.waitSignal(engine.request_finished, timeout=20_000) as finished:
        assert engine.retry(request_id) == 1
    assert finished.args == [request_id, "completed"]

    retried = by_url(repo, request_id)[later]
    assert retried.output_format == "webp"
    assert retried.output_path is not None and retried.output_path.endswith("_shirt_2.webp")
    assert opened(retried.output_path, "webp").size == (80, 60)
    assert [request.output for request in repo.list_requests()] == [webp]


def test_an_output_is_reused_only_under_the_same_output_settings(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    small = images.make_jpeg(160, 120, "photo", 20)
    url = http_server.route("/kept.jpg", respond(small))
    rows = [("1", "Kept", [url])]
    keep = OutputSettings(quality=95)
    engine = make_engine()
    first = create_request(repo, rows, keep)
    assert run(qtbot, engine, first) == "completed"

    again = create_request(repo, rows, keep)
    assert run(qtbot, engine, again) == "completed"
    other_format = create_request(repo, rows, keep.replace(format="webp"))
    assert run(qtbot, engine, other_format) == "completed"

    [original] = repo.list_images(first)
    [reused] = repo.list_images(again)
    # The same bytes under the same settings: the stored file is linked, not made again.
    assert Path(reused.output_path or "").samefile(original.output_path or "")
    assert (reused.output_format, reused.note) == ("jpeg", "kept_original")
    [remade] = repo.list_images(other_format)
    assert (remade.output_format, remade.note) == ("webp", None)
    opened(remade.output_path, "webp")
