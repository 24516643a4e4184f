"""Immutable values handed between the engine and the per-image work.

They are plain data with ``to_dict`` / ``from_dict``, so a task queue can carry them to a
worker on another machine and the result back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from imgdesk.core.output import OutputSettings
from imgdesk.core.states import ImageStatus
from imgdesk.core.storage_choice import StorageChoice

# The notes an image's output may carry (SPEC 9), comma-separated in the image row.
KEPT_ORIGINAL = "kept_original"  # the input itself, its metadata removed
OVER_TARGET = "over_target"  # larger than the target size even at the lowest quality tried


def image_note(kept_original: bool, over_target: bool) -> str | None:
    """The note of an output: ``kept_original``, ``over_target``, both, or None."""
    notes = [KEPT_ORIGINAL] if kept_original else []
    if over_target:
        notes.append(OVER_TARGET)
    return ",".join(notes) or None


def has_note(note: str | None, name: str) -> bool:
    """True if ``note`` (as :func:`image_note` writes it) says ``name``."""
    return name in (note or "").split(",")


@dataclass(frozen=True)
class CachedOutput:
    """A stored output of the same URL under the same output settings, from an earlier run.

    Lets a second run ask the server "changed since?" (ETag / Last-Modified) and, when the
    answer is no or the bytes hash the same, reuse the stored output instead of redoing it.
    ``key`` is its storage key (``<request_id>/<file name>``); ``note`` is the
    :func:`image_note` it was stored with.
    """

    key: str
    etag: str | None
    last_modified: str | None
    content_sha256: str
    input_bytes: int
    output_bytes: int
    width: int
    height: int
    input_type: str
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CachedOutput:
        """The inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True)
class ImageTask:
    """One image to fetch, compress and store: everything a worker needs, nothing live.

    Attributes:
        image_id: database id of the image (the first one when a URL repeats).
        request_id: the processing request it belongs to.
        url: the input URL.
        output_key: the storage key the output must end up under.
        output: what to write: the request's output settings.
        attempt: 1 for the first try, 2 for the first retry, ...
        cached: an earlier output of this URL that may be reused, if any.
        storage: where the request stores its outputs (the worker opens it).
    """

    image_id: int
    request_id: str
    url: str
    output_key: str
    output: OutputSettings
    attempt: int = 1
    cached: CachedOutput | None = None
    storage: StorageChoice = dataclasses.field(default_factory=StorageChoice)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageTask:
        """The inverse of :meth:`to_dict`."""
        cached = data.get("cached")
        return cls(
            **{
                **data,
                "output": OutputSettings.from_dict(data["output"]),
                "cached": CachedOutput.from_dict(cached) if cached else None,
                "storage": StorageChoice.from_dict(data.get("storage", {})),
            }
        )


@dataclass(frozen=True)
class ImageResult:
    """What became of one :class:`ImageTask`.

    ``status`` is ``done`` or ``failed``. A failure carries ``error_code`` and ``error``;
    ``transient`` says whether another attempt may succeed and ``retry_after`` how long the
    server asked us to wait. A stored output says its ``output_format`` and whether it is
    the input kept as it was (``kept_original``) or above the target size (``over_target``).
    """

    image_id: int
    request_id: str
    url: str
    status: str
    attempt: int
    error_code: str | None = None
    error: str | None = None
    transient: bool = False
    retry_after: float | None = None
    http_status: int | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    input_type: str | None = None
    download_ms: int | None = None
    compress_ms: int | None = None
    output_key: str | None = None
    # For the next run: what the server said, and the hash of what it sent.
    etag: str | None = None
    last_modified: str | None = None
    content_sha256: str | None = None
    reused: bool = False  # the stored output of an earlier run was reused
    output_format: str | None = None
    kept_original: bool = False
    over_target: bool = False

    @property
    def ok(self) -> bool:
        """True when the image was stored."""
        return self.status == ImageStatus.DONE

    @property
    def note(self) -> str | None:
        """What the image row notes about the output (see :func:`image_note`)."""
        return image_note(self.kept_original, self.over_target)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageResult:
        """The inverse of :meth:`to_dict`."""
        return cls(**data)
