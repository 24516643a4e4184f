"""Background threads give way to the thread that serves the window.

On two cores the pool's decodes, the downloads and the preview's thumbnails are five threads
that want the CPU at once; at equal priority the GUI thread got a third of a core and a
repaint that needs 10 ms of CPU took 40. A lower priority only matters when the CPU is
contested: the workers still use every cycle the window leaves.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

# Linux nice value of a background thread: CFS then weighs it 335 against the GUI's 1024.
BACKGROUND_NICE = 5

_lowered: set[int] = set()  # native ids of the threads already lowered
_lowered_lock = threading.Lock()


def lower_this_thread() -> None:
    """Run the calling pool thread at a background priority, once (later calls cost a lookup).

    Linux keeps a nice value per thread; elsewhere Qt's thread priority does the same job.
    A thread that cannot be lowered (a sandbox) simply keeps its priority.
    """
    thread_id = threading.get_native_id()
    with _lowered_lock:
        if thread_id in _lowered:
            return
        _lowered.add(thread_id)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            current = os.getpriority(os.PRIO_PROCESS, thread_id)
            os.setpriority(os.PRIO_PROCESS, thread_id, max(current, BACKGROUND_NICE))
        return
    from PySide6.QtCore import QThread  # noqa: PLC0415 - only where Linux's nice is missing

    QThread.currentThread().setPriority(QThread.Priority.LowPriority)
