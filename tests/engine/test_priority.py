"""Request priorities on this computer (SPEC 11): a higher request's images start first.

Every test holds the first image at a gate, so the engine has all the requests in hand
before anything finishes, then checks the order in which the server saw the downloads:
with one image at a time, that order is the engine's, whatever the machine's speed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from imgdesk.core.paths import database_path
from imgdesk.core.repository import Repository, RequestInfo
from imgdesk.engine import engine as engine_module
from imgdesk.engine.engine import Engine
from tests import images
from tests.engine.conftest import FAST, create_request
from tests.httpservers import Gate, HttpTestServer, gated, respond

pytestmark = pytest.mark.timeout(60)

JPEG = images.make_jpeg(64, 48, "photo", 90)
WAIT_MS = 20_000
EngineFactory = Callable[..., Engine]
# One image at a time; an answer held at the gate is waited for as long as a test needs.
ONE_AT_A_TIME = FAST.replace(concurrency=1, read_timeout_s=60, total_timeout_s=120)


def serve(server: HttpTestServer, gate: Gate, names: list[str], host: str = "") -> list[str]:
    """Serve a JPEG behind ``gate`` at ``/<name>`` for each name; returns their URLs."""
    urls = [server.route(f"/{name}.jpg", gated(gate, respond(JPEG))) for name in names]
    return [url.replace("127.0.0.1", host) for url in urls] if host else urls


def one_product(repo: Repository, urls: list[str]) -> str:
    """A request of one product with these images, in this order."""
    return create_request(repo, [("1", "Shirt", urls)])


def fetched(server: HttpTestServer) -> list[str]:
    """The names the server was asked for, in the order it was asked."""
    return [request.path.removeprefix("/").removesuffix(".jpg") for request in server.requests]


def stored(repo: Repository, request_id: str) -> RequestInfo:
    """The request as stored now."""
    request = repo.get_request(request_id)
    assert request is not None
    return request


def wait_finished(qtbot: QtBot, repo: Repository, *request_ids: str) -> None:
    """Wait until every one of the requests is completed."""
    qtbot.waitUntil(
        lambda: all(stored(repo, r).status == "completed" for r in request_ids), timeout=WAIT_MS
    )


def test_a_high_request_is_served_before_the_rest_of_a_normal_one(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    gate = Gate()
    normal = one_product(repo, serve(http_server, gate, ["n0", "n1", "n2", "n3"]))
    high = one_product(repo, serve(http_server, gate, ["h0", "h1", "h2"]))
    repo.set_priority(high, "high")
    engine = make_engine(ONE_AT_A_TIME)

    engine.start_request(normal)
    qtbot.waitUntil(lambda: http_server.in_flight == 1, timeout=WAIT_MS)  # n0 at the gate
    engine.start_request(high)
    gate.open()
    wait_finished(qtbot, repo, normal, high)

    # n0 was running already and finishes; then every high image, then the normal rest.
    assert fetched(http_server) == ["n0", "h0", "h1", "h2", "n1", "n2", "n3"]
    assert stored(repo, high).priority == "high"
    assert stored(repo, normal).priority == "normal"


def test_equal_requests_keep_first_come_first_served(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    gate = Gate()
    first = one_product(repo, serve(http_server, gate, ["a0", "a1", "a2"]))
    second = one_product(repo, serve(http_server, gate, ["b0", "b1"]))
    repo.set_priority(first, "low")
    repo.set_priority(second, "low")
    engine = make_engine(ONE_AT_A_TIME)

    engine.start_request(first)
    qtbot.waitUntil(lambda: http_server.in_flight == 1, timeout=WAIT_MS)
    engine.start_request(second)
    gate.open()
    wait_finished(qtbot, repo, first, second)

    assert fetched(http_server) == ["a0", "a1", "a2", "b0", "b1"]


@pytest.mark.parametrize(
    ("changed", "priority"), [("second", "high"), ("first", "low")], ids=["raised", "lowered"]
)
def test_a_priority_changed_mid_run_orders_the_images_not_started_yet(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    changed: str,
    priority: str,
) -> None:
    gate = Gate()
    requests = {
        "first": one_product(repo, serve(http_server, gate, ["a0", "a1", "a2", "a3"])),
        "second": one_product(repo, serve(http_server, gate, ["b0", "b1", "b2"])),
    }
    engine = make_engine(ONE_AT_A_TIME)
    changes: list[str] = []
    engine.request_changed.connect(changes.append)
    engine.start_request(requests["first"])
    engine.start_request(requests["second"])
    qtbot.waitUntil(lambda: http_server.in_flight == 1, timeout=WAIT_MS)  # a0 at the gate

    engine.set_priority(requests[changed], priority)
    assert stored(repo, requests[changed]).priority == priority
    assert requests[changed] in changes  # the window re-reads the request
    gate.open()
    wait_finished(qtbot, repo, *requests.values())

    assert fetched(http_server) == ["a0", "b0", "b1", "b2", "a1", "a2", "a3"]


def test_images_of_a_high_request_not_read_yet_still_come_first(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pages of two images: most of the high request is still in the database, not queued.
    monkeypatch.setattr(engine_module, "FEED_PAGE_IMAGES", 2)
    monkeypatch.setattr(engine_module, "FEED_LOW_WATER", 1)
    gate = Gate()
    normal = one_product(repo, serve(http_server, gate, ["n0", "n1", "n2"]))
    high_names = [f"h{i}" for i in range(6)]
    high = one_product(repo, serve(http_server, gate, high_names))
    repo.set_priority(high, "high")
    engine = make_engine(ONE_AT_A_TIME)

    engine.start_request(normal)
    qtbot.waitUntil(lambda: http_server.in_flight == 1, timeout=WAIT_MS)
    engine.start_request(high)
    gate.open()
    wait_finished(qtbot, repo, normal, high)

    assert fetched(http_server) == ["n0", *high_names, "n1", "n2"]


def test_no_lower_image_starts_while_a_high_one_waits_for_its_busy_host(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    # Two free slots, one download per host: the high images queue behind their host,
    # and the normal images on another host (localhost) still wait for them.
    gate = Gate()
    high = one_product(repo, serve(http_server, gate, ["h0", "h1", "h2"]))
    normal = one_product(repo, serve(http_server, gate, ["n0", "n1"], host="localhost"))
    repo.set_priority(high, "high")
    engine = make_engine(ONE_AT_A_TIME.replace(concurrency=2, per_host_concurrency=1))

    engine.start_request(high)
    qtbot.waitUntil(lambda: http_server.in_flight == 1, timeout=WAIT_MS)  # h0 at the gate
    engine.start_request(normal)
    gate.allow(1)  # h0 answers; h1 starts, n0 still may not
    qtbot.waitUntil(lambda: fetched(http_server)[1:] == ["h1"], timeout=WAIT_MS)
    assert engine.active_count == 1
    gate.open()
    wait_finished(qtbot, repo, normal, high)

    # n0 starts beside h2, once no high image waits: after h1's answer, never before.
    order = fetched(http_server)
    assert order[:2] == ["h0", "h1"]
    assert sorted(order[2:]) == ["h2", "n0", "n1"]
    assert order.index("n0") < order.index("n1")


def test_a_priority_set_while_another_program_holds_the_database_is_stored_later(
    qtbot: QtBot,
    repo: Repository,
    make_engine: EngineFactory,
    http_server: HttpTestServer,
    data_dir: Path,
) -> None:
    gate = Gate()
    first = one_product(repo, serve(http_server, gate, ["a0", "a1"]))
    second = one_product(repo, serve(http_server, gate, ["b0"]))
    engine = make_engine(ONE_AT_A_TIME)
    engine.start_request(first)
    engine.start_request(second)
    qtbot.waitUntil(lambda: http_server.in_flight == 1, timeout=WAIT_MS)
    other = sqlite3.connect(database_path(data_dir), timeout=10, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        engine.set_priority(second, "high")  # no error: kept, and in force already
        assert stored(repo, second).priority == "normal"
        other.execute("COMMIT")
    finally:
        other.close()
    qtbot.waitUntil(lambda: stored(repo, second).priority == "high", timeout=WAIT_MS)
    gate.open()
    wait_finished(qtbot, repo, first, second)

    assert fetched(http_server) == ["a0", "b0", "a1"]


def test_a_priority_is_stored_for_a_request_not_running(
    repo: Repository, make_engine: EngineFactory
) -> None:
    request_id = one_product(repo, ["https://example.test/a.jpg"])
    engine = make_engine()
    engine.set_priority(request_id, "low")
    assert stored(repo, request_id).priority == "low"
    with pytest.raises(ValueError, match="urgent"):
        engine.set_priority(request_id, "urgent")
