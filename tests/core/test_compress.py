"""compress: type sniffing, safe decoding, conversions to 8 bits, metadata, the Encoder seam."""

from __future__ import annotations

import io
import random
import struct
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile, PngImagePlugin

from imgdesk.core import compress
from imgdesk.core import output as output_module
from imgdesk.core.compress import Compressed, compress_image, detect_type
from imgdesk.core.errors import ErrorCode, ImageError, SettingsError
from imgdesk.core.output import ENCODERS, JPEG_ENCODER, OutputSettings, encoder_for
from imgdesk.core.settings import KNOWN_INPUT_TYPES, Settings
from tests import images
from tests.images import BLUE, GREEN, RED, WHITE, Color

DEFAULTS = Settings()
ALLOW_ALL = Settings(allowed_types=KNOWN_INPUT_TYPES)


def reopen(result: Compressed) -> Image.Image:
    """The output decoded again, checked to be a complete, baseline JPEG of the stated size."""
    assert result.data.startswith(b"\xff\xd8\xff") and result.data.endswith(b"\xff\xd9")
    im = Image.open(io.BytesIO(result.data), formats=["JPEG"])
    assert im.format == "JPEG"
    assert im.size == (result.width, result.height)
    assert "progressive" not in im.info and "progression" not in im.info
    im.load()
    return im


def near(actual: Any, expected: Any, tolerance: int = 12) -> bool:
    """True if every channel of ``actual`` is within ``tolerance`` of ``expected``."""
    if isinstance(expected, int):
        return bool(abs(actual - expected) <= tolerance)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def failure(data: bytes, settings: Settings = DEFAULTS) -> ImageError:
    with pytest.raises(ImageError) as info:
        compress_image(data, settings)
    assert info.value.transient is False
    return info.value


# --- detect_type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (images.make_jpeg(), "image/jpeg"),
        (images.make_png(), "image/png"),
        (images.make_gif(), "image/gif"),
        (b"GIF87a" + bytes(20), "image/gif"),
        (images.make_webp(), "image/webp"),
        (images.make_bmp(), "image/bmp"),
        (images.make_tiff(), "image/tiff"),
        (b"MM\x00*" + bytes(20), "image/tiff"),
        (images.make_ico(), "image/x-icon"),
        (images.make_svg(), "image/svg+xml"),
        (images.make_svg(xml_declaration=False), "image/svg+xml"),
        (b"\xef\xbb\xbf  \n\t" + images.make_svg(), "image/svg+xml"),
        (images.make_svg(bom=True, xml_declaration=False), "image/svg+xml"),
        (images.make_svg(preamble=b"<!-- Generator: Illustrator -->\n"), "image/svg+xml"),
        (
            images.make_svg(preamble=b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">\n'),
            "image/svg+xml",
        ),
        (images.make_svg(preamble=b'<!DOCTYPE svg [ <!ENTITY a "b"> ]>\n'), "image/svg+xml"),
        (images.make_iso_media(b"avif", [b"mif1", b"miaf"]), "image/avif"),
        (images.make_iso_media(b"mif1", [b"mif1", b"avif"]), "image/avif"),
        (images.make_iso_media(b"heic", [b"mif1", b"heic"]), "image/heic"),
        (images.make_iso_media(b"mif1", [b"mif1", b"heic"]), "image/heic"),
        (images.make_netpbm("PPM"), "image/x-portable-pixmap"),
        (images.make_netpbm("PGM"), "image/x-portable-graymap"),
        (images.make_netpbm("PBM"), "image/x-portable-bitmap"),
        (b"P3\n# made by hand\n2 1\n255\n255 0 0 0 0 255\n", "image/x-portable-pixmap"),
        (b"P1 2 2 0 1 1 0\n", "image/x-portable-bitmap"),
        (b"PF\n4 4\n-1.0\n" + bytes(4 * 4 * 12), "image/x-portable-floatmap"),
        (images.make_pam(), "image/x-portable-arbitrarymap"),
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00\x00\x14ftypjp2 ", "image/jp2"),
        (b"\xff\x4f\xff\x51\x00\x2f\x00\x00", "image/jp2"),
        (b"\xff\x0a\xfa\x7f\x01\x90\x08", "image/jxl"),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n\x00\x00\x00\x14ftypjxl ", "image/jxl"),
        (b"8BPS\x00\x01" + bytes(20), "image/vnd.adobe.photoshop"),
    ],
)
def test_detect_type_recognises_images(data: bytes, expected: str) -> None:
    assert detect_type(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8",
        images.HTML_PAGE,
        b"<html><body><svg></svg></body></html>",
        images.TEXT,
        images.JSON_BODY,
        b"BMW cars are fast and this text is long enough",
        b'<?xml version="1.0"?><rss version="2.0"></rss>',
        b"<svgfoo/>",
        b"%PDF-1.7\n",
        images.make_zip(),
        images.make_iso_media(b"mp42", [b"isom"]),
        bytes(64),
        b"P1 is the first priority of this list.\n",
        b"P6\nnot a header\n",
        b"P7\nWIDTH 4\nno end of header\n",
        b"Price list 2024\n",
    ],
)
def test_detect_type_rejects_non_images(data: bytes) -> None:
    assert detect_type(data) is None


