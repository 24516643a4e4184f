"""One processing instance per data folder: the window or a headless run, not both.

Two engines on one database would schedule the same images twice. Read-only commands
(``status``, ``export``) need no lock: SQLite's WAL lets them read beside the writer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path
from typing import IO

from imgdesk.core.errors import DataFolderError

LOCK_NAME = "imgdesk.lock"

_REASONS = {
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOSPC: "the disk is full",
    errno.ENOTDIR: "a file stands where a folder should be",
    errno.EEXIST: "a file stands where a folder should be",
}


def unusable_data_folder(data_dir: Path, error: OSError) -> DataFolderError:
    """The one sentence for a data folder imgdesk cannot write, naming the path and the fix."""
    reason = _REASONS.get(error.errno or 0) or (error.strerror or str(error)).lower()
    failed = Path(error.filename) if error.filename else data_dir
    if error.errno == errno.ENOTDIR:  # name the file in the way, not the path beneath it
        failed = next((p for p in failed.parents if p.exists() and not p.is_dir()), failed)
    where = str(data_dir) if failed == data_dir else f"{data_dir} ({failed})"
    return DataFolderError(
        f"imgdesk cannot write to its data folder {where}: {reason}. "
        "Choose another folder with --data-dir or IMGDESK_DATA_DIR."
    )


class DataDirLock:
    """An exclusive, non-blocking lock on a data folder, released when the process ends.

    The operating system drops the lock when the process dies, even by ``kill -9``, so a
    crash never leaves a stale lock behind.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self._handle: IO[str] | None = None

    def acquire(self, holder: str) -> bool:
        """Take the lock for ``holder`` (e.g. "window"); False if another process has it.

        Raises:
            DataFolderError: the data folder cannot be written (read-only, not a folder).
        """
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as error:
            raise unusable_data_folder(self.data_dir, error) from None
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
