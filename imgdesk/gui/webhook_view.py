"""The webhook deliveries of one request and every attempt of each (SPEC section 5).

SPEC 5 asks that every attempt be "visible in the app" and that the user can redeliver by
hand. :class:`WebhookPanel` shows both for the request selected in the window: its
deliveries (one per finish event) and, for the selected delivery, each POST with its time,
answer, duration and the start of the receiver's reply.

The panel only reads the outbox, a couple of small SQLite queries, cheap enough for the GUI
thread. It re-reads when the selected request changes and, coalesced on a timer, when the
sender records an attempt or settles a delivery. Writing stays with
:class:`~imgdesk.engine.webhooks.WebhookSender`: a redelivery is a call to it.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPoint,
    QSettings,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from imgdesk.core.errors import DatabaseBusyError
from imgdesk.core.outbox import AttemptInfo, DeliveryInfo, Outbox
from imgdesk.core.repository import RequestInfo
from imgdesk.core.settings import Settings
from imgdesk.core.states import DeliveryStatus, ShownState
from imgdesk.core.webhook import url_origin
from imgdesk.engine.webhooks import WebhookSender
from imgdesk.gui.delegates import ElidingDelegate, StateDelegate
from imgdesk.gui.formatting import format_timestamp_exact, format_timestamp_seconds
from imgdesk.gui.models import RIGHT_ALIGNED, STATE_ROLE, RowsTableModel, contiguous_runs
from imgdesk.gui.widgets import (
    DOCK_FEATURES,
    popup_menu,
    resize_columns,
    restore_saved,
    setup_table,
)

logger = logging.getLogger(__name__)

REFRESH_INTERVAL_MS = 100
BUSY_RETRY_MS = 1000
MAX_TOOLTIP_CHARS = 2000
ROW_PADDING = 10  # a little tighter than the window's tables: the dock is short
SINGLE = QAbstractItemView.SelectionMode.SingleSelection

# Delivery status -> (the word shown, the state key the StateDelegate colours and decorates).
DELIVERY_STATES: dict[str, tuple[str, ShownState]] = {
    DeliveryStatus.DELIVERED: ("Delivered", ShownState.DONE),
    DeliveryStatus.PENDING: ("Pending", ShownState.RETRYING),
    DeliveryStatus.FAILED: ("Failed", ShownState.FAILED),
}
SETTINGS_HINT = (
    "<b>No webhook is set up.</b> imgdesk can tell another system (a shop, an ERP, a script) "
    "when a request finishes,<br>by POSTing the request's results to a URL of yours. "
    "Set one in <b>Settings \u2192 Webhook</b>."
)


def attempt_succeeded(attempt: AttemptInfo) -> bool:
    """Only a 2xx answer is a success (SPEC 5)."""
    return attempt.status_code is not None and 200 <= attempt.status_code < 300


def attempt_result(attempt: AttemptInfo) -> str:
    """``HTTP 200`` for a success, else the recorded error (it names the status code)."""
    if attempt_succeeded(attempt):
        return f"HTTP {attempt.status_code}"
    if attempt.error:
        return attempt.error
    return f"HTTP {attempt.status_code}" if attempt.status_code else "No answer"


def _plain_tooltip(text: str) -> str:
    """A tooltip showing ``text`` as typed: a receiver's reply may well be HTML."""
    if len(text) > MAX_TOOLTIP_CHARS:
        text = text[:MAX_TOOLTIP_CHARS] + "\u2026"
    return f'<p style="white-space:pre-wrap">{html.escape(text)}</p>'


def _one_line(text: str) -> str:
    return " ".join(text.split())


