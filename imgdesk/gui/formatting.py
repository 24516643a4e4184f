"""How the window writes sizes, savings, formats, durations, rates and times: one place, one style.

Sizes are decimal (1 kB = 1000 bytes), as GNOME's and macOS's file managers show them, so a
size in imgdesk reads the same as the file's size in the user's file manager; the tables,
the preview, the dashboard and the status bar all write it with :func:`format_bytes`.
"""

from __future__ import annotations

from PySide6.QtCore import QDateTime, QLocale

from imgdesk.core.output import ENCODERS
from imgdesk.core.repository import ImageInfo
from imgdesk.core.types import KEPT_ORIGINAL, OVER_TARGET

MINUS = "\u2212"
SEPARATOR = " \u00b7 "
_SIZE_UNITS = ("kB", "MB", "GB", "TB")


def format_bytes(count: int | None) -> str:
    """A decimal size: ``812 B``, ``9.8 kB``, ``412 kB``, ``1.4 MB``; empty when unknown."""
    if count is None:
        return ""
    if abs(count) < 1000:
        return f"{count} B"
    value = float(count)
    for unit in _SIZE_UNITS:
        value /= 1000
        # Rounded to 1000 would read "1000 kB": that is the next unit's "1.0 MB".
        if abs(round(value)) < 1000 or unit == _SIZE_UNITS[-1]:
            break
    return f"{value:.1f} {unit}" if abs(value) < 10 else f"{value:.0f} {unit}"


def savings_fraction(input_bytes: int | None, output_bytes: int | None) -> float | None:
    """Share of the input bytes saved (0.72 for 72% smaller; negative when it grew)."""
    if not input_bytes or output_bytes is None:
        return None
    return 1.0 - output_bytes / input_bytes


def format_savings(fraction: float | None) -> str:
    """``−72%`` for 72% smaller, ``+5%`` when the output grew, empty when unknown."""
    if fraction is None:
        return ""
    percent = round(fraction * 100)
    if percent > 0:
        return f"{MINUS}{percent}%"
    if percent < 0:
        return f"+{-percent}%"
    return "0%"


def format_name(output_format: str | None) -> str:
    """An output format's name as people know it: ``jpeg`` -> ``JPEG``, ``webp`` -> ``WebP``."""
    if not output_format:
        return ""
    encoder = ENCODERS.get(output_format)
    return encoder.label if encoder is not None else output_format.upper()


def describe_picture(width: int, height: int, byte_count: int | None, image_format: str) -> str:
    """``1600 × 1200 px · 412 kB JPEG``: what a picture is, for the preview's captions."""
    parts = [f"{width} \u00d7 {height} px"]
    if byte_count is not None:
        parts.append(f"{format_bytes(byte_count)} {image_format}".strip())
    return SEPARATOR.join(parts)


def describe_output(image: ImageInfo) -> str:
    """Pixels, size, format and savings of an image's output, and what a person should know."""
    facts = []
    if image.width and image.height:
        facts.append(f"{image.width} \u00d7 {image.height} px")
    facts.append(f"{format_bytes(image.output_bytes)} {format_name(image.output_format)}".strip())
    fraction = savings_fraction(image.input_bytes, image.output_bytes)
    if fraction is not None and image.input_bytes is not None:
        saved = image.input_bytes - (image.output_bytes or 0)
        facts.append(f"{format_savings(fraction)} ({format_bytes(saved)} saved)")
    notes = (image.note or "").split(",")
    if KEPT_ORIGINAL in notes:
        facts.append("the original kept, its metadata removed")
    if OVER_TARGET in notes:
        facts.append("over the target size even at the lowest quality")
    return SEPARATOR.join(facts)


def describe_known_original(image: ImageInfo) -> str:
    """What the database knows of an image's original before it is downloaded again."""
    if not image.input_bytes:
        return ""
    return f"{format_bytes(image.input_bytes)} {image.input_type or ''}".strip()


def format_duration(seconds: float | None) -> str:
    """``4.2 s``, ``42 s``, ``3 min 05 s``, ``1 h 02 min``; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_rate(per_second: float) -> str:
    """A rate with one decimal, e.g. ``0.3`` or ``1,250.0``; the caller names the unit."""
    return f"{per_second:,.1f}"


def format_timestamp(timestamp: float | None) -> str:
    """The time of day for today, else the short local date and time; empty when unknown."""
    if timestamp is None:
        return ""
    moment = QDateTime.fromSecsSinceEpoch(int(timestamp))
    locale = QLocale()
    if moment.date() == QDateTime.currentDateTime().date():
        return locale.toString(moment.time(), QLocale.FormatType.ShortFormat)
    return locale.toString(moment, QLocale.FormatType.ShortFormat)


def format_timestamp_seconds(timestamp: float) -> str:
    """The time to the second for today (attempts can be a second apart), else the date too."""
    moment = QDateTime.fromSecsSinceEpoch(int(timestamp))
    if moment.date() == QDateTime.currentDateTime().date():
        return moment.toString("HH:mm:ss")
    return moment.toString("yyyy-MM-dd HH:mm:ss")


def format_timestamp_exact(timestamp: float) -> str:
    """Date and time to the millisecond, for a tooltip that must tell attempts apart."""
    return QDateTime.fromMSecsSinceEpoch(int(timestamp * 1000)).toString("yyyy-MM-dd HH:mm:ss.zzz")
