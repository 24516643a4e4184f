"""Turn downloaded bytes into an output image: sniff the type, decode safely, normalise, encode.

The type is decided by magic bytes alone (a server's Content-Type is often wrong), only the
decoder for that one allowed type is ever run, pixel counts are checked from the header before
any pixel is decoded, and every failure becomes an :class:`ImageError` with a sentence a shop
owner understands.

What is written is an :class:`~imgdesk.core.output.OutputSettings` (format, quality, size
limits). Everything before the encoder is the same for every format: orientation, 16-bit and
CMYK to 8 bits, transparency as an alpha band (flattened onto white for JPEG or when asked),
then scaling down to fit. An input that already has the output format may be kept as it is,
minus its metadata, when re-encoding would not make it smaller.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import struct
import tempfile
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, NoReturn

# The plugins for every type a user may allow are imported here, once, so that Image.open
# never falls back to Image.init() (which imports every plugin) from a worker thread.
from PIL import (
    BmpImagePlugin,  # noqa: F401
    ExifTags,
    GifImagePlugin,  # noqa: F401
    Image,
    ImageCms,
    ImageFile,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)

from imgdesk.core.errors import ErrorCode, ImageError
from imgdesk.core.output import Encoder, OutputSettings, jpeg_scan_exceeds
from imgdesk.core.settings import Settings
from imgdesk.core.sniff import describe_non_image, detect_type

logger = logging.getLogger(__name__)

# Deliberate, process-wide: the spec treats Pillow's bomb *warning* as an error. The filter is
# set once at import (warnings.catch_warnings() per call would not be thread-safe). It is not
# what keeps us safe: compress_image() also checks min(max_pixels, Pillow's limit) itself, so
# the outcome is the same even if some other code resets the warning filters.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

# Pillow plugin name for each MIME type a user may allow (settings.KNOWN_INPUT_TYPES).
_PILLOW_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
}

# Short names people know, for messages.
_LABELS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WebP",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
    "image/svg+xml": "SVG",
    "image/x-icon": "ICO",
    "image/avif": "AVIF",
    "image/heic": "HEIC",
    "image/x-portable-bitmap": "PBM",
    "image/x-portable-graymap": "PGM",
    "image/x-portable-pixmap": "PPM",
    "image/x-portable-arbitrarymap": "PAM",
    "image/x-portable-floatmap": "PFM",
    "image/jp2": "JPEG 2000",
    "image/jxl": "JPEG XL",
    "image/vnd.adobe.photoshop": "Photoshop (PSD)",
}

# What a malformed file makes Pillow's decoders raise. Anything else is caught too (a file
# must never crash a worker) but logged with its traceback, as it may be a bug of ours.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError, KeyError)

_BAD_IMAGE_MESSAGE = "The image file is damaged or incomplete and cannot be read."

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# How to turn a picture upright for each EXIF Orientation (as ImageOps.exif_transpose does).
_EXIF_TRANSPOSITIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# What compress_image writes when no request's output settings are given: SPEC 9's defaults.
_DEFAULT_OUTPUT = OutputSettings()
# The lowest quality a target size may push an output to: below it pictures fall apart.
TARGET_QUALITY_FLOOR = 10
# resize() first shrinks by a whole factor with reduce() as long as LANCZOS is left at least
# this factor: much faster for big reductions, and from 3.0 Pillow documents the result as
# indistinguishable from LANCZOS all the way "in most cases".
_REDUCING_GAP = 3.0


@dataclass(frozen=True)
class Compressed:
    """A compressed image, written to the destination file (or held in ``data``).

    Attributes:
        data: the output bytes (empty when they were written to a destination file).
        width: output width in pixels, as stored (after orientation and scaling).
        height: output height in pixels.
        input_type: the MIME type detected from the input bytes.
        size: the number of output bytes.
        output_format: the output format's name, e.g. "webp" (an :data:`ENCODERS` key).
        quality: the quality the output was encoded at (below the one asked for when
            ``target_size_kb`` required it), or None for a kept original.
        kept_original: the output is the input itself with its metadata removed.
        over_target: even the lowest quality tried did not fit in ``target_size_kb``.
    """

    data: bytes
    width: int
    height: int
    input_type: str
    size: int
    output_format: str
    quality: int | None
    kept_original: bool = False
    over_target: bool = False


class _DestinationError(Exception):
    """Writing to the caller's file (or the scratch file) failed: storage, not a bad image."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def compress_image(
    data: bytes,
    settings: Settings,
    destination: BinaryIO | None = None,
    output: OutputSettings = _DEFAULT_OUTPUT,
) -> Compressed:
    """Decode ``data`` (an allowed image type) and write it as ``output`` says.

    ``settings`` guards the decoding (allowed types, pixel limit); ``output`` chooses what is
    written (format, quality, size limits): a request's output settings, by default SPEC 9's
    (JPEG at quality 50).

    EXIF orientation is applied, CMYK and 16-bit input become 8-bit RGB (or grayscale),
    transparency is flattened onto white for JPEG or when ``output.flatten`` asks, the image
    is scaled down to fit ``max_width`` x ``max_height``, the ICC profile is kept when it
    still fits the output and every other piece of metadata (EXIF, GPS, XMP, comments) is
    dropped. A PNG whose chunk checksums fail is a bad image, not a picture. With a
    ``destination``, the output is written into it, once.

    Raises:
        ImageError: ``not_an_image``, ``unsupported_type``, ``decompression_bomb`` or
            ``bad_image``; all permanent.
        SettingsError: the running Pillow cannot write ``output.format``.
        OSError: ``destination`` (or the scratch file of a size search) could not be written.
    """
    encoder = output.encoder  # before any work: a format this Pillow lacks is not the image's fault
    input_type = detect_type(data)
    if input_type is None:
        raise ImageError(ErrorCode.NOT_AN_IMAGE, describe_non_image(data))
    pillow_format = _PILLOW_FORMATS.get(input_type)
    if input_type not in settings.allowed_types or pillow_format is None:
        raise ImageError(ErrorCode.UNSUPPORTED_TYPE, _unsupported_message(input_type, settings))
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # A process-wide switch some other code could flip: truncated files would then turn
        # into half-grey pictures that look like successes. That is a bug, not a bad file.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    try:
        return _compress(data, input_type, pillow_format, settings, destination, output, encoder)
    except ImageError:
        raise
    except _DestinationError as exc:
        raise exc.error from None  # the caller words it (storage.atomic_file)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        message = _bomb_message(settings, pixels=_pillow_bomb_pixels(exc))
        raise ImageError(ErrorCode.DECOMPRESSION_BOMB, message) from exc
    except MemoryError:
        raise  # not the file's fault: let the caller's bug handling see it
    except _DECODE_ERRORS as exc:
        logger.debug("Cannot decode %s image: %r", _LABELS[input_type], exc)
        raise ImageError(ErrorCode.BAD_IMAGE, _BAD_IMAGE_MESSAGE) from exc
    except Exception as exc:
        logger.warning("Unexpected error decoding a %s image", _LABELS[input_type], exc_info=True)
        raise ImageError(ErrorCode.BAD_IMAGE, _BAD_IMAGE_MESSAGE) from exc


