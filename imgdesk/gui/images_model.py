"""The images of one request: listed a page at a time, sorted and filtered in the model.

A request may have 300,000 images, and the window must keep painting while they change:

- :class:`ImagesTableModel` shows the first page at once and appends the rest a page per
  event-loop turn, so it never holds the GUI thread for long.
- It sorts and filters itself, on plain Python values, instead of sitting behind a
  ``QSortFilterProxyModel``. Through a proxy, every cell painted cost fifteen calls into
  Python (``data()`` once per role, two ``index()`` calls each), and every sort comparison
  two more; each such call has to take the GIL back from busy workers. Here a painted
  cell costs two calls (:meth:`index` and :meth:`multiData`), its texts are built once per
  change and kept, and a sort is a Python ``list.sort`` on keys.
- The order stays right while images change: a changed image whose sort key or filter
  verdict changed is moved to its new place, and the selection moves with it (persistent
  indexes follow the image, not the row).
- A download's bytes come from the engine, not the database: a progress tick rebuilds the
  texts of the images it names and repaints only their stage cells.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from PySide6.QtCore import (
    QModelIndex,
    QModelRoleData,
    QModelRoleDataSpan,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QGuiApplication, QIcon

from imgdesk.core.errors import DatabaseBusyError
from imgdesk.core.repository import ImageInfo, Repository
from imgdesk.core.states import ImageStatus, ShownState
from imgdesk.gui import image_columns as columns
from imgdesk.gui.delegates import state_color, state_icon
from imgdesk.gui.models import (
    BUSY_RETRY_MS,
    CENTERED,
    OBJECT_ROLE,
    PROGRESS_ROLE,
    REFRESH_INTERVAL_MS,
    RIGHT_ALIGNED,
    SORT_ROLE,
    STATE_ROLE,
    RowsTableModel,
    contiguous_runs,
    shown_image_state,
)

logger = logging.getLogger(__name__)

# Images read per query when a request is shown: the first page at once, the rest one page
# per event-loop turn, so a 300,000-image request never holds the GUI thread for long.
FIRST_PAGE_ROWS = 2000  # read when a request is selected: a click may take ~20 ms
LOAD_PAGE_ROWS = 500  # then per turn: ~8 ms, so the window keeps its 10 ms heartbeat
INSERT_BATCH_ROWS = 20_000  # pages read are shown this many at a time (one repaint each)
# More changed images than this in one refresh of a sorted table: sort it all again rather
# than move each one to its place.
RESORT_ALL_ROWS = 2000
# Downloads' byte counts are shown this often at most (the engine reports each download's at
# most every 0.25 s): one repaint of the stage cells per tick, however many images download.
PROGRESS_INTERVAL_MS = 250

# What the model asks for a downloading image's bytes: Engine.download_progress.
ProgressSource = Callable[[int], columns.Received | None]

# Positions of ImageInfo fields in the plain tuples the model keeps.
_ID, _STATUS, _ERROR_CODE = 0, 7, 9
_DISPLAY = Qt.ItemDataRole.DisplayRole
_ALIGNMENT = Qt.ItemDataRole.TextAlignmentRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_DECORATION = Qt.ItemDataRole.DecorationRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole


def _search_text(text: str) -> str:
    """A search as matched: spaces collapsed, case folded."""
    return " ".join(text.split()).casefold()


def _state_of(row: tuple[Any, ...]) -> ShownState:
    """:func:`~imgdesk.gui.models.image_state` of a row tuple, without building an ImageInfo."""
    return shown_image_state(row[_STATUS], row[_ERROR_CODE])


class ImagesTableModel(RowsTableModel):
    """The images of one request, sorted and filtered, as a compact list of row tuples.

    :meth:`set_request` lists the first ``FIRST_PAGE_ROWS`` images at once and appends the
    rest a page per event-loop turn, so a huge request shows and scrolls without a freeze.

    :meth:`refresh_images` takes the engine's ``images_changed`` ids; every
    ``REFRESH_INTERVAL_MS`` the changed images are re-read in one query and announced with
    one ``dataChanged`` per contiguous run of rows, over the columns that can change. Images
    not listed yet need no refresh: they are read fresh when their page loads.

    :meth:`refresh_progress` takes the engine's ``images_progressed`` ids; every
    ``PROGRESS_INTERVAL_MS`` their bytes are asked of ``download_progress`` (no query) and
    only their stage cells are announced.

    Rows are the images shown, in the order shown: input order until :meth:`sort` is asked
    for another, only the images that pass :meth:`set_state_filter` and
    :meth:`set_text_filter`. :meth:`images` lists every image, shown or not, in input order.

    Signals:
        images_refreshed(list): ids of images whose row was re-read.
        loading_finished(str): id of the request shown, once every one of its images is listed.
    """

    COL_SERIAL = columns.COL_SERIAL
    COL_PRODUCT = columns.COL_PRODUCT
    COL_POSITION = columns.COL_POSITION
    COL_THUMBNAIL = columns.COL_THUMBNAIL
    COL_STATE = columns.COL_STATE
    COL_SIZE = columns.COL_SIZE
    COL_SAVINGS = columns.COL_SAVINGS
    COL_MESSAGE = columns.COL_MESSAGE
    COL_OUTPUT = columns.COL_OUTPUT
    COL_URL = columns.COL_URL
    COLUMN_COUNT = columns.COLUMN_COUNT
    HEADERS = columns.HEADERS
    HEADER_TIPS = columns.HEADER_TIPS
    # Columns a first start hides: the preview shows both for the selected image, and the
    # other columns then fit a 1280-pixel-wide screen. The header's menu shows them again.
    HIDDEN_BY_DEFAULT = (COL_OUTPUT, COL_URL)
    # The identity columns never change after a request is created; the others may.
    FIRST_CHANGING_COLUMN = COL_THUMBNAIL
    LAST_CHANGING_COLUMN = COL_OUTPUT
    CHANGING_ROLES = [
        _DISPLAY,
        _TOOLTIP,
        _FOREGROUND,
        _DECORATION,
        SORT_ROLE,
        OBJECT_ROLE,
        STATE_ROLE,
        PROGRESS_ROLE,
    ]
    # The state filters: key -> (label, states shown; None for all).
    FILTERS: dict[str, tuple[str, frozenset[ShownState] | None]] = {
        "all": ("All images", None),
        "failed": ("Failed only", frozenset({ShownState.FAILED, ShownState.CANCELLED})),
        "active": (
            "In progress",
            frozenset({ShownState.DOWNLOADING, ShownState.COMPRESSING, ShownState.RETRYING}),
        ),
        "waiting": ("Waiting", frozenset({ShownState.PENDING, ShownState.RETRYING})),
        "done": ("Done", frozenset({ShownState.DONE})),
    }
    # Per column, in column order: the position centred, sizes and savings to the right.
    _ALIGNMENTS = (None, None, CENTERED, None, None, RIGHT_ALIGNED, RIGHT_ALIGNED, None, None, None)

    images_refreshed = Signal(list)
    loading_finished = Signal(str)

    def __init__(
        self,
        repository: Repository,
        parent: QObject | None = None,
        *,
        download_progress: ProgressSource | None = None,
    ) -> None:
        """An empty model; :meth:`set_request` shows a request.

        ``download_progress`` is the engine's; without it, downloads show no bytes.
        """
        super().__init__(parent)
        self._repo = repository
        self._download_progress = download_progress
        # The bytes of the listed images downloading, as last told, and those told since.
        self._received: dict[int, columns.Received] = {}
        self._progressed: set[int] = set()
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(PROGRESS_INTERVAL_MS)
        self._progress_timer.timeout.connect(self.flush_progress)
        self._request_id: str | None = None
        # Every image listed, in input order, as plain tuples of an ImageInfo's fields: the
        # garbage collector stops tracking plain tuples of plain values, never a named
        # tuple. 300,000 tracked ImageInfos made every full collection an 80 ms stall.
        self._images: list[tuple[Any, ...]] = []
        self._index_of: dict[int, int] = {}  # image id -> its place in _images
        # The texts shown for each image, built when it is first painted, dropped when it
        # changes: (the text of every column..., its state key).
        self._cells: list[tuple[str, ...] | None] = []
        # The places in _images of the rows shown, in the order shown; None: all of them
        # in input order (no sort, no filter), which costs nothing to keep up.
        self._shown: list[int] | None = None
        self._row_of_place: dict[int, int] | None = None  # built when needed, for _shown
        self._sort_column = -1
        self._descending = False
        self._state_filter = "all"
        self._text = ""
        self._icons: dict[str, QIcon | None] = {}
        self._stale: set[int] = set()
        # Pages read but not listed yet: appending rows repaints the view, so pages are
        # appended together, INSERT_BATCH_ROWS at a time. Changes to them wait in _stale_unlisted.
        self._unlisted: list[tuple[Any, ...]] = []
        self._unlisted_ids: set[int] = set()
        self._stale_unlisted: set[int] = set()
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_INTERVAL_MS)
        self._refresh_timer.timeout.connect(self.flush)
        self._loading = False
        self._load_started = 0.0
        # Bumped by set_request, so loading notices a request switched by a slot of its signals.
        self._generation = 0
        self._load_timer = QTimer(self)
        self._load_timer.setSingleShot(True)
        self._load_timer.timeout.connect(self._load_next_page)

    # -- public API -------------------------------------------------------------------------

    @property
    def request_id(self) -> str | None:
        """The request shown, or None."""
        return self._request_id

    @property
    def is_loading(self) -> bool:
        """Whether images of the request shown are still to be listed."""
        return self._loading

    @property
    def state_filter(self) -> str:
        """The key of the state filter in use (see :attr:`FILTERS`)."""
        return self._state_filter

    @property
    def text_filter(self) -> str:
        """The search text in use, as matched (spaces collapsed, case folded)."""
        return self._text

    @property
    def sort_column(self) -> int:
        """The column the rows are sorted by; -1 for input order."""
        return self._sort_column

    def listed_count(self) -> int:
        """How many images of the request are listed so far, shown or filtered out."""
        return len(self._images)

    def set_request(self, request_id: str | None, *, search: str | None = None) -> None:
        """Show the images of a request (None: none), with the same sort and state filter.

        Only the first page is read here, so even a 300,000-image request is listed at once;
        the other pages follow, one per event-loop turn, until ``loading_finished``.

        Args:
            request_id: the request to show.
            search: a new search text (see :meth:`set_text_filter`); None keeps the one in use.
        """
        self._load_timer.stop()
        self._generation += 1
        generation = self._generation
        self.beginResetModel()
        self._request_id = request_id
        if search is not None:
            self._text = _search_text(search)
        self._stale.clear()
        self._received.clear()
        self._progressed.clear()
        self._unlisted, self._unlisted_ids, self._stale_unlisted = [], set(), set()
        self._loading = request_id is not None
        self._load_started = time.perf_counter()
        page = None if request_id is None else self._read_page(request_id, 0, FIRST_PAGE_ROWS)
        self._images = page or []
        self._index_of = {image[_ID]: place for place, image in enumerate(self._images)}
        self._cells = [None] * len(self._images)
        self._shown = self._arranged(range(len(self._images)))
        self._row_of_place = None
        self.endResetModel()
        if request_id is not None and page is not None and generation == self._generation:
            self._page_loaded(request_id, len(page), FIRST_PAGE_ROWS)

    def load_more(self, request_id: str) -> None:
        """Append images recorded since the request was shown (its file is still being read)."""
        if request_id != self._request_id or self._loading:
            return
        self._loading = True
        self._load_timer.start(0)

    def refresh_images(self, request_id: str, image_ids: Iterable[int]) -> None:
        """Re-read these images soon, if they belong to the request shown."""
        if request_id != self._request_id:
            return
        for image_id in image_ids:
            if image_id in self._index_of:
                self._stale.add(image_id)
            elif image_id in self._unlisted_ids:
                self._stale_unlisted.add(image_id)
        if self._stale and not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def refresh_progress(self, request_id: str, image_ids: Iterable[int]) -> None:
        """Show these images' download bytes soon, if they belong to the request shown."""
        if request_id != self._request_id or self._download_progress is None:
            return
        self._progressed.update(image_id for image_id in image_ids if image_id in self._index_of)
        if self._progressed and not self._progress_timer.isActive():
            self._progress_timer.start()

    def flush_progress(self) -> None:
        """Ask the engine for the bytes of the images told now; repaint their stage cells."""
        self._progress_timer.stop()
        progressed, self._progressed = self._progressed, set()
        if self._download_progress is None:
            return
        changed: list[int] = []
        for image_id in progressed:
            received = self._download_progress(image_id)
            if received is None:
                self._received.pop(image_id, None)  # it downloaded meanwhile
            else:
                self._received[image_id] = received
            place = self._index_of[image_id]
            # An image the table does not show as downloading yet keeps its text until it does.
            if _state_of(self._images[place]) == ShownState.DOWNLOADING:
                self._cells[place] = None
                changed.append(place)
        for first, last in contiguous_runs(self._rows_of(changed)):
            self.dataChanged.emit(
                self.index(first, self.COL_STATE),
                self.index(last, self.COL_STATE),
                [_DISPLAY, PROGRESS_ROLE],
            )

    def flush(self) -> None:
        """Re-read the stale images now, in one query; move those whose place changed."""
        self._refresh_timer.stop()
        self._refresh_timer.setInterval(REFRESH_INTERVAL_MS)  # after a busy retry's longer wait
        stale, self._stale = self._stale, set()
        if not stale:
            return
        try:
            images = self._repo.get_images(stale)
        except DatabaseBusyError as busy:
            logger.warning("database busy, images refreshed later: %s", busy)
            self._stale |= stale
            self._refresh_timer.start(BUSY_RETRY_MS)
            return
        changed: list[int] = []
        moved: list[int] = []
        for image in images:
            place = self._index_of.get(image.id)
            if place is None:
                continue
            old, new = self._images[place], tuple(image)
            if self._shown is not None and self._place_changes(old, new):
                moved.append(place)
            self._images[place] = new
            self._cells[place] = None
            if image.status != ImageStatus.DOWNLOADING:
                self._received.pop(image.id, None)
            changed.append(place)
        if moved:
            self._move(moved)
        rows = self._rows_of(changed)
        for first, last in contiguous_runs(rows):
            self.dataChanged.emit(
                self.index(first, self.FIRST_CHANGING_COLUMN),
                self.index(last, self.LAST_CHANGING_COLUMN),
                self.CHANGING_ROLES,
            )
        self.images_refreshed.emit(sorted(stale))

    def image_at(self, row: int) -> ImageInfo:
        """The image shown in ``row``."""
        return ImageInfo._make(self._images[self._place(row)])

    def row_of(self, image_id: int) -> int | None:
        """The row of an image, or None when it is not shown (not listed, or filtered out)."""
        place = self._index_of.get(image_id)
        rows = self._rows_of([place]) if place is not None else []
        return rows[0] if rows else None

    def images(self) -> Sequence[ImageInfo]:
        """Every image listed so far, shown or filtered out, in input order."""
        return tuple(map(ImageInfo._make, self._images))

    def set_state_filter(self, key: str) -> None:
        """Show only images in the states of ``key`` (``all``, ``failed``, ...)."""
        if key not in self.FILTERS:
            raise KeyError(key)
        if key != self._state_filter:
            self._state_filter = key
            self._rearrange()

    def set_text_filter(self, text: str) -> None:
        """Show only images whose S. No., product, URL or error contains ``text``."""
        text = _search_text(text)
        if text != self._text:
            self._text = text
            self._rearrange()

    # -- Qt model API -----------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:  # noqa: N802
        """Number of images shown."""
        if parent is not None and parent.isValid():
            return 0
        return len(self._images) if self._shown is None else len(self._shown)

    def index(
        self, row: int, column: int, parent: QModelIndex | QPersistentModelIndex | None = None
    ) -> QModelIndex:
        """The index of a cell, in one call into Python."""
        rows = len(self._images) if self._shown is None else len(self._shown)
        if (
            0 <= row < rows
            and 0 <= column < self.COLUMN_COUNT
            and (parent is None or not parent.isValid())
        ):
            return self.createIndex(row, column)
        return QModelIndex()

    def data(
        self,
        index: QModelIndex | QPersistentModelIndex,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        """One role of a cell (painting asks :meth:`multiData` for all of them at once)."""
        if not index.isValid() or not 0 <= index.row() < self.rowCount():
            return None
        place = self._place(index.row())
        return self._value(place, self._cells_of(place), index.column(), role)

    def multiData(  # noqa: N802
        self,
        index: QModelIndex | QPersistentModelIndex,
        roleDataSpan: QModelRoleDataSpan | QModelRoleData,  # noqa: N803
    ) -> None:
        """Every role a delegate asks for a cell, from the texts kept for its image."""
        row, column = index.row(), index.column()
        shown = self._shown
        place = row if shown is None else shown[row]
        cells = self._cells[place]
        if cells is None:
            cells = self._cells_of(place)
        # Iterating: indexing the span costs seven times more.
        for role_data in cast(Iterable[QModelRoleData], roleDataSpan):
            role = role_data.role()
            if role == _DISPLAY:
                role_data.setData(cells[column])
            else:
                role_data.setData(self._value(place, cells, column, role))

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort the rows shown by ``column`` (-1: input order); the selection follows."""
        self._sort_column = column if 0 <= column < self.COLUMN_COUNT else -1
        self._descending = order == Qt.SortOrder.DescendingOrder
        self._rearrange()

    # -- values -----------------------------------------------------------------------------

    def _value(self, place: int, cells: tuple[str, ...], column: int, role: int) -> Any:
        """Every role but the text, for the view, the delegates and the tests."""
        if role == _DISPLAY:
            return cells[column]
        if role == _ALIGNMENT:
            return self._ALIGNMENTS[column]
        if column == self.COL_STATE:
            state = cells[self.COLUMN_COUNT]
            if role == _FOREGROUND:
                return state_color(state, QGuiApplication.palette())
            if role == _DECORATION:
                return self._icon(state)
            if role == STATE_ROLE:
                return state
            if role == PROGRESS_ROLE:
                return columns.stage_progress(state, self._received.get(self._images[place][_ID]))
        if role == OBJECT_ROLE:
            return ImageInfo._make(self._images[place])
        if role == SORT_ROLE:
            return columns.sort_key(self._images[place], column)
        if role == _TOOLTIP:
            return columns.tooltip(ImageInfo._make(self._images[place]), column)
        return None

    def _cells_of(self, place: int) -> tuple[str, ...]:
        """The texts of an image's columns and its state key, built once per change."""
        cells = self._cells[place]
        if cells is None:
            row = self._images[place]
            received = self._received.get(row[_ID])
            cells = self._cells[place] = columns.cell_texts(ImageInfo._make(row), received)
        return cells

    def _icon(self, state: str) -> QIcon | None:
        if state not in self._icons:
            self._icons[state] = state_icon(state, None)
        return self._icons[state]

    # -- sorting and filtering --------------------------------------------------------------

    def _accepts(self, row: tuple[Any, ...]) -> bool:
        """Whether an image passes the state filter and the search."""
        states = self.FILTERS[self._state_filter][1]
        if states is not None and _state_of(row) not in states:
            return False
        if self._text:
            image = ImageInfo._make(row)
            searchable = (
                image.serial,
                image.product_name,
                image.url,
                image.error_code,
                image.error,
            )
            return self._text in " ".join(filter(None, searchable)).casefold()
        return True

    def _arranged(self, places: Iterable[int]) -> list[int] | None:
        """The places (ascending) that pass the filters, in the order shown; None: all, as is."""
        if self._sort_column < 0 and self._state_filter == "all" and not self._text:
            return None
        images = self._images
        shown = [place for place in places if self._accepts(images[place])]
        if self._sort_column >= 0:
            column = self._sort_column
            # Stable, also reversed: equal keys stay in input order either way.
            shown.sort(
                key=lambda place: columns.sort_key(images[place], column), reverse=self._descending
            )
        return shown

    def _place_changes(self, old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
        """Whether an image's change moves it: in or out of the filter, or to another place."""
        if self._accepts(old) != self._accepts(new):
            return True
        column = self._sort_column
        return column >= 0 and columns.sort_key(old, column) != columns.sort_key(new, column)

    def _move(self, moved: list[int]) -> None:
        """Put changed images where they now belong (or out of sight), the others staying."""
        assert self._shown is not None
        if len(moved) > RESORT_ALL_ROWS:
            self._relayout(self._arranged(range(len(self._images))))
            return
        moving = set(moved)
        shown = [place for place in self._shown if place not in moving]
        arriving = sorted(place for place in moved if self._accepts(self._images[place]))
        if self._sort_column < 0:
            shown = sorted(shown + arriving)  # two sorted runs: a linear merge
        else:
            for place in arriving:
                self._insert_sorted(shown, place)
        self._relayout(shown)

    def _insert_sorted(self, shown: list[int], place: int) -> None:
        """Insert ``place`` where the sort puts it (after equal keys of earlier images)."""
        images, column, descending = self._images, self._sort_column, self._descending
        key = columns.sort_key(images[place], column)
        low, high = 0, len(shown)
        while low < high:
            middle = (low + high) // 2
            other = shown[middle]
            other_key = columns.sort_key(images[other], column)
            if other_key == key:
                before = other < place
            else:
                before = other_key > key if descending else other_key < key
            if before:
                low = middle + 1
            else:
                high = middle
        shown.insert(low, place)

    def _rearrange(self) -> None:
        """Sort and filter every listed image again (the sort or a filter changed)."""
        self._relayout(self._arranged(range(len(self._images))))

    def _relayout(self, shown: list[int] | None) -> None:
        """Show ``shown`` instead, keeping persistent indexes (the selection) on their images."""
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        kept = [(self._place(index.row()), index.column()) for index in persistent]
        self._shown = shown
        self._row_of_place = None
        rows = self._row_map()
        moved = [
            self.createIndex(rows[place], column) if place in rows else QModelIndex()
            for place, column in kept
        ]
        self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()

    def _place(self, row: int) -> int:
        return row if self._shown is None else self._shown[row]

    def _row_map(self) -> dict[int, int]:
        """Place -> row of the images shown (only needed once a sort or a filter is on)."""
        if self._row_of_place is None:
            shown = self._shown if self._shown is not None else range(len(self._images))
            self._row_of_place = {place: row for row, place in enumerate(shown)}
        return self._row_of_place

    def _rows_of(self, places: Iterable[int]) -> list[int]:
        """The rows of these places that are shown."""
        if self._shown is None:
            return list(places)
        rows = self._row_map()
        return [rows[place] for place in places if place in rows]

    # -- loading ----------------------------------------------------------------------------

    def _load_next_page(self) -> None:
        """Append the next page of the request shown (the load timer's slot)."""
        request_id, generation = self._request_id, self._generation
        if request_id is None:
            return
        last = self._unlisted[-1] if self._unlisted else self._images[-1] if self._images else None
        page = self._read_page(request_id, last[_ID] if last else 0, LOAD_PAGE_ROWS)
        if page is None:
            return
        self._unlisted.extend(page)
        self._unlisted_ids.update(image[_ID] for image in page)
        if len(page) < LOAD_PAGE_ROWS or len(self._unlisted) >= INSERT_BATCH_ROWS:
            self._list_unlisted()
        if generation == self._generation:  # no slot of rowsInserted showed another request
            self._page_loaded(request_id, len(page), LOAD_PAGE_ROWS)

    def _list_unlisted(self) -> None:
        """Append the pages read so far in one insertion (one repaint of the view)."""
        images, self._unlisted, self._unlisted_ids = self._unlisted, [], set()
        stale, self._stale_unlisted = self._stale_unlisted, set()
        if not images:
            return
        first = len(self._images)
        places = range(first, first + len(images))
        if self._shown is None:
            self.beginInsertRows(QModelIndex(), first, first + len(images) - 1)
            self._add_images(images)
            self.endInsertRows()
        else:
            self._add_images(images)
            arriving = [place for place in places if self._accepts(self._images[place])]
            if self._sort_column >= 0:
                self._relayout(self._arranged(range(len(self._images))))
            elif arriving:
                end = len(self._shown)
                self.beginInsertRows(QModelIndex(), end, end + len(arriving) - 1)
                self._shown.extend(arriving)
                self._row_of_place = None
                self.endInsertRows()
        if stale:  # changed after they were read: read them again
            self.refresh_images(self._request_id or "", stale)

    def _add_images(self, images: list[tuple[Any, ...]]) -> None:
        first = len(self._images)
        self._images.extend(images)
        self._cells.extend([None] * len(images))
        self._index_of.update((image[_ID], place) for place, image in enumerate(images, first))

    def _read_page(
        self, request_id: str, after_id: int, limit: int
    ) -> list[tuple[Any, ...]] | None:
        """The images after ``after_id`` (as plain tuples); None when the database is busy."""
        try:
            return [
                tuple(image) for image in self._repo.list_images_page(request_id, after_id, limit)
            ]
        except DatabaseBusyError as busy:
            logger.warning("database busy, images listed later: %s", busy)
            self._load_timer.start(BUSY_RETRY_MS)
            return None

    def _page_loaded(self, request_id: str, count: int, limit: int) -> None:
        """Ask for the next page after a full one; a short page was the last."""
        if count == limit:
            self._load_timer.start(0)
            return
        self._loading = False
        logger.debug(
            "images of %s loaded: %s rows in %.0f ms",
            request_id,
            len(self._images),
            (time.perf_counter() - self._load_started) * 1000,
        )
        self.loading_finished.emit(request_id)
