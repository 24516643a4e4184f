"""One processing instance per data folder: the window or a headless run, not both.

Two engines on one database would schedule the same images twice. Read-only commands
(``status``, ``export``) need no lock: SQLite's WAL lets them read beside the writer.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import IO

LOCK_NAME = "imgdesk.lock"


class DataDirLock:
    """An exclusive, non-blocking lock on a data folder, released when the process ends.

    The operating system drops the lock when the process dies, even by ``kill -9``, so a
    crash never leaves a stale lock behind.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._handle: IO[str] | None = None

    def acquire(self, holder: str) -> bool:
        """Take the lock for ``holder`` (e.g. "window"); False if another process has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            _lock(handle)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {holder}\n")
        handle.flush()
        self._handle = handle
        return True

    def holder(self) -> str:
        """Who holds the lock, as written by its holder (for messages)."""
        with contextlib.suppress(OSError):
            text = self.path.read_text(encoding="utf-8").strip()
            if text:
                pid, _, kind = text.partition(" ")
                return f"{kind or 'imgdesk'} (process {pid})"
        return "another imgdesk"

    def release(self) -> None:
        """Give the lock back (also done by the OS at exit)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(handle: IO[str]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

else:
    import fcntl

    def _lock(handle: IO[str]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
