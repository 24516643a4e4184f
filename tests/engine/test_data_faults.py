"""The data folder going wrong under a running engine: database and images deleted, logs."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from imgdesk.core.db import db
from imgdesk.core.logs import setup_logging, stop_logging
from imgdesk.core.paths import database_path
from imgdesk.core.repository import Repository
from imgdesk.core.storage import request_folder
from imgdesk.engine.engine import Engine, ImageEvent
from tests import images
from tests.engine.conftest import FAST, create_request
from tests.httpservers import Exchange, HttpTestServer, RouteHandler, respond, sequence

JPEG = images.make_jpeg(320, 240, "photo", 92)

EngineFactory = Callable[..., Engine]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set to let the gated routes answer (always set at the end, so the server can stop)."""
    event = threading.Event()
    yield event
    event.set()


def gated(release: threading.Event) -> RouteHandler:
    """Answer with a JPEG only once ``release`` is set."""

    def handler(exchange: Exchange) -> None:
        if release.wait(30):
            respond(JPEG)(exchange)
        else:
            exchange.abort()

    return handler


def counted(request_id: str) -> tuple[int, int, int, int]:
    """(done, failed, done input bytes, output bytes), aggregated over the image rows."""
    row = db.execute_sql(
        "SELECT COALESCE(SUM(status = 'done'), 0), COALESCE(SUM(status = 'failed'), 0), "
        "COALESCE(SUM(CASE WHEN status = 'done' THEN input_bytes END), 0), "
        "COALESCE(SUM(output_bytes), 0) FROM image WHERE request_id = ?",
        (request_id,),
    ).fetchone()
    return tuple(row)  # type: ignore[return-value]


def shown(repo: Repository, request_id: str) -> tuple[int, int, int, int]:
    """The same figures as the request's counters say them."""
    info = repo.get_request(request_id)
    assert info is not None
    return (info.done, info.failed, info.input_bytes, info.output_bytes)


# -- the database deleted or replaced while processing ----------------------------------------


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_database_lost_mid_run_stops_the_engine_and_claims_nothing_more(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    data_dir: Path,
    tmp_path: Path,
    release: threading.Event,
    how: str,
) -> None:
    first = http_server.route("/first.jpg", respond(JPEG))
    held = [http_server.route(f"/held{n}.jpg", gated(release)) for n in range(3)]
    later = [http_server.route(f"/later{n}.jpg", respond(JPEG)) for n in range(20)]
    rows = [("1", "First", [first])]
    rows += [(str(n + 2), f"Held {n}", [url]) for n, url in enumerate(held)]
    rows += [(str(n + 10), f"Later {n}", [url]) for n, url in enumerate(later)]
    request_id = create_request(repo, rows)
    engine = make_engine(FAST.replace(concurrency=3))
    events: list[ImageEvent] = []
    lost: list[str] = []
    finished: list[tuple[str, str]] = []
    engine.image_finished.connect(events.append)
    engine.database_lost.connect(lost.append)
    engine.request_finished.connect(lambda rid, status: finished.append((rid, status)))

    engine.start_request(request_id)
    # "first" is stored; the three held images fill every worker.
    qtbot.waitUntil(lambda: len(events) == 1 and http_server.in_flight == 3, timeout=10_000)
    path = database_path(data_dir)
    replacement = None
    # The loss is seen at the next flush: of a stage change already buffered, or of results.
    with qtbot.waitSignal(engine.database_lost, timeout=10_000) as blocker:
        if how == "deleted":
            path.unlink()
        else:
            other = tmp_path / "other.sqlite3"
            with sqlite3.connect(other) as connection:
                connection.execute("CREATE TABLE note (text TEXT)")
            connection.close()
            os.replace(other, path)
            replacement = (path.read_bytes(), path.stat().st_mtime_ns)
        release.set()
    qtbot.waitUntil(lambda: engine.active_count == 0, timeout=10_000)
    engine.flush()  # another flush says nothing new

    assert blocker.args == [
        f"The database {path} was deleted or replaced while imgdesk was running, so nothing "
        "more can be stored. Restore it, or start again with another --data-dir."
    ]
    assert lost == blocker.args  # once
    assert [event.url for event in events] == [first]  # nothing claimed after the loss
    assert finished == []  # the request is not said to be completed
    assert not engine.is_busy()
    # Nothing starts any more.
    assert engine.start_request(request_id) == 0
    assert engine.retry(request_id) == 0
    assert engine.active_count == 0 and not engine.is_busy()
    engine.shutdown()
    assert finished == [] and lost == blocker.args
    if replacement is not None:
        assert (path.read_bytes(), path.stat().st_mtime_ns) == replacement


# -- output files deleted: done images whose file vanished are done again -------------------


