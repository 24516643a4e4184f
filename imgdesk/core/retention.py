"""Old outputs: remove the stored files of requests finished long ago, keeping their rows.

``imgdesk cleanup`` and the retention setting (``Settings.retention_days``) both run
:func:`remove_expired_files`. A request keeps its rows and is marked
(``files_removed_at``), so status and export can say the files are gone. Only the
:class:`~imgdesk.core.storage.Storage` interface is used, so a local folder and a bucket are
cleaned alike. Call it only while nothing processes in the data folder (hold its
:class:`~imgdesk.core.instance.DataDirLock`): a run could be writing into a request's folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from imgdesk.core.errors import ErrorCode, ImageError, SettingsError
from imgdesk.core.repository import Repository, RequestInfo
from imgdesk.core.storage import Storage, storage_key
from imgdesk.core.storage_choice import StorageChoice

logger = logging.getLogger(__name__)

DAY_S = 24 * 3600


class StorageOpener(Protocol):
    """What opens a request's storage: a :class:`~imgdesk.core.storage_choice.StorageShelf`."""

    def open(self, choice: StorageChoice) -> Storage:
        """The storage ``choice`` names."""


@dataclass(frozen=True)
class RemovedFiles:
    """The stored files of one request, removed (or, in a dry run, to be removed).

    Attributes:
        request_id: the request.
        csv_name: the name of its input CSV.
        finished_at: when it finished (seconds since the epoch).
        files: how many files its storage held (images and the output CSV's copy).
        size_bytes: their bytes: measured for files on this computer, else the database's
            count of the images' output bytes.
        exact: False when the bytes are the database's count (a bucket): "about".
    """

    request_id: str
    csv_name: str
    finished_at: float
    files: int
    size_bytes: int
    exact: bool


@dataclass(frozen=True)
class CleanupProblem:
    """A request whose files could not be removed; its row is left unmarked for next time."""

    request_id: str
    csv_name: str
    message: str


@dataclass(frozen=True)
class CleanupReport:
    """What one cleanup removed (or would remove) and what it could not."""

    dry_run: bool
    removed: list[RemovedFiles] = field(default_factory=list)
    problems: list[CleanupProblem] = field(default_factory=list)

    @property
    def files(self) -> int:
        """The files of every request listed."""
        return sum(entry.files for entry in self.removed)

    @property
    def size_bytes(self) -> int:
        """The bytes of every request listed."""
        return sum(entry.size_bytes for entry in self.removed)

    @property
    def exact(self) -> bool:
        """False when some request's bytes are an estimate."""
        return all(entry.exact for entry in self.removed)


def remove_expired_files(
    repo: Repository,
    storages: StorageOpener,
    older_than_days: float,
    now: float,
    dry_run: bool = False,
) -> CleanupReport:
    """Remove the files of requests finished more than ``older_than_days`` before ``now``.

    Each request's own storage is opened and its files removed; the row is then marked
    (``files_removed_at = now``). A storage that cannot be reached or does not let go of
    every file is one problem in the report, and the other requests are still cleaned. With
    ``dry_run`` the same requests are listed and nothing is removed or marked.
    """
    report = CleanupReport(dry_run)
    for request in repo.requests_finished_before(now - older_than_days * DAY_S):
        try:
            removed = _remove_files(request, storages.open(request.storage), dry_run)
        except (ImageError, SettingsError) as error:
            # The storage's own sentence: a bucket gone, credentials refused, a folder locked.
            logger.warning("cleanup: request %s: %s", request.id, error)
            report.problems.append(CleanupProblem(request.id, request.csv_name, str(error)))
            continue
        if not dry_run:
            repo.mark_files_removed(request.id, now)
            logger.info(
                "cleanup: removed %s files (%s bytes) of request %s",
                removed.files,
                removed.size_bytes,
                request.id,
            )
        report.removed.append(removed)
    return report


def _remove_files(request: RequestInfo, storage: Storage, dry_run: bool) -> RemovedFiles:
    """List the request's stored files and (unless ``dry_run``) remove them all.

    Raises:
        ImageError: the storage cannot be listed or emptied, or some files are still there
            afterwards.
    """
    names = storage.names(request.id)
    # Files on this computer are measured (one stat each), the exact bytes that go. Else
    # (a bucket) the database's count of its images stands for them, "about": it counts
    # an image stored once for two slots twice, and leaves out the CSV copy.
    sizes = [_file_size(storage.local_path(storage_key(request.id, name))) for name in names]
    measured = [size for size in sizes if size is not None]
    exact = len(measured) == len(sizes)
    size = sum(measured) if exact else request.output_bytes
    if not dry_run and names:
        storage.delete_request(request.id)
        # Some storages give up quietly (a read-only folder): what is still listed stayed.
        left = storage.names(request.id)
        if left:
            raise ImageError(
                ErrorCode.STORAGE,
                f"{len(left)} of its {len(names)} files are still in "
                f"{request.storage.describe()} after removing them (is it read-only?).",
            )
    finished_at = request.finished_at or 0.0
    return RemovedFiles(request.id, request.csv_name, finished_at, len(names), size, exact)


def _file_size(path: Path | None) -> int | None:
    """The size of a file on this computer; None for no path or one that cannot be read."""
    if path is None:
        return None
    try:
        return path.stat().st_size
    except OSError:
        return None


def removed_notice(removed_at: float) -> str:
    """The sentence an export of a cleaned-up request ends with (the CLI's and the window's)."""
    when = time.strftime("%Y-%m-%d", time.gmtime(removed_at))
    return (
        f"The files of this request were removed on {when} by cleanup; its output URLs are "
        "left empty."
    )
