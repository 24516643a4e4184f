"""Cyclic garbage is collected on the main thread, never on a worker that happens to allocate.

A QObject freed by a collection on a worker thread runs its destructor there, with Qt's
connection lock held while it waits for the GIL; the main thread, in a ``connect()``, holds
the GIL and waits for that lock. A full test run hung so.
"""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QObject, Qt
from pytestqt.qtbot import QtBot

from imgdesk.engine.main_thread_gc import collect_garbage_on_this_thread


class _InACycle(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.itself = self  # only the cyclic collector can free it


def test_a_qobject_in_a_cycle_is_freed_on_the_main_thread_not_on_an_allocating_worker(
    qtbot: QtBot,
) -> None:
    collect_garbage_on_this_thread()
    gc.collect()  # start from nothing pending
    destroyed_on: list[threading.Thread] = []
    garbage = _InACycle()
    garbage.destroyed.connect(
        lambda: destroyed_on.append(threading.current_thread()), Qt.ConnectionType.DirectConnection
    )
    del garbage

    kept: list[list[int]] = []

    def allocate() -> None:  # objects that stay, far past generation 0's threshold
        kept.extend([] for _ in range(5 * gc.get_threshold()[0]))

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    assert destroyed_on == []  # the worker collected nothing

    qtbot.waitUntil(lambda: destroyed_on != [], timeout=10_000)  # the main thread's timer
    assert destroyed_on == [threading.main_thread()]
    assert not gc.isenabled()
