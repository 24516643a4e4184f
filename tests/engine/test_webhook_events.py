"""Which event a request's end makes (SPEC 5), with requests finished by the real engine."""

from __future__ import annotations

from collections.abc import Callable

from pytestqt.qtbot import QtBot

from imgdesk.core.repository import Repository
from imgdesk.core.webhook import build_payload
from imgdesk.engine.engine import Engine
from tests import images
from tests.engine.conftest import create_request
from tests.httpservers import HttpTestServer, respond, stall

JPEG = images.make_jpeg(64, 48, "photo", 90)


def test_a_request_with_a_failed_image_sends_request_failed(
    qtbot: QtBot, repo: Repository, make_engine: Callable[..., Engine], http_server: HttpTestServer
) -> None:
    good = http_server.route("/good.jpg", respond(JPEG))
    gone = http_server.route("/gone.jpg", respond(b"no", 404))
    request_id = create_request(repo, [("1", "Mug", [good]), ("2", "Cap", [gone])])
    engine = make_engine()
    with qtbot.waitSignal(engine.request_finished, timeout=20_000):
        engine.start_request(request_id)

    request = repo.get_request(request_id)
    assert request is not None
    payload = build_payload(request)
    assert (payload["event"], payload["status"]) == ("request.failed", "failed")
    assert (payload["succeeded"], payload["failed"]) == (1, 1)


def test_a_cancelled_request_sends_request_failed(
    qtbot: QtBot, repo: Repository, make_engine: Callable[..., Engine], http_server: HttpTestServer
) -> None:
    slow = [http_server.route(f"/slow{i}.jpg", stall(60)) for i in range(3)]
    request_id = create_request(repo, [(str(i), f"P{i}", [url]) for i, url in enumerate(slow)])
    engine = make_engine()
    engine.start_request(request_id)
    qtbot.waitUntil(lambda: http_server.total_hits >= 1, timeout=10_000)
    with qtbot.waitSignal(engine.request_finished, timeout=10_000):
        engine.cancel(request_id)

    request = repo.get_request(request_id)
    assert request is not None
    assert {image.error_code for image in repo.list_images(request_id)} == {"cancelled"}
    payload = build_payload(request)
    assert (payload["event"], payload["status"]) == ("request.failed", "failed")
    assert (payload["succeeded"], payload["failed"]) == (0, 3)
