"""A request's time counts only while its images are in flight: not pauses, not idle days."""

from __future__ import annotations

import time

from pytestqt.qtbot import QtBot

from imgdesk.core.repository import Repository
from imgdesk.engine.activity import ActiveTime
from imgdesk.engine.engine import Engine
from tests import images
from tests.engine.conftest import create_request
from tests.engine.test_engine import EngineFactory
from tests.httpservers import HttpTestServer, delayed, respond, sequence, trickle

JPEG = images.make_jpeg(320, 240, "photo", 92)


def finish(qtbot: QtBot, engine: Engine, request_id: str, start: object) -> float:
    """Run ``start()`` until the request finishes; returns the wall seconds it took."""
    began = time.monotonic()
    with qtbot.waitSignal(
        engine.request_finished, timeout=30_000, check_params_cb=lambda rid, _s: rid == request_id
    ):
        start()  # type: ignore[operator]
    return time.monotonic() - began


def test_time_paused_before_a_start_and_between_a_run_and_its_retry_is_not_counted(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    slow = http_server.route("/slow.jpg", delayed(0.3, respond(JPEG)))
    flaky = http_server.route("/flaky.jpg", sequence(respond(b"", 404), respond(JPEG)))
    request_id = create_request(repo, [("1", "A", [slow]), ("2", "B", [flaky])])
    engine = make_engine()
    engine.pause()
    engine.start_request(request_id)
    qtbot.wait(1500)  # paused: nothing in flight
    assert http_server.total_hits == 0

    first_run = finish(qtbot, engine, request_id, engine.resume)
    qtbot.wait(1500)  # finished, idle: the user has not pressed "Retry failures" yet
    retry_run = finish(qtbot, engine, request_id, lambda: engine.retry(request_id))

    request = repo.get_request(request_id)
    assert request is not None and request.status == "completed"
    assert request.duration_s is not None
    # At least the slow download itself; at most the two runs, the 3 s of waiting left out.
    assert 0.3 <= request.duration_s <= first_run + retry_run
    assert request.active_s == request.duration_s


def test_the_union_of_overlapping_images_is_counted_once() -> None:
    now = [100.0]
    clock = ActiveTime(lambda: now[0])
    clock.started("r")
    now[0] = 101.0
    clock.started("r")  # a second image of the same request, overlapping
    now[0] = 102.0
    clock.ended("r")
    now[0] = 103.0
    assert clock.collect() == {"r": 3.0}  # still running: counted up to now
    clock.ended("r")
    now[0] = 110.0  # idle
    clock.started("r")
    now[0] = 111.5
    clock.ended("r")
    clock.ended("r")  # one too many (a stale result): ignored
    assert clock.collect() == {"r": 1.5}
    assert not clock.running


def test_a_download_reports_its_bytes_while_it_runs_and_forgets_them_after(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    body = images.make_jpeg(640, 480, "photo", 95)
    chunk = len(body) // 8 + 1
    url = http_server.route("/slow.jpg", trickle(body, delay_s=0.15, chunk_size=chunk))
    request_id = create_request(repo, [("1", "A", [url])])
    engine = make_engine()
    seen: list[tuple[int, int | None]] = []

    def on_progress(progressed_id: str, image_ids: list[int]) -> None:
        assert progressed_id == request_id
        found = engine.download_progress(image_ids[0])
        assert found is not None
        seen.append(found)

    engine.images_progressed.connect(on_progress)
    finish(qtbot, engine, request_id, lambda: engine.start_request(request_id))

    assert len(seen) >= 2  # reported along the way, not only at the end
    assert all(announced == len(body) for _, announced in seen)
    received = [count for count, _ in seen]
    assert received == sorted(received) and received[-1] == len(body)
    [image] = repo.list_images(request_id)
    assert engine.download_progress(image.id) is None
