"""The bytes of outputs stored in a bucket, for the preview, the thumbnails and the comparison.

A done image's ``output_path`` is a file on this computer, or, for a request that stores
into a bucket, the output's storage key (``<request_id>/<file name>``): there is no file to
open. :class:`OutputReader` reads such an output through its request's own storage (the
engine's ``storage_of``, so the window opens storages the one way the engine does) and
keeps the last ones as bytes: the thumbnail, the preview and the comparison at 100 % of one
image cost one GET, and scrolling back costs none.

Reads run on daemon threads of the reader's own, not in a ``QThreadPool``: a read from a
server that does not answer may take the client's whole retry budget (half a minute), and a
pool's destructor would hold up quitting that long (the preview downloads originals on a
daemon thread for the same reason). A bucket that cannot be reached is remembered for a
short while, so a screenful of thumbnails fails at once instead of each waiting out the
client's retries.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path

from imgdesk.core.errors import ErrorCode, ImageError, ImdeskError
from imgdesk.core.records import ImageInfo
from imgdesk.core.states import ImageStatus
from imgdesk.core.storage import MAX_READ_BYTES, Storage, split_key

logger = logging.getLogger(__name__)

READ_THREADS = 2  # as many as the thumbnails' decoding threads
KEPT_BYTES = 32 * 1024 * 1024  # the objects read last are kept, up to this many bytes in all
UNREACHABLE_MEMORY_S = 30.0  # a bucket that could not be reached is not asked again before this
_SENTENCE_BREAK = re.compile(r"\.\s+([A-Z])(?=[a-z])")

StorageOf = Callable[[str], Storage]


def is_storage_key(output_path: str | None) -> bool:
    """True when an image's ``output_path`` names an object in a bucket, not a file.

    Files are recorded with their absolute path; objects with their key, which is relative.
    """
    if not output_path or Path(output_path).is_absolute():
        return False
    request_id, file_name = split_key(output_path)
    return bool(request_id and file_name) and "/" not in file_name and "\\" not in output_path


def bucket_failure(error: ImdeskError) -> str:
    """The one sentence a pane shows when an output could not be read from its bucket."""
    detail = str(error).rstrip(".")
    if detail[1:2].islower():  # "The server…" reads on after the colon, "AWS_PROFILE" not
        detail = detail[0].lower() + detail[1:]
    # "… (5 tries). Check the endpoint …" becomes "… (5 tries); check the endpoint …".
    detail = _SENTENCE_BREAK.sub(lambda match: "; " + match.group(1).lower(), detail)
    return f"Could not read the output from the bucket: {detail}."


def object_url(storage_of: StorageOf, image: ImageInfo, public_base_url: str = "") -> str | None:
    """Where a browser opens an output in a bucket ("Open output"); None for a file.

    A presigned URL is signed afresh (the one recorded may have expired); with a public base
    URL it is the public address. Signing needs no network.

    Raises:
        ImdeskError: the request's storage cannot be opened or cannot sign.
    """
    key = image.output_path or ""
    if image.status != ImageStatus.DONE or not is_storage_key(key):
        return None
    return storage_of(image.request_id).url(key, public_base_url)


class OutputReader:
    """Reads outputs stored in buckets, keeping the last ones as bytes; safe from any thread.

    Args:
        storage_of: the storage of a request, by its id (``Engine.storage_of``); None when
            the window has no engine (then a bucket's outputs cannot be shown).
        kept_bytes: how many bytes of objects read last are kept in memory.
        max_bytes: the largest object read (it is held whole).
        unreachable_memory_s: how long reads from a storage that could not be reached fail
            at once with its last message.
    """

    def __init__(
        self,
        storage_of: StorageOf | None,
        kept_bytes: int = KEPT_BYTES,
        max_bytes: int = MAX_READ_BYTES,
        unreachable_memory_s: float = UNREACHABLE_MEMORY_S,
    ) -> None:
        self._storage_of = storage_of
        self._kept_bytes = kept_bytes
        self._max_bytes = max_bytes
        self._unreachable_memory_s = unreachable_memory_s
        self._changed = threading.Condition()  # guards everything below
        self._kept: OrderedDict[str, bytes] = OrderedDict()  # newest last
        self._reading: set[str] = set()
        self._failed: OrderedDict[str, str] = OrderedDict()  # for good (missing, too large)
        self._unreachable: dict[Storage, tuple[str, float]] = {}  # storage -> message, when
        self._jobs: deque[Callable[[], None]] = deque()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` (which reads through :meth:`read`) on one of the reader's threads.

        ``job`` must catch what it raises and report back by a (queued) signal.
        """
        with self._changed:
            if self._stopping:
                return
            self._jobs.append(job)
            self._changed.notify_all()
            if len(self._threads) < READ_THREADS:
                thread = threading.Thread(target=self._run, name="imgdesk-output-read", daemon=True)
                self._threads.append(thread)
                thread.start()

    def stop(self) -> None:
        """Drop the jobs not started; the threads end after the read they may be doing."""
        with self._changed:
            self._stopping = True
            self._jobs.clear()
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._jobs and not self._stopping:
                    self._changed.wait()
                if self._stopping:
                    return
                job = self._jobs.popleft()
            try:
                job()
            except Exception:  # a job reports its own failures; this one is a bug
                logger.exception("reading an output failed")

    def reader_of(self, output_path: str, stamp: object) -> Callable[[], bytes] | None:
        """What a worker thread calls to get an output's bytes; None for a file.

        Called on the GUI thread: opening the request's storage reads the database.

        Raises:
            ImdeskError: the request's storage cannot be opened.
        """
        if not is_storage_key(output_path):
            return None
        if self._storage_of is None:
            raise ImageError(
                ErrorCode.STORAGE, "This window does not know where the request stores its images."
            )
        storage = self._storage_of(split_key(output_path)[0])
        return functools.partial(self.read, storage, output_path, stamp)

    def read(self, storage: Storage, key: str, stamp: object) -> bytes:
        """The bytes stored under ``key`` (kept, or read once even when asked twice at once).

        ``stamp`` changes when the output is stored again (its byte count), so a new output
        is never served from the old bytes, nor refused for an old failure.

        Raises:
            ImageError: ``storage``, the object could not be read (transient if the bucket
                could not be reached).
        """
        name = f"{stamp}|{key}"
        with self._changed:
            while name in self._reading:  # another thread is reading it: wait for its bytes
                self._changed.wait()
            kept = self._kept.get(name)
            if kept is not None:
                self._kept.move_to_end(name)
                return kept
            failed = self._failed.get(name)
            if failed is not None:
                raise ImageError(ErrorCode.STORAGE, failed)
            down = self._unreachable.get(storage)
            if down is not None and time.monotonic() - down[1] < self._unreachable_memory_s:
                raise ImageError(ErrorCode.STORAGE, down[0], transient=True)
            self._reading.add(name)
        data: bytes | None = None
        failure: ImageError | None = None
        try:
            data = storage.read(key, self._max_bytes)
        except ImageError as error:
            failure = error
            logger.info("Could not read the output %s: %s", key, error.message)
            raise
        finally:
            with self._changed:
                self._reading.discard(name)
                if data is not None:
                    self._unreachable.pop(storage, None)
                    self._keep(name, data)
                elif failure is not None and failure.transient:
                    self._unreachable[storage] = (failure.message, time.monotonic())
                elif failure is not None:
                    self._failed[name] = failure.message
                    while len(self._failed) > 1000:
                        self._failed.popitem(last=False)
                self._changed.notify_all()
        return data

    def _keep(self, name: str, data: bytes) -> None:
        """Keep ``data``, dropping the oldest kept bytes beyond the bound (lock held)."""
        if len(data) > self._kept_bytes:
            return
        self._kept[name] = data
        total = sum(map(len, self._kept.values()))
        while total > self._kept_bytes:
            _, dropped = self._kept.popitem(last=False)
            total -= len(dropped)
