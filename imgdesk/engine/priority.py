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


def lower_this_thread() -> None:
    """Run the calling pool thread at a background priority (a cheap no-op once it is).

    Linux keeps a nice value per thread; elsewhere Qt's thread priority does the same job.
    The priority is read each time rather than remembered: a new thread may get the id of
    one that ended. A thread that cannot be lowered (a sandbox) simply keeps its priority.
    """
    if sys.platform.startswith("linux"):
        thread_id = threading.get_native_id()
        with contextlib.suppress(OSError):
            if os.getpriority(os.PRIO_PROCESS, thread_id) < BACKGROUND_NICE:
                os.setpriority(os.PRIO_PROCESS, thread_id, BACKGROUND_NICE)
        return
    from PySide6.QtCore import QThread  # noqa: PLC0415 - only where Linux's nice is missing

    thread = QThread.currentThread()
    if thread.priority() != QThread.Priority.LowPriority:
        thread.setPriority(QThread.Priority.LowPriority)
