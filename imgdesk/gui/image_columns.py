"""What each column of the images table shows: its text, sort key and tooltip.

Plain functions of an image, so :class:`~imgdesk.gui.images_model.ImagesTableModel` keeps
to its rows (paging, sorting, filtering, refreshing) and each column reads in one place.
"""

from __future__ import annotations

from typing import Any

from imgdesk.core.repository import ImageInfo
from imgdesk.core.states import ImageStatus, ShownState
from imgdesk.gui.delegates import BUSY_PROGRESS
from imgdesk.gui.formatting import format_bytes, format_savings, savings_fraction
from imgdesk.gui.models import IN_FLIGHT_STATES, STATE_LABELS, image_state

# (bytes received, bytes announced or None) of an image downloading, as the engine tells it.
Received = tuple[int, int | None]

COL_SERIAL = 0
COL_PRODUCT = 1
COL_POSITION = 2
COL_THUMBNAIL = 3
COL_STATE = 4
COL_SIZE = 5
COL_SAVINGS = 6
COL_MESSAGE = 7
COL_OUTPUT = 8
COL_URL = 9
COLUMN_COUNT = 10

HEADERS = {
    COL_SERIAL: "S. No.",
    COL_PRODUCT: "Product",
    COL_POSITION: "#",
    COL_THUMBNAIL: "",
    COL_STATE: "State",
    COL_SIZE: "Size before \u2192 after",
    COL_SAVINGS: "Saved",
    COL_MESSAGE: "Message",
    COL_OUTPUT: "Output file",
    COL_URL: "Input URL",
}

HEADER_TIPS = {
    COL_POSITION: "Position of the image among the product's URLs",
    COL_THUMBNAIL: "Thumbnail of the compressed image",
    COL_SAVINGS: "How much smaller the compressed image is",
    COL_MESSAGE: "Why an image failed or is retried (its error code in the tooltip)",
}

# A compression reports no progress of its own: its bar shows the stage reached. A download's
# bar fills by its bytes instead (see stage_progress).
COMPRESSING_PROGRESS = 2 / 3

# Lifecycle order, so sorting by state groups the table the way work moves through it.
STATE_ORDER = {
    state: rank
    for rank, state in enumerate(
        (
            ShownState.PENDING,
            ShownState.RETRYING,
            ShownState.DOWNLOADING,
            ShownState.COMPRESSING,
            ShownState.DONE,
            ShownState.FAILED,
            ShownState.CANCELLED,
        )
    )
}
# Read once (an enum member costs a look-up each time): a sort by size asks every image.
_DONE = ImageStatus.DONE


def natural_key(text: str) -> str:
    """A string that sorts ``2`` before ``10`` and numbers before words."""
    stripped = text.strip()
    if stripped.isdigit():
        return f"0{int(stripped):020d}"
    return f"1{stripped.casefold()}"


def stage_text(state: ShownState, received: Received | None) -> str:
    """The words of a state; on a stage bar "Downloading 340 kB of 1.2 MB" or "Compressing…"."""
    label = STATE_LABELS.get(state, state)
    if state == ShownState.DOWNLOADING and received is not None:
        count, announced = received
        of = f" of {format_bytes(announced)}" if announced else ""
        return f"{label} {format_bytes(count)}{of}"
    if state in IN_FLIGHT_STATES:
        return f"{label}\u2026"
    return label


def stage_progress(state: str, received: Received | None) -> float | None:
    """How full a stage bar is: a download by its bytes, :data:`BUSY_PROGRESS` while unknown."""
    if state == ShownState.DOWNLOADING:
        count, announced = received if received is not None else (0, None)
        # Before the first bytes, or without a Content-Length, the end is unknown.
        return min(1.0, count / announced) if announced else BUSY_PROGRESS
    return COMPRESSING_PROGRESS if state == ShownState.COMPRESSING else None


def cell_texts(image: ImageInfo, received: Received | None = None) -> tuple[str, ...]:
    """The text of every column of an image, then its state key (see :func:`image_state`).

    Args:
        image: the image.
        received: its download's bytes so far, while it downloads.
    """
    state = image_state(image)
    size = savings = ""
    if image.status == _DONE:
        savings = format_savings(savings_fraction(image.input_bytes, image.output_bytes))
        if image.input_bytes is not None:
            before, after = format_bytes(image.input_bytes), format_bytes(image.output_bytes)
            size = f"{before} \u2192 {after}"
    return (
        image.serial,
        image.product_name,
        str(image.position),
        "",
        stage_text(state, received),
        size,
        savings,
        image.error or image.error_code or "",
        image.output_path or "",
        image.url,
        state,
    )


def sort_key(row: tuple[Any, ...], column: int) -> Any:
    """What an image (a tuple of its ImageInfo fields) sorts by in ``column``."""
    image = ImageInfo._make(row)
    if column == COL_SERIAL:
        return natural_key(image.serial)
    if column == COL_PRODUCT:
        return image.product_name.casefold()
    if column == COL_POSITION:
        return image.position
    if column in (COL_STATE, COL_THUMBNAIL):
        return STATE_ORDER.get(image_state(image), 99)
    if column == COL_SIZE:
        return image.input_bytes if image.status == _DONE and image.input_bytes else -1
    if column == COL_SAVINGS:
        fraction = savings_fraction(image.input_bytes, image.output_bytes)
        return fraction if image.status == _DONE and fraction is not None else -1e9
    if column == COL_MESSAGE:
        return (image.error or image.error_code or "").casefold()
    if column == COL_OUTPUT:
        return image.output_path or ""
    if column == COL_URL:
        return image.url
    return None


def tooltip(image: ImageInfo, column: int) -> str | None:
    """The tooltip of an image's cell in ``column``, if it has one."""
    if column == COL_URL:
        return image.url
    if column == COL_OUTPUT:
        return image.output_url or image.output_path
    if column == COL_MESSAGE and (image.error or image.error_code):
        status = f" (HTTP {image.http_status})" if image.http_status else ""
        return f"{image.error_code}{status}: {image.error or ''}".rstrip(": ")
    if column == COL_STATE:
        label = STATE_LABELS.get(image_state(image), image.status)
        if image.attempts > 1:
            label = f"{label} after {image.attempts} attempts"
        if image.status == ImageStatus.FAILED:
            label += " \u2014 double-click to retry"
        return label
    if column == COL_SIZE and image.status == _DONE:
        size = f"{image.width} \u00d7 {image.height} px, " if image.width else ""
        timing = ""
        if image.download_ms is not None and image.compress_ms is not None:
            timing = f"; downloaded in {image.download_ms} ms, compressed in {image.compress_ms} ms"
        return (
            f"{size}{format_bytes(image.input_bytes)} {image.input_type or ''} \u2192 "
            f"{format_bytes(image.output_bytes)} JPEG{timing}"
        )
    if column == COL_PRODUCT:
        return image.product_name
    return None
