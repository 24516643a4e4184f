"""Background threads run at a lower priority than the GUI thread (Linux's per-thread nice)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from imgdesk.core.repository import Repository
from imgdesk.engine import priority
from tests import images
from tests.engine.conftest import create_request
from tests.engine.test_engine import EngineFactory, run
from tests.httpservers import Exchange, HttpTestServer, respond

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's"
)


def _nice_of_threads() -> dict[int, int]:
    """Every thread of this process: native id -> nice value (field 19 of its stat)."""
    found = {}
    for task in Path("/proc/self/task").iterdir():
        stat = (task / "stat").read_text()
        found[int(task.name)] = int(stat.rsplit(")", 1)[1].split()[16])
    return found


def test_a_thread_is_lowered_once_and_the_caller_of_others_is_not() -> None:
    main_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    def background() -> None:
        priority.lower_this_thread()
        priority.lower_this_thread()  # a second call changes nothing
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert seen == [max(main_nice, priority.BACKGROUND_NICE)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_nice


def test_the_engine_downloads_and_decodes_on_lowered_threads(
    qtbot: QtBot, repo: Repository, make_engine: EngineFactory, http_server: HttpTestServer
) -> None:
    """Seen from the server while the image is fetched: its worker is lowered, the GUI not."""
    main_id = threading.get_native_id()
    main_nice = os.getpriority(os.PRIO_PROCESS, main_id)
    if main_nice >= priority.BACKGROUND_NICE:
        pytest.skip(f"the tests run at nice {main_nice}: a lowered thread would look the same")
    body = images.make_jpeg(64, 48, "photo", 90)
    answer = respond(body, content_type="image/jpeg")
    during: list[dict[int, int]] = []

    def handler(exchange: Exchange) -> None:
        during.append(_nice_of_threads())
        answer(exchange)

    url = http_server.route("/a.jpg", handler)
    request_id = create_request(repo, [("1", "A", [url])])
    engine = make_engine()
    before = _nice_of_threads()  # the engine's pool has no thread yet
    assert run(qtbot, engine, request_id) == "completed"

    [threads] = during
    assert threads[main_id] == main_nice
    new = {tid: nice for tid, nice in threads.items() if tid not in before}
    # The pool thread that asked for the image (the server's own thread is not new).
    assert priority.BACKGROUND_NICE in new.values(), new
