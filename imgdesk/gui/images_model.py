"""The images of one request, listed a page at a time, and the filter over them.

A request may have 300,000 images: :class:`ImagesTableModel` shows the first page at once
and appends the rest a page per event-loop turn, and :class:`ImagesFilterProxyModel`
filters with Qt's own regular expression, so neither holds the GUI thread for long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from peewee import OperationalError
from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QRegularExpression,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)

from imgdesk.core.repository import ImageInfo, Repository
from imgdesk.gui.formatting import format_bytes, format_savings, savings_fraction
from imgdesk.gui.models import (
    BUSY_RETRY_MS,
    CENTERED,
    FILTER_ROLE,
    OBJECT_ROLE,
    PROGRESS_ROLE,
    REFRESH_INTERVAL_MS,
    RIGHT_ALIGNED,
    SORT_ROLE,
    STATE_LABELS,
    STATE_ROLE,
    RowsTableModel,
    contiguous_runs,
    image_state,
)

logger = logging.getLogger(__name__)

# Images read per query when a request is shown: the first page at once, the rest one page
# per event-loop turn, so a 300,000-image request never holds the GUI thread for long.
FIRST_PAGE_ROWS = 2000  # read when a request is selected: a click may take ~20 ms
LOAD_PAGE_ROWS = 500  # then per turn: ~8 ms, so the window keeps its 10 ms heartbeat
INSERT_BATCH_ROWS = 20_000  # pages read are shown this many at a time (one repaint each)

# Lifecycle order, so sorting by state groups the table the way work moves through it.
_STATE_ORDER = {
    state: rank
    for rank, state in enumerate(
        ("pending", "retrying", "downloading", "compressing", "done", "failed", "cancelled")
    )
}


def _natural_key(text: str) -> str:
    """A string that sorts ``2`` before ``10`` and numbers before words."""
    stripped = text.strip()
    if stripped.isdigit():
        return f"0{int(stripped):020d}"
    return f"1{stripped.casefold()}"


class ImagesTableModel(RowsTableModel):
    """The images of one request, in input order, as a compact list of :class:`ImageInfo`.

    :meth:`set_request` lists the first ``FIRST_PAGE_ROWS`` images at once and appends the
    rest a page per event-loop turn, so a huge request shows and scrolls without a freeze.

    :meth:`refresh_images` takes the engine's ``images_changed`` ids; every
    ``REFRESH_INTERVAL_MS`` the changed images are re-read in one query and announced with
    one ``dataChanged`` per contiguous run of rows, over the columns that can change. Images
    not listed yet need no refresh: they are read fresh when their page loads.

    Signals:
        images_refreshed(list): ids of images whose row was re-read.
        loading_finished(str): id of the request shown, once every one of its images is listed.
    """

    COL_SERIAL = 0
    COL_PRODUCT = 1
    COL_POSITION = 2
    COL_THUMBNAIL = 3
    COL_STATE = 4
    COL_SIZE = 5
    COL_SAVINGS = 6
    COL_ERROR_CODE = 7
    COL_ERROR = 8
    COL_OUTPUT = 9
    COL_URL = 10
    COLUMN_COUNT = 11

    HEADERS = {
        COL_SERIAL: "S. No.",
        COL_PRODUCT: "Product",
        COL_POSITION: "#",
        COL_THUMBNAIL: "",
        COL_STATE: "State",
        COL_SIZE: "Size before \u2192 after",
        COL_SAVINGS: "Saved",
        COL_ERROR_CODE: "Error",
        COL_ERROR: "Message",
        COL_OUTPUT: "Output file",
        COL_URL: "Input URL",
    }
    HEADER_TIPS = {
        COL_POSITION: "Position of the image among the product's URLs",
        COL_THUMBNAIL: "Thumbnail of the compressed image",
        COL_SAVINGS: "How much smaller the compressed image is",
    }
    # The identity columns never change after a request is created; the others may.
    FIRST_CHANGING_COLUMN = COL_THUMBNAIL
    LAST_CHANGING_COLUMN = COL_OUTPUT
    CHANGING_ROLES = [
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.ToolTipRole,
        SORT_ROLE,
        OBJECT_ROLE,
        STATE_ROLE,
        PROGRESS_ROLE,
        FILTER_ROLE,  # holds the state, so it changes with it
    ]

    images_refreshed = Signal(list)
    loading_finished = Signal(str)

    def __init__(self, repository: Repository, parent: QObject | None = None) -> None:
        """Create an empty model; call :meth:`set_request` to show a request."""
        super().__init__(parent)
        self._repo = repository
        self._request_id: str | None = None
        # Rows are kept as plain tuples, an ImageInfo's fields: the garbage collector stops
        # tracking plain tuples of plain values, never a named tuple. 300,000 tracked
        # ImageInfos made every full collection an 80 ms stall of the window.
        self._rows: list[tuple[Any, ...]] = []
        self._row_of: dict[int, int] = {}
        self._stale: set[int] = set()
        # Pages read but not shown yet: appending rows repaints the view, so pages are
        # appended together, INSERT_BATCH_ROWS at a time. Changes to them wait in _stale_unshown.
        self._unshown: list[tuple[Any, ...]] = []
        self._unshown_ids: set[int] = set()
        self._stale_unshown: set[int] = set()
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

    def set_request(self, request_id: str | None) -> None:
        """Show the images of a request (None: none).

        Only the first page is read here, so even a 300,000-image request is listed at once;
        the other pages follow, one per event-loop turn, until ``loading_finished``.
        """
        self._load_timer.stop()
        self._generation += 1
        generation = self._generation
        self.beginResetModel()
        self._request_id = request_id
        self._stale.clear()
        self._unshown, self._unshown_ids, self._stale_unshown = [], set(), set()
        self._loading = request_id is not None
        self._load_started = time.perf_counter()
        page = None if request_id is None else self._read_page(request_id, 0, FIRST_PAGE_ROWS)
        self._rows = page or []
        self._row_of = {image[0]: row for row, image in enumerate(self._rows)}
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
            if image_id in self._row_of:
                self._stale.add(image_id)
            elif image_id in self._unshown_ids:
                self._stale_unshown.add(image_id)
        if self._stale and not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def flush(self) -> None:
        """Re-read the stale images now, in one query, and announce the changed runs."""
        self._refresh_timer.stop()
        self._refresh_timer.setInterval(REFRESH_INTERVAL_MS)  # after a busy retry's longer wait
        stale, self._stale = self._stale, set()
        if not stale:
            return
        try:
            images = self._repo.get_images(stale)
        except OperationalError as busy:
            logger.warning("database busy, images refreshed later: %s", busy)
            self._stale |= stale
            self._refresh_timer.start(BUSY_RETRY_MS)
            return
        changed_rows = []
        for image in images:
            row = self._row_of.get(image.id)
            if row is not None:
                self._rows[row] = tuple(image)
                changed_rows.append(row)
        for first, last in contiguous_runs(changed_rows):
            self.dataChanged.emit(
                self.index(first, self.FIRST_CHANGING_COLUMN),
                self.index(last, self.LAST_CHANGING_COLUMN),
                self.CHANGING_ROLES,
            )
        self.images_refreshed.emit(sorted(stale))

    def image_at(self, row: int) -> ImageInfo:
        """The image shown in ``row``."""
        return self._row_object(row)

    def _row_object(self, row: int) -> ImageInfo:
        return ImageInfo._make(self._rows[row])

    def row_of(self, image_id: int) -> int | None:
        """The row of an image, or None when it is not shown."""
        return self._row_of.get(image_id)

    def images(self) -> Sequence[ImageInfo]:
        """Every image listed so far, in input order."""
        return tuple(map(ImageInfo._make, self._rows))

    # -- Qt model API -----------------------------------------------------------------------

    def _role_data(self, image: ImageInfo, column: int, role: int) -> Any:
        """Other roles for the view, the delegates and the proxy."""
        if role == FILTER_ROLE:
            searchable = (
                image.serial,
                image.product_name,
                image.url,
                image.error_code,
                image.error,
            )
            return f"{image_state(image)}\t{' '.join(filter(None, searchable))}".casefold()
        if role == STATE_ROLE and column == self.COL_STATE:
            return image_state(image)
        if role == PROGRESS_ROLE and column == self.COL_STATE:
            # No byte progress is reported: the bar shows the stage reached.
            return {"downloading": 1 / 3, "compressing": 2 / 3}.get(image.status)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(image, column)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if column in (self.COL_SIZE, self.COL_SAVINGS):
                return RIGHT_ALIGNED
            if column == self.COL_POSITION:
                return CENTERED
        return None

    # -- helpers ----------------------------------------------------------------------------

    def _load_next_page(self) -> None:
        """Append the next page of the request shown (the load timer's slot)."""
        request_id, generation = self._request_id, self._generation
        if request_id is None:
            return
        last = self._unshown[-1] if self._unshown else self._rows[-1] if self._rows else None
        page = self._read_page(request_id, last[0] if last else 0, LOAD_PAGE_ROWS)
        if page is None:
            return
        self._unshown.extend(page)
        self._unshown_ids.update(image[0] for image in page)
        if len(page) < LOAD_PAGE_ROWS or len(self._unshown) >= INSERT_BATCH_ROWS:
            self._show_unshown()
        if generation == self._generation:  # no slot of rowsInserted showed another request
            self._page_loaded(request_id, len(page), LOAD_PAGE_ROWS)

    def _show_unshown(self) -> None:
        """Append the pages read so far in one insertion (one repaint of the view)."""
        rows, self._unshown, self._unshown_ids = self._unshown, [], set()
        stale, self._stale_unshown = self._stale_unshown, set()
        if not rows:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self._rows.extend(rows)
        self._row_of.update((image[0], row) for row, image in enumerate(rows, first))
        self.endInsertRows()
        if stale:  # changed after they were read: read them again
            self.refresh_images(self._request_id or "", stale)

    def _read_page(
        self, request_id: str, after_id: int, limit: int
    ) -> list[tuple[Any, ...]] | None:
        """The images after ``after_id`` (as plain tuples); None when the database is busy."""
        try:
            return [
                tuple(image) for image in self._repo.list_images_page(request_id, after_id, limit)
            ]
        except OperationalError as busy:
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
            len(self._rows),
            (time.perf_counter() - self._load_started) * 1000,
        )
        self.loading_finished.emit(request_id)

    def _display(self, image: ImageInfo, column: int) -> str | None:
        if column == self.COL_SERIAL:
            return image.serial
        if column == self.COL_PRODUCT:
            return image.product_name
        if column == self.COL_POSITION:
            return str(image.position)
        if column == self.COL_STATE:
            return STATE_LABELS.get(image_state(image), image.status)
        if column == self.COL_SIZE:
            if image.status != "done" or image.input_bytes is None:
                return ""
            return f"{format_bytes(image.input_bytes)} \u2192 {format_bytes(image.output_bytes)}"
        if column == self.COL_SAVINGS:
            if image.status != "done":
                return ""
            return format_savings(savings_fraction(image.input_bytes, image.output_bytes))
        if column == self.COL_ERROR_CODE:
            return image.error_code or ""
        if column == self.COL_ERROR:
            return image.error or ""
        if column == self.COL_OUTPUT:
            return image.output_path or ""
        if column == self.COL_URL:
            return image.url
        return None

    def _sort_value(self, image: ImageInfo, column: int) -> Any:
        if column == self.COL_SERIAL:
            return _natural_key(image.serial)
        if column == self.COL_PRODUCT:
            return image.product_name.casefold()
        if column == self.COL_POSITION:
            return image.position
        if column in (self.COL_STATE, self.COL_THUMBNAIL):
            return _STATE_ORDER.get(image_state(image), 99)
        if column == self.COL_SIZE:
            return image.input_bytes if image.status == "done" and image.input_bytes else -1
        if column == self.COL_SAVINGS:
            fraction = savings_fraction(image.input_bytes, image.output_bytes)
            return fraction if image.status == "done" and fraction is not None else -1e9
        if column == self.COL_ERROR_CODE:
            return image.error_code or ""
        if column == self.COL_ERROR:
            return (image.error or "").casefold()
        if column == self.COL_OUTPUT:
            return image.output_path or ""
        if column == self.COL_URL:
            return image.url
        return None

    def _tooltip(self, image: ImageInfo, column: int) -> str | None:
        if column == self.COL_URL:
            return image.url
        if column == self.COL_OUTPUT:
            return image.output_url or image.output_path
        if column in (self.COL_ERROR, self.COL_ERROR_CODE) and image.error:
            status = f" (HTTP {image.http_status})" if image.http_status else ""
            return f"{image.error_code}{status}: {image.error}"
        if column == self.COL_STATE:
            label = STATE_LABELS.get(image_state(image), image.status)
            if image.attempts > 1:
                label = f"{label} after {image.attempts} attempts"
            if image.status == "failed":
                label += " \u2014 double-click to retry"
            return label
        if column == self.COL_SIZE and image.status == "done":
            size = f"{image.width} \u00d7 {image.height} px, " if image.width else ""
            timing = ""
            if image.download_ms is not None and image.compress_ms is not None:
                timing = (
                    f"; downloaded in {image.download_ms} ms, compressed in {image.compress_ms} ms"
                )
            return (
                f"{size}{format_bytes(image.input_bytes)} {image.input_type or ''} \u2192 "
                f"{format_bytes(image.output_bytes)} JPEG{timing}"
            )
        if column == self.COL_PRODUCT:
            return image.product_name
        return None


