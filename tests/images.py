"""Test images made in code with Pillow, so the suite needs no binary fixtures.

Every ``make_*`` helper returns the encoded file as bytes. Content is "photo-like" (gradients
plus noise) where compression ratios matter, flat colours where tests check pixel values.
All helpers are fast (well under a second, most a few milliseconds).
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from collections.abc import Sequence
from typing import Any

from PIL import ExifTags, Image, ImageCms, PngImagePlugin

Color = tuple[int, int, int]

RED: Color = (255, 0, 0)
GREEN: Color = (0, 255, 0)
BLUE: Color = (0, 0, 255)
WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)

HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
    b"<body><h1>Not Found</h1></body></html>\n"
)
TEXT = b"Error: the requested object does not exist.\n"
JSON_BODY = b'{"error": "not found", "status": 404}'


# --- pictures -------------------------------------------------------------------------------


def photo(width: int, height: int) -> Image.Image:
    """An RGB picture with smooth gradients and sensor-like noise, like a product photo."""
    size = (width, height)
    horizontal = Image.linear_gradient("L").rotate(90).resize(size, Image.Resampling.BILINEAR)
    vertical = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    radial = Image.radial_gradient("L").resize(size, Image.Resampling.BILINEAR)
    noise = Image.effect_noise(size, 48)
    bands = [Image.blend(band, noise, 0.25) for band in (horizontal, vertical, radial)]
    return Image.merge("RGB", bands)


def quadrants(
    width: int, height: int, colors: Sequence[Color] = (RED, GREEN, BLUE, WHITE)
) -> Image.Image:
    """Four flat quadrants: top-left, top-right, bottom-left, bottom-right."""
    im = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    boxes = [(0, 0, half_w, half_h), (half_w, 0, width, half_h)]
    boxes += [(0, half_h, half_w, height), (half_w, half_h, width, height)]
    for box, color in zip(boxes, colors, strict=True):
        im.paste(color, box)
    return im


def picture(width: int, height: int, color: Color | str) -> Image.Image:
    """``color`` is an RGB tuple (flat), "photo" or "quadrants"."""
    if color == "photo":
        return photo(width, height)
    if color == "quadrants":
        return quadrants(width, height)
    if isinstance(color, tuple):
        return Image.new("RGB", (width, height), color)
    raise ValueError(f"unknown colour or pattern: {color!r}")


def encode(im: Image.Image, image_format: str, **params: Any) -> bytes:
    """``im`` saved in ``image_format``."""
    buffer = io.BytesIO()
    im.save(buffer, format=image_format, **params)
    return buffer.getvalue()


# --- metadata ------------------------------------------------------------------------------


def make_exif(orientation: int | None = None, gps: bool = False) -> bytes:
    """An EXIF block with an Orientation tag and/or a GPS position (and a camera make)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps:
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps_ifd[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps_ifd[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 12.5)
        gps_ifd[ExifTags.GPS.GPSLongitudeRef] = "E"
        gps_ifd[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 42.0)
    return exif.tobytes()


@functools.cache
def srgb_icc() -> bytes:
    """The bytes of an sRGB ICC profile, as lcms builds it."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def make_cmyk_icc(cyan_as: Color = (0, 255, 255)) -> bytes:
    """A small but real CMYK printer profile (ICC v2, one 2-point lut8 A2B0 table).

    Each CMYK corner maps to the naive RGB colour, except pure cyan, which maps to
    ``cyan_as``: pass an unusual colour to prove a conversion really used the profile.
    """
    corners: list[Color] = []
    for c in (0, 1):  # the first channel varies slowest in an ICC colour table
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    corners.append(
                        (255 * (1 - c) * (1 - k), 255 * (1 - m) * (1 - k), 255 * (1 - y) * (1 - k))
                    )
    corners[0b1000] = cyan_as
    rgb = Image.new("RGB", (len(corners), 1))
    rgb.putdata(corners)
    to_lab = ImageCms.buildTransform(
        ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"
    )
    lab = to_lab.apply(rgb).tobytes()
    # Pillow's LAB mode keeps a* and b* as signed bytes; lut8 wants them offset by 128.
    clut = bytes(value ^ 0x80 if i % 3 else value for i, value in enumerate(lab))
    identity = bytes(range(256))
    matrix = b"".join(
        struct.pack(">i", 0x10000 if row == col else 0) for row in range(3) for col in range(3)
    )
    a2b0 = b"mft1" + bytes(4) + bytes([4, 3, 2, 0]) + matrix + identity * 4 + clut + identity * 3
    d50 = struct.pack(">3i", round(0.9642 * 65536), 65536, round(0.8249 * 65536))
    description = b"imgdesk test CMYK\x00"
    tags = [
        (
            b"desc",
            b"desc"
            + bytes(4)
            + struct.pack(">I", len(description))
            + description
            + bytes(8 + 3 + 67),
        ),
        (b"cprt", b"text" + bytes(4) + b"No copyright, test data\x00"),
        (b"wtpt", b"XYZ " + bytes(4) + d50),
        (b"A2B0", a2b0),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, payload in tags:
        payload += bytes(-len(payload) % 4)  # tags start on 4-byte boundaries
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += payload
    size = offset + len(body)
    header = struct.pack(">I4sI4s4s4s", size, b"lcms", 0x02100000, b"prtr", b"CMYK", b"Lab ")
    header += struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + bytes(24) + struct.pack(">I", 0)
    header += d50 + bytes(4 + 16 + 28)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


# --- JPEG ------------------------------------------------------------------------------------


def make_jpeg(
    width: int = 64,
    height: int = 48,
    color: Color | str = "photo",
    quality: int = 90,
    exif_orientation: int | None = None,
    gps: bool = False,
    icc: bool | bytes = False,
    *,
    mode: str = "RGB",
    comment: bytes | None = None,
    xmp: bytes | None = None,
) -> bytes:
    """A JPEG; ``icc=True`` embeds sRGB, bytes embed that profile; ``mode="L"`` is grayscale."""
    im = picture(width, height, color)
    if mode != "RGB":
        im = im.convert(mode)
    params: dict[str, Any] = {"quality": quality}
    if exif_orientation is not None or gps:
        params["exif"] = make_exif(exif_orientation, gps)
    if icc:
        params["icc_profile"] = srgb_icc() if icc is True else icc
    if comment is not None:
        params["comment"] = comment
    if xmp is not None:
        params["xmp"] = xmp
    return encode(im, "JPEG", **params)


def make_cmyk_jpeg(
    width: int = 32,
    height: int = 32,
    cmyk: tuple[int, int, int, int] = (255, 0, 0, 0),
    *,
    icc: bytes | None = None,
    quality: int = 95,
) -> bytes:
    """A flat CMYK JPEG as Photoshop writes them (Adobe marker, inverted values)."""
    im = Image.new("CMYK", (width, height), cmyk)
    return encode(im, "JPEG", quality=quality, icc_profile=icc)


def truncated_jpeg(keep: float = 0.6) -> bytes:
    """A photo-like JPEG cut off after ``keep`` of its bytes, as by a dropped connection."""
    data = make_jpeg(256, 256, "photo", quality=90)
    return data[: int(len(data) * keep)]


# --- PNG -------------------------------------------------------------------------------------


def make_png(
    width: int = 64,
    height: int = 48,
    mode: str = "RGB",
    color: Color | str = (200, 30, 30),
    *,
    gray16: int = 32768,
    icc: bytes | None = None,
) -> bytes:
    """A PNG of ``mode``.

    "RGB"/"L"/"1": the picture as is (thresholded, not dithered, for "1").
    "RGBA", "LA" and "P" (with a transparent palette entry): the left half fully transparent
    (black underneath), the right half opaque ``color`` (or grey 90 for "LA").
    "I;16": flat 16-bit grey ``gray16``.
    """
    size = (width, height)
    left = (0, 0, width // 2, height)
    if mode == "I;16":
        im = Image.new("I;16", size, gray16)
    elif mode == "RGBA":
        im = picture(width, height, color).convert("RGBA")
        im.paste((0, 0, 0, 0), left)
    elif mode == "LA":
        im = Image.new("LA", size, (90, 255))
        im.paste((0, 0), left)
    elif mode == "P":
        flat = color if isinstance(color, tuple) else RED
        im = Image.new("P", size, 1)
        im.putpalette([*BLACK, *flat])
        im.paste(0, left)
        im.info["transparency"] = 0
    elif mode == "1":
        im = picture(width, height, color).convert("1", dither=Image.Dither.NONE)
    else:
        im = picture(width, height, color).convert(mode)
    params: dict[str, Any] = {}
    if icc is not None:
        params["icc_profile"] = icc
    if "transparency" in im.info:
        params["transparency"] = im.info["transparency"]
    return encode(im, "PNG", **params)


def png_chunk(tag: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, tag, payload and its CRC."""
    return (
        struct.pack(">I", len(payload))
        + tag
        + payload
        + struct.pack(">I", zlib.crc32(tag + payload))
    )


def _raw_png(
    width: int,
    height: int,
    bit_depth: int,
    color_type: int,
    row: bytes,
    chunks: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """A PNG whose every row is ``row`` (filter byte included), written by hand.

    ``chunks`` (tag, payload) go between IHDR and IDAT, e.g. a tRNS chunk.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    compressor = zlib.compressobj(9)
    rows_per_chunk = max(1, (1 << 20) // len(row))
    parts = []
    for start in range(0, height, rows_per_chunk):
        parts.append(compressor.compress(row * min(rows_per_chunk, height - start)))
    parts.append(compressor.flush())
    signature = b"\x89PNG\r\n\x1a\n"
    return (
        signature
        + png_chunk(b"IHDR", ihdr)
        + b"".join(png_chunk(tag, payload) for tag, payload in chunks)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def make_png16(
    width: int = 16,
    height: int = 16,
    rgb16: tuple[int, int, int] = (65535, 32768, 0),
    alpha16: int | None = None,
    *,
    transparent: tuple[int, int, int] | None = None,
) -> bytes:
    """A flat 16-bit-per-channel RGB (or RGBA, with ``alpha16``) PNG; Pillow cannot write one.

    ``transparent`` adds a tRNS chunk naming that 16-bit colour as the transparent one.
    """
    values = (*rgb16, alpha16) if alpha16 is not None else rgb16
    pixel = struct.pack(f">{len(values)}H", *values)
    chunks = [(b"tRNS", struct.pack(">3H", *transparent))] if transparent is not None else []
    color_type = 6 if alpha16 is not None else 2
    return _raw_png(width, height, 16, color_type, b"\x00" + pixel * width, chunks)


def make_gray_png(
    bit_depth: int, values: Sequence[int], *, transparent: int | None = None, height: int = 4
) -> bytes:
    """A grayscale PNG of ``bit_depth`` (1, 2, 4, 8 or 16) whose every row holds ``values``.

    The values are on the file's own scale (0-3 for 2 bits); ``transparent`` adds a tRNS
    "transparent grey" on that scale too. Pillow cannot write 2-, 4- or 16-bit grey with tRNS.
    """
    if bit_depth == 16:
        packed = struct.pack(f">{len(values)}H", *values)
    else:
        bits = "".join(format(value, f"0{bit_depth}b") for value in values)
        bits += "0" * (-len(bits) % 8)
        packed = int(bits, 2).to_bytes(len(bits) // 8, "big")
    chunks = [(b"tRNS", struct.pack(">H", transparent))] if transparent is not None else []
    return _raw_png(len(values), height, bit_depth, 0, b"\x00" + packed, chunks)


@functools.cache
def make_bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid 1-bit PNG that is ~50 KB on disk but ``width`` x ``height`` pixels."""
    return _raw_png(width, height, 1, 0, b"\x00" + bytes((width + 7) // 8))


def corrupt_png() -> bytes:
    """A PNG whose compressed pixel data is garbage (with correct CRCs, so only decoding fails)."""
    data = make_png(64, 64, "RGB", "photo")
    start = data.index(b"IDAT")
    length = struct.unpack(">I", data[start - 4 : start])[0]
    garbage = bytes((i * 37 + 11) % 256 for i in range(length))
    chunk = png_chunk(b"IDAT", garbage)
    return data[: start - 4] + chunk + data[start + 4 + length + 4 :]


def png_with_bad_crc(tag: bytes = b"IDAT") -> bytes:
    """A photo-like PNG (with a tEXt chunk) whose first ``tag`` chunk has a wrong CRC.

    The chunk's data is intact: only the checksum says the file is damaged.
    """
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "made by imgdesk tests")
    data = bytearray(encode(photo(64, 48), "PNG", pnginfo=info))
    start = data.index(tag) - 4
    length = struct.unpack(">I", data[start : start + 4])[0]
    crc_at = start + 8 + length
    data[crc_at : crc_at + 4] = bytes(value ^ 0xFF for value in data[crc_at : crc_at + 4])
    return bytes(data)


def make_apng(width: int = 32, height: int = 32, colors: Sequence[Color] = (RED, BLUE)) -> bytes:
    """An animated PNG with one flat frame per colour."""
    frames = [Image.new("RGB", (width, height), color) for color in colors]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)


# --- other formats ---------------------------------------------------------------------------


def make_gif(
    width: int = 32,
    height: int = 32,
    colors: Sequence[Color] = (RED,),
    *,
    transparent: bool = False,
) -> bytes:
    """A GIF, animated if more than one colour; ``transparent`` makes the left half clear."""
    frames = []
    for color in colors:
        im = Image.new("P", (width, height), 1)
        im.putpalette([*BLACK, *color])
        if transparent:
            im.paste(0, (0, 0, width // 2, height))
        frames.append(im)
    params: dict[str, Any] = {"transparency": 0} if transparent else {}
    if len(frames) > 1:
        params.update(save_all=True, append_images=frames[1:], duration=100, loop=0)
    return encode(frames[0], "GIF", **params)


def make_webp(
    width: int = 32, height: int = 32, colors: Sequence[Color] = (RED,), *, lossless: bool = True
) -> bytes:
    """A WebP, animated if more than one colour."""
    frames = [Image.new("RGB", (width, height), color) for color in colors]
    params: dict[str, Any] = {"lossless": lossless}
    if len(frames) > 1:
        params.update(save_all=True, append_images=frames[1:], duration=100)
    return encode(frames[0], "WEBP", **params)


def make_bmp(width: int = 32, height: int = 32, color: Color | str = RED) -> bytes:
    """A 24-bit BMP."""
    return encode(picture(width, height, color), "BMP")


def make_tiff(width: int = 32, height: int = 32, color: Color | str = RED) -> bytes:
    """An uncompressed RGB TIFF."""
    return encode(picture(width, height, color), "TIFF")


def make_ico(size: int = 32, color: Color = RED) -> bytes:
    """A Windows icon."""
    return encode(Image.new("RGBA", (size, size), (*color, 255)), "ICO", sizes=[(size, size)])


def make_svg(*, xml_declaration: bool = True, bom: bool = False, preamble: bytes = b"") -> bytes:
    """A small SVG; ``preamble`` goes before <svg (comments, DOCTYPE...)."""
    data = b""
    if bom:
        data += b"\xef\xbb\xbf"
    if xml_declaration:
        data += b'<?xml version="1.0" encoding="UTF-8"?>\n'
    data += preamble
    data += (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b'<rect width="10" height="10" fill="red"/></svg>\n'
    )
    return data


def make_iso_media(major: bytes, compatible: Sequence[bytes] = ()) -> bytes:
    """The start of an ISO media file (AVIF, HEIC): an ``ftyp`` box and a stub ``meta`` box."""
    payload = major + bytes(4) + b"".join(compatible)
    ftyp = struct.pack(">I", 8 + len(payload)) + b"ftyp" + payload
    return ftyp + struct.pack(">I", 12) + b"meta" + bytes(4)


def make_zip() -> bytes:
    """A small ZIP archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not an image")
    return buffer.getvalue()


def make_netpbm(image_format: str = "PPM", size: int = 16) -> bytes:
    """A binary Netpbm file as Pillow writes them: "PPM" (P6), "PGM" (P5) or "PBM" (P4)."""
    mode = {"PPM": "RGB", "PGM": "L", "PBM": "1"}[image_format]
    return encode(picture(size, size, RED).convert(mode), "PPM")


def make_pam(size: int = 4) -> bytes:
    """A Netpbm PAM (P7) RGB file, header and pixels written by hand."""
    header = f"P7\nWIDTH {size}\nHEIGHT {size}\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n"
    return header.encode("ascii") + bytes(RED) * size * size


def make_jpeg_pcd_polyglot() -> bytes:
    """JPEG magic bytes on a file that Pillow, asked to try every plugin, opens as PhotoCD.

    imgdesk must decode it as the JPEG its magic says or not at all.
    """
    header = b"\xff\xd8\xff" + bytes(2048 - 3) + b"PCD_" + bytes(1535)
    return header + bytes(96 * 2048)


# --- metadata segments and chunks (output formats) ------------------------------------------


def iptc_app13(byline: bytes = b"Jane Secret") -> bytes:
    """The payload of a Photoshop APP13 segment holding an IPTC By-line (2:80)."""
    iptc = b"\x1c\x02\x50" + struct.pack(">H", len(byline)) + byline
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc))
    resource += iptc + b"\x00" * (len(iptc) % 2)
    return b"Photoshop 3.0\x00" + resource


def jpeg_with_segments(
    data: bytes, segments: Sequence[tuple[int, bytes]], *, trailer: bytes = b""
) -> bytes:
    """``data`` (a JPEG) with extra (marker, payload) segments right after SOI, and
    ``trailer`` after its end marker (as an MPO's second image or a phone's trailer)."""
    assert data.startswith(b"\xff\xd8")
    extra = b"".join(
        bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload
        for marker, payload in segments
    )
    return data[:2] + extra + data[2:] + trailer


def jfif_app0_with_thumbnail(thumbnail_rgb: Color = RED) -> bytes:
    """A JFIF APP0 payload carrying a 1 x 1 RGB thumbnail."""
    return b"JFIF\x00\x01\x02\x00\x00\x48\x00\x48\x01\x01" + bytes(thumbnail_rgb)


def make_still_webp(
    width: int = 48,
    height: int = 32,
    color: Color | str = "quadrants",
    *,
    mode: str = "RGB",
    lossless: bool = True,
    exif: bytes | None = None,
    xmp: bytes | None = None,
    icc: bytes | None = None,
) -> bytes:
    """A still WebP (lossless by default) with optional EXIF, XMP and ICC chunks.

    ``mode="RGBA"`` makes the left half transparent.
    """
    im = picture(width, height, color)
    if mode == "RGBA":
        im = im.convert("RGBA")
        im.paste((0, 0, 0, 0), (0, 0, width // 2, height))
    params: dict[str, Any] = {"lossless": lossless}
    if exif is not None:
        params["exif"] = exif
    if xmp is not None:
        params["xmp"] = xmp
    if icc is not None:
        params["icc_profile"] = icc
    return encode(im, "WEBP", **params)


def webp_chunks(data: bytes) -> list[bytes]:
    """The FourCCs of a WebP file's chunks, in order."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    names, pos = [], 12
    while pos + 8 <= len(data):
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        names.append(data[pos : pos + 4])
        pos += 8 + size + (size & 1)
    return names


def jpeg_markers(data: bytes) -> list[int]:
    """The markers of a JPEG's segments before its first scan (SOS included)."""
    assert data.startswith(b"\xff\xd8")
    markers, pos = [], 2
    while pos + 4 <= len(data):
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return markers