# --- not an image, not allowed ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (images.HTML_PAGE, "web page (HTML)"),
        (b"\xef\xbb\xbf  <html lang=en><p>hi</p></html>", "web page (HTML)"),
        (images.TEXT, "text"),
        (images.JSON_BODY, "JSON"),
        (b"", "empty"),
        (images.make_zip(), "ZIP"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (bytes(range(256)), "not an image"),
    ],
)
def test_non_images_are_not_an_image(data: bytes, words: str) -> None:
    error = failure(data)
    assert error.code == ErrorCode.NOT_AN_IMAGE
    assert words in error.message


@pytest.mark.parametrize(
    ("data", "label"),
    [
        (images.make_gif(), "GIF"),
        (images.make_svg(), "SVG"),
        (images.make_bmp(), "BMP"),
        (images.make_webp(), "WebP"),
        (images.make_tiff(), "TIFF"),
        (images.make_ico(), "ICO"),
        (images.make_iso_media(b"avif"), "AVIF"),
        (images.make_iso_media(b"heic"), "HEIC"),
        (images.make_netpbm("PPM"), "PPM"),
        (images.make_netpbm("PGM"), "PGM"),
        (images.make_netpbm("PBM"), "PBM"),
        (images.make_pam(), "PAM"),
        (b"\xff\x4f\xff\x51\x00\x2f\x00\x00" + bytes(40), "JPEG 2000"),
        (b"\xff\x0a\xfa\x7f\x01\x90\x08" + bytes(40), "JPEG XL"),
        (b"8BPS\x00\x01" + bytes(40), "Photoshop (PSD)"),
    ],
)
def test_known_types_not_allowed_are_unsupported(data: bytes, label: str) -> None:
    error = failure(data)
    assert error.code == ErrorCode.UNSUPPORTED_TYPE
    assert error.message == (
        f"{label} images are not allowed; allowed types: JPEG, PNG (change in Settings)."
    )


@pytest.mark.parametrize("data", [images.make_svg(), images.make_netpbm("PPM"), images.make_pam()])
def test_types_imgdesk_never_decodes_stay_unsupported_with_every_type_allowed(data: bytes) -> None:
    assert failure(data, ALLOW_ALL).code == ErrorCode.UNSUPPORTED_TYPE


def test_png_is_unsupported_when_only_jpeg_is_allowed() -> None:
    error = failure(images.make_png(), Settings(allowed_types=("image/jpeg",)))
    assert error.code == ErrorCode.UNSUPPORTED_TYPE
    assert "allowed types: JPEG (" in error.message


@pytest.mark.parametrize(
    ("data", "input_type"),
    [
        (images.make_gif(colors=(RED,)), "image/gif"),
        (images.make_webp(colors=(RED,)), "image/webp"),
        (images.make_webp(colors=(RED,), lossless=False), "image/webp"),
        (images.make_bmp(color=RED), "image/bmp"),
        (images.make_tiff(color=RED), "image/tiff"),
    ],
)
def test_other_types_work_when_allowed(data: bytes, input_type: str) -> None:
    result = compress_image(data, ALLOW_ALL)
    assert result.input_type == input_type
    assert near(reopen(result).getpixel((16, 16)), RED)


# --- only the allowed decoder runs; polyglots ------------------------------------------------


