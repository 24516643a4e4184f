"""Python's cyclic garbage collection runs on the main thread only, from Qt's event loop.

Left automatic, a collection runs on whichever thread allocates when a threshold is crossed.
If it frees a QObject caught in a reference cycle, the QObject's C++ destructor runs on that
thread: it takes Qt's connection lock and then waits for the GIL, while the main thread,
holding the GIL, waits for that lock in a ``connect()``. A full test run hung that way: a
pool thread's download collected objects an earlier test had left. So automatic collection
is off, and a timer on the main thread collects each generation when its count says so.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QCoreApplication, QObject, QTimer

CHECK_INTERVAL_MS = 50
# CPython also holds full collections back while the heap grows; at most one this often.
FULL_COLLECTION_EVERY_S = 10.0


class _MainThreadCollector(QObject):
    """Collects, generation by generation, as CPython's own thresholds would."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._last_full = time.monotonic()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setInterval(CHECK_INTERVAL_MS)
        self._timer.timeout.connect(self.collect_due)
        self._timer.start()

    def collect_due(self) -> None:
        """Collect the oldest generation whose count is over its threshold, if any."""
        counts = gc.get_count()
        now = time.monotonic()
        if counts[2] > self._thresholds[2] and now - self._last_full >= FULL_COLLECTION_EVERY_S:
            gc.collect(2)
            self._last_full = now
        elif counts[1] > self._thresholds[1]:
            gc.collect(1)
        elif counts[0] > self._thresholds[0]:
            gc.collect(0)


_collector: _MainThreadCollector | None = None


def collect_garbage_on_this_thread() -> None:
    """From now on, collect cyclic garbage only here (the main thread, with its event loop).

    Call it on the thread that runs the application's event loop; a second call does nothing.
    """
    global _collector
    app = QCoreApplication.instance()
    if _collector is None and app is not None:
        _collector = _MainThreadCollector(app)
        app.destroyed.connect(_automatic_again)


def _automatic_again() -> None:
    """The application (and the collector's timer with it) is gone: collect as before."""
    global _collector
    _collector = None
    gc.enable()