def _compress(
    data: bytes,
    input_type: str,
    pillow_format: str,
    settings: Settings,
    destination: BinaryIO | None,
    output: OutputSettings,
    encoder: Encoder,
) -> Compressed:
    if input_type == "image/png":
        _check_png_chunks(data)  # Pillow does not check the CRCs of the pixel data
    # Only the plugin of the detected (and allowed) type may run: a polyglot file that starts
    # like a JPEG is decoded as a JPEG or not at all. BytesIO over bytes does not copy them.
    with Image.open(io.BytesIO(data), formats=[pillow_format]) as im:
        # Header only so far: refuse a bomb before a single pixel is decoded.
        limit = _pixel_limit(settings)
        if im.width * im.height > limit:
            raise ImageError(ErrorCode.DECOMPRESSION_BOMB, _bomb_message(settings, size=im.size))
        full_size = im.size  # draft() below makes im.size the decoded (smaller) size
        draft_box = _decode_jpeg_scaled(im, output, encoder) if pillow_format == "JPEG" else None
        # A PNG's tRNS chunk counts only before the pixel data; load() reads the chunks after it.
        transparency = im.info.get("transparency")
        _decode(im, pillow_format, len(data))  # raises if the file is truncated
        icc_profile = im.info.get("icc_profile")
        if input_type == "image/png":
            _set_png_transparency(im, data, transparency)
        orientation = _exif_orientation(im)
        oriented_size = _oriented(full_size, orientation)
        size = _fit_size(oriented_size, output, encoder)
        may_keep = (
            size == oriented_size
            and orientation == 1
            and _may_keep_original(im, input_type, icc_profile, output, encoder)
        )
        out = _to_8_bit(im, icc_profile)
        if out.mode in ("LA", "RGBA") and output.flattens:
            out = _flatten_on_white(out)
        out = _shaped(out, _oriented(size, orientation), orientation, draft_box, encoder)
        keep_icc = icc_profile if _icc_fits(icc_profile, out.mode) else None
        # Encoders copy some fields (e.g. "comment", "exif") from info: start from nothing.
        out.info = {}
        if output.target_size_kb is None:
            # The common case: one encode, straight into the destination. The original is
            # looked at only when it could be the smaller one (q90 photos in, q50 out: never).
            start = destination.tell() if destination is not None else 0
            encoded, written = _encode_once(out, keep_icc, output.quality, encoder, destination)
            original = _smaller_original(data, written, encoder) if may_keep else None
            if original is not None:
                encoded = _replace_output(original, destination, start)
            return Compressed(
                data=encoded,
                width=out.width,
                height=out.height,
                input_type=input_type,
                size=written if original is None else len(original),
                output_format=encoder.name,
                quality=output.quality if original is None else None,
                kept_original=original is not None,
            )
        original = encoder.strip_metadata(data) if may_keep else None
        encoded, encoded_quality, over_target = _encode_best(out, keep_icc, output, encoder)
    quality: int | None = encoded_quality
    kept_original = False
    if original is not None and len(original) <= len(encoded):  # re-encoding would not help
        encoded, quality, kept_original = original, None, True
        over_target = _over_target(len(original), output)
    return Compressed(
        data=_deliver(encoded, destination),
        width=size[0],
        height=size[1],
        input_type=input_type,
        size=len(encoded),
        output_format=encoder.name,
        quality=quality,
        kept_original=kept_original,
        over_target=over_target,
    )


