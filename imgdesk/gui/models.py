"""Table models of the window: the plumbing they share, the roles, and the requests model.

Like Vorta's ``archive_table_model.py``: ``COL_*`` constants, a sort role and an object role
that survive a proxy, ``beginResetModel`` for full reloads and ``dataChanged`` limited to the
changed rows, columns and roles. The engine already coalesces its signals; the models
coalesce once more on a timer and re-read only what changed, so a 10,000-image request
costs a few small queries a second while it runs. The images of one request have their
own module, :mod:`imgdesk.gui.images_model`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QModelRoleData,
    QModelRoleDataSpan,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)

from imgdesk.core import states
from imgdesk.core.errors import DatabaseBusyError, ErrorCode
from imgdesk.core.pace import Pace, pace, time_left_text
from imgdesk.core.records import NORMAL
from imgdesk.core.repository import ImageInfo, Repository, RequestInfo
from imgdesk.core.states import ImageStatus, RequestStatus, ShownState, shown_state
from imgdesk.gui.formatting import (
    format_bytes,
    format_duration,
    format_name,
    format_rate,
    format_savings,
    format_timestamp,
    savings_fraction,
)

logger = logging.getLogger(__name__)

# Roles shared by every model; they survive QSortFilterProxyModel untouched.
SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # a value that sorts the column correctly
OBJECT_ROLE = Qt.ItemDataRole.UserRole + 2  # the RequestInfo / ImageInfo of the row
STATE_ROLE = Qt.ItemDataRole.UserRole + 3  # a ShownState for delegates (see STATE_LABELS)
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 4  # 0.0-1.0 for a progress bar, or None

REFRESH_INTERVAL_MS = 200
BUSY_RETRY_MS = 1000

# Every state either model shows, with the word a shop owner reads.
STATE_LABELS: dict[ShownState, str] = {
    ShownState.PENDING: "Waiting",
    ShownState.RETRYING: "Retrying soon",
    ShownState.DOWNLOADING: "Downloading",
    ShownState.COMPRESSING: "Compressing",
    ShownState.DONE: "Done",
    ShownState.FAILED: "Failed",
    ShownState.CANCELLED: "Cancelled",
    ShownState.QUEUED: "Queued",
    ShownState.PROCESSING: "Processing",
    ShownState.PAUSED: "Paused",
    ShownState.HELD: "Waiting for disk space",
    ShownState.COMPLETED: "Completed",
    ShownState.FINISHED_WITH_FAILURES: "Finished with failures",
    ShownState.IMPORTING: "Reading file",
}
IN_FLIGHT_STATES = frozenset(shown_state(state) for state in states.IN_FLIGHT)
RIGHT_ALIGNED = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
CENTERED = int(Qt.AlignmentFlag.AlignCenter)


# Enum members read once: reading ``ImageStatus.PENDING`` costs as much as four string
# comparisons, and filtering or sorting a 300,000-image table asks each image's state.
_PENDING, _FAILED = ImageStatus.PENDING, ImageStatus.FAILED
_RETRYING, _CANCELLED = ShownState.RETRYING, ShownState.CANCELLED
_CANCELLED_CODE = ErrorCode.CANCELLED


def shown_image_state(status: str, error_code: str | None) -> ShownState:
    """The state shown for an image's stored status and error code.

    A pending image with an error is a retry waiting to start; a failed one whose error is
    ``cancelled`` was cancelled by the user.
    """
    if status == _PENDING and error_code:
        return _RETRYING
    if status == _FAILED and error_code == _CANCELLED_CODE:
        return _CANCELLED
    return shown_state(status)


def image_state(image: ImageInfo) -> ShownState:
    """The state shown for an image (see :func:`shown_image_state`)."""
    return shown_image_state(image.status, image.error_code)


def request_state(request: RequestInfo, cancelled: int) -> ShownState:
    """The state of a request, in the user's terms (SPEC 7), given its cancelled images.

    A failed request with cancelled images is one the user cancelled; one with done images
    finished with some failures; only one with no image done failed.
    """
    if request.status == RequestStatus.FAILED:
        if cancelled:
            return ShownState.CANCELLED
        if request.done:
            return ShownState.FINISHED_WITH_FAILURES
    return shown_state(request.status)


def request_state_label(
    request: RequestInfo, cancelled: int, state: ShownState | None = None
) -> str:
    """The words of a request's state, with how many failed where that matters."""
    state = state or request_state(request, cancelled)
    failed = request.failed - cancelled
    if state == ShownState.FINISHED_WITH_FAILURES:
        return f"Finished \u2014 {failed:,} failed"
    if state == ShownState.CANCELLED and failed:
        return f"Cancelled \u2014 {failed:,} failed"
    return STATE_LABELS.get(state, request.status)