def test_only_the_plugin_of_the_detected_type_is_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    real_open = Image.open

    def spy(fp: Any, mode: Any = "r", formats: Any = None) -> Any:
        seen.append(formats)
        return real_open(fp, mode, formats)

    monkeypatch.setattr(Image, "open", spy)
    compress_image(images.make_png(), ALLOW_ALL)
    compress_image(images.make_jpeg(), ALLOW_ALL)
    assert seen == [["PNG"], ["JPEG"]]


def test_polyglot_is_decoded_as_its_magic_says_or_not_at_all() -> None:
    data = images.make_jpeg_pcd_polyglot()
    # Pillow left to try every plugin would happily open it as a Kodak PhotoCD...
    assert Image.open(io.BytesIO(data)).format == "PCD"
    # ...imgdesk only runs the JPEG decoder, which rejects it.
    assert failure(data).code == ErrorCode.BAD_IMAGE


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff" + images.make_png(),
        b"\xff\xd8\xff\xe0" + bytes(200),
        b"\x89PNG\r\n\x1a\n" + images.HTML_PAGE,
        images.make_png()[:8] + images.make_jpeg(),
    ],
)
def test_wrong_content_behind_image_magic_is_bad_image(data: bytes) -> None:
    error = failure(data)
    assert error.code == ErrorCode.BAD_IMAGE
    assert error.message == "The image file is damaged or incomplete and cannot be read."


def test_gif_behind_jpeg_magic_is_not_decoded_as_gif() -> None:
    assert failure(b"\xff\xd8\xff" + images.make_gif(), ALLOW_ALL).code == ErrorCode.BAD_IMAGE


# --- decompression bombs ---------------------------------------------------------------------


def test_huge_png_is_a_bomb_from_its_header() -> None:
    data = images.make_bomb_png()  # 20000 x 20000, ~50 KB
    assert len(data) < 100_000
    error = failure(data)
    assert error.code == ErrorCode.DECOMPRESSION_BOMB
    assert error.message == (
        "The image has 400.0 megapixels, more than the limit of 89.5 megapixels; "
        "it was not decoded, to protect memory."
    )


def test_our_pixel_limit_is_checked_before_decoding() -> None:
    error = failure(images.make_png(200, 200), Settings(max_pixels=10_000))
    assert error.code == ErrorCode.DECOMPRESSION_BOMB
    assert error.message == (
        "The image is 200 x 200 pixels (40,000 pixels), more than the limit of 10,000 pixels; "
        "it was not decoded, to protect memory."
    )


def test_pixel_limit_is_inclusive() -> None:
    assert compress_image(images.make_png(100, 100), Settings(max_pixels=10_000)).width == 100


@pytest.mark.parametrize("action", ["error", "ignore"])
def test_pillow_bomb_warning_is_an_error_whatever_the_warning_filters(action: str) -> None:
    # 10000 x 10000 is over Pillow's warning limit (~89.5 MP) but under its error limit;
    # the highest limit Settings accepts does not let it through.
    data = images.make_bomb_png(10_000, 10_000)
    settings = Settings(max_pixels=89_478_485)
    with warnings.catch_warnings():
        warnings.simplefilter(action)  # type: ignore[arg-type]
        error = failure(data, settings)
    assert error.code == ErrorCode.DECOMPRESSION_BOMB


def test_importing_compress_makes_the_bomb_warning_an_error() -> None:
    code = (
        "import warnings, imgdesk.core.compress\n"
        "from PIL import Image\n"
        "warnings.warn('big', Image.DecompressionBombWarning)\n"
    )
    repo_root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=repo_root)
    assert done.returncode != 0
    assert "DecompressionBombWarning" in done.stderr


# --- damaged files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        images.truncated_jpeg(0.6),
        images.truncated_jpeg(0.98),
        images.corrupt_png(),
        images.make_png(64, 64, "RGB", "photo")[:-300],
        images.make_jpeg()[:20],
        images.make_png()[:30],
        # No pixel data at all: Pillow opens it with nothing to decode.
        b"\x89PNG\r\n\x1a\n"
        + images.png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
        + images.png_chunk(b"IEND", b""),
    ],
)
def test_damaged_files_are_bad_image(data: bytes) -> None:
    error = failure(data)
    assert error.code == ErrorCode.BAD_IMAGE
    assert error.message == "The image file is damaged or incomplete and cannot be read."


