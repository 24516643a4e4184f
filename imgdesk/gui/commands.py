"""What the user can do to requests and images: retry, prioritise, pause, cancel, delete, copy.

Each method does one command on what it is given (the window hands over the selection),
through the engine, and says what happened in one status line (:attr:`message`), so the
commands read the same from a toolbar button, a shortcut, a context menu or a test.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QWidget

from imgdesk.core.errors import ImdeskError
from imgdesk.core.records import HIGH, LOW, NORMAL
from imgdesk.core.repository import ImageInfo, Repository, RequestInfo
from imgdesk.core.states import ImageStatus, RequestStatus
from imgdesk.engine.engine import Engine
from imgdesk.gui.dialogs import DeleteRequestDialog, PathDialog, open_with_desktop
from imgdesk.gui.loading import CsvImporter
from imgdesk.gui.models import RequestsTableModel
from imgdesk.gui.output_reader import object_url
from imgdesk.gui.widgets import DialogTracker

logger = logging.getLogger(__name__)

# What a request's new priority means, said when the user sets it (SPEC 11).
_PRIORITY_MEANINGS = {
    HIGH: "its images start before those of other requests",
    NORMAL: "its images start in their turn",
    LOW: "its images start after those of other requests",
}


def plural(count: int, noun: str) -> str:
    """``1 image``, ``3 images``."""
    return f"{count} {noun}{'s' if count != 1 else ''}"


def finished_message(request: RequestInfo, status: str, cancelled: int) -> str:
    """One line on how a request finished (``status``), ``cancelled`` of its failures cancelled."""
    failed = request.failed - cancelled
    name, done, total = request.csv_name, request.done, request.total
    if status == RequestStatus.COMPLETED:
        return f"{name}: all {total:,} images are done."
    if cancelled:
        return f"{name}: cancelled, with {done:,} of {total:,} images done."
    if done:
        return f"{name}: finished, {done:,} of {total:,} images done, {failed:,} failed."
    return f"{name}: none of its {total:,} images could be done."


class RequestCommands(QObject):
    """The commands on requests and their images (the slots behind the window's actions).

    Args:
        repository: finds a request named by the command line (:meth:`cancel_by_id`).
        engine: retries, pauses, cancels and deletes.
        importer: stops reading the file of a request cancelled or deleted meanwhile.
        requests: re-read at once after a delete, so the row goes at once.
        dialogs: opens the delete question.
        data_dir: the data folder, where each request has its folder of images.
        parent: the window, parent of the delete question.

    Signals:
        message(str, int): a status line and how many milliseconds to show it.
    """

    message = Signal(str, int)

    def __init__(
        self,
        repository: Repository,
        engine: Engine,
        importer: CsvImporter,
        requests: RequestsTableModel,
        dialogs: DialogTracker,
        data_dir: Path,
        parent: QWidget,
    ) -> None:
        """Act on ``engine``; questions are asked over ``parent``."""
        super().__init__(parent)
        self._repo = repository
        self._engine = engine
        self._importer = importer
        self._requests = requests
        self._dialogs = dialogs
        self._data_dir = data_dir
        self._parent = parent

    def retry(self, images: Sequence[ImageInfo]) -> None:
        """Put the failed ones of these images (of one request) back in the queue."""
        failed = [image.id for image in images if image.status == ImageStatus.FAILED]
        if not failed:
            self.message.emit("Only failed images can be retried.", 5000)
            return
        count = self._engine.retry(images[0].request_id, failed)
        self.message.emit(f"Retrying {plural(count, 'image')}.", 5000)

    def retry_failed(self, request: RequestInfo | None) -> None:
        """Put every failed image of a request back in the queue."""
        if request is None:
            return
        count = self._engine.retry(request.id)
        self.message.emit(f"Retrying {plural(count, 'failed image')} of {request.csv_name}.", 5000)

    def set_priority(self, request: RequestInfo | None, priority: str) -> None:
        """Serve a request's images not started yet by ``priority`` (running ones finish)."""
        if request is None or request.priority == priority:
            return
        self._engine.set_priority(request.id, priority)
        meaning = _PRIORITY_MEANINGS[priority]
        self.message.emit(f"{request.csv_name} has {priority} priority: {meaning}.", 5000)

    def toggle_pause(self) -> None:
        """Pause all work (running images finish), or resume it."""
        if self._engine.paused:
            self._engine.resume()
        else:
            self._engine.pause()

    def cancel(self, request: RequestInfo | None) -> None:
        """Stop a request: its unfinished images fail as cancelled (a file being read goes)."""
        if request is None or request.finished:
            return
        if self._importer.stop_reading(request.id):  # its row goes by request_removed
            self.message.emit(f"Stopped reading {request.csv_name}.", 8000)
            return
        self._engine.cancel(request.id)
        self.message.emit(
            f"Cancelled {request.csv_name}. Use Retry All Failures to carry on later.", 8000
        )

    def cancel_by_id(self, text: str) -> dict[str, object]:
        """``imgdesk cancel TEXT`` reached the window: cancel that request, say how it went.

        ``TEXT`` is a request id or its first characters. The answer is the JSON object
        :mod:`imgdesk.core.handover` sends back.
        """
        request = self._repo.get_request(text)
        if request is None:
            found = self._repo.find_request_id(text)
            request = self._repo.get_request(found) if found else None
        if request is None:
            return {"ok": False, "error": f"imgdesk has no request {text} (or several start so)."}
        if request.finished:
            state = self._requests.state_label(request).lower()
            return {
                "ok": False,
                "request_id": request.id,
                "status": request.status,
                "error": f"Request {request.id} has already finished ({state}).",
            }
        self.cancel(request)
        after = self._repo.get_request(request.id)
        return {
            "ok": True,
            "request_id": request.id,
            "status": after.status if after is not None else "removed",
        }

    def delete(self, request: RequestInfo | None) -> None:
        """Ask, then forget a request (and, if the user says so, delete its images)."""
        if request is None:
            return
        dialog = DeleteRequestDialog(request, self._parent)

        def finished(_result: int) -> None:
            if dialog.confirmed():
                self._importer.stop_reading(request.id)  # if its file is still being read
                self._engine.delete(request.id, remove_files=dialog.remove_files())
                self._requests.refresh_request(request.id)
                self._requests.flush()
                self.message.emit(f"Deleted {request.csv_name}.", 5000)

        self._dialogs.open(dialog, finished)

    def copy_output_urls(self, images: Sequence[ImageInfo]) -> None:
        """Put the output URLs of these images on the clipboard, one a line."""
        urls = [image.output_url for image in images if image.output_url]
        if urls:
            QGuiApplication.clipboard().setText("\n".join(urls))
            self.message.emit(f"Copied {plural(len(urls), 'output URL')}.", 4000)

    def copy_input_urls(self, images: Sequence[ImageInfo]) -> None:
        """Put the input URLs of these images on the clipboard, one a line."""
        urls = [image.url for image in images]
        if urls:
            QGuiApplication.clipboard().setText("\n".join(urls))

    def open_image(self, image: ImageInfo | None) -> None:
        """Open a compressed image in the user's image viewer (or browser, for a bucket's)."""
        if image is None or self._open_object(image):
            return
        if image.output_path and Path(image.output_path).is_file():
            self._open_or_show(Path(image.output_path), "image viewer")

    def activate_image(self, image: ImageInfo) -> None:
        """A double-click: retry a failed image, open a done one."""
        if image.status == ImageStatus.FAILED:
            self.retry([image])
        elif not self._open_object(image) and image.output_path:
            self._open_or_show(Path(image.output_path), "image viewer")

    def _open_object(self, image: ImageInfo) -> bool:
        """Open an output stored in a bucket in the browser; False when it is a file."""
        try:
            url = object_url(self._engine.storage_of, image, self._engine.settings.public_base_url)
        except ImdeskError as error:
            self.message.emit(str(error), 10000)
            return True
        if url is None:
            return False
        if not QDesktopServices.openUrl(QUrl(url)):
            QGuiApplication.clipboard().setText(url)
            self.message.emit("No browser opened the image; its address is copied.", 10000)
        return True

    def open_folder(self, request: RequestInfo | None) -> None:
        """Show a request's compressed images in the file manager."""
        if request is None:
            return
        if request.storage.kind != "local":
            # A bucket: nothing to open on this computer; say where the objects are.
            address = request.storage.s3_address(request.id)
            QGuiApplication.clipboard().setText(address)
            self.message.emit(f"The images are in {address} (address copied).", 10000)
            return
        root = Path(request.storage.folder) if request.storage.folder else None
        folder = (root or self._data_dir / "images") / request.id
        if not folder.is_dir():
            self.message.emit("No image of this request has been stored yet.", 5000)
            return
        self._open_or_show(folder, "file manager")

    def open_log_folder(self, log_path: Path) -> None:
        """Show the folder of the log files in the file manager."""
        self._open_or_show(log_path.parent, "file manager")

    def _open_or_show(self, path: Path, opener: str) -> None:
        """Open ``path`` on the desktop, or show it to copy when nothing opens it.

        ``QDesktopServices.openUrl`` only returns False where no file manager or viewer is
        registered (a bare window manager, a container): the click must not do nothing.
        """
        if open_with_desktop(path):
            return
        logger.info("no %s opened %s; showing the path instead", opener, path)
        what = "folder" if path.is_dir() else "file"
        dialog = PathDialog(
            f"Open {what}",
            f"No {opener} is set up to open it on this computer. The {what} is here:",
            path,
            self._parent,
        )
        self._dialogs.open(dialog, lambda _result: None)