def _shaped(
    out: Image.Image,
    stored_size: tuple[int, int],
    orientation: int,
    draft_box: tuple[float, float, float, float] | None,
    encoder: Encoder,
) -> Image.Image:
    """Scale, turn upright and give the mode the encoder takes.

    Scaled while still in the stored orientation, so the draft's box applies as it is, then
    turned: turning the smaller picture is cheaper.
    """
    if out.size != stored_size:
        out = out.resize(
            stored_size, Image.Resampling.LANCZOS, box=draft_box, reducing_gap=_REDUCING_GAP
        )
    if orientation != 1:
        out = out.transpose(_EXIF_TRANSPOSITIONS[orientation])
    if out.mode in ("L", "LA") and not encoder.keeps_grayscale:
        out = out.convert("RGB" if out.mode == "L" else "RGBA")
    return out


# Formats whose decoder writes every pixel of a still image (a GIF's starts from its
# transparent index, which Pillow fills in itself).
_FILLED_BY_DECODER = frozenset({"JPEG", "PNG"})


def _decode(im: ImageFile.ImageFile, pillow_format: str, size: int) -> None:
    """Decode the pixels (an animation's first frame) with the GIL held as little as can be.

    One decoder call for the whole body: Pillow releases the GIL inside each call and takes
    it back between them (64 KiB by default), where other threads hold it.
    """
    im.decodermaxblock = max(size, 65536)
    if pillow_format in _FILLED_BY_DECODER:
        _prepare_pixels(im)
    im.load()