@pytest.mark.parametrize("tag", [b"IHDR", b"tEXt", b"IDAT", b"IEND"])
def test_png_with_a_wrong_chunk_crc_is_bad_image(tag: bytes) -> None:
    data = images.png_with_bad_crc(tag)
    if tag in (b"IDAT", b"IEND"):
        # Pillow alone skips these checksums and would hand out a picture.
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    error = failure(data)
    assert error.code == ErrorCode.BAD_IMAGE
    assert error.message == "The image file is damaged or incomplete and cannot be read."


@pytest.mark.parametrize(
    "data",
    [
        images.make_png(64, 48, "RGB", "photo")[:-12],  # no IEND
        images.make_png(64, 48, "RGB", "photo")[:-5],  # cut inside IEND
    ],
    ids=["no IEND", "cut IEND"],
)
def test_png_cut_after_its_pixels_is_bad_image(data: bytes) -> None:
    assert failure(data).code == ErrorCode.BAD_IMAGE


def test_bytes_after_the_png_iend_chunk_are_ignored() -> None:
    data = images.make_png(64, 48, "RGB", "photo") + b"trailing bytes"
    assert compress_image(data, DEFAULTS).width == 64


def test_png_not_starting_with_ihdr_is_bad_image() -> None:
    data = images.make_png()
    text_chunk = images.png_chunk(b"tEXt", b"Comment\x00first")
    assert failure(data[:8] + text_chunk + data[8:]).code == ErrorCode.BAD_IMAGE


def test_truncated_files_are_never_accepted_half_grey(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        compress_image(images.truncated_jpeg(), DEFAULTS)


def test_mutated_files_fail_only_with_image_errors() -> None:
    """Random damage to valid files of every type: never a raw exception, never a hang."""
    rng = random.Random(20240611)
    settings = Settings(allowed_types=KNOWN_INPUT_TYPES, max_pixels=1_000_000)
    originals = [
        images.make_jpeg(48, 32),
        images.make_png(32, 24, "RGBA", "photo"),
        images.make_png(16, 16, "P"),
        images.make_gif(colors=(RED, BLUE)),
        images.make_webp(lossless=False),
        images.make_bmp(),
        images.make_tiff(),
        images.make_apng(),
    ]
    allowed_codes = {ErrorCode.BAD_IMAGE, ErrorCode.DECOMPRESSION_BOMB, ErrorCode.NOT_AN_IMAGE}
    allowed_codes |= {ErrorCode.UNSUPPORTED_TYPE}
    for original in originals:
        for _ in range(40):
            data = bytearray(original)
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                del data[rng.randrange(len(data)) :]
            try:
                compress_image(bytes(data), settings)
            except ImageError as error:
                assert error.code in allowed_codes


# --- orientation -----------------------------------------------------------------------------

# Where the quadrants (stored: red, green / blue, white) are shown for each EXIF orientation.
ORIENTED: dict[int, tuple[Color, Color, Color, Color]] = {
    1: (RED, GREEN, BLUE, WHITE),
    2: (GREEN, RED, WHITE, BLUE),
    3: (WHITE, BLUE, GREEN, RED),
    6: (BLUE, RED, WHITE, GREEN),
    8: (GREEN, WHITE, RED, BLUE),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTED))
