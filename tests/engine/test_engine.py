"""The engine end to end: real server, real database, real threads."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from pytestqt.qtbot import QtBot

from imgdesk.core.db import db
from imgdesk.core.output import OutputSettings
from imgdesk.core.repository import ImageInfo, Repository
from imgdesk.core.storage import request_folder
from imgdesk.engine import engine as engine_module
from imgdesk.engine import writer as writer_module
from imgdesk.engine.engine import Engine, ImageEvent
from tests import images
from tests.engine.conftest import FAST, create_request
from tests.httpservers import (
    Exchange,
    Gate,
    HttpTestServer,
    RouteHandler,
    delayed,
    gated,
    gzip_zeros,
    redirect,
    respond,
    sequence,
    stall,
    trickle,
    truncated,
)

JPEG = images.make_jpeg(320, 240, "photo", 92)
PNG = images.make_png(200, 100, "RGBA")

EngineFactory = Callable[..., Engine]


def run(qtbot: QtBot, engine: Engine, request_id: str, timeout: int = 20_000) -> str:
    """Start the request and wait until the engine says it finished; returns its status."""
    with qtbot.waitSignal(
        engine.request_finished,
        timeout=timeout,
        check_params_cb=lambda rid, _status: rid == request_id,
    ) as blocker:
        engine.start_request(request_id)
    status: str = blocker.args[1]
    return status


def by_url(repo: Repository, request_id: str) -> dict[str, ImageInfo]:
    return {image.url: image for image in repo.list_images(request_id)}


def part_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def test_every_image_is_fetched_compressed_stored_and_recorded(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    data_dir: Path,
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG, content_type="image/jpeg"))
    b = http_server.route("/b.png", respond(PNG, content_type="image/png"))
    c = http_server.route("/c.jpg", respond(JPEG, content_type="image/jpeg"))
    request_id = create_request(repo, [("1", "Blue Shirt", [a, b]), ("2", "Mug", [c])])
    engine = make_engine()
    events: list[ImageEvent] = []
    engine.image_finished.connect(events.append)

    assert run(qtbot, engine, request_id) == "completed"

    request = repo.get_request(request_id)
    assert request is not None
    assert (request.status, request.done, request.failed, request.total) == ("completed", 3, 0, 3)
    assert request.started_at is not None and request.finished_at is not None
    stored = by_url(repo, request_id)
    for url, size in ((a, (320, 240)), (b, (200, 100)), (c, (320, 240))):
        image = stored[url]
        assert image.status == "done"
        assert image.attempts == 1
        assert (image.width, image.height) == size
        assert image.input_bytes and image.output_bytes
        assert image.download_ms is not None and image.compress_ms is not None
        assert image.output_path is not None and image.output_url is not None
        path = Path(image.output_path)
        assert path.parent == request_folder(data_dir, request_id)
        assert image.output_url == path.resolve().as_uri()
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.size == size
    # The file name tells which product and position it is.
    assert Path(stored[b].output_path or "").name == "0001_blue-shirt_2.jpg"
    assert sorted((e.serial, e.position, e.status) for e in events) == [
        ("1", 1, "done"),
        ("1", 2, "done"),
        ("2", 1, "done"),
    ]
    assert part_files(data_dir) == []


def test_public_base_url_shapes_the_output_url(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    request_id = create_request(repo, [("1", "Shirt", [a])])
    engine = make_engine(FAST.replace(public_base_url="https://cdn.shop.example/img/"))
    assert run(qtbot, engine, request_id) == "completed"
    image = repo.list_images(request_id)[0]
    assert image.output_url == f"https://cdn.shop.example/img/{request_id}/0001_shirt_1.jpg"


def test_each_bad_input_gets_its_code_and_the_others_still_succeed(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    data_dir: Path,
) -> None:
    """Every error code of SPEC 2, produced against a real server, in one request."""
    serve = http_server.route
    small_limit = 64 * 1024
    big = images.make_jpeg(600, 600, "photo", 95)
    assert len(big) > small_limit
    cases = {
        "http_404": serve("/missing.jpg", respond(b"nope", 404)),
        "http_403": serve("/forbidden.jpg", respond(b"no", 403)),
        "too_many_redirects": serve("/loop.jpg", redirect("/loop.jpg")),
        "invalid_url": serve("/to-file.jpg", redirect("file:///etc/passwd")),
        "too_large": serve("/big.jpg", respond(big, content_type="image/jpeg")),
        "too_large ": serve(
            "/big-unannounced.jpg", respond(big, content_type="image/jpeg", content_length=False)
        ),
        "too_large  ": serve(
            "/bomb.gz", respond(gzip_zeros(20_000_000), headers={"Content-Encoding": "gzip"})
        ),
        "connection": serve("/reset.jpg", truncated(JPEG[:500], announced=len(JPEG), reset=True)),
        "timeout": serve("/trickle.jpg", trickle(JPEG, delay_s=0.05, chunk_size=10)),
        "timeout ": serve("/stall.jpg", stall(30)),
        "not_an_image": serve(
            "/page.jpg", respond(b"<!doctype html><html>hi</html>", content_type="image/jpeg")
        ),
        "empty": serve("/empty.jpg", respond(b"", content_type="image/jpeg")),
        "unsupported_type": serve("/anim.gif", respond(images.make_gif())),
        "unsupported_type ": serve("/logo.svg", respond(images.make_svg())),
        "decompression_bomb": serve("/bomb.png", respond(images.make_bomb_png())),
        "bad_image": serve("/cut.jpg", respond(images.truncated_jpeg())),
        "http_429": serve("/slow-down.jpg", respond(b"", 429, {"Retry-After": "3600"})),
    }
    good = [serve(f"/good{i}.jpg", respond(JPEG)) for i in range(4)]
    rows = [(str(i + 1), f"Bad {i}", [url]) for i, url in enumerate(cases.values())]
    rows.append(("100", "Good", good))
    request_id = create_request(repo, rows)
    settings = FAST.replace(
        max_download_bytes=small_limit, total_timeout_s=1.5, read_timeout_s=1.0, max_retries=0
    )
    engine = make_engine(settings)

    assert run(qtbot, engine, request_id, timeout=30_000) == "failed"

    stored = by_url(repo, request_id)
    for code, url in cases.items():
        image = stored[url]
        assert (image.status, image.error_code) == ("failed", code.strip()), url
        assert image.error and image.error.endswith("."), image.error
        assert image.output_path is None
    for url in good:
        assert stored[url].status == "done"
    request = repo.get_request(request_id)
    assert request is not None
    assert (request.done, request.failed) == (len(good), len(cases))
    assert request.error == f"{len(cases)} of {len(cases) + len(good)} images failed."
    folder = request_folder(data_dir, request_id)
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{len(cases) + 1:04d}_good_{n}.jpg" for n in range(1, 5)
    ]
    assert part_files(data_dir) == []


def test_unwritable_output_folder_fails_the_request_once_before_any_download(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    data_dir: Path,
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    request_id = create_request(repo, [("1", "Shirt", [a]), ("2", "Hat", [a + "?2"])])
    (data_dir / "images").mkdir(parents=True)
    request_folder(data_dir, request_id).write_text("a file where the folder should be")
    engine = make_engine()

    assert run(qtbot, engine, request_id) == "failed"

    assert http_server.total_hits == 0
    request = repo.get_request(request_id)
    assert request is not None and request.error
    assert request_id in request.error or "folder" in request.error
    assert {(i.status, i.error_code) for i in repo.list_images(request_id)} == {
        ("failed", "storage")
    }


def test_transient_errors_are_retried_with_backoff_and_permanent_ones_are_not(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    flaky = http_server.route(
        "/flaky.jpg", sequence(respond(b"", 503), respond(b"", 500), respond(JPEG))
    )
    limited = http_server.route(
        "/limited.jpg", sequence(respond(b"", 429, {"Retry-After": "0"}), respond(JPEG))
    )
    down = http_server.route("/down.jpg", respond(b"", 502))
    gone = http_server.route("/gone.jpg", respond(b"", 404))
    request_id = create_request(
        repo, [("1", "A", [flaky]), ("2", "B", [limited]), ("3", "C", [down]), ("4", "D", [gone])]
    )
    engine = make_engine()

    assert run(qtbot, engine, request_id) == "failed"

    stored = by_url(repo, request_id)
    assert (stored[flaky].status, stored[flaky].attempts) == ("done", 3)
    assert (stored[limited].status, stored[limited].attempts) == ("done", 2)
    # 3 retries after the first try: 4 attempts in all, then it fails for good.
    assert (stored[down].status, stored[down].error_code, stored[down].attempts) == (
        "failed",
        "http_502",
        4,
    )
    assert http_server.hits("/down.jpg") == 4
    assert (stored[gone].status, stored[gone].attempts) == ("failed", 1)
    assert http_server.hits("/gone.jpg") == 1


def test_the_same_url_in_one_request_is_fetched_once(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    shared = http_server.route("/shared.jpg", respond(JPEG))
    other = http_server.route("/other.jpg", respond(JPEG))
    request_id = create_request(
        repo, [("1", "A", [shared, other]), ("2", "B", [shared]), ("3", "C", [other, shared])]
    )
    engine = make_engine()
    events: list[ImageEvent] = []
    engine.image_finished.connect(events.append)

    assert run(qtbot, engine, request_id) == "completed"

    assert http_server.hits("/shared.jpg") == 1
    assert http_server.hits("/other.jpg") == 1
    images_ = repo.list_images(request_id)
    assert all(i.status == "done" for i in images_)
    assert len({i.output_url for i in images_ if i.url == shared}) == 1
    assert len(events) == 5


def test_default_concurrency_of_five_is_visible_at_the_server(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    urls = [http_server.route(f"/p{i}.jpg", delayed(0.2, respond(JPEG))) for i in range(20)]
    request_id = create_request(repo, [(str(i), f"P{i}", [u]) for i, u in enumerate(urls)])
    engine = make_engine()
    assert run(qtbot, engine, request_id) == "completed"
    assert http_server.max_in_flight == 5


def test_per_host_limit_caps_one_host(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    urls = [http_server.route(f"/p{i}.jpg", delayed(0.15, respond(JPEG))) for i in range(10)]
    request_id = create_request(repo, [(str(i), f"P{i}", [u]) for i, u in enumerate(urls)])
    engine = make_engine(FAST.replace(per_host_concurrency=2))
    assert run(qtbot, engine, request_id) == "completed"
    assert http_server.max_in_flight == 2


def test_retry_refetches_only_the_failed_images(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    fine = http_server.route("/fine.jpg", respond(JPEG))
    broken = http_server.route("/broken.jpg", sequence(respond(b"", 404), respond(JPEG)))
    request_id = create_request(repo, [("1", "A", [fine, broken])])
    engine = make_engine()
    assert run(qtbot, engine, request_id) == "failed"

    with qtbot.waitSignal(engine.request_finished, timeout=10_000) as blocker:
        assert engine.retry(request_id) == 1
    assert blocker.args == [request_id, "completed"]

    assert http_server.hits("/fine.jpg") == 1
    assert http_server.hits("/broken.jpg") == 2
    request = repo.get_request(request_id)
    assert request is not None and (request.status, request.error) == ("completed", None)


def test_a_retry_takes_back_the_images_a_killed_run_left_downloading(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    fine = http_server.route("/fine.jpg", respond(JPEG))
    broken = http_server.route("/broken.jpg", sequence(respond(b"", 404), respond(JPEG)))
    left = http_server.route("/left.jpg", respond(JPEG))
    request_id = create_request(repo, [("1", "A", [fine, broken]), ("2", "B", [left])])
    engine = make_engine()
    assert run(qtbot, engine, request_id) == "failed"
    # A process killed mid-download leaves its image "downloading" (`imgdesk retry` then).
    db.execute_sql(
        "UPDATE image SET status = 'downloading', output_path = NULL WHERE url = ?", [left]
    )
    db.execute_sql("UPDATE request SET status = 'processing' WHERE id = ?", [request_id])

    with qtbot.waitSignal(engine.request_finished, timeout=10_000) as blocker:
        assert engine.retry(request_id) == 1  # the failed one; the interrupted one is pending
    assert blocker.args == [request_id, "completed"]
    assert http_server.hits("/left.jpg") == 2
    assert all(image.status == "done" for image in repo.list_images(request_id))


def test_cancel_fails_unfinished_images_and_a_later_retry_finishes_them(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    urls = [http_server.route(f"/p{i}.jpg", delayed(0.3, respond(JPEG))) for i in range(12)]
    request_id = create_request(repo, [(str(i), f"P{i}", [u]) for i, u in enumerate(urls)])
    engine = make_engine()
    engine.start_request(request_id)
    qtbot.waitUntil(lambda: http_server.total_hits >= 5, timeout=5000)

    with qtbot.waitSignal(engine.request_finished, timeout=5000) as blocker:
        engine.cancel(request_id)
    assert blocker.args == [request_id, "failed"]
    stored = repo.list_images(request_id)
    cancelled = [i for i in stored if i.error_code == "cancelled"]
    assert len(cancelled) >= 7
    assert all(i.status == "failed" for i in cancelled)

    # The cancelled running downloads come back and are ignored; nothing else starts.
    qtbot.wait(500)
    hits_after_cancel = http_server.total_hits
    assert hits_after_cancel < 12
    assert not engine.is_busy(request_id)

    with qtbot.waitSignal(engine.request_finished, timeout=10_000) as blocker:
        engine.retry(request_id)
    assert blocker.args == [request_id, "completed"]
    assert all(i.status == "done" for i in repo.list_images(request_id))


def test_pause_stops_new_work_and_resume_finishes_it(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    urls = [http_server.route(f"/p{i}.jpg", respond(JPEG)) for i in range(6)]
    request_id = create_request(repo, [(str(i), f"P{i}", [u]) for i, u in enumerate(urls)])
    engine = make_engine()
    with qtbot.waitSignal(engine.paused_changed):
        engine.pause()
    engine.start_request(request_id)
    qtbot.wait(300)
    assert http_server.total_hits == 0
    request = repo.get_request(request_id)
    assert request is not None and request.status == "pending"

    with qtbot.waitSignal(engine.request_finished, timeout=10_000):
        engine.resume()
    assert http_server.total_hits == 6


def test_interrupted_images_resume_and_finished_ones_are_never_fetched_again(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    urls = [http_server.route(f"/p{i}.jpg", respond(JPEG)) for i in range(4)]
    request_id = create_request(repo, [(str(i), f"P{i}", [u]) for i, u in enumerate(urls)])
    engine = make_engine()
    assert run(qtbot, engine, request_id) == "completed"
    first, second, *_ = repo.list_images(request_id)
    # As a crash would leave it: one image in flight, one never started.
    repo.update_images({first.id: {"status": "downloading"}, second.id: {"status": "pending"}})
    repo.set_request_status(request_id, "processing")
    http_server.reset_counters()

    engine = make_engine()
    with qtbot.waitSignal(engine.request_finished, timeout=10_000) as blocker:
        assert engine.resume_interrupted() == [request_id]
    assert blocker.args == [request_id, "completed"]
    assert http_server.total_hits == 2
    assert http_server.hits("/p2.jpg") == 0 and http_server.hits("/p3.jpg") == 0


def test_delete_forgets_the_request_and_removes_its_files(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    data_dir: Path,
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    request_id = create_request(repo, [("1", "A", [a])])
    engine = make_engine()
    assert run(qtbot, engine, request_id) == "completed"
    folder = request_folder(data_dir, request_id)
    assert folder.is_dir()

    engine.delete(request_id, remove_files=True)

    assert repo.get_request(request_id) is None
    assert repo.list_images(request_id) == []
    qtbot.waitUntil(lambda: not folder.exists(), timeout=5000)


def test_each_request_is_written_with_its_own_output_settings(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    b = http_server.route("/b.jpg", respond(JPEG))
    # The engine's settings say quality 50 for new requests; the second request says 10.
    engine = make_engine(FAST.replace(output=OutputSettings(quality=50)))
    first = create_request(repo, [("1", "A", [a])])
    assert run(qtbot, engine, first) == "completed"
    second = create_request(repo, [("1", "A", [b])], OutputSettings(quality=10))
    assert run(qtbot, engine, second) == "completed"
    size_q50 = repo.list_images(first)[0].output_bytes
    size_q10 = repo.list_images(second)[0].output_bytes
    assert size_q50 and size_q10 and size_q10 < size_q50


def test_a_database_held_by_another_program_is_waited_for(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    data_dir: Path,
) -> None:
    urls = [http_server.route(f"/p{i}.jpg", delayed(0.05, respond(JPEG))) for i in range(15)]
    request_id = create_request(repo, [(str(i), f"P{i}", [u]) for i, u in enumerate(urls)])
    engine = make_engine()
    finished: list[str] = []
    engine.request_finished.connect(lambda rid, status: finished.append(status))
    other = sqlite3.connect(data_dir / "imgdesk.sqlite3", timeout=10, isolation_level=None)
    try:
        engine.start_request(request_id)
        qtbot.waitUntil(lambda: http_server.total_hits >= 3, timeout=5000)
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        qtbot.wait(3000)
        assert not finished  # nothing could be stored meanwhile
        other.execute("COMMIT")
    finally:
        other.close()
    qtbot.waitUntil(lambda: finished == ["completed"], timeout=15_000)
    assert {i.status for i in repo.list_images(request_id)} == {"done"}


def test_power_safe_writes_switch_sqlite_to_full_sync(
    repo: Repository, make_engine: EngineFactory
) -> None:
    engine = make_engine()
    assert db.pragma("synchronous") == 1  # NORMAL
    engine.set_settings(FAST.replace(power_safe_writes=True))
    assert db.pragma("synchronous") == 2  # FULL


def validated(body: bytes, etag: str | None = None, modified: str | None = None) -> RouteHandler:
    """Serve ``body`` with validators, answering 304 to a matching conditional request."""

    def handler(exchange: Exchange) -> None:
        headers = {"Content-Type": "image/jpeg"}
        if etag:
            headers["ETag"] = etag
        if modified:
            headers["Last-Modified"] = modified
        if (etag and exchange.headers.get("If-None-Match") == etag) or (
            modified and exchange.headers.get("If-Modified-Since") == modified
        ):
            exchange.reply(304, b"", headers)
        else:
            exchange.reply(200, body, headers)

    return handler


def test_a_second_run_of_an_unchanged_csv_reuses_the_stored_outputs(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
) -> None:
    other = images.make_jpeg(320, 240, "quadrants", 92)
    tagged = http_server.route("/tagged.jpg", validated(JPEG, etag='"v1"'))
    dated = http_server.route(
        "/dated.jpg", validated(PNG, modified="Tue, 01 Sep 2026 10:00:00 GMT")
    )
    plain = http_server.route("/plain.jpg", respond(JPEG))
    changing = http_server.route("/changing.jpg", validated(JPEG, etag='"a"'))
    rows = [("1", "A", [tagged, dated]), ("2", "B", [plain, changing])]
    engine = make_engine()
    first = create_request(repo, rows)
    assert run(qtbot, engine, first) == "completed"
    http_server.route("/changing.jpg", validated(other, etag='"b"'))
    http_server.reset_counters()

    second = create_request(repo, rows)
    assert run(qtbot, engine, second) == "completed"

    before = by_url(repo, first)
    after = by_url(repo, second)
    for url in (tagged, dated, plain):
        old, new = before[url], after[url]
        assert new.compress_ms == 0, url  # nothing decoded or encoded again
        assert (new.width, new.height, new.output_bytes) == (
            old.width,
            old.height,
            old.output_bytes,
        )
        assert new.output_path != old.output_path  # each request keeps its own file
        assert Path(new.output_path or "").read_bytes() == Path(old.output_path or "").read_bytes()
    assert after[tagged].http_status == 304 and after[dated].http_status == 304
    assert after[plain].http_status == 200  # no validators: fetched, but same bytes
    conditional = [r for r in http_server.requests if r.path == "/tagged.jpg"][0]
    assert conditional.headers.get("If-None-Match") == '"v1"'
    # The changed image is redone.
    assert after[changing].compress_ms is not None and after[changing].http_status == 200
    assert (
        Path(after[changing].output_path or "").read_bytes()
        != Path(before[changing].output_path or "").read_bytes()
    )


def test_changed_output_settings_or_a_deleted_output_mean_no_reuse(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
) -> None:
    tagged = http_server.route("/tagged.jpg", validated(JPEG, etag='"v1"'))
    rows = [("1", "A", [tagged])]
    engine = make_engine()
    first = create_request(repo, rows)
    assert run(qtbot, engine, first) == "completed"

    second = create_request(repo, rows, OutputSettings(quality=80))
    assert run(qtbot, engine, second) == "completed"
    assert by_url(repo, second)[tagged].http_status == 200  # not even asked conditionally

    Path(by_url(repo, first)[tagged].output_path or "").unlink()
    third = create_request(repo, rows)
    assert run(qtbot, engine, third) == "completed"
    image = by_url(repo, third)[tagged]
    assert image.http_status == 200 and Path(image.output_path or "").is_file()


def test_a_request_bigger_than_a_page_is_read_in_pages_and_finishes(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "FEED_PAGE_IMAGES", 7)
    monkeypatch.setattr(engine_module, "FEED_LOW_WATER", 3)
    shared = http_server.route("/shared.jpg", delayed(0.05, respond(JPEG)))
    urls = [http_server.route(f"/p{i}.jpg", respond(JPEG)) for i in range(40)]
    # The shared URL comes first and again in pages far behind: still fetched once.
    rows = [("0", "First", [shared])]
    rows += [(str(i + 1), f"P{i}", [url]) for i, url in enumerate(urls)]
    rows += [("41", "Again", [shared]), ("42", "Last", [urls[0], shared])]
    request_id = create_request(repo, rows)
    engine = make_engine()
    engine.pause()
    engine.start_request(request_id)
    # Paused: only the first page is read, and the request counts as busy until all is read.
    assert 0 < len(engine._scheduled) <= 7
    assert engine.is_busy(request_id)

    with qtbot.waitSignal(engine.request_finished, timeout=20_000) as blocker:
        engine.resume()
    assert blocker.args == [request_id, "completed"]
    images_ = repo.list_images(request_id)
    assert len(images_) == 44 and all(image.status == "done" for image in images_)
    assert http_server.hits("/shared.jpg") == 1
    assert all(http_server.hits(f"/p{i}.jpg") == 1 for i in range(40))
    assert not engine.is_busy()


def test_a_retry_while_running_reads_the_request_again_from_the_start(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "FEED_PAGE_IMAGES", 5)
    monkeypatch.setattr(engine_module, "FEED_LOW_WATER", 2)
    broken = http_server.route("/broken.jpg", sequence(respond(b"", 404), respond(JPEG)))
    slow = [http_server.route(f"/s{i}.jpg", delayed(0.1, respond(JPEG))) for i in range(30)]
    request_id = create_request(
        repo, [("0", "Broken", [broken])] + [(str(i + 1), f"S{i}", [u]) for i, u in enumerate(slow)]
    )
    engine = make_engine(FAST.replace(concurrency=2))
    engine.start_request(request_id)
    qtbot.waitUntil(lambda: by_url(repo, request_id)[broken].status == "failed", timeout=10_000)
    # The failed image lies behind the page cursor now; a retry must still pick it up.
    with qtbot.waitSignal(engine.request_finished, timeout=20_000) as blocker:
        assert engine.retry(request_id) == 1
    assert blocker.args == [request_id, "completed"]
    assert http_server.hits("/broken.jpg") == 2
    assert all(http_server.hits(f"/s{i}.jpg") == 1 for i in range(30))


def test_a_twin_read_while_its_done_is_still_buffered_is_not_fetched_again(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The flush timer never fires by itself here, so the shared URL's "done" is still in the
    # write buffer when its twin's page is read: the database alone would say "pending".
    monkeypatch.setattr(writer_module, "FLUSH_INTERVAL_MS", 600_000)
    monkeypatch.setattr(engine_module, "FEED_PAGE_IMAGES", 2)
    monkeypatch.setattr(engine_module, "FEED_LOW_WATER", 1)
    shared = http_server.route("/shared.jpg", respond(JPEG))
    other = http_server.route("/other.jpg", respond(JPEG))
    last = http_server.route("/last.jpg", respond(JPEG))
    # One worker: "shared" runs first, "other" waits in the queue, so the second page (with
    # the twin) is read only once "shared" has finished.
    request_id = create_request(
        repo, [("1", "First", [shared]), ("2", "Other", [other]), ("3", "Twin", [shared, last])]
    )
    engine = make_engine(FAST.replace(concurrency=1))
    events: list[ImageEvent] = []
    engine.image_finished.connect(events.append)

    assert run(qtbot, engine, request_id) == "completed"

    assert http_server.hits("/shared.jpg") == 1
    images_ = by_url(repo, request_id)
    assert all(image.status == "done" for image in repo.list_images(request_id))
    twin = [i for i in repo.list_images(request_id) if i.url == shared and i.serial == "3"][0]
    assert twin.output_path == images_[shared].output_path is not None
    assert twin.attempts == 0  # copied from its twin, not downloaded
    assert sorted(event.serial for event in events) == ["1", "2", "3", "3"]


def test_shutdown_stores_what_ended_during_its_wait_and_finishes_no_request(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pages of three: every job read is in flight, the rest of the request is still unread.
    monkeypatch.setattr(engine_module, "FEED_PAGE_IMAGES", 3)
    monkeypatch.setattr(engine_module, "FEED_LOW_WATER", 0)
    gate = Gate()
    urls = [http_server.route(f"/s{i}.jpg", gated(gate, respond(JPEG))) for i in range(12)]
    request_id = create_request(repo, [(str(i), f"S{i}", [u]) for i, u in enumerate(urls)])
    engine = make_engine(FAST.replace(concurrency=3, read_timeout_s=30, total_timeout_s=60))
    finished: list[object] = []
    engine.request_finished.connect(lambda *args: finished.append(args))
    engine.start_request(request_id)
    qtbot.waitUntil(lambda: http_server.in_flight == 3, timeout=10_000)
    # The three answers held at the gate go out while shutdown() waits for its workers.
    releaser = threading.Timer(0.3, gate.open)
    releaser.start()
    try:
        engine.shutdown(timeout_ms=30_000)
    finally:
        releaser.join()
    statuses = sorted(image.status for image in repo.list_images(request_id))
    assert statuses == ["done"] * 3 + ["pending"] * 9
    request = repo.get_request(request_id)
    assert request is not None and request.status not in ("completed", "failed")
    qtbot.wait(200)  # nothing queued later finishes it either
    assert finished == []
