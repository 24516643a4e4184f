"""Images for the preview, loaded and decoded off the GUI thread.

* :class:`ImageCache` decodes stored (compressed) images scaled down in a small
  ``QThreadPool`` and keeps the last ones in an LRU cache bounded in bytes. Requests are
  served most recent first and the backlog is bounded, so scrolling quickly through 10,000
  rows only decodes what is (or was just) on screen. An output stored in a bucket is read
  on the same threads through its request's storage (:mod:`imgdesk.gui.output_reader`).
* :class:`OriginalFetcher` downloads the *original* again for the "before" pane and for the
  comparison at 100 %, with the core's own :func:`~imgdesk.core.fetch.download` (same limits
  and checks as the engine), on one daemon thread; only the latest wish of each kind is
  kept, so arrowing through rows does not queue downloads. A daemon thread, because a
  download may take seconds and must never hold up quitting the way a ``QThreadPool`` would
  (its destructor waits).

Worker threads only build ``QImage`` objects (safe off the GUI thread); pixmaps are made on
the GUI thread when a result arrives. Qt has no AVIF decoder: imgdesk's own AVIF outputs are
decoded by Pillow, on the same worker threads.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QIODevice,
    QObject,
    QRunnable,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QImage, QImageReader, QPixmap

from imgdesk.core.errors import ImageError, ImdeskError
from imgdesk.core.fetch import download, new_session
from imgdesk.core.http_session import ImageSession
from imgdesk.core.settings import Settings
from imgdesk.core.sniff import detect_type
from imgdesk.engine.priority import lower_this_thread
from imgdesk.gui.output_reader import (
    UNREACHABLE_MEMORY_S,
    OutputReader,
    StorageOf,
    bucket_failure,
)

logger = logging.getLogger(__name__)


PREVIEW_SIDE = 900  # decoded preview images are at most this many pixels on a side
ORIGINAL_DEBOUNCE_MS = 350
# Qt decoders imgdesk trusts with downloaded bytes; anything else is described, not shown.
PREVIEW_FORMATS = frozenset({"jpeg", "jpg", "png", "gif", "bmp", "webp"})
# The preview fetch gives up sooner than the engine would: someone is looking at it.
PREVIEW_TIMEOUT_S = 30.0
ERROR_MEMORY_S = 30.0  # a failed original is not asked for again before this
# The last originals downloaded (4 at most) are kept as bytes, up to this many in all.
KEPT_BYTES = 64 * 1024 * 1024
# Qt refuses to decode beyond this (256 MB by default; 0: no limit): imgdesk says so in words.
_ALLOCATION_LIMIT_BYTES = QImageReader.allocationLimit() * 1024 * 1024 or None


class PreviewError(Exception):
    """An image could not be shown; the message says why, in words."""


@dataclass(frozen=True)
class ImageFacts:
    """What a decoded image is: its full pixel size, byte count and format."""

    width: int
    height: int
    byte_count: int | None
    image_format: str


def decode_scaled(
    reader: QImageReader, max_side: int | None, byte_count: int | None
) -> tuple[QImage, ImageFacts]:
    """Decode with ``reader`` at most ``max_side`` pixels on a side (None: at full size).

    JPEG scales while decoding, so a preview of a large photo costs a fraction of its size.

    Raises:
        PreviewError: not a format imgdesk previews, too large to show, or not decodable.
    """
    reader.setAutoTransform(True)
    image_format = bytes(reader.format().data()).decode("ascii", "replace").lower()
    if image_format not in PREVIEW_FORMATS:
        raise PreviewError("This is not an image imgdesk can show.")
    size = reader.size()
    if max_side is not None and size.isValid() and max(size.width(), size.height()) > max_side:
        reader.setScaledSize(size.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio))
    elif _ALLOCATION_LIMIT_BYTES and size.width() * size.height() * 4 > _ALLOCATION_LIMIT_BYTES:
        pixels = f"{size.width()} \u00d7 {size.height()} px"
        raise PreviewError(f"The image is too large to show at full size ({pixels}).")
    image = _for_painting(reader.read())
    if image.isNull():
        raise PreviewError(f"The image cannot be decoded ({reader.errorString()}).")
    facts = ImageFacts(
        width=size.width() if size.isValid() else image.width(),
        height=size.height() if size.isValid() else image.height(),
        byte_count=byte_count,
        image_format=image_format.upper().replace("JPG", "JPEG"),
    )
    return image, facts


def decode_file(path: str, max_side: int | None) -> tuple[QImage, ImageFacts]:
    """Decode a stored output at most ``max_side`` pixels on a side (None: at full size).

    Raises:
        PreviewError: the file is missing, unreadable or not decodable.
    """
    reader = QImageReader(path)
    reader.setDecideFormatFromContent(True)
    if reader.canRead():
        size = reader.device().size() if reader.device() is not None else None
        return decode_scaled(reader, max_side, size)
    return _decode_avif(path, max_side)


def decode_output_bytes(data: bytes, max_side: int | None) -> tuple[QImage, ImageFacts]:
    """Decode an output read from a bucket, as :func:`decode_file` decodes a file.

    Raises:
        PreviewError: not an image imgdesk can show, or not decodable.
    """
    if detect_type(data) == "image/avif":
        return _decode_avif(data, max_side)
    return _decode_bytes(data, max_side)


def _decode_avif(source: str | bytes, max_side: int | None) -> tuple[QImage, ImageFacts]:
    """An AVIF imgdesk wrote (a file, or bytes read back), decoded by Pillow (Qt has none)."""
    opened = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with Image.open(opened, formats=["AVIF"]) as picture:  # no other format is tried
            picture.load()
            full_size = picture.size
            if max_side is not None:
                picture.thumbnail((max_side, max_side))
            rgba = picture.convert("RGBA")
    except (OSError, ValueError) as error:  # also: not an AVIF, or no such file
        logger.info("stored image %s cannot be shown: %s", opened, error)
        raise PreviewError("The stored image is missing or unreadable.") from error
    pixels = rgba.tobytes()
    image = QImage(pixels, rgba.width, rgba.height, 4 * rgba.width, QImage.Format.Format_RGBA8888)
    byte_count = len(source) if isinstance(source, bytes) else os.path.getsize(source)
    facts = ImageFacts(full_size[0], full_size[1], byte_count, "AVIF")
    return _for_painting(image), facts  # a converted copy owns its pixels; ``pixels`` may go


def _for_painting(image: QImage) -> QImage:
    """``image`` in a format Qt paints without converting it at every paint (here, off the GUI)."""
    opaque = QImage.Format.Format_RGB32
    return image.convertToFormat(
        QImage.Format.Format_ARGB32_Premultiplied if image.hasAlphaChannel() else opaque
    )


# -- stored images: thumbnails and the compressed preview ----------------------------------------


class _LoadRelay(QObject):
    """Lives on the GUI thread; worker threads emit through it, so delivery is queued."""

    # key (or URL), QImage or None, ImageFacts or None, the message when there is no image
    done = Signal(str, object, object, str)


class OutputRelay(QObject):
    """Like :class:`_LoadRelay`, for stored outputs; also says whether a failure may pass."""

    # key, QImage or None, ImageFacts or None, the message, True when worth trying again later
    done = Signal(str, object, object, str, bool)


class _ScaledFileLoad(QRunnable):
    """Decodes one stored output, scaled down (or not); nothing escapes ``run()``.

    The output is the file ``path``, or, with ``read``, the bytes it returns (an object in a
    bucket, read on this worker thread).
    """

    def __init__(
        self,
        key: str,
        path: str,
        max_side: int | None,
        relay: OutputRelay,
        read: Callable[[], bytes] | None = None,
    ) -> None:
        super().__init__()
        self._key = key
        self._path = path
        self._max_side = max_side
        self._relay = relay
        self._read = read

    def run(self) -> None:
        lower_this_thread()
        image: QImage | None = None
        facts: ImageFacts | None = None
        message = ""
        passing = False
        try:
            if self._read is None:
                image, facts = decode_file(self._path, self._max_side)
            else:
                image, facts = decode_output_bytes(self._read(), self._max_side)
        except ImageError as error:  # the bucket did not give the bytes
            message, passing = bucket_failure(error), error.transient
        except PreviewError as error:
            message = str(error)
        except BaseException as error:  # noqa: BLE001 - a worker must always report back
            logger.exception("thumbnail of %s failed", self._path)
            message = f"imgdesk could not show this image: {error!r}"
        with contextlib.suppress(RuntimeError):  # RuntimeError: the window is gone
            self._relay.done.emit(self._key, image, facts, message, passing)


class ImageCache(QObject):
    """Decodes stored images scaled down in a thread pool and keeps the latest (LRU by bytes).

    An image is named by its ``output_path``: a file, or the key of an object in a bucket,
    read through ``storage_of`` (``Engine.storage_of``) on the same threads. A bucket that
    could not be reached is asked again after a while; other failures are remembered.

    Signals:
        image_ready(str): the image of this key is now in the cache (or failed).
    """

    image_ready = Signal(str)

    def __init__(
        self,
        max_bytes: int = 64 * 1024 * 1024,
        max_backlog: int = 200,
        threads: int = 2,
        parent: QObject | None = None,
        *,
        storage_of: StorageOf | None = None,
    ) -> None:
        """Create an empty cache decoding on ``threads`` threads."""
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._threads = threads
        self._max_bytes = max_bytes
        self._max_backlog = max_backlog
        self.outputs = OutputReader(storage_of)
        self._relay = OutputRelay(self)
        # Queued even when emitted on the GUI thread (a storage that cannot be opened), so a
        # failure never re-enters the caller of request() (a delegate painting).
        self._relay.done.connect(self._on_relay_done, Qt.ConnectionType.QueuedConnection)
        self._pixmaps: OrderedDict[str, tuple[QPixmap, ImageFacts]] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._bytes = 0
        # key -> (message, when to try again; None: never)
        self._errors: OrderedDict[str, tuple[str, float | None]] = OrderedDict()
        self._backlog: OrderedDict[str, tuple[str, object, int]] = OrderedDict()  # newest last
        self._running: set[str] = set()

    @staticmethod
    def key(path: str, stamp: object, max_side: int) -> str:
        """The cache key of a file at a size; ``stamp`` changes when the file is rewritten."""
        return f"{max_side}|{stamp}|{path}"

    def get(self, path: str, stamp: object, max_side: int) -> tuple[QPixmap, ImageFacts] | None:
        """The cached image and its facts, without loading anything."""
        key = self.key(path, stamp, max_side)
        found = self._pixmaps.get(key)
        if found is not None:
            self._pixmaps.move_to_end(key)
        return found

    def error(self, path: str, stamp: object, max_side: int) -> str | None:
        """Why the image could not be loaded, if it failed (and is not worth trying again)."""
        key = self.key(path, stamp, max_side)
        found = self._errors.get(key)
        if found is None:
            return None
        message, retry_at = found
        if retry_at is not None and time.monotonic() >= retry_at:
            del self._errors[key]  # the bucket may answer now: the next request() tries
            return None
        return message

    def request(self, path: str, stamp: object, max_side: int) -> tuple[QPixmap, ImageFacts] | None:
        """The cached image, or None while it is (now) being loaded in the background."""
        found = self.get(path, stamp, max_side)
        if found is not None:
            return found
        if self.error(path, stamp, max_side) is not None:
            return None
        key = self.key(path, stamp, max_side)
        if key in self._running:
            return None
        # Most recent wish last; the oldest wishes fall off when the backlog is full.
        self._backlog[key] = (path, stamp, max_side)
        self._backlog.move_to_end(key)
        while len(self._backlog) > self._max_backlog:
            self._backlog.popitem(last=False)
        self._pump()
        return None

    def shutdown(self) -> None:
        """Drop the backlog and wait briefly for running decodes (local files: fast).

        Reads from a bucket are not waited for: their daemon threads end on their own.
        """
        self._backlog.clear()
        self.outputs.stop()
        self._pool.clear()
        self._pool.waitForDone(2000)

    def start_load(
        self,
        key: str,
        path: str,
        stamp: object,
        max_side: int | None,
        relay: OutputRelay,
        pool: QThreadPool,
    ) -> None:
        """Decode an output off the GUI thread, reporting to ``relay`` under ``key``.

        A file is decoded on ``pool``; an object in a bucket is read and decoded on the
        output reader's threads. A storage that cannot be opened is reported at once
        (``relay``'s receivers are queued, so never from inside this call).
        """
        try:
            read = self.outputs.reader_of(path, stamp)
        except ImdeskError as error:
            relay.done.emit(key, None, None, bucket_failure(error), True)
            return
        job = _ScaledFileLoad(key, path, max_side, relay, read)
        if read is None:
            pool.start(job)
        else:
            self.outputs.submit(job.run)

    def _pump(self) -> None:
        while self._backlog and len(self._running) < self._threads:
            key, (path, stamp, max_side) = self._backlog.popitem(last=True)
            self._running.add(key)
            self.start_load(key, path, stamp, max_side, self._relay, self._pool)

    def _on_relay_done(
        self,
        key: str,
        image: QImage | None,
        facts: ImageFacts | None,
        message: str,
        passing: bool,
    ) -> None:
        self._running.discard(key)
        if image is not None and facts is not None:
            self._pixmaps[key] = (QPixmap.fromImage(image), facts)
            self._sizes[key] = image.sizeInBytes()
            self._bytes += self._sizes[key]
            while self._bytes > self._max_bytes and len(self._pixmaps) > 1:
                old_key, _ = self._pixmaps.popitem(last=False)
                self._bytes -= self._sizes.pop(old_key, 0)
        else:
            retry_at = time.monotonic() + UNREACHABLE_MEMORY_S if passing else None
            self._errors[key] = (message, retry_at)
            while len(self._errors) > 1000:
                self._errors.popitem(last=False)
        self._pump()
        self.image_ready.emit(key)


# -- originals: downloaded again for the "before" pane --------------------------------------------


class OriginalFetcher(QObject):
    """Downloads original images again on a daemon thread, the newest wish of each kind.

    A wish is for a preview (scaled down) or for the comparison at 100 % (full size); a new
    wish replaces the one of its kind not started yet, and a full-size wish goes first, as
    the user is waiting for it. The last downloads are kept as bytes (on the thread), so
    comparing an image just previewed downloads nothing.

    Signals:
        original_loaded(str, QPixmap, ImageFacts): the original of that URL, scaled down.
        original_failed(str, str): the URL and why it could not be shown.
        full_size_loaded(str, QImage, ImageFacts): the original of that URL at full size.
        full_size_failed(str, str): the URL and why it cannot be shown at full size.
    """

    original_loaded = Signal(str, QPixmap, object)
    original_failed = Signal(str, str)
    full_size_loaded = Signal(str, QImage, object)
    full_size_failed = Signal(str, str)

    def __init__(self, parent: QObject | None = None, cache_size: int = 8) -> None:
        """Create an idle fetcher; the thread starts with the first wish."""
        super().__init__(parent)
        self._preview_relay = _LoadRelay(self)
        self._preview_relay.done.connect(self._on_preview_done)
        self._full_size_relay = _LoadRelay(self)  # the comparison keeps these; not cached here
        self._full_size_relay.done.connect(self._on_full_size_done)
        self._wake = threading.Condition()
        self._wishes: dict[bool, tuple[str, Settings]] = {}  # at full size -> (url, settings)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._cache: OrderedDict[str, tuple[QPixmap, ImageFacts]] = OrderedDict()
        self._cache_size = cache_size
        self._errors: dict[str, tuple[str, float]] = {}  # url -> (message, when)
        self._pending: str | None = None

    def cached(self, url: str) -> tuple[QPixmap, ImageFacts] | None:
        """The original of ``url`` if it was fetched recently."""
        found = self._cache.get(url)
        if found is not None:
            self._cache.move_to_end(url)
        return found

    def error(self, url: str) -> str | None:
        """Why the original of ``url`` could not be shown, if it failed recently."""
        found = self._errors.get(url)
        if found is None:
            return None
        message, when = found
        if time.monotonic() - when > ERROR_MEMORY_S:
            del self._errors[url]  # the server may answer differently now: try again
            return None
        return message

    def fetch(self, url: str, settings: Settings) -> None:
        """Download ``url`` soon for a preview; a preview wish not started is replaced."""
        if url == self._pending or url in self._cache:
            return
        self._pending = url
        self._errors.pop(url, None)
        self._wish(False, url, settings)

    def fetch_full_size(self, url: str, settings: Settings) -> None:
        """Download ``url`` (or reuse its bytes) and decode it at full size, off this thread.

        Answers with :attr:`full_size_loaded` or :attr:`full_size_failed`.
        """
        self._wish(True, url, settings)

    def stop(self) -> None:
        """Let the thread end after the download it may be doing."""
        with self._wake:
            self._stopping = True
            self._wake.notify()

    def _wish(self, full_size: bool, url: str, settings: Settings) -> None:
        settings = settings.replace(
            total_timeout_s=min(settings.total_timeout_s, PREVIEW_TIMEOUT_S),
            read_timeout_s=min(settings.read_timeout_s, PREVIEW_TIMEOUT_S),
            max_retries=0,
        )
        with self._wake:
            self._wishes[full_size] = (url, settings)  # only the newest of each kind matters
            self._wake.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="imgdesk-preview", daemon=True)
            self._thread.start()

    def _next_wish(self) -> tuple[bool, str, Settings] | None:
        """The next wish (full size first), or None once stopped; waits for one."""
        with self._wake:
            while not self._wishes and not self._stopping:
                self._wake.wait()
            if self._stopping:
                return None
            full_size = True in self._wishes
            url, settings = self._wishes.pop(full_size)
            return full_size, url, settings

    def _run(self) -> None:
        session: ImageSession | None = None
        downloads: OrderedDict[str, bytes] = OrderedDict()  # touched by this thread only
        while (wish := self._next_wish()) is not None:
            full_size, url, settings = wish
            image: QImage | None = None
            facts: ImageFacts | None = None
            message = ""
            try:
                data = downloads.get(url)
                if data is None:
                    session = session or new_session(settings)
                    data = downloads[url] = download(url, settings, session).data
                    while sum(map(len, downloads.values())) > KEPT_BYTES or len(downloads) > 4:
                        downloads.popitem(last=False)  # the oldest first
                image, facts = _decode_bytes(data, None if full_size else PREVIEW_SIDE)
            except ImageError as error:
                message = error.message
            except PreviewError as error:
                message = str(error)
            except BaseException as error:  # noqa: BLE001 - the thread must carry on
                logger.exception("preview download of %s failed", url)
                message = f"imgdesk could not show this image: {error!r}"
            relay = self._full_size_relay if full_size else self._preview_relay
            try:
                relay.done.emit(url, image, facts, message)
            except RuntimeError:  # the window is gone
                return

    def _on_full_size_done(
        self, url: str, image: QImage | None, facts: ImageFacts | None, message: str
    ) -> None:
        if image is not None:
            self.full_size_loaded.emit(url, image, facts)
        else:
            self.full_size_failed.emit(url, message)

    def _on_preview_done(
        self, url: str, image: QImage | None, facts: ImageFacts | None, message: str
    ) -> None:
        if self._pending == url:
            self._pending = None
        if image is None or facts is None:
            self._errors[url] = (message, time.monotonic())
            self.original_failed.emit(url, message)
            return
        pixmap = QPixmap.fromImage(image)
        self._cache[url] = (pixmap, facts)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        self.original_loaded.emit(url, pixmap, facts)


def _decode_bytes(data: bytes, max_side: int | None) -> tuple[QImage, ImageFacts]:
    buffer = QBuffer()
    buffer.setData(QByteArray(data))
    buffer.open(QIODevice.OpenModeFlag.ReadOnly)
    reader = QImageReader(buffer)
    reader.setDecideFormatFromContent(True)
    try:
        return decode_scaled(reader, max_side, len(data))
    finally:
        buffer.close()


# -- the panel -----------------------------------------------------------------------------------