def test_exif_orientation_is_applied(orientation: int) -> None:
    data = images.make_jpeg(200, 100, "quadrants", exif_orientation=orientation)
    result = compress_image(data, DEFAULTS)
    im = reopen(result)
    expected_size = (100, 200) if orientation in (6, 8) else (200, 100)
    assert (result.width, result.height) == expected_size
    w, h = im.size
    samples = [
        (w // 4, h // 4),
        (3 * w // 4, h // 4),
        (w // 4, 3 * h // 4),
        (3 * w // 4, 3 * h // 4),
    ]
    for point, expected in zip(samples, ORIENTED[orientation], strict=True):
        assert near(im.getpixel(point), expected), (point, im.getpixel(point), expected)
    # The tag is gone with the rest of EXIF, so no viewer rotates the picture a second time.
    assert not im.getexif()


def test_broken_exif_is_ignored_not_fatal() -> None:
    data = images.encode(images.quadrants(40, 20), "JPEG", exif=b"Exif\x00\x00MM\x00*\xff\xff")
    result = compress_image(data, DEFAULTS)
    assert (result.width, result.height) == (40, 20)


# --- transparency ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGBA", "P"])
def test_transparent_pixels_become_white(mode: str) -> None:
    # Left half: fully transparent black; right half: opaque red.
    im = reopen(compress_image(images.make_png(64, 48, mode, RED), DEFAULTS))
    assert im.mode == "RGB"
    assert near(im.getpixel((5, 24)), WHITE, 3)
    assert near(im.getpixel((58, 24)), RED)


@pytest.mark.parametrize(("alpha", "expected"), [(0, WHITE), (65535, RED)])
def test_16_bit_rgba_png_is_flattened(alpha: int, expected: Color) -> None:
    data = images.make_png16(16, 16, (65535, 0, 0), alpha16=alpha)
    assert near(reopen(compress_image(data, DEFAULTS)).getpixel((8, 8)), expected, 6)


def test_half_transparent_red_is_pink_on_white() -> None:
    data = images.encode(Image.new("RGBA", (16, 16), (255, 0, 0, 128)), "PNG")
    assert near(reopen(compress_image(data, DEFAULTS)).getpixel((8, 8)), (255, 127, 127), 6)


def test_transparent_gray_stays_gray_on_white() -> None:
    im = reopen(compress_image(images.make_png(64, 48, "LA"), DEFAULTS))
    assert im.mode == "L"
    assert near(im.getpixel((5, 24)), 255, 3)
    assert near(im.getpixel((58, 24)), 90, 4)


@pytest.mark.parametrize(
    ("bit_depth", "opaque_value", "transparent", "expected_left", "expected_right"),
    [
        (1, 1, 0, 255, 255),
        (2, 2, 1, 255, 170),
        (4, 10, 5, 255, 170),
        (8, 40, 90, 255, 40),
        (16, 30000, 1000, 255, 117),
        (2, 2, 7, 85, 170),  # a tRNS grey out of the 2-bit range is ignored, as by libpng
    ],
)
def test_png_transparent_grey_becomes_white_at_every_bit_depth(
    bit_depth: int, opaque_value: int, transparent: int, expected_left: int, expected_right: int
) -> None:
    # Left half: pixels of the tRNS "transparent grey"; right half: an opaque grey.
    left_value = transparent if transparent < (1 << bit_depth) else 1
    values = [left_value] * 16 + [opaque_value] * 16
    data = images.make_gray_png(bit_depth, values, transparent=transparent, height=16)
    im = reopen(compress_image(data, DEFAULTS))
    assert im.mode == "L"
    assert near(im.getpixel((4, 8)), expected_left, 4)
    assert near(im.getpixel((27, 8)), expected_right, 4)


@pytest.mark.parametrize("bit_depth", [4, 8])
def test_png_trns_after_the_pixel_data_is_ignored_as_by_libpng(bit_depth: int) -> None:
    data = images.make_gray_png(bit_depth, [5] * 16 + [10] * 16, transparent=5, height=16)
    trns = images.png_chunk(b"tRNS", struct.pack(">H", 5))
    late = data.replace(trns, b"")[:-12] + trns + data[-12:]  # moved just before IEND
    scale = 17 if bit_depth == 4 else 1
    im = reopen(compress_image(late, DEFAULTS))
    assert near(im.getpixel((4, 8)), 5 * scale, 4)
    assert near(im.getpixel((27, 8)), 10 * scale, 4)


@pytest.mark.parametrize(
    ("transparent", "expected"),
    [((65535, 32768, 0), WHITE), ((65535, 32768, 1), WHITE), ((0, 0, 0), (255, 128, 0))],
)
def test_16_bit_rgb_png_transparent_colour(
    transparent: tuple[int, int, int], expected: Color
) -> None:
    # Pillow decodes 16-bit RGB to 8 bits: the key is matched on the high byte of each sample.
    data = images.make_png16(16, 16, (65535, 32768, 0), transparent=transparent)
    assert near(reopen(compress_image(data, DEFAULTS)).getpixel((8, 8)), expected, 4)


def test_gif_transparency_becomes_white_when_gif_is_allowed() -> None:
    data = images.make_gif(64, 48, (BLUE,), transparent=True)
    im = reopen(compress_image(data, ALLOW_ALL))
    assert near(im.getpixel((5, 24)), WHITE, 3)
    assert near(im.getpixel((58, 24)), BLUE)


# --- animations: first frame -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        images.make_apng(colors=(RED, BLUE, GREEN)),
        images.make_gif(colors=(RED, BLUE, GREEN)),
        images.make_webp(colors=(RED, BLUE, GREEN)),
    ],
)
def test_animations_give_their_first_frame(data: bytes) -> None:
    assert near(reopen(compress_image(data, ALLOW_ALL)).getpixel((16, 16)), RED)


# --- CMYK ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [
        ((255, 0, 0, 0), (0, 255, 255)),
        ((0, 255, 0, 0), (255, 0, 255)),
        ((0, 0, 255, 0), (255, 255, 0)),
        ((0, 0, 0, 255), (0, 0, 0)),
        ((0, 0, 0, 0), (255, 255, 255)),
    ],
)
def test_adobe_cmyk_jpeg_becomes_sane_rgb(cmyk: tuple[int, int, int, int], rgb: Color) -> None:
    data = images.make_cmyk_jpeg(cmyk=cmyk)
    assert b"Adobe" in data[:200]  # Photoshop-style, inverted CMYK values
    im = reopen(compress_image(data, DEFAULTS))
    assert im.mode == "RGB"
    assert near(im.getpixel((16, 16)), rgb)