class DeliveriesTableModel(RowsTableModel):
    """A request's webhook deliveries, newest first, as :class:`DeliveryInfo` rows.

    :meth:`set_deliveries` keeps the rows (and so the view's selection) when the same
    deliveries come back with new states, announcing only the rows that changed.
    """

    COL_EVENT = 0
    COL_STATUS = 1
    COL_ATTEMPTS = 2
    COL_WEBHOOK_ID = 3
    COL_RECEIVER = 4
    COLUMN_COUNT = 5

    HEADERS = {
        COL_EVENT: "Event",
        COL_STATUS: "Status",
        COL_ATTEMPTS: "Attempts",
        COL_WEBHOOK_ID: "Webhook-id",
        COL_RECEIVER: "Receiver",
    }
    HEADER_TIPS = {
        COL_ATTEMPTS: "Every POST made for this event, redeliveries included",
        COL_WEBHOOK_ID: "The webhook-id header: the same on every attempt and redelivery, "
        "so the receiver can ignore a copy it already has",
    }

    def __init__(self, parent: QObject | None = None) -> None:
        """Create an empty model."""
        super().__init__(parent)
        self._rows: list[DeliveryInfo] = []

    def set_deliveries(self, deliveries: Sequence[DeliveryInfo]) -> None:
        """Show these deliveries (update in place when they are the same ones)."""
        new = list(deliveries)
        if [d.id for d in new] != [d.id for d in self._rows]:
            self.beginResetModel()
            self._rows = new
            self.endResetModel()
            return
        pairs = enumerate(zip(self._rows, new, strict=True))
        changed = [row for row, (old, info) in pairs if old != info]
        self._rows = new
        for first, last in contiguous_runs(changed):
            self.dataChanged.emit(self.index(first, 0), self.index(last, self.COLUMN_COUNT - 1))

    def delivery_at(self, row: int) -> DeliveryInfo:
        """The delivery shown in ``row``."""
        return self._rows[row]

    def row_of(self, delivery_id: str) -> int | None:
        """The row of a delivery, or None when it is not shown."""
        return next((row for row, d in enumerate(self._rows) if d.id == delivery_id), None)

    def deliveries(self) -> Sequence[DeliveryInfo]:
        """Every delivery shown, newest first."""
        return tuple(self._rows)

    # -- Qt model API -----------------------------------------------------------------------

    def _role_data(self, delivery: DeliveryInfo, column: int, role: int) -> Any:
        """Other roles for the view and the state delegate."""
        if role == STATE_ROLE and column == self.COL_STATUS:
            return DELIVERY_STATES.get(delivery.status, ("", delivery.status))[1]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(delivery, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == self.COL_ATTEMPTS:
            return RIGHT_ALIGNED
        return None

    def _display(self, delivery: DeliveryInfo, column: int) -> str | None:
        if column == self.COL_EVENT:
            return delivery.event
        if column == self.COL_STATUS:
            return DELIVERY_STATES.get(delivery.status, (delivery.status, ""))[0]
        if column == self.COL_ATTEMPTS:
            return str(len(delivery.history))
        if column == self.COL_WEBHOOK_ID:
            return delivery.id
        if column == self.COL_RECEIVER:
            return url_origin(delivery.url)
        return None

    def _sort_value(self, delivery: DeliveryInfo, column: int) -> Any:
        if column == self.COL_ATTEMPTS:
            return len(delivery.history)
        if column == self.COL_RECEIVER:
            return delivery.url
        return self._display(delivery, column)

    def _tooltip(self, delivery: DeliveryInfo, column: int) -> str | None:
        if column == self.COL_STATUS:
            if delivery.status == DeliveryStatus.DELIVERED and delivery.finished_at is not None:
                return f"Delivered at {format_timestamp_seconds(delivery.finished_at)}"
            if delivery.status == DeliveryStatus.FAILED:
                reason = f": {delivery.last_error}" if delivery.last_error else ""
                return f"Given up{reason}. Redeliver to send it again."
            if delivery.status == DeliveryStatus.PENDING and delivery.attempts:
                return (
                    f"Attempt {delivery.attempts} failed; the next one is due at "
                    f"{format_timestamp_seconds(delivery.next_attempt_at)}"
                )
            if delivery.status == DeliveryStatus.PENDING:
                return "Waiting to be sent"
        if column == self.COL_ATTEMPTS and delivery.attempts != len(delivery.history):
            return (
                f"{len(delivery.history)} attempts in all, {delivery.attempts} since the "
                "last redelivery"
            )
        if column == self.COL_RECEIVER:
            # The window is the user's own: the full URL is fine here (not in the log).
            return delivery.url
        if column == self.COL_WEBHOOK_ID:
            return delivery.id
        return None


class AttemptsTableModel(RowsTableModel):
    """The attempts of one delivery, oldest first; new attempts are appended as rows."""

    COL_TIME = 0
    COL_RESULT = 1
    COL_DURATION = 2
    COL_RESPONSE = 3
    COLUMN_COUNT = 4

    HEADERS = {
        COL_TIME: "Time",
        COL_RESULT: "Answer",
        COL_DURATION: "Duration",
        COL_RESPONSE: "Response",
    }
    HEADER_TIPS = {
        COL_RESULT: "The receiver's HTTP status, or why there was none",
        COL_RESPONSE: "The start of the receiver's reply",
    }

    def __init__(self, parent: QObject | None = None) -> None:
        """Create an empty model."""
        super().__init__(parent)
        self._delivery_id: str | None = None
        self._rows: list[AttemptInfo] = []

    @property
    def delivery_id(self) -> str | None:
        """The delivery whose attempts are shown, or None."""
        return self._delivery_id

    def set_attempts(self, delivery_id: str | None, attempts: Sequence[AttemptInfo]) -> None:
        """Show a delivery's attempts; new attempts of the same delivery are inserted."""
        new = list(attempts)
        old = self._rows
        if delivery_id == self._delivery_id and new[: len(old)] == old:
            if len(new) > len(old):
                self.beginInsertRows(QModelIndex(), len(old), len(new) - 1)
                self._rows = new
                self.endInsertRows()
            return
        self.beginResetModel()
        self._delivery_id = delivery_id
        self._rows = new
        self.endResetModel()

    def attempt_at(self, row: int) -> AttemptInfo:
        """The attempt shown in ``row``."""
        return self._rows[row]

    def attempts(self) -> Sequence[AttemptInfo]:
        """Every attempt shown, oldest first."""
        return tuple(self._rows)

    # -- Qt model API -----------------------------------------------------------------------

    def _role_data(self, attempt: AttemptInfo, column: int, role: int) -> Any:
        """Other roles for the view and the state delegate."""
        if role == STATE_ROLE and column == self.COL_RESULT:
            return ShownState.DONE if attempt_succeeded(attempt) else ShownState.FAILED
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(attempt, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == self.COL_DURATION:
            return RIGHT_ALIGNED
        return None

    def _display(self, attempt: AttemptInfo, column: int) -> str | None:
        if column == self.COL_TIME:
            return format_timestamp_seconds(attempt.attempted_at)
        if column == self.COL_RESULT:
            return attempt_result(attempt)
        if column == self.COL_DURATION:
            return f"{attempt.duration_ms:,} ms"
        if column == self.COL_RESPONSE:
            return _one_line(attempt.response_excerpt or "")
        return None

    def _sort_value(self, attempt: AttemptInfo, column: int) -> Any:
        if column == self.COL_TIME:
            return attempt.attempted_at
        if column == self.COL_DURATION:
            return attempt.duration_ms
        return self._display(attempt, column)

    def _tooltip(self, attempt: AttemptInfo, column: int) -> str | None:
        if column == self.COL_TIME:
            return format_timestamp_exact(attempt.attempted_at)
        if column == self.COL_RESULT:
            parts = [f"HTTP {attempt.status_code}" if attempt.status_code else "No HTTP answer"]
            if attempt.error and attempt.error != parts[0]:
                parts.append(attempt.error)
            return _plain_tooltip(": ".join(parts))
        if column == self.COL_RESPONSE and attempt.response_excerpt:
            return _plain_tooltip(attempt.response_excerpt)
        return None


class WebhookPanel(QWidget):
    """The "Webhook deliveries" view of the selected request, with Redeliver.

    Args:
        outbox: read for the request's deliveries and their attempts.
        sender: redelivers by hand; its signals refresh the view (None: read-only).
        settings: returns the settings in use (the global webhook URL).
        parent: the owning widget.

    Signals:
        settings_requested(): the user asked to set the webhook up (Settings, Webhook tab).
    """

    settings_requested = Signal()

    def __init__(
        self,
        outbox: Outbox,
        sender: WebhookSender | None,
        settings: Callable[[], Settings],
        parent: QWidget | None = None,
    ) -> None:
        """Build an empty panel; :meth:`set_request` shows a request."""
        super().__init__(parent)
        self._outbox = outbox
        self._sender = sender
        self._settings = settings
        self._request: RequestInfo | None = None
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_INTERVAL_MS)
        self._refresh_timer.timeout.connect(self.refresh)

        self.setObjectName("webhook_panel")
        self.deliveries_model = DeliveriesTableModel(self)
        self.attempts_model = AttemptsTableModel(self)
        self._build()
        if sender is not None:
            sender.attempt_recorded.connect(self._on_sender_attempt_recorded)
            sender.delivery_finished.connect(self._on_sender_delivery_finished)
        self._update_texts()
        self._update_actions()

    # -- construction -----------------------------------------------------------------------

    def _build(self) -> None:
        style = self.style()
        self.action_redeliver = QAction(
            style.standardIcon(QStyle.StandardPixmap.SP_BrowserReload), "&Redeliver", self
        )
        self.action_redeliver.setToolTip("Send the selected event again, with the same webhook-id")
        self.action_redeliver.triggered.connect(lambda _checked=False: self.redeliver_selected())
        self.action_copy_id = QAction("Copy &Webhook-id", self)
        self.action_copy_id.triggered.connect(lambda _checked=False: self._copy_webhook_id())
        self._build_tables()
        self.stack = QStackedWidget()
        self.stack.addWidget(self._build_hint())
        self.stack.addWidget(self._build_deliveries_page())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

    def _build_tables(self) -> None:
        self.deliveries_view = QTableView()
        self.deliveries_view.setObjectName("webhook_deliveries_view")
        self.deliveries_view.setModel(self.deliveries_model)
        setup_table(self.deliveries_view, SINGLE, ROW_PADDING)
        self.deliveries_view.setItemDelegateForColumn(
            DeliveriesTableModel.COL_STATUS, StateDelegate(self.deliveries_view)
        )
        self.deliveries_view.setItemDelegateForColumn(
            DeliveriesTableModel.COL_WEBHOOK_ID,
            ElidingDelegate(Qt.TextElideMode.ElideMiddle, self.deliveries_view),
        )
        resize_columns(
            self.deliveries_view,
            {
                DeliveriesTableModel.COL_EVENT: 125,
                DeliveriesTableModel.COL_STATUS: 100,
                DeliveriesTableModel.COL_ATTEMPTS: 65,
                DeliveriesTableModel.COL_WEBHOOK_ID: 170,
            },
        )
        self.deliveries_view.selectionModel().selectionChanged.connect(
            self._on_deliveries_selection_changed
        )
        self.deliveries_view.customContextMenuRequested.connect(
            self._on_deliveries_view_context_menu_requested
        )

        self.attempts_view = QTableView()
        self.attempts_view.setObjectName("webhook_attempts_view")
        self.attempts_view.setModel(self.attempts_model)
        setup_table(self.attempts_view, SINGLE, ROW_PADDING)
        self.attempts_view.setItemDelegateForColumn(
            AttemptsTableModel.COL_RESULT, StateDelegate(self.attempts_view)
        )
        resize_columns(
            self.attempts_view,
            {
                AttemptsTableModel.COL_TIME: 80,
                AttemptsTableModel.COL_RESULT: 230,
                AttemptsTableModel.COL_DURATION: 80,
            },
        )
        self.attempts_model.rowsInserted.connect(self._on_attempts_rows_inserted)

    def _build_deliveries_page(self) -> QWidget:
        """The summary with its buttons above the deliveries and the attempts, side by side."""
        self.summary_label = QLabel()
        self.summary_label.setObjectName("webhook_summary")
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.summary_label.setWordWrap(True)  # never what holds the window wide
        self.settings_button = QPushButton("Webhook Settings\u2026")
        self.settings_button.setObjectName("webhook_settings")
        self.settings_button.clicked.connect(lambda _checked=False: self.settings_requested.emit())
        self.redeliver_button = QPushButton(self.action_redeliver.icon(), "Redeliver")
        self.redeliver_button.setObjectName("redeliver")
        self.redeliver_button.setToolTip(self.action_redeliver.toolTip())
        self.redeliver_button.clicked.connect(lambda _checked=False: self.redeliver_selected())
        top = QHBoxLayout()
        top.setContentsMargins(4, 2, 4, 2)
        top.addWidget(self.summary_label, 1)
        top.addWidget(self.settings_button)
        top.addWidget(self.redeliver_button)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("webhook_splitter")
        self.splitter.addWidget(self.deliveries_view)
        self.splitter.addWidget(self.attempts_view)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([680, 680])
        tables = QWidget()
        tables_layout = QVBoxLayout(tables)
        tables_layout.setContentsMargins(0, 0, 0, 0)
        tables_layout.setSpacing(2)
        tables_layout.addLayout(top)
        tables_layout.addWidget(self.splitter, 1)
        return tables

    def _build_hint(self) -> QWidget:
        """No URL anywhere and nothing sent yet: what a webhook is for and where to set it."""
        self.hint_label = QLabel(SETTINGS_HINT)
        self.hint_label.setObjectName("webhook_hint")
        self.hint_label.setTextFormat(Qt.TextFormat.RichText)
        self.hint_label.setWordWrap(True)
        hint_button = QPushButton("Open Webhook Settings\u2026")
        hint_button.setObjectName("webhook_hint_settings")
        hint_button.clicked.connect(lambda _checked=False: self.settings_requested.emit())
        hint = QWidget()
        hint_layout = QVBoxLayout(hint)
        hint_layout.setContentsMargins(12, 6, 12, 6)
        # The button under the words it acts on, not across the whole window from them.
        hint_layout.addStretch(1)
        hint_layout.addWidget(self.hint_label)
        hint_layout.addWidget(hint_button, 0, Qt.AlignmentFlag.AlignLeft)
        hint_layout.addStretch(1)
        return hint

    # -- public API -------------------------------------------------------------------------

    @property
    def request(self) -> RequestInfo | None:
        """The request shown, as last given."""
        return self._request

    def set_request(self, request: RequestInfo | None) -> None:
        """Show a request's deliveries; the same request again only updates the texts."""
        same = (request.id if request else None) == (self._request.id if self._request else None)
        self._request = request
        if same:
            self._update_texts()
            return
        self.refresh()

    def schedule_refresh(self) -> None:
        """Re-read the outbox soon (events come in bursts: an attempt, then its settling)."""
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def refresh(self) -> None:
        """Re-read the shown request's deliveries now, keeping the selected one selected."""
        self._refresh_timer.stop()
        self._refresh_timer.setInterval(REFRESH_INTERVAL_MS)  # after a busy retry's longer wait
        request_id = self._request.id if self._request is not None else None
        try:
            deliveries = self._outbox.list_deliveries(request_id) if request_id else []
        except DatabaseBusyError as busy:
            logger.warning("database busy, webhook deliveries shown later: %s", busy)
            self._refresh_timer.start(BUSY_RETRY_MS)
            return
        selected = self.current_delivery()
        self.deliveries_model.set_deliveries(deliveries)
        row = self.deliveries_model.row_of(selected.id) if selected is not None else None
        if row is None and deliveries:
            row = 0  # the newest event, so its attempts show without a click
        if row is not None and not self._is_row_selected(row):
            self.deliveries_view.selectionModel().select(
                self.deliveries_model.index(row, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows
                | QItemSelectionModel.SelectionFlag.Current,
            )
        self._show_attempts()
        self._update_texts()
        self._update_actions()

    def current_delivery(self) -> DeliveryInfo | None:
        """The selected delivery, as last read."""
        rows = self.deliveries_view.selectionModel().selectedRows()
        if not rows:
            return None
        return self.deliveries_model.delivery_at(rows[0].row())

    def redeliver_selected(self) -> DeliveryInfo | None:
        """Send the selected delivery again (same webhook-id); its attempts show as they come."""
        delivery = self.current_delivery()
        if delivery is None or self._sender is None or delivery.status == DeliveryStatus.PENDING:
            return None
        queued = self._sender.redeliver(delivery.id)
        if queued is not None:
            logger.info("webhook %s redelivered by hand", delivery.id)
        self.refresh()
        return queued

    def has_webhook_url(self) -> bool:
        """Whether the shown request (or, without one, the settings) has a webhook URL."""
        if self._request is not None and self._request.webhook_url:
            return True
        return bool(self._settings().webhook_url)

    # -- slots ------------------------------------------------------------------------------

    def _on_sender_attempt_recorded(self, _attempt: AttemptInfo) -> None:
        self.schedule_refresh()

    def _on_sender_delivery_finished(self, _delivery: DeliveryInfo) -> None:
        self.schedule_refresh()

    def _on_deliveries_selection_changed(self, *_: QItemSelection) -> None:
        self._show_attempts()
        self._update_actions()

    def _on_attempts_rows_inserted(self, _parent: QModelIndex, _first: int, last: int) -> None:
        # A new attempt came in: keep it in sight.
        self.attempts_view.scrollTo(self.attempts_model.index(last, 0))

    def _on_deliveries_view_context_menu_requested(self, pos: QPoint) -> None:
        if not self.deliveries_view.indexAt(pos).isValid():
            return
        popup_menu(
            self,
            (self.action_redeliver, self.action_copy_id),
            self.deliveries_view.viewport().mapToGlobal(pos),
        )

    # -- helpers ----------------------------------------------------------------------------

    def _is_row_selected(self, row: int) -> bool:
        return self.deliveries_view.selectionModel().isRowSelected(row, QModelIndex())

    def _show_attempts(self) -> None:
        delivery = self.current_delivery()
        if delivery is None:
            self.attempts_model.set_attempts(None, ())
        else:
            self.attempts_model.set_attempts(delivery.id, delivery.history)

    def _copy_webhook_id(self) -> None:
        delivery = self.current_delivery()
        if delivery is not None:
            QGuiApplication.clipboard().setText(delivery.id)

    def _update_actions(self) -> None:
        delivery = self.current_delivery()
        can = (
            self._sender is not None
            and delivery is not None
            and delivery.status != DeliveryStatus.PENDING
        )
        self.action_redeliver.setEnabled(can)
        self.redeliver_button.setEnabled(can)
        self.action_copy_id.setEnabled(delivery is not None)

    def _update_texts(self) -> None:
        deliveries = self.deliveries_model.deliveries()
        has_url = self.has_webhook_url()
        self.stack.setCurrentIndex(1 if has_url or deliveries else 0)
        self.settings_button.setVisible(not has_url)
        self.redeliver_button.setVisible(bool(deliveries))
        request = self._request
        if request is None:
            text = "Select a request to see the webhook events sent for it."
        elif deliveries:
            receiver = html.escape(url_origin(deliveries[0].url))
            text = (
                f"Events of this request go to <b>{receiver}</b>. Select one to see each "
                "attempt; <i>Redeliver</i> sends it again with the same webhook-id."
            )
            if not has_url:
                text += " No webhook URL is set now: later requests notify nobody."
        elif not request.finished:
            target = request.webhook_url or self._settings().webhook_url
            text = (
                "When this request finishes, imgdesk sends its results to "
                f"<b>{html.escape(url_origin(target))}</b>."
            )
        else:
            text = "No webhook event has been sent for this request."
        self.summary_label.setText(text)


class WebhookDock(QDockWidget):
    """The "Webhook deliveries" dock: a :class:`WebhookPanel` that remembers its layout.

    Where the dock sits and whether it shows are the window's state; the split between
    deliveries and attempts and their columns are saved here, in the QSettings given.
    """

    def __init__(
        self, panel: WebhookPanel, qsettings: QSettings, parent: QWidget | None = None
    ) -> None:
        """Dock ``panel``; its layout is kept in ``qsettings``."""
        super().__init__("Webhook deliveries", parent)
        self.panel = panel
        self._qsettings = qsettings
        self.setObjectName("webhook_dock")
        self.setWidget(panel)
        self.setFeatures(DOCK_FEATURES)
        toggle = self.toggleViewAction()
        toggle.setText("&Webhook Deliveries")
        toggle.setStatusTip("Webhook events sent for the selected request, and every attempt")
        toggle.triggered.connect(self._on_toggle_triggered)

    def restore_state(self) -> None:
        """Put back the split and the columns saved by :meth:`save_state`."""
        settings = self._qsettings
        restore_saved(settings, "splitters/webhook", self.panel.splitter.restoreState)
        for key, view in self._column_views():
            restore_saved(settings, key, view.horizontalHeader().restoreState)

    def save_state(self) -> None:
        """Remember the split between deliveries and attempts, and their columns."""
        self._qsettings.setValue("splitters/webhook", self.panel.splitter.saveState())
        for key, view in self._column_views():
            self._qsettings.setValue(key, view.horizontalHeader().saveState())

    def _column_views(self) -> tuple[tuple[str, QTableView], ...]:
        return (
            ("columns/webhook_deliveries", self.panel.deliveries_view),
            ("columns/webhook_attempts", self.panel.attempts_view),
        )

    def _on_toggle_triggered(self, checked: bool) -> None:
        if checked:
            self.raise_()  # in front of the log it shares a place with
