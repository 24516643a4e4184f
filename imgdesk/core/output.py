"""Output formats and sizes (SPEC 9): what imgdesk writes for each image, and how.

:class:`OutputSettings` belongs to a request: it is stored with it, so retries use the same
settings, and its :attr:`~OutputSettings.key` decides whether an output stored by an earlier
run may be reused. Each output format is an :class:`Encoder` in :data:`ENCODERS`; an encoder
knows how to write its format and how to remove the metadata from a file that already has
its format without touching the pixels (for ``keep_original``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

# The plugins of every output format are imported here, once, so that Image.save never falls
# back to Image.init() (which imports every plugin) from a worker thread.
from PIL import (
    AvifImagePlugin,  # noqa: F401
    Image,
    JpegImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
    features,
)

from imgdesk.core.errors import SettingsError

# Bump when an encoder's tuning changes (speed, method, ...): outputs stored under an older
# key are then made again instead of being reused.
_KEY_VERSION = "out1"

_MAX_SIDE_SETTING = 65535
_MAX_TARGET_KB = 1024 * 1024  # 1 GiB, as large as the largest download imgdesk accepts

# AVIF: the encoder speed (0 slowest/smallest .. 10 fastest). On a 2000 x 2000 photo at q50,
# speed 6 takes ~1.5 s, 7 ~1.1 s, 8 ~0.5 s (files ~10 % larger than at 6), 9 ~0.2 s; 8 keeps
# AVIF practical for a catalogue. One thread per image: the scheduler already runs one image
# per core, and more threads gained under 10 % for a single image.
AVIF_SPEED = 8
# WebP: libwebp's default method (0 fastest .. 6 smallest), ~0.3 s for 2000 x 2000 at q50.
WEBP_METHOD = 4


class Encoder(Protocol):
    """An output format: how to write one, and what the rest of imgdesk needs to know about it.

    Attributes:
        name: the format's name in settings and on the command line, e.g. "jpeg".
        label: the name people know, for messages, e.g. "JPEG".
        extension: the output file's extension with its dot, e.g. ".jpg".
        content_type: the MIME type of the format, e.g. "image/jpeg"; an input of this
            type may be kept as it is (see :meth:`strip_metadata`).
        keeps_alpha: False when the format has no alpha channel: transparency is then
            flattened onto white before :meth:`encode` sees the image.
        keeps_grayscale: False when the format stores colour only: grayscale becomes RGB
            (and a grayscale ICC profile, which would not fit, is dropped).
        max_side: the largest width or height the format can store; larger images are
            scaled down to fit.
        pillow_feature: the :func:`PIL.features.check` name this format needs, or None.
    """

    name: str
    label: str
    extension: str
    content_type: str
    keeps_alpha: bool
    keeps_grayscale: bool
    max_side: int
    pillow_feature: str | None

    def encode(
        self, image: Image.Image, output_file: BinaryIO, quality: int, icc_profile: bytes | None
    ) -> None:
        """Write ``image`` to ``output_file``.

        Args:
            image: an 8-bit "L" or "RGB" image ("L" only if the format keeps grayscale), or
                "LA"/"RGBA" if the format keeps alpha; its ``info`` is empty, so no metadata
                can slip into the output.
            output_file: where to write; a real file lets Pillow encode JPEG without the GIL.
            quality: 1-100, as the format understands it.
            icc_profile: the profile to embed (it fits ``image``'s mode), or None.

        Raises:
            OSError: the encoder failed or ``output_file`` could not be written.
        """
        ...

    def strip_metadata(self, data: bytes) -> bytes | None:
        """``data`` (a file of this format) without its metadata but the ICC profile.

        Lossless: the compressed pixel data is copied as it is. None when the file cannot be
        stripped safely (a structure this walker does not know, an animation, ...), in which
        case the image is re-encoded.
        """
        ...


class _PillowEncoder:
    """What every output format here shares: Pillow writes it, with options of its own."""

    pillow_format: str  # the name Pillow's ``Image.save`` knows the format by

    def encode(
        self, image: Image.Image, output_file: BinaryIO, quality: int, icc_profile: bytes | None
    ) -> None:
        """Write ``image`` in this format; see :meth:`Encoder.encode`."""
        image.save(
            output_file,
            format=self.pillow_format,
            quality=quality,
            icc_profile=icc_profile,
            **self.save_options(image),
        )

    def save_options(self, image: Image.Image) -> dict[str, Any]:
        """The format's own options for ``Image.save``, beyond the quality and the profile."""
        return {}


class JpegEncoder(_PillowEncoder):
    """Baseline JPEG, the default output: every viewer and every shop platform reads it.

    No optimize or progressive option: they cost 30-86 % more CPU for a few % of bytes.
    """

    name = "jpeg"
    label = "JPEG"
    extension = ".jpg"
    content_type = "image/jpeg"
    keeps_alpha = False
    keeps_grayscale = True
    max_side = 65500  # libjpeg's JPEG_MAX_DIMENSION
    pillow_feature: str | None = None  # Pillow always has libjpeg
    pillow_format = "JPEG"

    def strip_metadata(self, data: bytes) -> bytes | None:
        """See :meth:`Encoder.strip_metadata` and :func:`strip_jpeg_metadata`."""
        return strip_jpeg_metadata(data)


class WebpEncoder(_PillowEncoder):
    """Lossy WebP: about 40 % smaller than JPEG at the same look; keeps transparency.

    libwebp runs without the GIL and hands back bytes: any output file will do.
    """

    name = "webp"
    label = "WebP"
    extension = ".webp"
    content_type = "image/webp"
    keeps_alpha = True
    keeps_grayscale = False  # libwebp stores YUV colour only
    max_side = 16383  # the format's limit
    pillow_feature: str | None = "webp"
    pillow_format = "WEBP"

    def save_options(self, image: Image.Image) -> dict[str, Any]:
        """How hard libwebp works for a smaller file (``WEBP_METHOD``)."""
        return {"method": WEBP_METHOD}

    def strip_metadata(self, data: bytes) -> bytes | None:
        """See :meth:`Encoder.strip_metadata` and :func:`strip_webp_metadata`."""
        return strip_webp_metadata(data)


class AvifEncoder(_PillowEncoder):
    """AVIF (AV1 still image): the smallest files, but 20-50 times slower to encode than JPEG."""

    name = "avif"
    label = "AVIF"
    extension = ".avif"
    content_type = "image/avif"
    keeps_alpha = True
    # Pillow decodes every AVIF as RGB(A): a monochrome AVIF would come back with a grayscale
    # profile on colour pixels. Gray as RGB costs little (the chroma planes are flat).
    keeps_grayscale = False
    max_side = 65536  # AV1's limit
    pillow_feature: str | None = "avif"
    pillow_format = "AVIF"

    def save_options(self, image: Image.Image) -> dict[str, Any]:
        """The encoder's speed, one thread, and full-resolution colour with transparency.

        With transparency, colour is kept at full resolution (4:4:4): with 4:2:0 the hidden
        colour of fully transparent pixels bleeds into their opaque neighbours (a red
        transparent pixel turned the white beside it pink).
        """
        subsampling = "4:4:4" if image.mode == "RGBA" else "4:2:0"
        return {"speed": AVIF_SPEED, "max_threads": 1, "subsampling": subsampling}

    def strip_metadata(self, data: bytes) -> bytes | None:
        """Never: imgdesk does not read AVIF input, so an AVIF is always encoded by us."""
        return None


JPEG_ENCODER = JpegEncoder()
WEBP_ENCODER = WebpEncoder()
AVIF_ENCODER = AvifEncoder()

# Every output format, by name.
ENCODERS: dict[str, Encoder] = {
    encoder.name: encoder for encoder in (JPEG_ENCODER, WEBP_ENCODER, AVIF_ENCODER)
}


def encoder_for(name: str) -> Encoder:
    """The encoder of the output format called ``name``, checked to work with this Pillow.

    Raises:
        SettingsError: no output format has that name, or the running Pillow was built
            without it.
    """
    try:
        encoder = ENCODERS[name]
    except KeyError:
        known = ", ".join(ENCODERS)
        raise SettingsError(f"Unknown output format {name!r}; choose one of: {known}.") from None
    if encoder.pillow_feature is not None and not features.check(encoder.pillow_feature):
        raise SettingsError(
            f"This installation cannot write {encoder.label}: its Pillow was built without "
            f"{encoder.label} support; install Pillow 11.3 or newer, or choose another format."
        )
    return encoder


@dataclass(frozen=True)
class OutputSettings:
    """What to write for each image: format, quality, size limits (SPEC 9).

    Attributes:
        format: "jpeg", "webp" or "avif" (a name in :data:`ENCODERS`).
        quality: 1-100, as the chosen format understands it.
        max_width: scale down to at most this width (keeping the aspect ratio), or None.
        max_height: scale down to at most this height, or None.
        target_size_kb: the highest quality up to ``quality`` whose output fits in this many
            KiB is used, or None for exactly ``quality``.
        keep_original: store an input that already has the output format as it is (minus
            its metadata) when re-encoding it would not make it smaller.
        flatten: put transparency onto white for WebP and AVIF too (JPEG always does).
    """

    format: str = "jpeg"
    quality: int = 50
    max_width: int | None = None
    max_height: int | None = None
    target_size_kb: int | None = None
    keep_original: bool = True
    flatten: bool = False

    def __post_init__(self) -> None:
        if self.format not in ENCODERS:
            raise SettingsError(f"format must be one of {', '.join(ENCODERS)}, not {self.format!r}")
        _check_whole_number("quality", self.quality, 1, 100)
        _check_whole_number("max_width", self.max_width, 1, _MAX_SIDE_SETTING, optional=True)
        _check_whole_number("max_height", self.max_height, 1, _MAX_SIDE_SETTING, optional=True)
        _check_whole_number("target_size_kb", self.target_size_kb, 1, _MAX_TARGET_KB, optional=True)
        for name in ("keep_original", "flatten"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise SettingsError(f"{name} must be true or false, not {value!r}")

    @property
    def encoder(self) -> Encoder:
        """The encoder for :attr:`format` (raises SettingsError if this Pillow lacks it)."""
        return encoder_for(self.format)

    @property
    def extension(self) -> str:
        """The output file's extension with its dot, e.g. ".webp"."""
        return ENCODERS[self.format].extension

    @property
    def content_type(self) -> str:
        """The output's MIME type, e.g. "image/webp"."""
        return ENCODERS[self.format].content_type

    @property
    def flattens(self) -> bool:
        """True if transparency is put onto white (always for a format without alpha)."""
        return self.flatten or not ENCODERS[self.format].keeps_alpha

    @property
    def key(self) -> str:
        """Everything that shapes the output bytes, as a stable string.

        An output stored by an earlier run is reused only under the same key. ``flatten``
        counts as on for JPEG whatever its value, since JPEG always flattens.
        """
        return (
            f"{_KEY_VERSION};{self.format};q={self.quality};"
            f"fit={_or_dash(self.max_width)}x{_or_dash(self.max_height)};"
            f"target={_or_dash(self.target_size_kb)};keep={int(self.keep_original)};"
            f"flatten={int(self.flattens)}"
        )

    def describe(self) -> str:
        """A short summary for people, e.g. "WebP q60, fit 1200×1200, ≤ 150 KiB, keep originals"."""
        parts = [f"{ENCODERS[self.format].label} q{self.quality}"]
        if self.max_width is not None and self.max_height is not None:
            parts.append(f"fit {self.max_width}×{self.max_height}")
        elif self.max_width is not None:
            parts.append(f"fit {self.max_width} wide")
        elif self.max_height is not None:
            parts.append(f"fit {self.max_height} high")
        if self.target_size_kb is not None:
            parts.append(f"≤ {self.target_size_kb} KiB")
        if self.flatten and ENCODERS[self.format].keeps_alpha:
            parts.append("flatten transparency")
        parts.append("keep originals" if self.keep_original else "always re-encode")
        return ", ".join(parts)

    def replace(self, **changes: Any) -> OutputSettings:
        """A copy with some fields changed (validated like the original)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputSettings:
        """Build from stored values; unknown keys are ignored, missing ones take defaults."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def _check_whole_number(
    name: str, value: object, low: int, high: int, *, optional: bool = False
) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        allowed = f"a whole number from {low} to {high}" + (" or none" if optional else "")
        raise SettingsError(f"{name} must be {allowed}, not {value!r}")


# --- lossless metadata removal -------------------------------------------------------------

# A marker in entropy-coded JPEG data: 0xFF, then neither a stuffed 0x00, a restart marker
# (RST0-7, which belong to the scan) nor another 0xFF (a fill byte).
_JPEG_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_JPEG_SOS, _JPEG_EOI, _JPEG_COM = 0xDA, 0xD9, 0xFE
_SEARCH_STEP = 256 * 1024  # bytes searched per step: well under a millisecond with the GIL
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RST0-7 have no length
# Start-of-frame markers (SOF0-15 without DHT, JPG and DAC): the frame's size and components.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_scan_exceeds(data: bytes, limit: int) -> bool:
    """True if a JPEG's pixel data (first scan to first end marker) alone is over ``limit`` bytes.

    Any stripped copy keeps those bytes, so a re-encoded output of ``limit`` bytes never
    loses to the original: stripping it is not needed to know. The search for the end marker
    stops after ``limit`` bytes of scan, a fraction of a big photo (a whole search cost
    1.4 ms per 1.2 MB photo). False when the layout is not plain enough to tell.
    """
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == _JPEG_SOS:
            # An end marker wholly in the first ``limit`` bytes of the scan is within it.
            end = _find_in_steps(data, b"\xff\xd9", pos, pos + limit)
            return end < 0 and len(data) - pos >= limit
        if marker in _JPEG_STANDALONE or marker == 0xFF:
            pos += 1 if marker == 0xFF else 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return False


def _find_in_steps(data: bytes, needle: bytes, start: int, end: int) -> int:
    """``data.find(needle, start, end)``, a step at a time: other threads get the GIL in between.

    A JPEG's scans are full of 0xFF bytes, so one search through a 5 MB photo holds the GIL
    for milliseconds, while the window's thread waits to run.
    """
    step = _SEARCH_STEP
    end = min(end, len(data))
    while start < end:
        found = data.find(needle, start, min(start + step + len(needle) - 1, end))
        if found >= 0:
            return found
        start += step
    return -1


def strip_jpeg_metadata(data: bytes) -> bytes | None:
    """A JPEG without EXIF, XMP, IPTC, comments or thumbnails; pixels and ICC untouched.

    Walks the segments: APP1 (EXIF, XMP), APP13 (IPTC, Photoshop), COM, the other APPn and
    anything after the end marker (e.g. the extra images of an MPO) are dropped; APP2 ICC
    profile chunks, APP14 "Adobe" where it changes how the colours convert (see
    :func:`_adobe_is_redundant`) and JFIF APP0 (with its thumbnail removed) are kept, and so
    is every table, frame and scan, byte for byte.

    Returns:
        The stripped file, or None if ``data`` is not a JPEG this walker understands.
    """
    if not data.startswith(b"\xff\xd8"):
        return None
    parts = [b"\xff\xd8"]
    adobe: tuple[int, int] | None = None  # (index in parts, transform) of an APP14 "Adobe"
    components = b""  # the frame's component ids
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            return None
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1  # fill bytes before a marker
        if pos >= len(data):
            return None
        marker = data[pos]
        pos += 1
        if marker == _JPEG_EOI:
            parts.append(b"\xff\xd9")
            if adobe is not None and _adobe_is_redundant(adobe[1], components):
                del parts[adobe[0]]
            return b"".join(parts)
        if marker in _JPEG_STANDALONE:
            parts.append(bytes((0xFF, marker)))
            continue
        if marker in (0x00, 0xD8):
            return None  # a stuffed byte or a second SOI outside a scan: not a plain JPEG
        length = int.from_bytes(data[pos : pos + 2], "big")
        end = pos + length
        if length < 2 or end > len(data):
            return None
        payload = _kept_jpeg_payload(marker, data[pos + 2 : end])
        if marker == 0xEE and payload is not None and len(payload) >= 12:
            adobe = (len(parts), payload[11])
        if marker in _JPEG_FRAMES and end - pos >= 8:
            count = data[pos + 7]
            components = data[pos + 8 : end : 3][:count]
        if payload is not None:
            parts.append(bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload)
        pos = end
        if marker == _JPEG_SOS:
            found = _JPEG_MARKER_IN_SCAN.search(data, pos)
            if found is None:
                return None  # no end marker: a truncated file
            parts.append(data[pos : found.start()])  # the entropy-coded scan, as it is
            pos = found.start()
    return None


def _adobe_is_redundant(transform: int, components: bytes) -> bool:
    """Whether decoders read the frame the same without its APP14 "Adobe" segment.

    Without it a one-component frame is grey and a three-component one YCbCr, unless its
    component ids spell "RGB" (libjpeg's rule); so the segment says nothing new for grey, nor
    for YCbCr (transform 1) with ordinary ids. RGB (transform 0) and CMYK frames keep it.
    """
    if len(components) == 1:
        return True
    return len(components) == 3 and transform == 1 and components != b"RGB"


def _kept_jpeg_payload(marker: int, payload: bytes) -> bytes | None:
    """The payload to write for this segment, or None to drop the segment."""
    if marker == 0xE0:  # APP0
        if payload.startswith(b"JFIF\x00") and len(payload) >= 14:
            return payload[:12] + b"\x00\x00"  # version, units, density; no thumbnail
        return None  # JFXX thumbnails and the like
    if marker == 0xE2:  # APP2
        return payload if payload.startswith(b"ICC_PROFILE\x00") else None
    if marker == 0xEE:  # APP14
        return payload if payload.startswith(b"Adobe") else None
    if 0xE0 <= marker <= 0xEF or marker == _JPEG_COM:
        return None  # APP1 EXIF/XMP, APP13 IPTC, other APPn, comments
    return payload


_WEBP_KEPT_CHUNKS = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ICCP"})
_VP8X_EXIF, _VP8X_XMP, _VP8X_ANIMATION = 0x08, 0x04, 0x02


def strip_webp_metadata(data: bytes) -> bytes | None:
    """A still WebP without its EXIF and XMP chunks (and their VP8X flags); ICCP kept.

    Only the chunks a still image needs are kept (VP8X, ICCP, ALPH, VP8/VP8L); the bitstream
    is copied as it is.

    Returns:
        The stripped file, or None for an animation or a file this walker does not understand.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    end = 8 + int.from_bytes(data[4:8], "little")
    if end > len(data):
        return None
    chunks: list[bytes] = []
    pos = 12
    while pos + 8 <= end:
        fourcc = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        payload = data[pos + 8 : pos + 8 + size]
        if len(payload) != size:
            return None
        pos += 8 + size + (size & 1)  # chunks are padded to an even size
        if fourcc == b"VP8X":
            if size < 10 or payload[0] & _VP8X_ANIMATION:
                return None
            payload = bytes((payload[0] & ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF,)) + payload[1:]
        if fourcc in _WEBP_KEPT_CHUNKS:
            chunks.append(fourcc + size.to_bytes(4, "little") + payload + b"\x00" * (size & 1))
    if pos != end and pos != end + 1:  # the last chunk's padding byte may be missing
        return None
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body