def test_cmyk_with_a_profile_is_converted_through_that_profile() -> None:
    # The test profile maps pure cyan to (0, 128, 255); a naive conversion would give
    # (0, 255, 255), so this proves the embedded profile was used.
    profile = images.make_cmyk_icc(cyan_as=(0, 128, 255))
    result = compress_image(images.make_cmyk_jpeg(cmyk=(255, 0, 0, 0), icc=profile), DEFAULTS)
    im = reopen(result)
    assert near(im.getpixel((16, 16)), (0, 128, 255))
    assert "icc_profile" not in im.info  # a CMYK profile does not describe the RGB output


def test_cmyk_with_a_realistic_profile_keeps_colours() -> None:
    data = images.make_cmyk_jpeg(cmyk=(0, 255, 255, 0), icc=images.make_cmyk_icc())
    assert near(reopen(compress_image(data, DEFAULTS)).getpixel((16, 16)), RED)


def test_cmyk_with_a_broken_profile_falls_back_to_plain_conversion() -> None:
    broken = images.make_cmyk_icc()[:300]
    im = reopen(compress_image(images.make_cmyk_jpeg(icc=broken), DEFAULTS))
    assert near(im.getpixel((16, 16)), (0, 255, 255))
    assert "icc_profile" not in im.info


# --- 16-bit and grayscale --------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (32768, 128), (65535, 255), (4096, 16)])
def test_16_bit_gray_png_is_scaled_not_clipped(value: int, expected: int) -> None:
    data = images.make_png(32, 32, "I;16", gray16=value)
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    im = reopen(compress_image(data, DEFAULTS))
    assert im.mode == "L"
    assert near(im.getpixel((16, 16)), expected, 2)


def test_16_bit_gray_gradient_keeps_its_shape() -> None:
    gradient = Image.linear_gradient("L").resize((64, 64)).point(lambda v: v * 257, "I")
    data = images.encode(gradient.convert("I;16"), "PNG")
    im = reopen(compress_image(data, DEFAULTS))
    assert near(im.getpixel((32, 2)), 8, 6)
    assert near(im.getpixel((32, 32)), 128, 6)
    assert near(im.getpixel((32, 62)), 248, 6)


def test_big_endian_16_bit_gray_is_scaled() -> None:
    im16 = Image.frombytes("I;16B", (8, 8), (32768).to_bytes(2, "big") * 64)
    out = compress._to_8_bit(im16, None)
    assert out.mode == "L"
    assert out.getpixel((4, 4)) == 128


def test_16_bit_rgb_png() -> None:
    im = reopen(compress_image(images.make_png16(16, 16, (65535, 32768, 0)), DEFAULTS))
    assert im.mode == "RGB"
    assert near(im.getpixel((8, 8)), (255, 128, 0), 4)


@pytest.mark.parametrize(("mode", "kind"), [("L", "png"), ("1", "png"), ("L", "jpeg")])
def test_grayscale_input_gives_grayscale_jpeg(mode: str, kind: str) -> None:
    if kind == "png":
        data = images.make_png(32, 32, mode, "quadrants")
    else:
        data = images.make_jpeg(32, 32, "quadrants", mode=mode)
    im = reopen(compress_image(data, DEFAULTS))
    assert im.mode == "L"
    assert near(im.getpixel((8, 24)), 29 if mode == "L" else 0, 12)  # blue's luma / black