def test_a_deleted_images_folder_is_redone_at_the_next_start(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    data_dir: Path,
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    b = http_server.route("/b.jpg", respond(JPEG))
    # "a" twice: the twins share one file, and both come back.
    request_id = create_request(repo, [("1", "A", [a]), ("2", "B", [b]), ("3", "A again", [a])])
    engine = make_engine()
    with qtbot.waitSignal(engine.request_finished, timeout=20_000):
        engine.start_request(request_id)
    assert shown(repo, request_id)[:2] == (3, 0)

    shutil.rmtree(data_dir / "images")

    with qtbot.waitSignal(engine.request_finished, timeout=20_000) as blocker:
        assert engine.start_request(request_id) == 3
        assert shown(repo, request_id) == counted(request_id) == (0, 0, 0, 0)
    assert blocker.args == [request_id, "completed"]
    found = repo.list_images(request_id)
    assert all(image.status == "done" for image in found)
    assert all(image.output_path and Path(image.output_path).is_file() for image in found)
    assert http_server.hits("/a.jpg") == 2 and http_server.hits("/b.jpg") == 2
    assert shown(repo, request_id) == counted(request_id)
    assert shown(repo, request_id)[:2] == (3, 0)


@pytest.mark.parametrize("deleted", ["one file", "the request's folder"])
def test_a_retry_counts_and_redoes_images_whose_file_vanished(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    data_dir: Path,
    deleted: str,
) -> None:
    broken = http_server.route("/broken.jpg", sequence(respond(b"", 404), respond(JPEG)))
    kept = http_server.route("/kept.jpg", respond(JPEG))
    gone = http_server.route("/gone.jpg", respond(JPEG))
    request_id = create_request(
        repo, [("1", "Broken", [broken]), ("2", "Kept", [kept]), ("3", "Gone", [gone])]
    )
    engine = make_engine()
    with qtbot.waitSignal(engine.request_finished, timeout=20_000) as blocker:
        engine.start_request(request_id)
    assert blocker.args == [request_id, "failed"]
    by_url = {image.url: image for image in repo.list_images(request_id)}
    gone_path = by_url[gone].output_path
    assert gone_path is not None
    if deleted == "one file":
        Path(gone_path).unlink()
        vanished, kept_hits = 1, 1
    else:
        shutil.rmtree(request_folder(data_dir, request_id))
        vanished, kept_hits = 2, 2

    with qtbot.waitSignal(engine.request_finished, timeout=20_000) as blocker:
        # The failed image and those whose file vanished.
        assert engine.retry(request_id) == 1 + vanished
    assert blocker.args == [request_id, "completed"]
    assert Path(gone_path).is_file()
    hits = [http_server.hits(p) for p in ("/broken.jpg", "/kept.jpg", "/gone.jpg")]
    assert hits == [2, kept_hits, 2]
    assert shown(repo, request_id) == counted(request_id)
    assert shown(repo, request_id)[:2] == (3, 0)


def test_a_retry_with_every_file_in_place_changes_nothing(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    data_dir: Path,
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    request_id = create_request(repo, [("1", "A", [a])])
    engine = make_engine()
    with qtbot.waitSignal(engine.request_finished, timeout=20_000):
        engine.start_request(request_id)
    finished: list[str] = []
    engine.request_finished.connect(lambda rid, _status: finished.append(rid))
    # The output CSV and other files beside the images are not taken for images.
    (request_folder(data_dir, request_id) / "products-output.csv").write_text("x\n")

    assert engine.retry(request_id) == 0
    assert finished == [] and http_server.hits("/a.jpg") == 1
    assert (request_folder(data_dir, request_id) / "products-output.csv").is_file()


# -- what the log file says about a run -----------------------------------------------------


@pytest.fixture
def log_file(data_dir: Path) -> Iterator[Path]:
    """imgdesk's own log set-up on the data folder, verbose; undone afterwards."""
    root = logging.getLogger()
    level = root.level
    # The test server's own lines (request paths) are not imgdesk's to redact.
    test_server = logging.getLogger("tests.httpservers")
    test_server.setLevel(logging.INFO)
    yield setup_logging(data_dir, verbose=True)
    stop_logging()
    root.setLevel(level)
    test_server.setLevel(logging.NOTSET)


def test_a_run_logs_no_credentials_nor_tokens(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    log_file: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    http_server.route("/private.jpg", respond(JPEG))
    http_server.route("/missing.jpg", respond(b"", 404))
    base = f"http://shopuser:hunter2pass@127.0.0.1:{http_server.port}"
    good = f"{base}/private.jpg?token=s3cr3ttoken"
    missing = f"{base}/missing.jpg?token=s3cr3ttoken"
    request_id = create_request(repo, [("1", "Private", [good]), ("2", "Missing", [missing])])
    engine = make_engine()
    with qtbot.waitSignal(engine.request_finished, timeout=20_000) as blocker:
        engine.start_request(request_id)
    assert blocker.args == [request_id, "failed"]
    stop_logging()

    text = log_file.read_text(encoding="utf-8")
    stderr = capfd.readouterr().err
    assert f"done http://***@127.0.0.1:{http_server.port}/private.jpg?token=***" in text
    assert f"failed http://***@127.0.0.1:{http_server.port}/missing.jpg?token=***" in text
    for shown_text in (text, stderr):
        assert "hunter2pass" not in shown_text
        assert "s3cr3ttoken" not in shown_text
