"""The window's questions: which files to open, where to export, whether to delete or quit.

Each one remembers where the user last looked (in the QSettings given) and answers with
plain values, so the window's commands read as what they do, not how they ask. Also the
place a path is shown when the desktop has no file manager to open it in.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from imgdesk import __version__
from imgdesk.core.repository import RequestInfo
from imgdesk.core.storage import request_folder

logger = logging.getLogger(__name__)

OPEN_FOLDER_KEY = "paths/open"
EXPORT_FOLDER_KEY = "paths/export"


def choose_csv_files(parent: QWidget, qsettings: QSettings) -> list[Path]:
    """Ask which product CSV files to open (none when the user cancels)."""
    start = str(qsettings.value(OPEN_FOLDER_KEY, str(Path.home())))
    names, _filter = QFileDialog.getOpenFileNames(
        parent, "Open product CSV files", start, "CSV files (*.csv *.tsv *.txt);;All files (*)"
    )
    paths = [Path(name) for name in names]
    if paths:
        qsettings.setValue(OPEN_FOLDER_KEY, str(paths[0].parent))
    return paths


def choose_export_path(
    parent: QWidget, qsettings: QSettings, request: RequestInfo, data_dir: Path
) -> Path | None:
    """Ask where to write a request's output CSV (None when the user cancels)."""
    name, _filter = QFileDialog.getSaveFileName(
        parent,
        "Export the output CSV",
        str(suggested_export_path(qsettings, request, data_dir)),
        "CSV files (*.csv);;All files (*)",
    )
    if not name:
        return None
    path = Path(name)
    qsettings.setValue(EXPORT_FOLDER_KEY, str(path.parent))
    return path


def suggested_export_path(qsettings: QSettings, request: RequestInfo, data_dir: Path) -> Path:
    """Where the request was last exported, else ``<CSV name>-output.csv`` beside its input."""
    previous = Path(QUrl(request.output_csv).toLocalFile()) if request.output_csv else None
    finish_folder = request_folder(data_dir, request.id).absolute()
    if previous is not None and previous.parent != finish_folder:
        return previous
    # Not the copy written on finish deep in the data folder: next to the input.
    stem = Path(request.csv_name).stem or "products"
    folder = Path(request.csv_path).parent if request.csv_path else None
    folder = folder or Path(str(qsettings.value(EXPORT_FOLDER_KEY, str(Path.home()))))
    return folder / f"{stem}-output.csv"


class DeleteRequestDialog(QMessageBox):
    """Asks before a request is forgotten, and whether its compressed images go too."""

    def __init__(self, request: RequestInfo, parent: QWidget | None = None) -> None:
        """Ask about ``request``; Cancel is the default answer."""
        super().__init__(
            QMessageBox.Icon.Question,
            "Delete request?",
            f"Delete the request for {request.csv_name} ({request.total:,} images) from imgdesk?",
            QMessageBox.StandardButton.Cancel,
            parent,
        )
        self._delete_button: QPushButton = self.addButton(
            "Delete", QMessageBox.ButtonRole.DestructiveRole
        )
        self.setDefaultButton(QMessageBox.StandardButton.Cancel)
        self.setInformativeText("Its history disappears from the list. This cannot be undone.")
        self._remove_files = QCheckBox("Also delete its compressed images from disk")
        self.setCheckBox(self._remove_files)

    def confirmed(self) -> bool:
        """Whether the user chose Delete."""
        return self.clickedButton() is self._delete_button

    def remove_files(self) -> bool:
        """Whether the compressed images are to be deleted from disk too."""
        return self._remove_files.isChecked()


class PartialExportQuestion(QMessageBox):
    """Asks before exporting a request that is still processing: only what is done goes out."""

    def __init__(self, request: RequestInfo, parent: QWidget | None = None) -> None:
        """Ask about ``request``; exporting what is done is the default answer."""
        super().__init__(
            QMessageBox.Icon.Question,
            "Export a request still processing?",
            "Still processing \u2014 export what is done?",
            QMessageBox.StandardButton.Cancel,
            parent,
        )
        self._export_button: QPushButton = self.addButton(
            "Export What Is Done", QMessageBox.ButtonRole.AcceptRole
        )
        self.setDefaultButton(self._export_button)
        self.setInformativeText(
            f"{request.done:,} of {request.total:,} images of {request.csv_name} are done. "
            "The CSV gets their output URLs; the other cells stay empty until you export "
            "again after the request has finished."
        )

    def confirmed(self) -> bool:
        """Whether the user chose to export."""
        return self.clickedButton() is self._export_button


class PathDialog(QDialog):
    """A path the desktop could not open, to read or copy (no file manager is registered).

    Args:
        title: the window's title.
        text: one sentence saying what could not be opened.
        path: the file or folder.
        parent: the window.
    """

    def __init__(self, title: str, text: str, path: Path, parent: QWidget | None = None) -> None:
        """Show ``path`` with a Copy Path button."""
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("path_dialog")
        message = QLabel(text)
        message.setWordWrap(True)
        self.path_edit = QLineEdit(str(path))
        self.path_edit.setObjectName("path")
        self.path_edit.setReadOnly(True)
        self.path_edit.setMinimumWidth(
            min(720, 60 + self.fontMetrics().horizontalAdvance(str(path)))
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy Path", QDialogButtonBox.ButtonRole.ActionRole)
        copy.setObjectName("copy_path")
        copy.clicked.connect(self._on_copy_clicked)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(message)
        layout.addWidget(self.path_edit)
        layout.addWidget(buttons)

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.path_edit.text())
        self.path_edit.selectAll()


def open_with_desktop(path: Path) -> bool:
    """Open a file or folder in the user's viewer or file manager; False if none took it."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def confirm_quit(parent: QWidget) -> bool:
    """Ask whether to quit while images are being processed."""
    answer = QMessageBox.question(
        parent,
        "Quit imgdesk?",
        "imgdesk is still processing images. Quit now?\n\n"
        "Nothing is lost: unfinished images are picked up again the next time you open "
        "imgdesk.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def show_about(parent: QWidget, data_dir: Path) -> None:
    """The About box: version, what imgdesk does, and the data folder in use."""
    QMessageBox.about(
        parent,
        "About imgdesk",
        f"<b>imgdesk {__version__}</b><p>Downloads, compresses and catalogues product "
        f"images from CSV files.</p><p>Data folder: {data_dir}</p>",
    )