def test_palette_without_transparency_becomes_rgb() -> None:
    pal = images.photo(32, 32).convert("P", palette=Image.Palette.ADAPTIVE)
    im = reopen(compress_image(images.encode(pal, "PNG"), DEFAULTS))
    assert im.mode == "RGB"


# --- metadata --------------------------------------------------------------------------------


def test_icc_profile_kept_and_other_metadata_dropped() -> None:
    icc = images.srgb_icc()
    data = images.make_jpeg(
        64,
        48,
        "photo",
        exif_orientation=1,
        gps=True,
        icc=icc,
        comment=b"secret comment",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret xmp</x:xmpmeta>',
    )
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(0x8825) and "comment" in source.info and "xmp" in source.info
    result = compress_image(data, DEFAULTS)
    im = reopen(result)
    assert im.info.get("icc_profile") == icc
    assert not im.getexif()
    assert "exif" not in im.info and "comment" not in im.info and "xmp" not in im.info
    for secret in (b"Exif\x00\x00", b"TestCam", b"secret", b"GPS", b"http://ns.adobe.com"):
        assert secret not in result.data


def test_png_icc_kept_and_text_and_exif_dropped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret")
    im = images.photo(32, 32)
    data = images.encode(
        im, "PNG", pnginfo=info, exif=images.make_exif(gps=True), icc_profile=images.srgb_icc()
    )
    result = compress_image(data, DEFAULTS)
    out = reopen(result)
    assert out.info.get("icc_profile") == images.srgb_icc()
    assert not out.getexif() and b"secret" not in result.data and b"TestCam" not in result.data


def test_icc_profile_that_does_not_fit_the_output_is_dropped() -> None:
    # An RGB profile on a grayscale JPEG (wrong, but it happens) would be invalid output.
    data = images.make_jpeg(32, 32, "photo", icc=images.srgb_icc(), mode="L")
    im = reopen(compress_image(data, DEFAULTS))
    assert im.mode == "L" and "icc_profile" not in im.info


def test_rgba_png_keeps_its_rgb_profile() -> None:
    data = images.make_png(32, 32, "RGBA", RED, icc=images.srgb_icc())
    assert reopen(compress_image(data, DEFAULTS)).info.get("icc_profile") == images.srgb_icc()


# --- output ----------------------------------------------------------------------------------


def test_output_is_a_jpeg_of_the_same_size_with_the_input_type() -> None:
    result = compress_image(images.make_png(123, 45, "RGB", "photo"), DEFAULTS)
    assert isinstance(result, Compressed)
    assert (result.width, result.height, result.input_type) == (123, 45, "image/png")
    assert reopen(result).size == (123, 45)


def test_the_output_quality_is_respected() -> None:
    data = images.make_jpeg(400, 300, "photo", quality=95)
    low = compress_image(data, DEFAULTS, output=OutputSettings(quality=50))
    high = compress_image(data, DEFAULTS, output=OutputSettings(quality=90))
    assert len(low.data) < len(high.data) * 0.75
    assert len(low.data) < len(data)


def test_threads_give_the_same_results_as_one_thread() -> None:
    inputs = [
        images.make_jpeg(64, 48, "quadrants", exif_orientation=6),
        images.make_cmyk_jpeg(icc=images.make_cmyk_icc(cyan_as=(0, 128, 255))),
        images.make_png(32, 32, "I;16"),
        images.make_png(32, 32, "RGBA"),
        images.make_bomb_png(),
        images.truncated_jpeg(),
    ] * 8

    def run(data: bytes) -> tuple[str, bytes]:
        try:
            return "ok", compress_image(data, DEFAULTS).data
        except ImageError as error:
            return error.code, b""

    serial = [run(data) for data in inputs]
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(run, inputs)) == serial


def test_compressing_into_a_file_gives_the_same_bytes_as_into_memory(tmp_path: Path) -> None:
    data = images.make_jpeg(640, 480, "photo", 92)
    in_memory = compress_image(data, Settings())
    path = tmp_path / "out.jpg"
    with path.open("wb") as handle:
        into_file = compress_image(data, Settings(), handle)
    assert path.read_bytes() == in_memory.data
    assert into_file.size == len(in_memory.data) == in_memory.size
    assert (into_file.width, into_file.height) == (640, 480)


