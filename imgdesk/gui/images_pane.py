"""The lower part of the window: the images of the selected request beside a preview.

The pane shows, filters and searches the images of one request and keeps the preview on
the selected one; what is done with an image (retry, copy, open) is the window's flow,
reached through the actions it hands over and the pane's signals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from PySide6.QtCore import QItemSelection, QModelIndex, QPoint, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from imgdesk.core.repository import ImageInfo, RequestInfo
from imgdesk.core.settings import Settings
from imgdesk.gui.delegates import ElidingDelegate, StageBarDelegate, ThumbnailDelegate
from imgdesk.gui.image_loading import ImageCache, OriginalFetcher
from imgdesk.gui.images_model import ImagesTableModel
from imgdesk.gui.models import OBJECT_ROLE
from imgdesk.gui.preview import PreviewPanel
from imgdesk.gui.widgets import (
    ElidedLabel,
    popup_menu,
    resize_columns,
    restore_saved,
    setup_table,
)

logger = logging.getLogger(__name__)

ROW_PADDING = 12
COLUMNS_KEY = "columns/images"
SPLITTER_KEY = "splitters/lower"
COMPARE_KEY = "preview/compare_original"


class ImagesPane(QWidget):
    """The images of one request, with a state filter and a search, and the preview.

    Remembers its columns (which are shown, their widths and order), the split between
    table and preview, and whether originals are downloaded for the comparison. Filters and
    the sort always start afresh ("where are my images?"), and the search is cleared when
    another request is shown: a search typed for one catalogue rarely fits the next.

    Args:
        model: the images of the request shown; it sorts and filters them itself.
        cache: decodes thumbnails and the compressed preview.
        fetcher: downloads originals for the comparison.
        settings: returns the processing settings in use (the download limits).
        qsettings: where the layout is kept.
        context_actions: the right-click menu (None: a separator).
        preview_actions: buttons under the preview.
        parent: the owning widget.

    Signals:
        selection_changed(): the selected images changed.
        context_image_changed(): the image under a right-click menu was set or forgotten.
        image_activated(object): the :class:`ImageInfo` of a double-clicked row.
    """

    selection_changed = Signal()
    context_image_changed = Signal()
    image_activated = Signal(object)

    def __init__(
        self,
        model: ImagesTableModel,
        cache: ImageCache,
        fetcher: OriginalFetcher,
        settings: Callable[[], Settings],
        qsettings: QSettings,
        context_actions: Sequence[QAction | None],
        preview_actions: Sequence[QAction],
        parent: QWidget | None = None,
    ) -> None:
        """Build the table, its filters and the preview; nothing is shown yet."""
        super().__init__(parent)
        self._model = model
        self._qsettings = qsettings
        self._context_actions = tuple(context_actions)
        self._request: RequestInfo | None = None
        self._failed = 0  # of the request shown, cancelled images not counted
        self._cancelled = 0
        self._context_image: ImageInfo | None = None

        self.view = QTableView()
        self._build_view(cache)
        self.state_filter_combo = QComboBox()
        self.state_filter_combo.setObjectName("state_filter")
        for key, (label, _states) in ImagesTableModel.FILTERS.items():
            self.state_filter_combo.addItem(label, key)
        self.search_edit = QLineEdit()
        self.search_edit.setObjectName("search")
        self.search_edit.setPlaceholderText("Search product, URL or error")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setAcceptDrops(False)
        self.title_label = ElidedLabel(bold=True)
        self.count_label = QLabel()
        self.preview = PreviewPanel(cache, fetcher, settings)
        self.preview.setObjectName("preview")
        for action in preview_actions:
            self.preview.add_action_button(action)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self._lay_out()
        self._connect_signals()

    # -- public API -------------------------------------------------------------------------

    @property
    def context_image(self) -> ImageInfo | None:
        """The image under the open right-click menu, if any."""
        return self._context_image

    def show_request(
        self, request: RequestInfo | None, failed: int | None = None, cancelled: int = 0
    ) -> None:
        """Show a request's images (None: none); the same request again updates its counts.

        Args:
            request: the request, as last read.
            failed: how many of its images failed, not counting cancelled ones (None: all
                its failed images).
            cancelled: how many of its images the user cancelled.
        """
        # Before the model resets: the counts read them.
        self._request = request
        self._failed = failed if failed is not None else request.failed if request else 0
        self._cancelled = cancelled
        request_id = request.id if request is not None else None
        if request_id != self._model.request_id:
            # Another catalogue, its own search: cleared with the switch, not filtered twice.
            self.search_edit.blockSignals(True)
            self.search_edit.clear()
            self.search_edit.blockSignals(False)
            self._model.set_request(request_id, search="")
            self.preview.show_image(None)
        self.title_label.setText(request.csv_name if request is not None else "")
        self.title_label.setToolTip(request.csv_path if request is not None else "")
        self.update_counts()

    def selected_images(self) -> list[ImageInfo]:
        """The selected images, in the order shown."""
        rows = self.view.selectionModel().selectedRows()
        images = [index.data(OBJECT_ROLE) for index in sorted(rows, key=QModelIndex.row)]
        return [image for image in images if isinstance(image, ImageInfo)]

    def current_image(self) -> ImageInfo | None:
        """The image with the keyboard focus, if it is selected."""
        index = self.view.currentIndex()
        if not index.isValid() or not self.view.selectionModel().isRowSelected(
            index.row(), QModelIndex()
        ):
            selected = self.selected_images()
            return selected[0] if selected else None
        image = index.data(OBJECT_ROLE)
        return image if isinstance(image, ImageInfo) else None

    def target_image(self) -> ImageInfo | None:
        """The image a one-image action applies to: the one under the menu, else the current."""
        return self._context_image or self.current_image()

    def take_target_image(self) -> ImageInfo | None:
        """:meth:`target_image`, forgetting the menu's image (its action has run)."""
        image = self.target_image()
        self._context_image = None
        return image

    def focus_search(self) -> None:
        """Put the keyboard in the search field, its text selected."""
        self.search_edit.setFocus()
        self.search_edit.selectAll()

    def update_counts(self, *_: object) -> None:
        """Say how many images the request has, how many failed and how many are shown."""
        # From the request's stored counters: counting loaded rows would walk up to 300,000
        # of them for every page the images table appends.
        request = self._request
        if self._model.request_id is None or request is None:
            self.count_label.setText("Select a request to see its images")
            return
        text = f"{request.total:,} image{'s' if request.total != 1 else ''}"
        if self._failed:
            text += f", {self._failed:,} failed"
        if self._cancelled:
            text += f", {self._cancelled:,} cancelled"
        if self._model.is_loading:
            text += f" \u2014 loading, {self._model.listed_count():,} so far"
        elif self._model.rowCount() != request.total:
            text += f" \u2014 {self._model.rowCount():,} shown"
        self.count_label.setText(text)

    def restore_state(self) -> None:
        """Put back the columns, the split and the comparison choice of :meth:`save_state`.

        Not the sort: a sort kept from the last session (by size, say) shows a request that
        just started as a page of "Waiting" rows. Every start shows input order.
        """
        header = self.view.horizontalHeader()
        restore_saved(self._qsettings, COLUMNS_KEY, header.restoreState)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        restore_saved(self._qsettings, SPLITTER_KEY, self.splitter.restoreState)
        compare = self._qsettings.value(COMPARE_KEY, True, bool)
        self.preview.set_compare_original(bool(compare))

    def save_state(self) -> None:
        """Remember the columns, the split and the comparison choice (not the filters)."""
        self._qsettings.setValue(COLUMNS_KEY, self.view.horizontalHeader().saveState())
        self._qsettings.setValue(SPLITTER_KEY, self.splitter.saveState())
        self._qsettings.setValue(COMPARE_KEY, self.preview.compare_original())

    # -- construction -----------------------------------------------------------------------

    def _build_view(self, cache: ImageCache) -> None:
        view = self.view
        view.setObjectName("images_view")
        view.setModel(self._model)
        setup_table(view, QAbstractItemView.SelectionMode.ExtendedSelection, ROW_PADDING)
        header = view.horizontalHeader()
        header.setSectionsMovable(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # input order until asked
        header.setSortIndicatorShown(True)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._on_header_context_menu_requested)
        view.setSortingEnabled(True)
        for column in (ImagesTableModel.COL_URL, ImagesTableModel.COL_OUTPUT):
            view.setItemDelegateForColumn(
                column, ElidingDelegate(Qt.TextElideMode.ElideMiddle, view)
            )
        view.setItemDelegateForColumn(ImagesTableModel.COL_STATE, StageBarDelegate(view))
        view.setItemDelegateForColumn(
            ImagesTableModel.COL_THUMBNAIL, ThumbnailDelegate(cache, view)
        )
        row_height = view.fontMetrics().height() + ROW_PADDING
        # Widths that fit the default columns beside the preview at 1280 pixels; the message
        # takes what is left (the last column stretches) and is elided, whole in its tooltip.
        resize_columns(
            view,
            {
                ImagesTableModel.COL_SERIAL: 56,
                ImagesTableModel.COL_PRODUCT: 180,
                ImagesTableModel.COL_POSITION: 30,
                ImagesTableModel.COL_THUMBNAIL: row_height + 10,
                ImagesTableModel.COL_STATE: 120,
                ImagesTableModel.COL_SIZE: 140,
                ImagesTableModel.COL_SAVINGS: 56,
                ImagesTableModel.COL_MESSAGE: 200,
                ImagesTableModel.COL_OUTPUT: 220,
            },
        )
        for column in ImagesTableModel.HIDDEN_BY_DEFAULT:
            header.hideSection(column)

    def _lay_out(self) -> None:
        filters = QHBoxLayout()
        filters.addWidget(self.title_label)
        filters.addWidget(self.count_label)
        filters.addStretch(1)
        filters.addWidget(QLabel("Show:"))
        filters.addWidget(self.state_filter_combo)
        filters.addWidget(self.search_edit, 1)
        table = QWidget()
        table_layout = QVBoxLayout(table)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addLayout(filters)
        table_layout.addWidget(self.view, 1)

        self.splitter.setObjectName("lower_splitter")
        self.splitter.addWidget(table)
        self.splitter.addWidget(self.preview)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([920, 420])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def _connect_signals(self) -> None:
        model = self._model
        model.images_refreshed.connect(self._on_model_images_refreshed)
        model.modelReset.connect(self.update_counts)
        model.loading_finished.connect(self.update_counts)
        model.rowsInserted.connect(self.update_counts)
        model.rowsRemoved.connect(self.update_counts)
        model.layoutChanged.connect(self.update_counts)
        selection = self.view.selectionModel()
        selection.selectionChanged.connect(self._on_view_selection_changed)
        selection.currentRowChanged.connect(self._on_view_current_row_changed)
        self.view.customContextMenuRequested.connect(self._on_view_context_menu_requested)
        self.view.doubleClicked.connect(self._on_view_double_clicked)
        self.state_filter_combo.currentIndexChanged.connect(self._on_state_filter_changed)
        self.search_edit.textChanged.connect(model.set_text_filter)
        self.preview.compare_original_changed.connect(self._on_preview_compare_changed)

    # -- slots ------------------------------------------------------------------------------

    def _on_model_images_refreshed(self, image_ids: list[int]) -> None:
        shown = self.preview.image
        if shown is not None and shown.id in set(image_ids):
            row = self._model.row_of(shown.id)
            if row is not None:
                self.preview.show_image(self._model.image_at(row))
        self.update_counts()

    def _on_view_selection_changed(self, *_: QItemSelection) -> None:
        self.preview.show_image(self.current_image())
        self.selection_changed.emit()

    def _on_view_current_row_changed(self, *_: QModelIndex) -> None:
        self.preview.show_image(self.current_image())

    def _on_view_context_menu_requested(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        image = index.data(OBJECT_ROLE) if index.isValid() else None
        self._context_image = image if isinstance(image, ImageInfo) else None
        self.context_image_changed.emit()  # the one-image actions follow the row clicked
        menu = popup_menu(self, self._context_actions, self.view.viewport().mapToGlobal(pos))
        # The menu hides before its chosen action runs: forget the row only afterwards.
        menu.aboutToHide.connect(lambda: QTimer.singleShot(0, self._on_context_menu_closed))

    def _on_context_menu_closed(self) -> None:
        self._context_image = None
        self.context_image_changed.emit()

    def _on_view_double_clicked(self, index: QModelIndex) -> None:
        image = index.data(OBJECT_ROLE)
        if isinstance(image, ImageInfo):
            self.image_activated.emit(image)

    def _on_state_filter_changed(self, _index: int) -> None:
        key = self.state_filter_combo.currentData()
        if isinstance(key, str):
            self._model.set_state_filter(key)

    def _on_header_context_menu_requested(self, pos: QPoint) -> None:
        """A menu of every column, to show or hide each (the thumbnail's named as such)."""
        header = self.view.horizontalHeader()
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        shown = [c for c in range(header.count()) if not header.isSectionHidden(c)]
        for column in range(self._model.columnCount()):
            title = self._model.headerData(column, Qt.Orientation.Horizontal) or "Thumbnail"
            action = menu.addAction(str(title))
            action.setCheckable(True)
            action.setChecked(column in shown)
            action.setEnabled(column not in shown or len(shown) > 1)  # keep one column
            action.setObjectName(f"column_{column}")
            action.toggled.connect(
                lambda visible, column=column: header.setSectionHidden(column, not visible)
            )
        menu.popup(header.mapToGlobal(pos))

    def _on_preview_compare_changed(self, enabled: bool) -> None:
        self._qsettings.setValue(COMPARE_KEY, enabled)
