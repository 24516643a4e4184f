"""The window's status bar: messages on the left, the figures at a glance on the right.

SPEC 7 asks for throughput, success and failure counts and memory at a glance. The bar
reads them itself once a second, and soon after the engine says a request changed (the
engine's rate of finished images, its workers, the requests' stored counters, the memory
the process uses), so the window only tells it what it cannot see: whether work is paused
and which requests wait for disk space. While paused it shows no rate: the rate of the
last seconds of work would read as work going on.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from imgdesk.engine.engine import Engine, ImageEvent
from imgdesk.gui.formatting import format_bytes, format_rate
from imgdesk.gui.models import RequestsTableModel

logger = logging.getLogger(__name__)

STATUS_INTERVAL_MS = 1000
SOON_MS = 250  # after the engine's news: workers starting read at once, not a second late
RATE_WINDOW_S = 10.0


def process_memory_bytes() -> int | None:
    """Memory the process uses (resident set), or None when it cannot be told."""
    try:
        import psutil  # optional, used when installed
    except ImportError:
        pass
    else:
        return int(psutil.Process().memory_info().rss)
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/statm", encoding="ascii") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None
    if sys.platform == "win32":
        return _windows_working_set()
    try:
        import resource

        # macOS reports bytes (the peak, the best it offers without psutil).
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    except (ImportError, OSError):
        return None


def _windows_working_set() -> int | None:
    import ctypes
    from ctypes import wintypes

    class _Counters(ctypes.Structure):
        _fields_ = [  # noqa: RUF012 - ctypes' own convention
            ("cb", wintypes.DWORD),
            ("PageFaultCount", wintypes.DWORD),
            ("PeakWorkingSetSize", ctypes.c_size_t),
            ("WorkingSetSize", ctypes.c_size_t),
            ("QuotaPeakPagedPoolUsage", ctypes.c_size_t),
            ("QuotaPagedPoolUsage", ctypes.c_size_t),
            ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t),
            ("QuotaNonPagedPoolUsage", ctypes.c_size_t),
            ("PagefileUsage", ctypes.c_size_t),
            ("PeakPagefileUsage", ctypes.c_size_t),
        ]

    try:
        counters = _Counters()
        counters.cb = ctypes.sizeof(counters)
        windll = ctypes.windll  # type: ignore[attr-defined]
        process = windll.kernel32.GetCurrentProcess()
        if windll.psapi.GetProcessMemoryInfo(process, ctypes.byref(counters), counters.cb):
            return int(counters.WorkingSetSize)
    except (AttributeError, OSError):
        pass
    return None


class StatusBar(QStatusBar):
    """Messages, and permanent labels for alerts, pause, rate, workers, counts and memory.

    Args:
        engine: the rate of finished images, the busy workers and the concurrency setting.
        requests: the listed requests, whose counters are summed.
        parent: the window.
    """

    def __init__(
        self, engine: Engine, requests: RequestsTableModel, parent: QWidget | None = None
    ) -> None:
        """Build the labels and start the once-a-second refresh."""
        super().__init__(parent)
        self._engine = engine
        self._requests = requests
        self._finished_times: deque[float] = deque()
        self._held: dict[str, str] = {}  # request id -> why it waits for disk space
        self.alert_label = QLabel()
        self.paused_label = QLabel()
        self.rate_label = QLabel()
        self.workers_label = QLabel()
        self.counts_label = QLabel()
        self.memory_label = QLabel()
        self.rate_label.setToolTip(
            f"Images finished per second over the last {RATE_WINDOW_S:.0f} s"
        )
        self.workers_label.setToolTip("Images being downloaded or compressed right now")
        self.counts_label.setToolTip("Images done and failed, over every request")
        self.memory_label.setToolTip("Memory imgdesk uses")
        for label in (
            self.alert_label,
            self.paused_label,
            self.rate_label,
            self.workers_label,
            self.counts_label,
            self.memory_label,
        ):
            label.setContentsMargins(6, 0, 6, 0)
            self.addPermanentWidget(label)
        engine.image_finished.connect(self._on_engine_image_finished)
        engine.request_changed.connect(self._on_engine_request_changed)
        self._timer = QTimer(self)
        self._timer.setInterval(STATUS_INTERVAL_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self._soon = QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(SOON_MS)
        self._soon.timeout.connect(self.refresh)

    def refresh(self) -> None:
        """Read every figure again now (the timer does it once a second)."""
        now = time.monotonic()
        times = self._finished_times
        while times and now - times[0] > RATE_WINDOW_S:
            times.popleft()
        active = self._engine.active_count
        busy = self._engine.is_busy() or active > 0
        if self._engine.paused:
            self.rate_label.setText("")  # the paused label says it
        elif times and busy:
            span = max(1.0, min(RATE_WINDOW_S, now - times[0]))
            self.rate_label.setText(f"{format_rate(len(times) / span)} images/s")
        elif busy:
            self.rate_label.setText("0 images/s")
        else:
            self.rate_label.setText("Idle")
        concurrency = self._engine.settings.concurrency
        self.workers_label.setText(f"Workers: {active}/{concurrency}")
        self.update_counts()
        memory = process_memory_bytes()
        self.memory_label.setText(f"Memory: {format_bytes(memory)}" if memory else "")

    def update_counts(self) -> None:
        """Sum the done and failed images of every listed request (cancelled is not failed)."""
        requests = self._requests.requests()
        done = sum(request.done for request in requests)
        failed = sum(self._requests.failed_of(request) for request in requests)
        self.counts_label.setText(f"{done:,} done \u00b7 {failed:,} failed")

    def set_paused(self, paused: bool) -> None:
        """Say "Paused" while the engine starts no new image (and no rate meanwhile)."""
        self.paused_label.setText("<b>Paused</b>" if paused else "")
        self.refresh()

    def set_request_held(self, request_id: str, message: str) -> None:
        """A request waits for disk space (``message`` says why) or, with "", no longer."""
        if message:
            self._held[request_id] = message
        else:
            self._held.pop(request_id, None)
        if self._held:
            self.alert_label.setText("<b>Waiting for disk space</b>")
            self.alert_label.setToolTip("\n".join(self._held.values()))
        else:
            self.alert_label.setText("")
            self.alert_label.setToolTip("")

    def stop(self) -> None:
        """Stop refreshing (the window is closing)."""
        self._timer.stop()
        self._soon.stop()

    def _on_engine_request_changed(self, _request_id: str) -> None:
        if not self._soon.isActive():
            self._soon.start()

    def _on_engine_image_finished(self, _event: ImageEvent) -> None:
        self._finished_times.append(time.monotonic())
