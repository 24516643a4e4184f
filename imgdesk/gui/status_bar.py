"""The window's status bar: messages on the left, the figures at a glance on the right.

SPEC 7 asks for throughput, success and failure counts and memory at a glance, and the
speed and time left. The bar reads them itself once a second, and soon after the engine says
a request changed (the engine's workers, the requests' stored counters and active time, the
memory the process uses). Whether work is paused and which requests wait for disk space it
reads from the engine too, at once when the engine says they changed: the window tells it
nothing.

The speed and time left are :func:`imgdesk.core.pace.pace` of the requests processing, over
their active time. While paused it shows neither: they would read as work going on.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from imgdesk.core.pace import Pace, pace, time_left_text
from imgdesk.core.records import RequestInfo
from imgdesk.core.states import RequestStatus
from imgdesk.engine.engine import Engine
from imgdesk.gui.formatting import format_bytes, format_rate
from imgdesk.gui.models import RequestsTableModel

logger = logging.getLogger(__name__)

STATUS_INTERVAL_MS = 1000
SOON_MS = 250  # after the engine's news: workers starting read at once, not a second late
MEASURING = "Measuring speed\u2026"  # busy, but under MIN_ACTIVE_S or nothing received yet


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


def running_pace(
    requests: Sequence[RequestInfo], *, paused: bool, bytes_in_flight: int = 0
) -> Pace:
    """The pace of the requests processing, taken together.

    The engine works on every started request at once, so their active times overlap: the
    longest is the time they were worked on together.

    Args:
        requests: the requests listed (those processing are counted).
        paused: whether the engine is paused.
        bytes_in_flight: bytes received so far by the downloads still running.
    """
    running = [request for request in requests if request.status == RequestStatus.PROCESSING]
    return pace(
        sum(request.done + request.failed for request in running),
        sum(request.total for request in running),
        max((request.active_s for request in running), default=0.0),
        sum(request.input_bytes for request in running) + bytes_in_flight,
        paused=paused,
    )


class StatusBar(QStatusBar):
    """Messages, and permanent labels for alerts, pause, speed, time left, workers, counts, memory.

    Args:
        engine: whether work goes on or waits for disk space, the busy workers and the
            concurrency setting.
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
        # The downloads running, each by the first of its images (twins share a download).
        self._downloads: set[int] = set()
        self.alert_label = QLabel()
        self.paused_label = QLabel()
        self.rate_label = QLabel()
        self.bytes_label = QLabel()
        self.time_left_label = QLabel()
        self.workers_label = QLabel()
        self.counts_label = QLabel()
        self.memory_label = QLabel()
        self.rate_label.setToolTip(
            "Images finished per second of work (pauses and waits left out), "
            "over the requests processing"
        )
        self.bytes_label.setToolTip("Bytes downloaded per second of work")
        self.time_left_label.setToolTip("How long the requests processing still need at this pace")
        self.workers_label.setToolTip("Images being downloaded or compressed right now")
        self.counts_label.setToolTip("Images done and failed, over every request")
        self.memory_label.setToolTip("Memory imgdesk uses")
        for label in (
            self.alert_label,
            self.paused_label,
            self.rate_label,
            self.bytes_label,
            self.time_left_label,
            self.workers_label,
            self.counts_label,
            self.memory_label,
        ):
            label.setContentsMargins(6, 0, 6, 0)
            self.addPermanentWidget(label)
        engine.request_changed.connect(self._on_engine_request_changed)
        engine.images_progressed.connect(self._on_engine_images_progressed)
        engine.paused_changed.connect(self._on_engine_paused_changed)
        engine.request_held.connect(self._on_engine_request_held)
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
        self._show_alerts()
        active = self._engine.active_count
        self._show_pace(self._engine.is_busy() or active > 0)
        concurrency = self._engine.settings.concurrency
        self.workers_label.setText(f"Workers: {active}/{concurrency}")
        self.update_counts()
        memory = process_memory_bytes()
        self.memory_label.setText(f"Memory: {format_bytes(memory)}" if memory else "")

    def _show_pace(self, busy: bool) -> None:
        """Show the speed and time left of the requests processing (nothing while paused)."""
        figures = running_pace(
            self._requests.requests(),
            paused=self._engine.paused,
            bytes_in_flight=self._bytes_in_flight(),
        )
        rate = bytes_rate = time_left = ""
        if figures.paused:
            pass  # the paused label says it
        elif not busy:
            rate = "Idle"
        elif figures.images_per_s is None and figures.bytes_per_s is None:
            rate = MEASURING
        else:
            # Big images downloading slowly have a byte rate before any image finished.
            if figures.images_per_s is not None:
                rate = f"{format_rate(figures.images_per_s)} images/s"
            if figures.bytes_per_s is not None:
                bytes_rate = f"{format_bytes(round(figures.bytes_per_s))}/s"
            time_left = time_left_text(figures.eta_s)
        self.rate_label.setText(rate)
        self.bytes_label.setText(bytes_rate)
        self.time_left_label.setText(time_left)

    def _bytes_in_flight(self) -> int:
        """The bytes the running downloads received so far; ended downloads are forgotten."""
        total = 0
        for image_id in list(self._downloads):
            received = self._engine.download_progress(image_id)
            if received is None:
                self._downloads.discard(image_id)
            else:
                total += received[0]
        return total

    def update_counts(self) -> None:
        """Sum the done and failed images of every listed request (cancelled is not failed)."""
        requests = self._requests.requests()
        done = sum(request.done for request in requests)
        failed = sum(self._requests.failed_of(request) for request in requests)
        self.counts_label.setText(f"{done:,} done \u00b7 {failed:,} failed")

    def _show_alerts(self) -> None:
        """Say "Paused" while the engine starts no new image, and which requests wait for room.

        Read from the engine each time, so a held request cancelled or deleted (which the
        engine forgets without a word) leaves the bar at the next refresh.
        """
        self.paused_label.setText("<b>Paused</b>" if self._engine.paused else "")
        held = self._engine.held_requests()
        self.alert_label.setText("<b>Waiting for disk space</b>" if held else "")
        self.alert_label.setToolTip("\n".join(held.values()))

    def stop(self) -> None:
        """Stop refreshing (the window is closing)."""
        self._timer.stop()
        self._soon.stop()

    def _on_engine_images_progressed(self, _request_id: str, image_ids: list[int]) -> None:
        if image_ids:
            self._downloads.add(image_ids[0])

    def _on_engine_paused_changed(self, _paused: bool) -> None:
        self.refresh()  # the rate and time left go, or come back, with the label

    def _on_engine_request_held(self, _request_id: str, _message: str) -> None:
        self._show_alerts()

    def _on_engine_request_changed(self, _request_id: str) -> None:
        if not self._soon.isActive():
            self._soon.start()
