"""Byte progress per image, and the speed and time left in the status bar (SPEC 7).

A real engine downloads from a real server on 127.0.0.1; the images model and the status
bar listen to it as the window's do. A body held back at a gate keeps a download in flight
for as long as a test needs, whatever the machine's speed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QTableView
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.repository import Repository
from imgdesk.engine.engine import Engine
from imgdesk.gui.delegates import BUSY_PROGRESS, StageBarDelegate, busy_phase
from imgdesk.gui.formatting import format_bytes
from imgdesk.gui.images_model import ImagesTableModel
from imgdesk.gui.models import PROGRESS_ROLE, RequestsTableModel
from imgdesk.gui.status_bar import MEASURING, StatusBar
from tests.httpservers import Exchange, Gate, HttpTestServer, RouteHandler, gated, respond, trickle
from tests.images import make_jpeg

WAIT_MS = 15_000
STAGE = ImagesTableModel.COL_STATE


@pytest.fixture
def gate() -> Iterator[Gate]:
    """Holds gated bodies until a test lets them through."""
    gate = Gate()
    yield gate
    gate.open()  # nothing stays stuck for the teardown


def held_body(body: bytes, gate: Gate, *, announce: bool = True) -> RouteHandler:
    """Send the first third of ``body``, then the rest once ``gate`` lets it through.

    Without ``announce`` there is no Content-Length: the close ends the body.
    """

    def handler(exchange: Exchange) -> None:
        length = {"Content-Length": str(len(body))} if announce else {"Connection": "close"}
        exchange.start(200, {"Content-Type": "image/jpeg", **length})
        third = len(body) // 3
        exchange.write(body[:third])
        if not gate.wait_for_pass(exchange):
            exchange.abort()
            return
        exchange.write(body[third:])

    return handler


def start(repository: Repository, engine: Engine, urls: list[str]) -> str:
    """Record a request of one product per URL and start it; returns its id."""
    lines = ["S. No.,Product Name,Input Image Urls"]
    lines += [f"{number},Product {number},{url}" for number, url in enumerate(urls, 1)]
    catalogue = parse_catalogue(("\n".join(lines) + "\n").encode(), "bytes.csv")
    request_id = repository.create_request(catalogue)
    engine.start_request(request_id)
    return request_id


def images_model(repository: Repository, engine: Engine) -> ImagesTableModel:
    """The images model, wired to the engine as the window wires it."""
    model = ImagesTableModel(repository, download_progress=engine.download_progress)
    engine.images_changed.connect(model.refresh_images)
    engine.images_progressed.connect(model.refresh_progress)
    return model


def stage(model: ImagesTableModel, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
    return model.index(0, STAGE).data(role)


def test_a_trickled_download_shows_its_bytes_growing(
    qtbot: QtBot, repository: Repository, engine: Engine, server: HttpTestServer
) -> None:
    body = make_jpeg(640, 480, "photo", 95)
    chunk = len(body) // 40 + 1  # forty chunks, a tenth of a second apart: seconds of bytes
    url = server.route("/slow.jpg", trickle(body, delay_s=0.1, chunk_size=chunk))
    model = images_model(repository, engine)
    request_id = start(repository, engine, [url])
    model.set_request(request_id)
    texts: list[str] = []

    def on_data_changed(top: QModelIndex, bottom: QModelIndex, roles: list[int]) -> None:
        if top.column() <= STAGE <= bottom.column():
            texts.append(stage(model))

    model.dataChanged.connect(on_data_changed)
    qtbot.waitUntil(lambda: stage(model) == "Done", timeout=WAIT_MS)

    total = format_bytes(len(body))
    pattern = re.compile(rf"Downloading (\d+) kB of {re.escape(total)}")
    shown = [int(found[1]) for text in texts if (found := pattern.fullmatch(text))]
    assert len(set(shown)) >= 2, texts  # told along the way, not only at the end
    assert shown == sorted(shown)  # and only ever growing
    [image] = repository.list_images(request_id)
    assert image.status == "done"


def test_a_download_bar_fills_by_bytes_and_a_tick_repaints_its_stage_cell_only(
    qtbot: QtBot,
    qtmodeltester: ModelTester,
    repository: Repository,
    engine: Engine,
    server: HttpTestServer,
    gate: Gate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = make_jpeg(640, 480, "photo", 95)
    url = server.route("/held.jpg", held_body(body, gate))
    model = images_model(repository, engine)
    qtbot.addWidget(view := QTableView())
    view.setModel(model)
    view.setItemDelegateForColumn(STAGE, StageBarDelegate(view))
    request_id = start(repository, engine, [url])
    model.set_request(request_id)
    [image] = repository.list_images(request_id)
    total = format_bytes(len(body))

    def shows_the_bytes_received() -> bool:
        received = engine.download_progress(image.id)
        return received is not None and stage(model) == (
            f"Downloading {format_bytes(received[0])} of {total}"
        )

    # Held at the gate after the first third: the bytes so far are known and stay put.
    qtbot.waitUntil(shows_the_bytes_received, timeout=WAIT_MS)
    received, announced = engine.download_progress(image.id) or (0, None)
    assert announced == len(body) and 0 < received < len(body)
    assert stage(model, PROGRESS_ROLE) == pytest.approx(received / len(body))
    qtmodeltester.check(model)
    view.grab()  # the bar paints

    # A tick reads nothing from the database and announces the one stage cell.
    reads: list[object] = []
    real_get_images = repository.get_images
    monkeypatch.setattr(
        repository, "get_images", lambda ids: reads.append(ids) or real_get_images(ids)
    )
    changes: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(
        lambda top, bottom, _roles: changes.append(
            (top.row(), top.column(), bottom.row(), bottom.column())
        )
    )
    model.refresh_progress(request_id, [image.id])
    model.flush_progress()
    assert changes == [(0, STAGE, 0, STAGE)]
    assert reads == []

    gate.allow(1)
    qtbot.waitUntil(lambda: stage(model) == "Done", timeout=WAIT_MS)
    assert stage(model, PROGRESS_ROLE) is None


def test_a_download_of_unknown_length_shows_its_bytes_on_a_busy_bar(
    qtbot: QtBot, repository: Repository, engine: Engine, server: HttpTestServer, gate: Gate
) -> None:
    body = make_jpeg(640, 480, "photo", 95)
    url = server.route("/unannounced.jpg", held_body(body, gate, announce=False))
    model = images_model(repository, engine)
    qtbot.addWidget(view := QTableView())
    view.setModel(model)
    view.setItemDelegateForColumn(STAGE, StageBarDelegate(view))
    request_id = start(repository, engine, [url])
    model.set_request(request_id)
    pattern = re.compile(r"Downloading \d+(\.\d)? kB")  # the bytes alone: no " of "
    qtbot.waitUntil(lambda: pattern.fullmatch(str(stage(model))) is not None, timeout=WAIT_MS)
    assert stage(model, PROGRESS_ROLE) == BUSY_PROGRESS
    view.grab()  # the busy bar paints
    gate.allow(1)
    qtbot.waitUntil(lambda: stage(model) == "Done", timeout=WAIT_MS)


def test_a_busy_bar_sweeps_to_and_fro() -> None:
    phases = [busy_phase(step / 4) for step in range(17)]  # four seconds, a tick apart
    assert min(phases) == 0.0 and max(phases) == 1.0
    assert phases[:9] == sorted(phases[:9])  # there...
    assert phases[8:] == sorted(phases[8:], reverse=True)  # ...and back


def requests_model(repository: Repository, engine: Engine) -> RequestsTableModel:
    model = RequestsTableModel(repository, engine)
    model.reload()
    engine.request_changed.connect(model.refresh_request)
    return model


def worked_a_second(requests: RequestsTableModel, request_id: str, done: int) -> bool:
    """Whether the request has ``done`` images done and a second of active time, as read now.

    Active time is stored once a second while images are in flight; reading the request
    again here does not wait for an image to change.
    """
    requests.refresh_request(request_id)
    requests.flush()
    request = requests.get(request_id)
    return request is not None and request.done == done and request.active_s >= 1.0


def test_the_status_bar_shows_the_bytes_rate_before_any_image_finished(
    qtbot: QtBot, repository: Repository, engine: Engine, server: HttpTestServer, gate: Gate
) -> None:
    body = make_jpeg(640, 480, "photo", 95)
    url = server.route("/big.jpg", held_body(body, gate))
    requests = requests_model(repository, engine)
    status = StatusBar(engine, requests)
    qtbot.addWidget(status)
    request_id = start(repository, engine, [url])
    # A third of the body is in, the rest held: a second later there is a rate of bytes.
    qtbot.waitUntil(lambda: worked_a_second(requests, request_id, done=0), timeout=WAIT_MS)
    status.refresh()
    assert re.fullmatch(r"\d+(\.\d)? (kB|MB)/s", status.bytes_label.text())
    assert status.rate_label.text() == ""  # no image finished: no images/s, no time left
    assert status.time_left_label.text() == ""
    gate.allow(1)
    qtbot.waitUntil(lambda: not engine.is_busy(), timeout=WAIT_MS)
    status.stop()


def test_the_status_bar_shows_speed_and_time_left_while_running_and_nothing_while_paused(
    qtbot: QtBot, repository: Repository, engine: Engine, server: HttpTestServer, gate: Gate
) -> None:
    jpeg = respond(make_jpeg(80, 60, "photo", 90), content_type="image/jpeg")
    urls = [server.route(f"/gated{number}.jpg", gated(gate, jpeg)) for number in range(8)]
    requests = requests_model(repository, engine)
    status = StatusBar(engine, requests)
    qtbot.addWidget(status)
    request_id = start(repository, engine, urls)
    qtbot.waitUntil(lambda: engine.active_count > 0, timeout=WAIT_MS)
    status.refresh()
    assert status.rate_label.text() == MEASURING  # nothing finished: no figure yet
    assert status.time_left_label.text() == ""

    finished: list[object] = []
    engine.image_finished.connect(finished.append)
    gate.allow(4)
    qtbot.waitUntil(lambda: len(finished) == 4, timeout=WAIT_MS)

    # Four are still held in flight, so active time goes on.
    qtbot.waitUntil(lambda: worked_a_second(requests, request_id, done=4), timeout=WAIT_MS)
    status.refresh()
    assert re.fullmatch(r"\d+\.\d images/s", status.rate_label.text())
    assert re.fullmatch(r"\d+(\.\d)? (B|kB|MB)/s", status.bytes_label.text())
    assert re.fullmatch(r"(about .+|a few seconds) left", status.time_left_label.text())

    engine.pause()  # the bar hears it and reads the engine: nobody tells it
    assert "Paused" in status.paused_label.text()
    assert status.rate_label.text() == ""
    assert status.bytes_label.text() == ""
    assert status.time_left_label.text() == ""
    engine.resume()
    assert status.paused_label.text() == ""
    assert status.rate_label.text().endswith(" images/s")
    gate.open()
    qtbot.waitUntil(lambda: not engine.is_busy(), timeout=WAIT_MS)
    requests.flush()
    status.refresh()
    assert status.rate_label.text() == "Idle"
    assert status.time_left_label.text() == ""
    status.stop()
