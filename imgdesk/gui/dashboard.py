"""The statistics dashboard (SPEC 8): throughput, savings per request and format, errors.

Read-only and cheap: every refresh is four grouped queries (the savings per format add up the
requests already read: a request writes one format), so it polls the database every
two seconds while it is visible instead of listening to the engine. The two error queries
go over every image of the scope, so they run on a pool thread, one at a time (a refresh
while one runs is folded into the next); the window never waits for them. Images the user
cancelled are no failures (SPEC 7): they count in no error figure, and a request the user
cancelled reads "Cancelled", as in the window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QThreadPool,
    QTimer,
)
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from imgdesk.core.errors import DatabaseError, ErrorCode
from imgdesk.core.output import ENCODERS
from imgdesk.core.repository import Repository, RequestInfo
from imgdesk.gui.formatting import (
    format_bytes,
    format_duration,
    format_name,
    format_rate,
    format_savings,
    format_timestamp,
    savings_fraction,
)
from imgdesk.gui.loading import BackgroundTask, TaskRelay
from imgdesk.gui.models import request_state_label
from imgdesk.gui.widgets import named

logger = logging.getLogger(__name__)

REFRESH_MS = 2000
SORT_ROLE = Qt.ItemDataRole.UserRole
KEY_ROLE = Qt.ItemDataRole.UserRole + 1

# What each error code means, in the words of SPEC 2.
ERROR_MEANINGS: dict[str, str] = {
    ErrorCode.INVALID_URL: "Not an absolute http or https URL (or a redirect to one)",
    ErrorCode.TIMEOUT: "A connect, read or total download deadline passed",
    ErrorCode.CONNECTION: "Refused, reset, unknown host, or the body was cut short",
    ErrorCode.TOO_MANY_REDIRECTS: "More redirects than the limit",
    ErrorCode.TOO_LARGE: "Bigger than the download size limit",
    ErrorCode.EMPTY: "The server sent nothing",
    ErrorCode.NOT_AN_IMAGE: "Not a picture (a web page, text, …)",
    ErrorCode.UNSUPPORTED_TYPE: "A picture type that is not accepted",
    ErrorCode.DECOMPRESSION_BOMB: "More pixels than the pixel limit",
    ErrorCode.BAD_IMAGE: "A damaged or truncated picture",
    ErrorCode.STORAGE: "The output file could not be written",
    ErrorCode.CANCELLED: "Cancelled by the user",
    ErrorCode.INTERNAL: "An imgdesk bug; see the log",
}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _or_dash(show: Callable[[Any], str]) -> Callable[[Any], str]:
    """``show`` for a known value, a dash for a missing one (no duration before a start)."""
    return lambda value: "—" if value is None else show(value)


_bytes = _or_dash(format_bytes)
_seconds = _or_dash(format_duration)
_rate = _or_dash(format_rate)
_time = _or_dash(format_timestamp)
_share = _or_dash(format_savings)


@dataclass(frozen=True)
class Column:
    """One column of a :class:`StatsTableModel`: its title and how to show a value."""

    title: str
    show: Callable[[Any], str] = _text
    numeric: bool = False
    tooltip: str = ""


@dataclass(frozen=True)
class StatsRow:
    """One row: a stable key (to keep the selection across refreshes) and raw values."""

    key: str
    values: tuple[Any, ...]


class StatsTableModel(QAbstractTableModel):
    """A read-only table of :class:`StatsRow`; raw values sort, formatted text displays.

    ``SORT_ROLE`` gives the raw value (a missing one sorts first) and ``KEY_ROLE`` the row's
    key, both usable through a proxy.
    """

    def __init__(self, columns: Sequence[Column], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._columns = tuple(columns)
        self._rows: list[StatsRow] = []

    def set_rows(self, rows: Sequence[StatsRow]) -> None:
        """Show ``rows``: changed values in place when the keys are the same, else a reset."""
        new = list(rows)
        if [row.key for row in new] != [row.key for row in self._rows]:
            self.beginResetModel()
            self._rows = new
            self.endResetModel()
            return
        changed = [
            i for i, (old, row) in enumerate(zip(self._rows, new, strict=True)) if old != row
        ]
        self._rows = new
        if changed:
            last = self.columnCount() - 1
            self.dataChanged.emit(self.index(changed[0], 0), self.index(changed[-1], last))

    def rowCount(  # noqa: N802 - Qt override
        self,
        parent: QModelIndex | QPersistentModelIndex = QModelIndex(),  # noqa: B008
    ) -> int:
        """One row a figure."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(  # noqa: N802 - Qt override
        self,
        parent: QModelIndex | QPersistentModelIndex = QModelIndex(),  # noqa: B008
    ) -> int:
        """One column a field."""
        return 0 if parent.isValid() else len(self._columns)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """The cell's text, sort key or alignment."""
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        column = self._columns[index.column()]
        value = row.values[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.show(value)
        if role == SORT_ROLE:
            # A missing figure sorts first; one fallback per kind keeps the order total.
            if value is None:
                return float("-inf") if column.numeric else ""
            return value
        if role == KEY_ROLE:
            return row.key
        if role == Qt.ItemDataRole.TextAlignmentRole and column.numeric:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(  # noqa: N802 - Qt override
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """The column titles."""
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self._columns):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._columns[section].title
        if role == Qt.ItemDataRole.ToolTipRole and self._columns[section].tooltip:
            return self._columns[section].tooltip
        return None


SAVED = Column("Saved", _bytes, numeric=True, tooltip="Downloaded bytes minus stored bytes")
SAVED_SHARE = Column("Saved %", _share, numeric=True, tooltip="Share of the downloaded bytes saved")

REQUEST_COLUMNS = (
    Column("CSV"),
    Column("Created", _time),
    Column("Status"),
    Column("Images", _count, numeric=True),
    Column("Done", _count, numeric=True),
    Column("Failed", _count, numeric=True, tooltip="Failed for good; cancelled ones not counted"),
    Column("Cancelled", _count, numeric=True, tooltip="Stopped by you, not failed"),
    Column("Duration", _seconds, numeric=True, tooltip="Time its images were in flight"),
    Column("Images/s", _rate, numeric=True, tooltip="Images done per second of that time"),
    SAVED,
    SAVED_SHARE,
    Column(
        "Success",
        _percent,
        numeric=True,
        tooltip="Done out of the images that finished (cancelled ones not counted)",
    ),
    Column("Output", tooltip="The format and quality the request's images are written in"),
)
REQUEST_CREATED_COLUMN = 1

ERROR_COLUMNS = (
    Column("Error"),
    Column("Images", _count, numeric=True),
    Column("Meaning"),
)

FORMAT_COLUMNS = (
    Column("Format"),
    Column("Requests", _count, numeric=True),
    Column("Images done", _count, numeric=True),
    Column("Downloaded", _bytes, numeric=True, tooltip="Bytes downloaded for the images done"),
    Column("Stored", _bytes, numeric=True, tooltip="Bytes of their outputs"),
    SAVED,
    SAVED_SHARE,
)

HOST_COLUMNS = (
    Column("Host"),
    Column("Failed", _count, numeric=True),
    Column("Images", _count, numeric=True),
    Column("Failure rate", _percent, numeric=True),
)


def request_row(request: RequestInfo, cancelled: int = 0) -> StatsRow:
    """A request's dashboard figures, ``cancelled`` of its failed images cancelled by the user."""
    duration = request.duration_s
    failed = request.failed - cancelled
    finished = request.done + failed
    output = request.output
    return StatsRow(
        request.id,
        (
            request.csv_name,
            request.created_at,
            request_state_label(request, cancelled),
            request.total,
            request.done,
            failed,
            cancelled,
            duration,
            request.done / duration if duration else None,
            request.bytes_saved if request.done else None,
            savings_fraction(request.input_bytes, request.output_bytes) if request.done else None,
            request.done / finished if finished else None,
            f"{format_name(output.format)} q{output.quality}",
        ),
    )


def format_rows(requests: Sequence[RequestInfo]) -> list[StatsRow]:
    """Savings per output format (JPEG, WebP, AVIF): the requests written in it, added up."""
    totals: dict[str, list[int]] = {}  # format -> requests, images done, downloaded, stored
    for request in requests:
        total = totals.setdefault(request.output.format, [0, 0, 0, 0])
        total[0] += 1
        total[1] += request.done
        total[2] += request.input_bytes
        total[3] += request.output_bytes
    rows = []
    for name in (name for name in ENCODERS if name in totals):
        count, done, downloaded, stored = totals[name]
        sizes: tuple[Any, ...] = (None, None, None, None)
        if done:
            sizes = (downloaded, stored, downloaded - stored, savings_fraction(downloaded, stored))
        rows.append(StatsRow(name, (format_name(name), count, done, *sizes)))
    return rows


@dataclass(frozen=True)
class ErrorFigures:
    """What the error tables show for one scope (a request, or all of them when None)."""

    request_id: str | None
    codes: list[tuple[str, int]]
    hosts: list[tuple[str, int, int]]


def read_error_figures(repository: Repository, request_id: str | None) -> ErrorFigures:
    """Count the failed images per error code and per host (on a pool thread: slow reads).

    Raises:
        DatabaseError: the database refused the read.
    """
    codes = repository.error_counts(request_id)
    hosts = repository.host_error_counts(request_id)
    return ErrorFigures(request_id, codes, hosts)


def _meaning(code: str) -> str:
    if code.startswith("http_"):
        return f"The server answered HTTP {code.removeprefix('http_')}"
    return ERROR_MEANINGS.get(code, "")


class DashboardDialog(QDialog):
    """Per-request statistics and where the errors come from; non-modal.

    Selecting a request narrows the error tables to it; with nothing selected they cover every
    request. Refreshes every two seconds while visible, and on demand.

    Args:
        repository: where the figures are read.
        parent: the window.
        pool: the thread pool the error tables are read on (the window's, so closing the
            dialog never waits for a read); by default one of the dialog's own.
    """

    def __init__(
        self,
        repository: Repository,
        parent: QWidget | None = None,
        pool: QThreadPool | None = None,
    ) -> None:
        """Read nothing until shown or refreshed."""
        super().__init__(parent)
        self.setWindowTitle("imgdesk statistics")
        self.setModal(False)
        self._repository = repository

        self._requests_model = StatsTableModel(REQUEST_COLUMNS, self)
        self._errors_model = StatsTableModel(ERROR_COLUMNS, self)
        self._hosts_model = StatsTableModel(HOST_COLUMNS, self)
        self._formats_model = StatsTableModel(FORMAT_COLUMNS, self)
        # Newest requests first; the most frequent errors and the worst hosts first.
        self._requests_view = _table(self._requests_model, "requests", REQUEST_CREATED_COLUMN, 0)
        self._requests_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._requests_view.selectionModel().selectionChanged.connect(
            self._on_request_selection_changed
        )
        errors_view = _table(self._errors_model, "errors", 1, len(ERROR_COLUMNS) - 1)
        hosts_view = _table(self._hosts_model, "hosts", 1, 0)
        formats_view = _formats_table(self._formats_model)

        self._summary = named(QLabel(), "summary")
        self._scope = named(QLabel(), "scope")
        self._updated = named(QLabel(), "updated")
        self._updated.setEnabled(False)  # greyed: a remark
        refresh = named(QPushButton("Refresh"), "refresh")
        refresh.clicked.connect(self.refresh)
        show_all = named(QPushButton("All requests"), "all_requests")
        show_all.setToolTip("Show the errors of every request")
        show_all.clicked.connect(self._requests_view.clearSelection)

        top = QHBoxLayout()
        top.addWidget(self._summary, 1)
        top.addWidget(self._updated)
        top.addWidget(refresh)
        scope_row = QHBoxLayout()
        scope_row.addWidget(self._scope, 1)
        scope_row.addWidget(show_all)
        errors = QSplitter(Qt.Orientation.Horizontal)
        errors.addWidget(errors_view)
        errors.addWidget(hosts_view)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addLayout(scope_row)
        bottom_layout.addWidget(errors)
        savings = QWidget()
        savings_layout = QVBoxLayout(savings)
        savings_layout.setContentsMargins(0, 0, 0, 0)
        savings_layout.addWidget(QLabel("Savings by output format"))
        savings_layout.addWidget(formats_view)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self._requests_view)
        split.addWidget(savings)
        split.addWidget(bottom)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split)
        self.resize(900, 560)

        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._requests: list[RequestInfo] = []
        self._cancelled: dict[str, int] = {}
        self._pool = pool or QThreadPool(self)
        self._errors_relay = TaskRelay(self)
        self._errors_relay.succeeded.connect(self._on_errors_read)
        self._errors_relay.failed.connect(self._on_errors_failed)
        self._errors_task_id = 0
        self._errors_reading = False  # at most one read in flight
        self._errors_wanted = False  # asked again while it ran: read once more after it

    def selected_request_id(self) -> str | None:
        """The request the error tables are narrowed to, if any."""
        rows = self._requests_view.selectionModel().selectedRows()
        return str(rows[0].data(KEY_ROLE)) if rows else None

    def is_reading_errors(self) -> bool:
        """True while the error tables wait for a read (or a read asked for meanwhile)."""
        return self._errors_reading or self._errors_wanted

    def refresh(self) -> None:
        """Read the figures again, keeping the selected request selected."""
        selected = self.selected_request_id()
        try:
            self._requests = self._repository.list_requests()
            self._cancelled = self._repository.cancelled_counts()
            self._requests_model.set_rows(
                [request_row(r, self._cancelled.get(r.id, 0)) for r in self._requests]
            )
            self._formats_model.set_rows(format_rows(self._requests))
            # A new request resets the model, which drops the selection: put it back.
            if selected and selected != self.selected_request_id():
                self._select_request(selected)
            self._refresh_errors()
        except DatabaseError as error:
            # A timer slot must not raise; the next tick tries again.
            logger.warning("dashboard refresh failed: %s", error)
            self._updated.setText(f"Could not read the statistics: {error}")
            return
        done = sum(r.done for r in self._requests)
        cancelled = sum(self._cancelled.values())
        failed = sum(r.failed for r in self._requests) - cancelled
        downloaded = sum(r.input_bytes for r in self._requests)
        stored = sum(r.output_bytes for r in self._requests)
        share = format_savings(savings_fraction(downloaded, stored))
        count = len(self._requests)
        stopped = f", {cancelled:,} cancelled" if cancelled else ""
        self._summary.setText(
            f"{count:,} request{'s' if count != 1 else ''} · "
            f"{sum(r.total for r in self._requests):,} images: {done:,} done, "
            f"{failed:,} failed{stopped} · {_bytes(downloaded - stored)} saved"
            + (f" ({share})" if share else "")
        )
        self._updated.setText(f"Updated {time.strftime('%H:%M:%S')}")

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        """Refresh now and every few seconds while shown."""
        self.refresh()
        self._timer.start()
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 - Qt override
        """No refreshing while hidden."""
        self._timer.stop()
        super().hideEvent(event)

    def _refresh_errors(self) -> None:
        """Read the error tables of the selected scope in the background, one read at a time."""
        if self._errors_reading:
            self._errors_wanted = True
            return
        self._errors_reading = True
        self._errors_wanted = False
        self._errors_task_id += 1
        task = BackgroundTask(
            self._errors_relay,
            self._errors_task_id,
            read_error_figures,
            self._repository,
            self.selected_request_id(),
        )
        self._pool.start(task)

    def _on_errors_read(self, _task_id: int, figures: object) -> None:
        assert isinstance(figures, ErrorFigures)
        if figures.request_id == self.selected_request_id():  # else the next read is wanted
            self._show_errors(figures)
        self._error_read_ended()

    def _on_errors_failed(self, _task_id: int, error: object) -> None:
        # The last rows stay; the next refresh tries again.
        logger.warning("dashboard error tables not read: %s", error)
        self._error_read_ended()

    def _error_read_ended(self) -> None:
        self._errors_reading = False
        if self._errors_wanted:
            self._refresh_errors()

    def _show_errors(self, figures: ErrorFigures) -> None:
        names = [r.csv_name for r in self._requests if r.id == figures.request_id]
        self._scope.setText(f"Errors of {names[0]}" if names else "Errors of all requests")
        self._errors_model.set_rows(
            [StatsRow(code, (code, count, _meaning(code))) for code, count in figures.codes]
        )
        self._hosts_model.set_rows(
            [
                StatsRow(host, (host, failed, total, failed / total if total else None))
                for host, failed, total in figures.hosts
            ]
        )

    def _select_request(self, request_id: str) -> None:
        model = self._requests_view.model()
        for row in range(model.rowCount()):
            if model.index(row, 0).data(KEY_ROLE) == request_id:
                self._requests_view.selectRow(row)
                return

    def _on_request_selection_changed(self, *_: object) -> None:
        self._refresh_errors()


def _formats_table(model: StatsTableModel) -> QTableView:
    """The formats in their usual order (JPEG, WebP, AVIF), no taller than all of them."""
    view = _table(model, "formats", None, 0)
    view.setMaximumHeight(
        view.horizontalHeader().sizeHint().height()
        + len(ENCODERS) * view.verticalHeader().defaultSectionSize()
        + 2 * view.frameWidth()
    )
    return view


def _table(
    model: StatsTableModel, name: str, sort_column: int | None, stretch_column: int
) -> QTableView:
    """A read-only view of ``model``, sorted on raw values, descending by ``sort_column``.

    Without a sort column, the rows stay in the model's order and the user cannot sort them.
    """
    proxy = QSortFilterProxyModel(model)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    view = named(QTableView(), name)
    view.setModel(proxy)
    if sort_column is not None:
        view.setSortingEnabled(True)
        view.sortByColumn(sort_column, Qt.SortOrder.DescendingOrder)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.verticalHeader().hide()
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch_column, QHeaderView.ResizeMode.Stretch)
    return view