def _prepare_pixels(im: ImageFile.ImageFile) -> None:
    """Give the decoder its pixel memory zeroed with the GIL released.

    Pillow's own allocation in ``load()`` zeroes a block of its block cache
    (``process.reuse_pixel_memory``) while holding the GIL: 3 ms for a 12-megapixel photo,
    in which no other thread runs Python; profiled under the window, two fifths of the time
    the GIL was held. ``Image.core.fill`` writes the same zeros with the GIL released. An
    animation's frames are composed from the previous frame: Pillow keeps those. Without
    tiles there is nothing to decode, and ``load()`` must still refuse the file.
    """
    if im.tile and im._im is None and not getattr(im, "is_animated", False):
        im.im = Image.core.fill(im.mode, im.size, 0)  # type: ignore[attr-defined]


def _decode_jpeg_scaled(
    im: Image.Image, output: OutputSettings, encoder: Encoder
) -> tuple[float, float, float, float] | None:
    """Let libjpeg scale a JPEG down by 1/2, 1/4 or 1/8 while decoding, if it is to shrink.

    DCT-domain scaling is 2-6 times faster than decoding everything and resizing, and
    Pillow picks the largest scale that still gives at least the size asked for, so the
    LANCZOS resize that follows always scales down. Pillow reads the EXIF block with the
    header, so the orientation is known before any pixel is decoded.

    Returns:
        The source's area in the decoded picture (its last row and column may be partly
        padding), for resize(box=...); None when the JPEG is decoded at full size.
    """
    orientation = _exif_orientation(im)
    oriented_size = _oriented(im.size, orientation)
    size = _fit_size(oriented_size, output, encoder)
    if size == oriented_size:
        return None
    scaled = im.draft(im.mode, _oriented(size, orientation))  # the stored, unrotated size
    return None if scaled is None else scaled[1]


def _exif_orientation(im: Image.Image) -> int:
    """The EXIF Orientation (1-8), read as :func:`ImageOps.exif_transpose` reads it; 1 if none."""
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except (*_DECODE_ERRORS, TypeError) as exc:
        logger.debug("Ignoring unreadable EXIF data: %r", exc)
        return 1
    return value if isinstance(value, int) and 2 <= value <= 8 else 1


