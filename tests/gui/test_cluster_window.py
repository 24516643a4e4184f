"""The window in cluster mode (SPEC 11): real PostgreSQL, Redis and ``imgdesk worker`` processes.

The window is built as :func:`imgdesk.gui.app.run_window` builds it on a cluster; its engine
is the :class:`~imgdesk.gui.cluster_front.ClusterFront`, which never makes the GUI thread
wait on the database or the broker.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from imgdesk.core.cluster_store import ClusterStore
from imgdesk.core.states import ImageStatus, RequestStatus
from imgdesk.gui.app import _build_cluster_window
from imgdesk.gui.log_view import TailLogHandler
from imgdesk.gui.main_window import MainWindow
from imgdesk.gui.processing_page import CLUSTER, ProcessingPlace
from tests.cluster.test_cluster import Cluster, save_cluster_settings, serve_images, write_csv
from tests.httpservers import HttpTestServer, respond
from tests.services_redis import RedisServer

WAIT_MS = 90_000  # generous: the machine is shared; nothing here asserts a duration


class TcpRelay:
    """A loopback TCP relay in front of PostgreSQL that can be cut (the server "stops")."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._cut = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones by holding them unanswered."""
        self._cut.set()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._connections.clear()

    def mend(self) -> None:
        """Relay again."""
        self._cut.clear()

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                with self._lock:  # held open, never answered: a server that hangs
                    self._connections.append(client)
                continue
            server = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._connections += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def cluster(tmp_path: Path, redis_server: RedisServer, postgres_url: str) -> Iterator[Cluster]:
    """Workers on the private PostgreSQL and Redis (started by each test as needed)."""
    running = Cluster(tmp_path, redis_server, postgres_url)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def open_window(
    qtbot: QtBot, tmp_path: Path, qsettings: QSettings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[object]:
    """A factory of cluster-mode windows, closed and their fronts stopped after the test."""
    undo = contextlib.ExitStack()
    windows: list[MainWindow] = []

    def make(database_url: str, broker_url: str) -> MainWindow:
        place = ProcessingPlace(CLUSTER, database_url, broker_url)
        folder = tmp_path / f"window{len(windows)}"
        folder.mkdir()
        window, _ = _build_cluster_window(
            place, folder, qsettings, TailLogHandler(), folder / "imgdesk.log", undo
        )
        monkeypatch.setattr(window, "_confirm_quit", lambda: True)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
    undo.close()


def _state_of(window: MainWindow, request_id: str) -> str | None:
    request = window.requests_model.get(request_id)
    return None if request is None else request.status


def _the_request(window: MainWindow) -> str:
    requests = window.requests_model.requests()
    return requests[0].id if len(requests) == 1 else ""


def test_a_dropped_csv_is_processed_by_a_worker_and_shown_finished(
    qtbot: QtBot,
    open_window: object,
    cluster: Cluster,
    http_server: HttpTestServer,
    tmp_path: Path,
) -> None:
    urls = serve_images(http_server, 4, 0.05)
    hook = http_server.route("/hook", respond(b"ok"))
    csv_path = write_csv(tmp_path / "products.csv", urls)
    save_cluster_settings(cluster, webhook_url=hook)  # the cluster's, as every worker's
    window = open_window(cluster.database_url, cluster.broker_url)  # type: ignore[operator]
    cluster.start_worker(threads=2)

    window.load_files([csv_path])

    qtbot.waitUntil(lambda: bool(_the_request(window)), timeout=WAIT_MS)
    request_id = _the_request(window)
    window.select_request(request_id)
    qtbot.waitUntil(
        lambda: _state_of(window, request_id) == RequestStatus.COMPLETED, timeout=WAIT_MS
    )
    qtbot.waitUntil(
        lambda: [image.status for image in window.images_model.images()] == [ImageStatus.DONE] * 4,
        timeout=WAIT_MS,
    )
    request = window.requests_model.get(request_id)
    assert request is not None and (request.done, request.failed, request.total) == (4, 0, 4)
    # The webhook is the cluster's to deliver, once; the window shows it.
    deliveries = window.webhook_panel.deliveries_model
    qtbot.waitUntil(
        lambda: [d.status for d in deliveries.deliveries()] == ["delivered"], timeout=WAIT_MS
    )
    assert http_server.hits("/hook") == 1


def test_a_request_another_machine_submits_appears_in_the_window(
    qtbot: QtBot,
    open_window: object,
    cluster: Cluster,
    http_server: HttpTestServer,
    tmp_path: Path,
) -> None:
    urls = serve_images(http_server, 3, 0.0)
    csv_path = write_csv(tmp_path / "elsewhere.csv", urls)
    window = open_window(cluster.database_url, cluster.broker_url)  # type: ignore[operator]
    cluster.start_worker(threads=2)

    result = cluster.process(csv_path)

    assert result.returncode == 0, result.stderr
    qtbot.waitUntil(lambda: bool(_the_request(window)), timeout=WAIT_MS)
    request_id = _the_request(window)
    qtbot.waitUntil(
        lambda: _state_of(window, request_id) == RequestStatus.COMPLETED, timeout=WAIT_MS
    )
    assert window.requests_model.get(request_id).csv_name == "elsewhere.csv"  # type: ignore[union-attr]


def test_a_priority_set_in_the_window_is_the_clusters(
    qtbot: QtBot, open_window: object, redis_server: RedisServer, postgres_url: str, tmp_path: Path
) -> None:
    window = open_window(postgres_url, redis_server.url)  # type: ignore[operator]
    window.load_files([write_csv(tmp_path / "urgent.csv", ["http://127.0.0.1:9/a.png"])])
    qtbot.waitUntil(lambda: bool(_the_request(window)), timeout=WAIT_MS)
    request_id = _the_request(window)

    window._engine.set_priority(request_id, "high")

    qtbot.waitUntil(
        lambda: window.requests_model.get(request_id).priority == "high",  # type: ignore[union-attr]
        timeout=WAIT_MS,
    )
    assert ClusterStore().request_priority(request_id) == "high"  # what the cluster sends by


def test_cancel_and_pause_from_the_window_stop_the_workers_images(
    qtbot: QtBot,
    open_window: object,
    cluster: Cluster,
    http_server: HttpTestServer,
    tmp_path: Path,
) -> None:
    urls = serve_images(http_server, 40, 0.3)
    csv_path = write_csv(tmp_path / "many.csv", urls)
    window = open_window(cluster.database_url, cluster.broker_url)  # type: ignore[operator]
    front = window._engine

    front.pause()  # the whole cluster: no worker starts an image
    window.load_files([csv_path])
    qtbot.waitUntil(lambda: bool(_the_request(window)), timeout=WAIT_MS)
    request_id = _the_request(window)
    qtbot.waitUntil(lambda: not front.is_busy(), timeout=WAIT_MS)  # recorded and sent
    cluster.start_worker(threads=2)
    # Paused: the worker puts every message back; give it time to take some.
    qtbot.wait(3000)
    assert sum(http_server.hits(f"/img/{n}.png") for n in range(1, 41)) == 0

    front.resume()
    qtbot.waitUntil(lambda: window.requests_model.get(request_id).done >= 2, timeout=WAIT_MS)  # type: ignore[union-attr]
    front.cancel(request_id)

    qtbot.waitUntil(lambda: _state_of(window, request_id) == RequestStatus.FAILED, timeout=WAIT_MS)
    fetched = sum(http_server.hits(f"/img/{n}.png") for n in range(1, 41))
    request = window.requests_model.get(request_id)
    assert request is not None and request.done < 40
    assert window.requests_model.cancelled_of(request_id) == 40 - request.done - (
        request.failed - window.requests_model.cancelled_of(request_id)
    )
    qtbot.wait(2000)  # nothing more is fetched once cancelled (downloads under way end)
    assert sum(http_server.hits(f"/img/{n}.png") for n in range(1, 41)) <= fetched + 4


def test_the_window_keeps_responding_while_the_database_hangs(
    qtbot: QtBot,
    open_window: object,
    redis_server: RedisServer,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    port = int(postgres_url.rsplit(":", 1)[1].split("/", 1)[0])
    relay = TcpRelay(port)
    relayed = postgres_url.replace(f":{port}/", f":{relay.port}/")
    try:
        window = open_window(relayed, redis_server.url)  # type: ignore[operator]
        label = window.findChild(QLabel, "cluster_status")
        assert label is not None and label.text() == "Cluster"
        first = write_csv(tmp_path / "before.csv", ["http://127.0.0.1:9/a.png"])
        window.load_files([first])  # no worker runs: it stays pending
        qtbot.waitUntil(lambda: bool(_the_request(window)), timeout=WAIT_MS)
        request_id = _the_request(window)
        window.load_files([write_csv(tmp_path / "other.csv", ["http://127.0.0.1:9/o.png"])])
        qtbot.waitUntil(lambda: window.requests_model.rowCount() == 2, timeout=WAIT_MS)
        other_id = next(r.id for r in window.requests_model.requests() if r.id != request_id)
        window.select_request(request_id)
        qtbot.waitUntil(lambda: window.images_model.rowCount() == 1, timeout=WAIT_MS)

        relay.cut()  # every connection dropped, new ones hang unanswered
        beats: list[float] = []
        heartbeat = QTimer(window)
        heartbeat.setInterval(50)
        heartbeat.timeout.connect(lambda: beats.append(time.monotonic()))
        heartbeat.start()
        window.load_files([write_csv(tmp_path / "while-down.csv", ["http://127.0.0.1:9/b.png"])])
        window._engine.pause()
        qtbot.waitUntil(lambda: "cannot be reached" in label.text(), timeout=WAIT_MS)
        # The window's reads answer from what it saw, or "not read yet" (asked again later).
        window.requests_model.reload()
        window.select_request(other_id)  # its images and webhook deliveries were never read
        window.webhook_dock.show()
        window.select_request(request_id)
        assert window.images_model.rowCount() == 1
        qtbot.waitUntil(lambda: len(beats) >= 40, timeout=WAIT_MS)
        # Generous: the GUI thread never waited for PostgreSQL (its connect_timeout is 10 s).
        gaps = [later - earlier for earlier, later in zip(beats, beats[1:], strict=False)]
        assert max(gaps) < 5.0

        relay.mend()
        qtbot.waitUntil(lambda: label.text() == "Cluster", timeout=WAIT_MS)
        # What was done while it was down reaches the cluster once it answers again.
        qtbot.waitUntil(lambda: window.requests_model.rowCount() == 3, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: window._engine.paused, timeout=WAIT_MS)
        heartbeat.stop()
    finally:
        relay.close()