def contiguous_runs(rows: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted ``(first, last)`` pairs covering the given rows, one per contiguous run."""
    runs: list[tuple[int, int]] = []
    for row in sorted(set(rows)):
        if runs and row == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs


class RowsTableModel(QAbstractTableModel):
    """The plumbing every imgdesk table shares: a list of rows and titled columns.

    Subclasses set ``COLUMN_COUNT``, ``HEADERS`` (and optionally ``HEADER_TIPS``) and keep
    their rows in ``self._rows``; they provide ``data``.
    """

    COLUMN_COUNT = 0
    HEADERS: dict[int, str] = {}
    HEADER_TIPS: dict[int, str] = {}

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:  # noqa: N802
        """Number of rows (a table has no children)."""
        if parent is not None and parent.isValid():
            return 0
        return len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:  # noqa: N802
        """Number of columns."""
        if parent is not None and parent.isValid():
            return 0
        return self.COLUMN_COUNT

    def index(
        self, row: int, column: int, parent: QModelIndex | QPersistentModelIndex | None = None
    ) -> QModelIndex:
        """The index of a cell.

        Qt's own version asks ``rowCount`` and ``columnCount`` first: two calls into Python
        for every cell painted, where this is one.
        """
        if (
            0 <= row < self.rowCount()
            and 0 <= column < self.COLUMN_COUNT
            and (parent is None or not parent.isValid())
        ):
            return self.createIndex(row, column)
        return QModelIndex()

    def multiData(  # noqa: N802
        self,
        index: QModelIndex | QPersistentModelIndex,
        roleDataSpan: QModelRoleDataSpan | QModelRoleData,  # noqa: N803
    ) -> None:
        """Every role a delegate asks for a cell, in one call into Python.

        Qt's own version calls ``data()`` once per role: seven calls into Python per cell
        painted, each of which has to take the GIL back from busy workers.
        """
        # Iterating: indexing the span costs seven times more.
        for role_data in cast(Iterable[QModelRoleData], roleDataSpan):
            role_data.setData(self.data(index, role_data.role()))

    def headerData(  # noqa: N802
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        """Column titles and their explanations."""
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS.get(section)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.HEADER_TIPS.get(section)
        return None

    def data(
        self,
        index: QModelIndex | QPersistentModelIndex,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        """Text, the row object and sort keys here; every other role from the subclass."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._row_object(index.row())
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == OBJECT_ROLE:
            return row
        if role == SORT_ROLE:
            return self._sort_value(row, column)
        return self._role_data(row, column, role)

    def _row_object(self, row: int) -> Any:
        """What ``data()`` hands to ``_display`` and friends for a row."""
        return self._rows[row]

    def _display(self, row: Any, column: int) -> Any:
        raise NotImplementedError

    def _sort_value(self, row: Any, column: int) -> Any:
        raise NotImplementedError

    def _role_data(self, row: Any, column: int, role: int) -> Any:
        return None


class WorkState(Protocol):
    """What the engine says of the work going on; the :class:`Engine` is one.

    The requests model reads it whenever it paints a state, so "paused" and "held" live in
    the engine alone; the engine's ``paused_changed`` and ``request_held`` only ask for a
    repaint (:meth:`RequestsTableModel.repaint_states`).
    """

    @property
    def paused(self) -> bool:
        """True while no new image starts."""

    def held_requests(self) -> Mapping[str, str]:
        """The requests waiting for disk space, each with the message that says why."""


class RequestsTableModel(RowsTableModel):
    """Every processing request, newest first, refreshed from the repository on demand.

    Call :meth:`refresh_request` whenever the engine says a request changed; changes are
    coalesced and re-read every ``REFRESH_INTERVAL_MS``. Rows of running requests tick their
    duration once a second.

    Whether work is paused and which requests wait for disk space are read from ``work``
    (the engine) when painted: call :meth:`repaint_states` when it says they changed.

    A request the user cancelled shows as cancelled, one that finished with some failures
    as "Finished — N failed" (SPEC 7): only a request of which no image could be done
    shows as failed. Cancelled images are not counted as failures anywhere.

    Signals:
        requests_refreshed(list): ids of requests whose row was re-read, added or removed.
    """

    COL_NAME = 0
    COL_STATE = 1
    COL_PROGRESS = 2
    COL_COUNTS = 3
    COL_SAVED = 4
    COL_DURATION = 5
    COL_CREATED = 6
    # Added later, so the columns keep their numbers (the window shows them after COL_SAVED).
    COL_SAVED_SHARE = 7
    COL_OUTPUT = 8
    COL_SPEED = 9
    COL_TIME_LEFT = 10
    COLUMN_COUNT = 11

    HEADERS = {
        COL_NAME: "Request",
        COL_STATE: "State",
        COL_PROGRESS: "Progress",
        COL_COUNTS: "Done / Failed / Total",
        COL_SAVED: "Saved",
        COL_DURATION: "Time",
        COL_CREATED: "Added",
        COL_SAVED_SHARE: "Saved %",
        COL_OUTPUT: "Output",
        COL_SPEED: "Speed",
        COL_TIME_LEFT: "Time left",
    }
    HEADER_TIPS = {
        COL_SAVED_SHARE: "The share of the downloaded bytes saved, over the images done",
        COL_OUTPUT: "The format and quality the request's images are written in",
        COL_SPEED: "Images finished per second of work (pauses and waits left out)",
        COL_TIME_LEFT: "How long the rest should take at that speed",
    }

    requests_refreshed = Signal(list)

    def __init__(
        self, repository: Repository, work: WorkState, parent: QObject | None = None
    ) -> None:
        """Create an empty model; call :meth:`reload` to fill it."""
        super().__init__(parent)
        self._repo = repository
        self._work = work
        self._rows: list[RequestInfo] = []
        self._row_of: dict[str, int] = {}
        self._cancelled: dict[str, int] = {}  # request id -> images the user cancelled
        self._stale: set[str] = set()
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_INTERVAL_MS)
        self._refresh_timer.timeout.connect(self.flush)

    # -- public API -------------------------------------------------------------------------

    def reload(self) -> None:
        """Read every request again (a full reset)."""
        self.beginResetModel()
        self._rows = self._repo.list_requests()
        self._cancelled = self._repo.cancelled_counts()
        self._reindex()
        self._stale.clear()
        self.endResetModel()

    def refresh_request(self, request_id: str) -> None:
        """Re-read one request soon (added, changed or deleted)."""
        self._stale.add(request_id)
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def flush(self) -> None:
        """Re-read the requests marked stale now."""
        self._refresh_timer.stop()
        self._refresh_timer.setInterval(REFRESH_INTERVAL_MS)  # after a busy retry's longer wait
        stale, self._stale = self._stale, set()
        try:
            infos = {request_id: self._repo.get_request(request_id) for request_id in stale}
            cancelled = self._repo.cancelled_counts(
                request_id for request_id, info in infos.items() if info is not None
            )
        except DatabaseBusyError as busy:
            # Another program holds the database: show what we have, read again shortly.
            logger.warning("database busy, requests refreshed later: %s", busy)
            self._stale |= stale
            self._refresh_timer.start(BUSY_RETRY_MS)
            return
        changed_rows: list[int] = []
        for request_id in stale:
            info = infos[request_id]
            if request_id in cancelled:
                self._cancelled[request_id] = cancelled[request_id]
            else:
                self._cancelled.pop(request_id, None)
            row = self._row_of.get(request_id)
            if info is None:
                if row is not None:
                    self._remove_row(row)
            elif row is None:
                self._insert(info)
            else:
                self._rows[row] = info
                changed_rows.append(row)
        for first, last in contiguous_runs(changed_rows):
            self.dataChanged.emit(self.index(first, 0), self.index(last, self.COLUMN_COUNT - 1), [])
        if stale:
            self.requests_refreshed.emit(sorted(stale))

    def repaint_states(self) -> None:
        """Paint every row again: the engine paused, resumed, held or released a request.

        The state, progress, speed and time left all follow from it, so whole rows change.
        """
        if self._rows:
            bottom = self.index(len(self._rows) - 1, self.COLUMN_COUNT - 1)
            self.dataChanged.emit(self.index(0, 0), bottom, [])

    def request_at(self, row: int) -> RequestInfo:
        """The request shown in ``row``."""
        return self._rows[row]

    def row_of(self, request_id: str) -> int | None:
        """The row of a request, or None when it is not listed."""
        return self._row_of.get(request_id)

    def get(self, request_id: str) -> RequestInfo | None:
        """The listed request with that id (as last read), or None."""
        row = self._row_of.get(request_id)
        return None if row is None else self._rows[row]

    def requests(self) -> Sequence[RequestInfo]:
        """Every listed request, newest first."""
        return tuple(self._rows)

    def cancelled_of(self, request_id: str) -> int:
        """How many images of a request the user cancelled (as last read)."""
        return self._cancelled.get(request_id, 0)

    def failed_of(self, request: RequestInfo) -> int:
        """How many images of a request failed, not counting those the user cancelled."""
        return request.failed - self.cancelled_of(request.id)

    def state_of(self, request: RequestInfo) -> ShownState:
        """The state key shown for a request."""
        if not request.finished and request.id in self._work.held_requests():
            return ShownState.HELD
        paused = self._work.paused
        if request.status == RequestStatus.PENDING:
            return ShownState.PAUSED if paused else ShownState.QUEUED
        if request.status == RequestStatus.PROCESSING and paused:
            return ShownState.PAUSED
        return request_state(request, self.cancelled_of(request.id))

    def state_label(self, request: RequestInfo) -> str:
        """The words of a request's state, with how many failed where that matters."""
        return request_state_label(request, self.cancelled_of(request.id), self.state_of(request))

    def pace_of(self, request: RequestInfo) -> Pace:
        """The request's speed over its active time and the time it still needs."""
        finished = request.done + request.failed
        paused = self.state_of(request) == ShownState.PAUSED
        return pace(finished, request.total, request.active_s, request.input_bytes, paused=paused)

    def progress_of(self, request: RequestInfo) -> float:
        """The share of a request's images processed; of a cancelled one, the share done."""
        if not request.total:
            return 1.0 if request.finished else 0.0
        if self.state_of(request) == ShownState.CANCELLED:
            return request.done / request.total
        return (request.done + request.failed) / request.total

    # -- Qt model API -----------------------------------------------------------------------

    def _role_data(self, request: RequestInfo, column: int, role: int) -> Any:
        """Other roles for the view, the delegates and the proxy."""
        if role == STATE_ROLE and column == self.COL_STATE:
            return self.state_of(request)
        if role == PROGRESS_ROLE and column == self.COL_PROGRESS:
            return self.progress_of(request)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(request, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (
            self.COL_COUNTS,
            self.COL_SAVED,
            self.COL_SAVED_SHARE,
            self.COL_DURATION,
            self.COL_SPEED,
        ):
            return RIGHT_ALIGNED
        return None

    # -- helpers ----------------------------------------------------------------------------

    def _display(self, request: RequestInfo, column: int) -> str | None:
        if column == self.COL_NAME:
            return request.csv_name
        if column == self.COL_STATE:
            return self.state_label(request)
        if column == self.COL_PROGRESS:
            if not request.total:
                return "No images"
            return f"{int(100 * self.progress_of(request))}%"
        if column == self.COL_COUNTS:
            return f"{request.done:,} / {self.failed_of(request):,} / {request.total:,}"
        if column == self.COL_SAVED:
            return format_bytes(request.bytes_saved) if request.done else ""
        if column == self.COL_SAVED_SHARE:
            return format_savings(_saved_share(request))
        if column == self.COL_OUTPUT:
            return f"{format_name(request.output.format)} q{request.output.quality}"
        if column == self.COL_CREATED:
            return format_timestamp(request.created_at)
        if column == self.COL_DURATION:
            return format_duration(request.duration_s)
        if column == self.COL_SPEED:
            speed = self.pace_of(request).images_per_s
            return "" if speed is None else f"{format_rate(speed)} images/s"
        if column == self.COL_TIME_LEFT:
            running = request.status == RequestStatus.PROCESSING
            return time_left_text(self.pace_of(request).eta_s) if running else ""
        return None

    def _sort_value(self, request: RequestInfo, column: int) -> Any:
        if column == self.COL_NAME:
            return request.csv_name.casefold()
        if column == self.COL_STATE:
            return self.state_of(request)
        if column == self.COL_PROGRESS:
            return self.progress_of(request)
        if column == self.COL_COUNTS:
            return request.total
        if column == self.COL_SAVED:
            return request.bytes_saved
        if column == self.COL_SAVED_SHARE:
            share = _saved_share(request)
            return float("-inf") if share is None else share
        if column == self.COL_OUTPUT:
            return f"{request.output.format} {request.output.quality:03d}"
        if column == self.COL_CREATED:
            return request.created_at
        if column == self.COL_DURATION:
            return request.duration_s or 0.0
        if column == self.COL_SPEED:
            return self.pace_of(request).images_per_s or 0.0
        if column == self.COL_TIME_LEFT:
            eta = self.pace_of(request).eta_s
            return float("inf") if eta is None else eta
        return None

    def _tooltip(self, request: RequestInfo, column: int) -> str | None:
        if column == self.COL_NAME:
            lines = [request.csv_name]
            if request.csv_path:
                lines.append(request.csv_path)
            lines.append(f"Request {request.id}")
            return "\n".join(lines)
        if column == self.COL_STATE:
            if self.state_of(request) == ShownState.FAILED:
                tip = request.error or STATE_LABELS[ShownState.FAILED]
            else:
                tip = self._state_tip(request)
            if request.priority != NORMAL:
                tip += f"\n{request.priority.capitalize()} priority"
            return tip
        if column in (self.COL_COUNTS, self.COL_PROGRESS):
            cancelled = self.cancelled_of(request.id)
            return (
                f"{request.done:,} done, {self.failed_of(request):,} failed, "
                + (f"{cancelled:,} cancelled, " if cancelled else "")
                + f"{request.in_flight:,} in progress, {request.pending:,} waiting "
                f"of {request.total:,} images"
            )
        if column in (self.COL_SAVED, self.COL_SAVED_SHARE) and request.done:
            return (
                f"{format_bytes(request.input_bytes)} downloaded, "
                f"{format_bytes(request.output_bytes)} stored as "
                f"{format_name(request.output.format)}: {format_savings(_saved_share(request))}"
            )
        if column == self.COL_OUTPUT:
            return (
                f"{request.output.describe()}.\nA request keeps the output settings it was made "
                "with; its retries use them too."
            )
        return None

    def _state_tip(self, request: RequestInfo) -> str:
        state = self.state_of(request)
        if state == ShownState.CANCELLED:
            return (
                f"You cancelled it: {self.cancelled_of(request.id):,} images were not "
                f"processed, {request.done:,} are done. Retry All Failures carries on."
            )
        if state == ShownState.FINISHED_WITH_FAILURES:
            return (
                f"{request.done:,} of {request.total:,} images are done; "
                f"{self.failed_of(request):,} failed (see their messages). "
                "Retry All Failures tries them again."
            )
        return STATE_LABELS.get(state, request.status)

    def _insert(self, info: RequestInfo) -> None:
        # Newest first: before the first request created earlier than this one.
        row = next(
            (i for i, other in enumerate(self._rows) if other.created_at < info.created_at),
            len(self._rows),
        )
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.insert(row, info)
        self._reindex()
        self.endInsertRows()

    def _remove_row(self, row: int) -> None:
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self._reindex()
        self.endRemoveRows()

    def _reindex(self) -> None:
        self._row_of = {request.id: row for row, request in enumerate(self._rows)}


def _saved_share(request: RequestInfo) -> float | None:
    """The share of the request's downloaded bytes its done images saved (None before any)."""
    return savings_fraction(request.input_bytes, request.output_bytes) if request.done else None