# --- the Encoder seam ------------------------------------------------------------------------


class PngTestEncoder:
    """A test output format for the seam: lossless PNG, keeps alpha, records each call."""

    name = "png-test"
    label = "PNG"
    extension = ".png"
    content_type = "image/x-png-test"  # never an input type: nothing is kept as it is
    keeps_alpha = True
    keeps_grayscale = True
    max_side = 65535
    pillow_feature = None

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, bytes | None, dict[str, Any]]] = []

    def encode(
        self, image: Image.Image, output_file: Any, quality: int, icc_profile: bytes | None
    ) -> None:
        self.calls.append((image.mode, quality, icc_profile, dict(image.info)))
        image.save(output_file, format="PNG", icc_profile=icc_profile)

    def strip_metadata(self, data: bytes) -> bytes | None:
        return None


@pytest.fixture
def png_test_encoder(monkeypatch: pytest.MonkeyPatch) -> PngTestEncoder:
    """A PngTestEncoder registered as the output format "png-test"."""
    encoder = PngTestEncoder()
    monkeypatch.setitem(output_module.ENCODERS, encoder.name, encoder)
    return encoder


def test_the_jpeg_encoder_is_registered_and_the_default() -> None:
    assert list(ENCODERS) == ["jpeg", "webp", "avif"]
    assert encoder_for("jpeg") is JPEG_ENCODER
    assert (JPEG_ENCODER.extension, JPEG_ENCODER.content_type) == (".jpg", "image/jpeg")
    assert JPEG_ENCODER.keeps_alpha is False
    data = images.make_png(32, 32, "RGBA", RED)
    explicit = compress_image(data, DEFAULTS, output=OutputSettings())
    assert explicit.data == compress_image(data, DEFAULTS).data


def test_unknown_output_format_is_a_settings_error() -> None:
    with pytest.raises(
        SettingsError, match="Unknown output format 'gif'; choose one of: jpeg, webp, avif."
    ):
        encoder_for("gif")


@pytest.mark.parametrize(
    ("data", "mode", "transparent_pixel", "opaque"),
    [
        (images.make_png(64, 48, "RGBA", RED), "RGBA", (5, 24), (58, 24)),
        (images.make_png(64, 48, "P", RED), "RGBA", (5, 24), (58, 24)),
        (images.make_png(64, 48, "LA"), "LA", (5, 24), (58, 24)),
        (images.make_gray_png(2, [1] * 16 + [2] * 16, transparent=1), "LA", (4, 2), (27, 2)),
        (images.make_gray_png(16, [9] * 16 + [9000] * 16, transparent=9), "LA", (4, 2), (27, 2)),
    ],
    ids=["RGBA", "palette", "LA", "2-bit tRNS", "16-bit tRNS"],
)
def test_an_encoder_that_keeps_alpha_gets_the_alpha_band(
    data: bytes,
    mode: str,
    transparent_pixel: tuple[int, int],
    opaque: tuple[int, int],
    png_test_encoder: PngTestEncoder,
) -> None:
    encoder = png_test_encoder
    output = OutputSettings(format="png-test", quality=77)
    result = compress_image(data, DEFAULTS, output=output)
    assert [(m, q, info) for m, q, _, info in encoder.calls] == [(mode, 77, {})]
    out = Image.open(io.BytesIO(result.data), formats=["PNG"])
    assert out.mode == mode
    alpha = out.getchannel("A")
    assert alpha.getpixel(transparent_pixel) == 0
    assert alpha.getpixel(opaque) == 255


def test_an_encoder_gets_the_icc_profile_that_fits_and_writes_into_the_file(
    tmp_path: Path, png_test_encoder: PngTestEncoder
) -> None:
    encoder = png_test_encoder
    data = images.make_png(32, 32, "RGBA", RED, icc=images.srgb_icc())
    with (tmp_path / "out.png").open("wb") as handle:
        result = compress_image(data, DEFAULTS, handle, OutputSettings(format="png-test"))
    assert encoder.calls[0][2] == images.srgb_icc()
    written = (tmp_path / "out.png").read_bytes()
    assert result.size == len(written) and result.data == b""
    assert Image.open(io.BytesIO(written)).info.get("icc_profile") == images.srgb_icc()
