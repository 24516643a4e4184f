"""What a body is, decided by its bytes, not by what the server says (SPEC 3).

JPEG and PNG are decoded; the other image types are recognised so that they fail as
``unsupported_type`` (an image of a type not allowed), and anything else as
``not_an_image`` with a sentence saying what it looks like.
"""

from __future__ import annotations

import re

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
_SNIFF_BYTES = 8192  # enough to skip an XML declaration, comments and a DOCTYPE before <svg
_SVG_NAME_ENDS = (b" ", b"\t", b"\r", b"\n", b">", b"/")  # "<svg" but not "<svgfoo"

# Image types imgdesk never decodes, recognised by a fixed signature so that they fail as
# "unsupported_type" (an image, of a type not allowed), not as "not_an_image".
_OTHER_IMAGE_SIGNATURES = (
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "image/jp2"),
    (b"\xff\x4f\xff\x51", "image/jp2"),  # a bare JPEG 2000 codestream
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "image/jxl"),
    (b"\xff\x0a", "image/jxl"),  # a bare JPEG XL codestream (0xFF never starts UTF-8 text)
    (b"8BPS\x00\x01", "image/vnd.adobe.photoshop"),
    (b"8BPS\x00\x02", "image/vnd.adobe.photoshop"),  # PSB, the large-document variant
)
# Netpbm: "P1".."P6" (or "PF"/"Pf"), then width and height in ASCII, comments allowed between.
_NETPBM_HEADER = re.compile(rb"P([1-6Ff])(?:(?:\s|#[^\r\n]*[\r\n])+\d+){2}\s")
_NETPBM_TYPES = {
    b"1": "image/x-portable-bitmap",
    b"4": "image/x-portable-bitmap",
    b"2": "image/x-portable-graymap",
    b"5": "image/x-portable-graymap",
    b"3": "image/x-portable-pixmap",
    b"6": "image/x-portable-pixmap",
    b"F": "image/x-portable-floatmap",
    b"f": "image/x-portable-floatmap",
}
# PAM: "P7", then header lines ("WIDTH 227", ...) up to "ENDHDR".
_PAM_HEADER = re.compile(rb"P7\s(?:[^\n]*\n)*?ENDHDR\s")


def detect_type(data: bytes) -> str | None:
    """The image MIME type of ``data`` from its magic bytes, or None if it is not an image.

    Only the bytes count: servers often send images as ``application/octet-stream`` and error
    pages as ``image/jpeg``.
    """
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(_PNG_SIGNATURE):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image/tiff"
    # "BM" and the ICO header are short magics that text could start with: check more fields.
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "image/bmp"  # the DIB header's size field must be a known one
    if (
        head[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00")
        and len(head) >= 22
        and int.from_bytes(head[4:6], "little") > 0  # at least one image in the directory
        and head[9] == 0  # the first entry's reserved byte
    ):
        return "image/x-icon"
    if head[4:8] == b"ftyp":
        return _iso_media_type(data)
    for signature, mime_type in _OTHER_IMAGE_SIGNATURES:
        if head.startswith(signature):
            return mime_type
    if head[:1] == b"P":
        return _netpbm_type(data)
    if _looks_like_svg(data):
        return "image/svg+xml"
    return None


def _netpbm_type(data: bytes) -> str | None:
    """PBM, PGM, PPM, PFM or PAM from a Netpbm header, which is ASCII text like "P6 640 480"."""
    head = data[:_SNIFF_BYTES]
    match = _NETPBM_HEADER.match(head)
    if match:
        return _NETPBM_TYPES[match.group(1)]
    if _PAM_HEADER.match(head):
        return "image/x-portable-arbitrarymap"
    return None


def _iso_media_type(data: bytes) -> str | None:
    """AVIF or HEIC from the brands of an ISO media file's ``ftyp`` box."""
    box_size = min(int.from_bytes(data[:4], "big"), 256)
    major = data[8:12]
    compatible = {data[i : i + 4] for i in range(16, box_size - 3, 4)}
    if major in _AVIF_BRANDS or (major in (b"mif1", b"msf1") and compatible & _AVIF_BRANDS):
        return "image/avif"
    if major in _HEIC_BRANDS or (major in (b"mif1", b"msf1") and compatible & _HEIC_BRANDS):
        return "image/heic"
    return None


def _looks_like_svg(data: bytes) -> bool:
    """True if the first element, after any XML declaration, comments and DOCTYPE, is <svg."""
    text = data[:_SNIFF_BYTES].removeprefix(b"\xef\xbb\xbf").lower()
    pos = 0
    while True:
        while pos < len(text) and text[pos] in b" \t\r\n":
            pos += 1
        if text.startswith(b"<?", pos):
            end, skip = text.find(b"?>", pos), 2
        elif text.startswith(b"<!--", pos):
            end, skip = text.find(b"-->", pos), 3
        elif text.startswith(b"<!doctype", pos):
            end, skip = text.find(b">", pos), 1
            bracket = text.find(b"[", pos, end if end >= 0 else len(text))
            if bracket >= 0:  # an internal subset: <!DOCTYPE svg [ ... ]>
                end, skip = text.find(b"]>", bracket), 2
        else:
            break
        if end < 0:
            return False
        pos = end + skip
    return text.startswith(b"<svg", pos) and text[pos + 4 : pos + 5] in _SVG_NAME_ENDS


def describe_non_image(data: bytes) -> str:
    """A sentence naming what the bytes look like, since they are not an image."""
    if not data:
        return "The file is empty, not an image."
    head = data[:1024].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or any(
        tag in head for tag in (b"<html", b"<head", b"<body")
    ):
        return "The address returned a web page (HTML), not an image."
    if head.startswith(b"%pdf-"):
        return "The address returned a PDF document, not an image."
    if head.startswith(b"pk\x03\x04"):
        return "The address returned a ZIP archive (or an Office document), not an image."
    if head.startswith(b"<?xml") or head.startswith(b"<"):
        return "The address returned an XML document, not an image."
    if head.startswith((b"{", b"[")) and _is_text(data):
        return "The address returned JSON data, not an image."
    if _is_text(data):
        return "The address returned text, not an image."
    return "The file is not an image in any format imgdesk recognises."


def _is_text(data: bytes) -> bool:
    """True if the start of ``data`` decodes as UTF-8 with no control characters but spacing."""
    sample = data[:1024]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not just a character cut in half at the end
            return False
        text = sample[: exc.start].decode("utf-8")
    return all(char.isprintable() or char in "\t\r\n\f" for char in text)
