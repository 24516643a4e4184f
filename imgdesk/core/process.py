"""The work for one image: download, check, compress, store. Pure, so it can run anywhere."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from imgdesk.core.compress import compress_image
from imgdesk.core.errors import ErrorCode, ImageError, SettingsError
from imgdesk.core.fetch import Download, ProgressCallback, Validators, download
from imgdesk.core.http_session import ImageSession
from imgdesk.core.settings import Settings
from imgdesk.core.storage import Storage
from imgdesk.core.types import (
    KEPT_ORIGINAL,
    OVER_TARGET,
    CachedOutput,
    ImageResult,
    ImageTask,
    has_note,
)

logger = logging.getLogger(__name__)

# Pillow blocks (16 MiB each) kept per image in flight: a 4000 x 3000 photo takes 3 for its
# pixels, and a converted or flattened copy as many again. Keeping 6 per image held the peak
# memory of 10,000 images at 300 MB; with 4, a copy beyond them comes from fresh pages.
BLOCKS_PER_IMAGE = 4


def reuse_pixel_memory(images_at_once: int) -> None:
    """Let Pillow keep the blocks of freed images for the next ones (its block allocator).

    The engine serves big allocations from fresh pages (``engine._limit_heap_growth``), so
    without this cache every decode faults its pixel memory in again, page by page: measured
    5 ms of CPU per 1.3 MB photo, an eighth of its whole cost. At most as many blocks are
    kept as ``images_at_once`` images use together, so peak memory stays what it was.
    """
    # The environment variable PILLOW_BLOCKS_MAX sets the same, but only before PIL's import.
    Image.core.set_blocks_max(BLOCKS_PER_IMAGE * images_at_once)  # type: ignore[attr-defined]


def process_image(
    task: ImageTask,
    settings: Settings,
    session: ImageSession,
    storage: Storage,
    on_stage: Callable[[str], None] | None = None,
    cpu_slot: contextlib.AbstractContextManager[object] | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImageResult:
    """Fetch, compress and store one image; every expected failure becomes a failed result.

    The output, written as ``task.output`` says, goes to ``storage`` under
    ``task.output_key``. ``on_stage`` is told ``compressing`` once the download is in, so a
    window can show it; ``on_progress`` hears of the download's bytes (see ``download``).
    """
    started = time.monotonic()
    download_ms: int | None = None
    input_bytes: int | None = None
    http_status: int | None = None
    # An earlier output is only trusted while it is still stored.
    cached = task.cached if task.cached is not None and storage.exists(task.cached.key) else None
    try:
        validators = Validators(cached.etag, cached.last_modified) if cached else None
        fetched = download(task.url, settings, session, validators, on_progress)
        download_ms = _ms_since(started)
        http_status = fetched.http_status
        if fetched.not_modified and cached is not None:
            return _reuse(task, storage, cached, fetched, download_ms, 304)
        input_bytes = len(fetched.data)
        digest = hashlib.sha256(fetched.data).hexdigest()
        if cached is not None and digest == cached.content_sha256:
            return _reuse(task, storage, cached, fetched, download_ms, 200)
        if on_stage is not None:
            on_stage("compressing")
        # Decode + encode only as many images at once as the executor allows (cpu_slot); the
        # fsync when the stored file is closed waits on the disk, outside the slot.
        output_file = storage.open_output(task.output_key)
        with output_file as output, cpu_slot or contextlib.nullcontext():
            compress_started = time.monotonic()
            compressed = compress_image(fetched.data, settings, output, task.output)
            compress_ms = _ms_since(compress_started)
        return _done(
            task,
            http_status=http_status,
            input_bytes=input_bytes,
            output_bytes=compressed.size,
            width=compressed.width,
            height=compressed.height,
            input_type=compressed.input_type,
            download_ms=download_ms,
            compress_ms=compress_ms,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            content_sha256=digest,
            output_format=compressed.output_format,
            kept_original=compressed.kept_original,
            over_target=compressed.over_target,
        )
    except ImageError as error:
        return failed_result(task, error, download_ms, input_bytes, http_status)
    except SettingsError as error:  # this Pillow cannot write the request's format
        problem = ImageError(ErrorCode.INTERNAL, str(error))
        return failed_result(task, problem, download_ms, input_bytes, http_status)
    except Exception as error:  # a bug: keep the other images going, but say so loudly
        logger.exception("unexpected error while processing %s", task.url)
        bug = ImageError(
            ErrorCode.INTERNAL,
            f"imgdesk hit an unexpected problem ({type(error).__name__}); see the log file.",
        )
        return failed_result(task, bug, download_ms, input_bytes, http_status)


def _reuse(
    task: ImageTask,
    storage: Storage,
    cached: CachedOutput,
    fetched: Download,
    download_ms: int,
    http_status: int,
) -> ImageResult:
    """The image did not change since an earlier run: its stored output serves again."""
    storage.copy(cached.key, task.output_key)
    return _done(
        task,
        http_status=http_status,
        input_bytes=cached.input_bytes,
        output_bytes=cached.output_bytes,
        width=cached.width,
        height=cached.height,
        input_type=cached.input_type,
        download_ms=download_ms,
        compress_ms=0,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        content_sha256=cached.content_sha256,
        reused=True,
        output_format=task.output.format,  # the cache key holds the output settings
        kept_original=has_note(cached.note, KEPT_ORIGINAL),
        over_target=has_note(cached.note, OVER_TARGET),
    )


def _done(task: ImageTask, **fields: Any) -> ImageResult:
    """The result of a task whose output is stored under its key."""
    return ImageResult(
        image_id=task.image_id,
        request_id=task.request_id,
        url=task.url,
        status="done",
        attempt=task.attempt,
        output_key=task.output_key,
        **fields,
    )


def failed_result(
    task: ImageTask,
    error: ImageError,
    download_ms: int | None = None,
    input_bytes: int | None = None,
    http_status: int | None = None,
) -> ImageResult:
    """The result of a task that ended in ``error``."""
    return ImageResult(
        image_id=task.image_id,
        request_id=task.request_id,
        url=task.url,
        status="failed",
        attempt=task.attempt,
        error_code=error.code,
        error=error.message,
        transient=error.transient,
        retry_after=error.retry_after,
        http_status=error.http_status or http_status,
        input_bytes=input_bytes,
        download_ms=download_ms,
    )


def _ms_since(start: float) -> int:
    return round((time.monotonic() - start) * 1000)