def _oriented(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """``size`` after the EXIF orientation: 5-8 turn the picture by a quarter."""
    width, height = size
    return (height, width) if orientation >= 5 else (width, height)


def _fit_size(size: tuple[int, int], output: OutputSettings, encoder: Encoder) -> tuple[int, int]:
    """``size`` scaled down to fit the output's limits (and the format's), keeping the aspect.

    Never enlarges. The limiting side gets its limit exactly; the other is rounded and at
    least 1 pixel.
    """
    width, height = size
    max_width = min(output.max_width or encoder.max_side, encoder.max_side)
    max_height = min(output.max_height or encoder.max_side, encoder.max_side)
    if width <= max_width and height <= max_height:
        return size
    if max_width * height <= max_height * width:  # the width limits
        return max_width, max(1, (height * max_width + width // 2) // width)
    return max(1, (width * max_height + height // 2) // height), max_height


def _may_keep_original(
    im: Image.Image,
    input_type: str,
    icc_profile: bytes | None,
    output: OutputSettings,
    encoder: Encoder,
) -> bool:
    """True if the input (minus metadata) would be a faithful output of this format.

    That takes the same format, a still image, pixels the output would hold unchanged
    (not CMYK, no transparency to flatten) and an ICC profile, if any, that fits them. Size
    and orientation are checked by the caller.
    """
    if not output.keep_original or input_type != encoder.content_type:
        return False
    if getattr(im, "n_frames", 1) > 1:
        return False  # the output is the first frame only
    if im.mode == "RGBA":
        if output.flattens:
            return False
    elif im.mode != "RGB" and not (im.mode == "L" and encoder.keeps_grayscale):
        return False
    return not icc_profile or _icc_fits(icc_profile, im.mode)


def _smaller_original(data: bytes, written: int, encoder: Encoder) -> bytes | None:
    """The input without its metadata, if that is no larger than the ``written`` output."""
    if encoder.name == "jpeg" and jpeg_scan_exceeds(data, written):
        return None  # its pixel data alone is larger: no need to strip it to know
    original = encoder.strip_metadata(data)
    return original if original is not None and len(original) <= written else None


def _replace_output(original: bytes, destination: BinaryIO | None, start: int) -> bytes:
    """Put ``original`` where the encoded output was written; the bytes kept in memory."""
    if destination is None:
        return original
    try:
        destination.seek(start)
        destination.truncate()
        destination.write(original)
    except OSError as exc:
        raise _DestinationError(exc) from exc
    return b""


def _encode_once(
    out: Image.Image,
    icc_profile: bytes | None,
    quality: int,
    encoder: Encoder,
    destination: BinaryIO | None,
) -> tuple[bytes, int]:
    """Encode straight into ``destination`` (or memory): the bytes (if in memory) and size."""
    if destination is None:
        buffer = io.BytesIO()
        encoder.encode(out, buffer, quality, icc_profile)
        value = buffer.getvalue()
        return value, len(value)
    # A real file: Pillow encodes JPEG straight into its descriptor without the GIL (into a
    # BytesIO it holds the GIL for the whole encode: encoding threads run one at a time).
    start = destination.tell()
    try:
        encoder.encode(out, destination, quality, icc_profile)
    except OSError as exc:
        raise _DestinationError(exc) from exc
    return b"", destination.tell() - start


def _encode_best(
    out: Image.Image, icc_profile: bytes | None, output: OutputSettings, encoder: Encoder
) -> tuple[bytes, int, bool]:
    """The output at ``output.quality``, or the best one within the target size.

    Each candidate is encoded into a scratch file (a real file, so JPEG encodes without the
    GIL); the caller writes only the chosen one to the destination.

    Returns:
        The encoded bytes, the quality used and whether they are over the target size.
    """
    try:
        with tempfile.TemporaryFile() as scratch:

            def encode_at(quality: int) -> bytes:
                scratch.seek(0)
                scratch.truncate()
                encoder.encode(out, scratch, quality, icc_profile)
                scratch.seek(0)
                return scratch.read()

            if output.target_size_kb is None:
                return encode_at(output.quality), output.quality, False
            return fit_target_size(encode_at, output.quality, output.target_size_kb * 1024)
    except OSError as exc:  # the scratch file could not be made or written
        raise _DestinationError(exc) from exc


def fit_target_size(
    encode_at: Callable[[int], bytes], quality: int, limit_bytes: int
) -> tuple[bytes, int, bool]:
    """The output of the highest quality up to ``quality`` that fits in ``limit_bytes``.

    ``quality`` itself is tried first, then a bisection between :data:`TARGET_QUALITY_FLOOR`
    and ``quality - 1``: at most 8 encodes for any quality up to 100. If nothing fits, the
    output at the floor (the smallest tried) is returned, marked over the target.

    Args:
        encode_at: encodes the image at a quality and returns the bytes.
        quality: the highest quality allowed.
        limit_bytes: the target size.

    Returns:
        The chosen bytes, their quality and True if they do not fit in ``limit_bytes``.
    """
    first = encode_at(quality)
    if len(first) <= limit_bytes:
        return first, quality, False
    smallest = (quality, first)
    best: tuple[int, bytes] | None = None
    low, high = min(TARGET_QUALITY_FLOOR, quality), quality - 1
    while low <= high:
        middle = (low + high) // 2
        candidate = encode_at(middle)
        if len(candidate) <= limit_bytes:
            best = (middle, candidate)
            low = middle + 1
        else:
            smallest = min(smallest, (middle, candidate))
            high = middle - 1
    if best is not None:
        return best[1], best[0], False
    return smallest[1], smallest[0], True


def _over_target(size: int, output: OutputSettings) -> bool:
    return output.target_size_kb is not None and size > output.target_size_kb * 1024


def _deliver(encoded: bytes, destination: BinaryIO | None) -> bytes:
    """Write the chosen output into ``destination``; the bytes to keep in memory, if any."""
    if destination is None:
        return encoded
    try:
        destination.write(encoded)
    except OSError as exc:
        raise _DestinationError(exc) from exc
    return b""


def _check_png_chunks(data: bytes) -> None:
    """Raise ``bad_image`` unless the chunks from IHDR to IEND are complete with good CRCs.

    Pillow checks the CRCs of the chunks before the pixel data only, so a PNG damaged in its
    IDAT chunks (or after them) would come out as a subtly wrong picture. One pass of
    zlib.crc32 costs about 3 ms on a 10 MB PNG (decoding it costs ten times that), and it
    releases the GIL on big chunks.
    """
    view = memoryview(data)
    if data[8:16] != b"\x00\x00\x00\x0dIHDR":
        _png_damaged("does not start with its 13-byte IHDR chunk")
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(view):
        length = int.from_bytes(view[pos : pos + 4], "big")
        crc_at = pos + 8 + length
        if crc_at + 4 > len(view):
            break  # the chunk is cut short
        tag = bytes(view[pos + 4 : pos + 8])
        if zlib.crc32(view[pos + 4 : crc_at]) != int.from_bytes(view[crc_at : crc_at + 4], "big"):
            _png_damaged(f"chunk {tag!r} at byte {pos} fails its CRC")
        if tag == b"IEND":
            return
        pos = crc_at + 4
    _png_damaged("is cut short before its IEND chunk")


def _png_damaged(what: str) -> NoReturn:
    logger.debug("The PNG %s", what)
    raise ImageError(ErrorCode.BAD_IMAGE, _BAD_IMAGE_MESSAGE)


def _set_png_transparency(im: Image.Image, data: bytes, key: object) -> None:
    """Set a PNG's tRNS colour ``key`` (read before the pixel data) on the scale of its pixels.

    A tRNS chunk after the pixel data is out of place: libpng ignores it, and so do we (Pillow
    would apply it once load() has read it). Pillow scales 2- and 4-bit grey pixels up to 8
    bits (and 16-bit RGB down to 8) but keeps the tRNS value on the file's own scale, so no
    pixel would match it. (1-bit grey Pillow scales itself; 16-bit grey stays 16-bit until
    :func:`_16_bit_gray_to_8_bit`.)
    """
    im.info.pop("transparency", None)
    if key is None:
        return
    bit_depth, colour_type = data[24], data[25]  # IHDR comes first (_check_png_chunks)
    if colour_type == 0 and bit_depth in (2, 4) and isinstance(key, int):
        top = (1 << bit_depth) - 1
        if key > top:
            return  # out of range: libpng ignores such a tRNS chunk too
        key = key * 255 // top
    elif colour_type == 2 and bit_depth == 16 and isinstance(key, tuple):
        # Pillow keeps the high byte of each 16-bit sample: match the key on that byte (so
        # a pixel within 1/256 of the key colour becomes transparent as well).
        key = tuple(value >> 8 for value in key)
    im.info["transparency"] = key


def _pixel_limit(settings: Settings) -> int:
    """Our limit, capped by Pillow's: the spec makes Pillow's bomb warning an error too."""
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if pillow_limit is None:
        return settings.max_pixels
    return min(settings.max_pixels, int(pillow_limit))


def _to_8_bit(im: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """An 8-bit "L" or "RGB" image, or "LA"/"RGBA" if it has transparency: any format's input.

    Grayscale stays grayscale ("L"): a third of the work and bytes, and a grayscale ICC
    profile remains valid for it (it would not be for an RGB output). Transparency of any
    kind (alpha, palette, tRNS colour) becomes an alpha band.
    """
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return _16_bit_gray_to_8_bit(im)
    if mode == "CMYK":
        return _cmyk_to_rgb(im, icc_profile)
    if im.has_transparency_data:
        if mode in ("RGBA", "LA"):
            return im
        return im.convert("LA" if mode in ("1", "L", "La") else "RGBA")
    if mode in ("RGB", "L"):
        return im
    if mode == "1":
        return im.convert("L")
    return im.convert("RGB")  # P without transparency, YCbCr, RGBX, LAB, ...


def _16_bit_gray_to_8_bit(im: Image.Image) -> Image.Image:
    """16-bit grey scaled to "L" (a plain convert("L") clips every value above 255 to white).

    A tRNS "transparent grey" is a 16-bit value: it is matched against the 16-bit pixels and
    becomes an alpha band ("LA").
    """
    wide = im if im.mode == "I;16" else im.convert("I")  # point() scales only these directly
    gray = wide.point(lambda value: value / 256).convert("L")
    key = im.info.get("transparency")
    if isinstance(key, int) and 0 <= key <= 0xFFFF:
        opaque = [255] * 0x10000
        opaque[key] = 0
        gray.putalpha(im.convert("I").point(opaque, "L"))  # "I" takes a 65536-entry table
    return gray


def _flatten_on_white(im: Image.Image) -> Image.Image:
    """Composite an "RGBA" or "LA" image onto a white background (for formats with no alpha)."""
    if im.mode == "LA":
        background = Image.new("L", im.size, 255)
    else:
        background = Image.new("RGB", im.size, (255, 255, 255))
    background.paste(im, mask=im)  # the image's own alpha band is the mask
    return background


def _cmyk_to_rgb(im: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """CMYK to sRGB through the embedded profile if there is a usable one, else naively.

    Pillow already undoes Adobe's inverted CMYK and libjpeg's YCCK, so ``im`` holds plain ink
    amounts. The CMYK profile is not carried over: it does not describe the RGB output.
    """
    if icc_profile and _icc_color_space(icc_profile) == b"CMYK":
        try:
            return _cmyk_to_srgb_transform(icc_profile).apply(im)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
            logger.info("Unusable CMYK colour profile (%s); converting without it", exc)
    return im.convert("RGB")


@functools.lru_cache(maxsize=8)
def _cmyk_to_srgb_transform(icc_profile: bytes) -> ImageCms.ImageCmsTransform:
    """A transform from this CMYK profile to sRGB, cached: building one takes ~35 ms.

    A catalogue from one print shop tends to use one profile for every image. NOCACHE turns
    off lcms's one-pixel cache, the only state a transform changes while it runs, so worker
    threads can share a transform.
    """
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    return ImageCms.buildTransform(
        source, ImageCms.createProfile("sRGB"), "CMYK", "RGB", flags=ImageCms.Flags.NOCACHE
    )


def _icc_color_space(icc_profile: bytes) -> bytes:
    """The colour space signature of an ICC profile header (bytes 16-19), e.g. b"RGB "."""
    return icc_profile[16:20] if len(icc_profile) >= 128 else b""


def _icc_fits(icc_profile: bytes | None, mode: str) -> bool:
    """True if the profile describes images of ``mode`` (an RGB output needs an RGB profile)."""
    if not icc_profile:
        return False
    return _icc_color_space(icc_profile) == (b"GRAY" if mode in ("L", "LA") else b"RGB ")


def _unsupported_message(input_type: str, settings: Settings) -> str:
    allowed = ", ".join(_LABELS.get(t, t) for t in settings.allowed_types)
    return (
        f"{_LABELS.get(input_type, input_type)} images are not allowed; "
        f"allowed types: {allowed} (change in Settings)."
    )


def _bomb_message(
    settings: Settings, *, size: tuple[int, int] | None = None, pixels: int | None = None
) -> str:
    limit = _pixel_count(_pixel_limit(settings))
    if size is not None:
        width, height = size
        what = f"is {width} x {height} pixels ({_pixel_count(width * height)})"
    elif pixels is not None:
        what = f"has {_pixel_count(pixels)}"
    else:
        what = "has too many pixels"
    return (
        f"The image {what}, more than the limit of {limit}; it was not decoded, to protect memory."
    )


def _pillow_bomb_pixels(exc: Exception) -> int | None:
    """The pixel count in Pillow's bomb message ("Image size (400000000 pixels) exceeds ...")."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    return int(match.group(1)) if match else None


def _pixel_count(pixels: int) -> str:
    """A pixel count in words: "89.5 megapixels", or "10,000 pixels" for small numbers."""
    if pixels >= 100_000:
        return f"{pixels / 1e6:.1f} megapixels"
    return f"{pixels:,} pixels"