class ImagesFilterProxyModel(QSortFilterProxyModel):
    """Sorts images by :data:`SORT_ROLE` and filters them by state and by a search text.

    The filter is Qt's own regular expression over :data:`FILTER_ROLE`, not a Python
    ``filterAcceptsRow``: with no filter set, Qt accepts rows without calling into Python,
    so appending pages of a 300,000-image request costs no Python call per row.
    """

    FILTERS: dict[str, tuple[str, frozenset[str] | None]] = {
        "all": ("All images", None),
        "failed": ("Failed only", frozenset({"failed", "cancelled"})),
        "active": ("In progress", frozenset({"downloading", "compressing", "retrying"})),
        "waiting": ("Waiting", frozenset({"pending", "retrying"})),
        "done": ("Done", frozenset({"done"})),
    }

    def __init__(self, parent: QObject | None = None) -> None:
        """Create a proxy showing every image in source (input) order."""
        super().__init__(parent)
        self._state_filter = "all"
        self._text = ""
        self.setSortRole(SORT_ROLE)
        self.setFilterRole(FILTER_ROLE)
        self.setFilterKeyColumn(ImagesTableModel.COL_STATE)  # one whose changes are announced
        self.setDynamicSortFilter(True)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    @property
    def state_filter(self) -> str:
        """The key of the state filter in use (see :attr:`FILTERS`)."""
        return self._state_filter

    def set_state_filter(self, key: str) -> None:
        """Show only images in the states of ``key`` (``all``, ``failed``, ...)."""
        if key not in self.FILTERS:
            raise KeyError(key)
        if key != self._state_filter:
            self._state_filter = key
            self._apply()

    def set_text_filter(self, text: str) -> None:
        """Show only images whose S. No., product, URL or error contains ``text``."""
        text = " ".join(text.split()).casefold()
        if text != self._text:
            self._text = text
            self._apply()

    def _apply(self) -> None:
        """One expression for both filters, matched against ``state<TAB>the searchable text``."""
        states = self.FILTERS[self._state_filter][1]
        if states is None and not self._text:
            pattern = ""  # Qt then accepts every row without reading it
        else:
            state = "[^\t]*" if states is None else f"(?:{'|'.join(sorted(states))})"
            search = f".*{QRegularExpression.escape(self._text)}" if self._text else ""
            pattern = f"^{state}\t{search}"
        self.setFilterRegularExpression(QRegularExpression(pattern))
