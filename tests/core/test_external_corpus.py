"""compress on third-party test images that imgdesk once got wrong (the shared external corpus).

The files are not copied into the repository: they are read from the shared folder next to
the checkout, whose manifest.json names each file's source. Without that folder these tests
are skipped (test_compress.py covers the same rules with generated images).
"""

from __future__ import annotations

import io
from array import array
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from imgdesk.core.compress import compress_image
from imgdesk.core.errors import ErrorCode, ImageError
from imgdesk.core.output import OutputSettings
from imgdesk.core.settings import Settings

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "external-corpus"

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"no shared external corpus at {CORPUS}"
)

DEFAULTS = Settings()


def corpus_file(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def compressed_picture(data: bytes) -> Image.Image:
    result = compress_image(data, DEFAULTS)
    im = Image.open(io.BytesIO(result.data), formats=["JPEG"])
    im.load()
    return im


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per pixel of two "L" images, 0-255."""
    assert a.size == b.size
    return float(ImageStat.Stat(ImageChops.difference(a, b)).mean[0])


def failure(data: bytes) -> ImageError:
    with pytest.raises(ImageError) as info:
        compress_image(data, DEFAULTS)
    return info.value


@pytest.mark.parametrize("name", ["pngsuite/xcsn0g01.png", "libpng/crashers__badcrc.png"])
def test_png_with_a_wrong_idat_crc_is_bad_image(name: str) -> None:
    data = corpus_file(name)
    with Image.open(io.BytesIO(data)) as im:
        im.load()  # Pillow alone skips the IDAT checksum and decodes a picture
    error = failure(data)
    assert error.code == ErrorCode.BAD_IMAGE
    assert error.message == "The image file is damaged or incomplete and cannot be read."


# libpng's 2- and 4-bit grey files: one row of every grey value (0, 1, 2, ... on the file's
# own scale), with grey 1 named transparent by tRNS. Pillow scales the pixels to 8 bits.
@pytest.mark.parametrize("bit_depth", [2, 4])
@pytest.mark.parametrize("variant", ["", "-1.8", "-linear", "-sRGB"])
def test_low_bit_grey_png_transparent_grey_becomes_white(bit_depth: int, variant: str) -> None:
    data = corpus_file(f"libpng/gray-{bit_depth}{variant}-tRNS.png")
    step = 255 // ((1 << bit_depth) - 1)
    values = [value * step for value in range(1 << bit_depth)]
    values[1] = 255  # the transparent grey, on white
    expected = Image.new("L", (len(values), 1))
    expected.putdata(values)
    im = compressed_picture(data)
    assert im.mode == "L"
    assert im.getpixel((1, 0)) >= 230  # was 85 or 17: the transparency was ignored
    assert mean_difference(im, expected) <= 8


def test_16_bit_grey_png_transparent_grey_becomes_white() -> None:
    data = corpus_file("pillow/i_trns.png")
    with Image.open(io.BytesIO(data)) as source:
        key = source.info["transparency"]
        wide = array("i", source.convert("I").tobytes())
        size = source.size
    # What a viewer shows: the tRNS grey (a 16-bit value) on white, the rest scaled to 8 bits.
    expected = Image.new("L", size)
    expected.putdata([255 if value == key else value // 256 for value in wide])
    transparent = sum(1 for value in wide if value == key)
    assert 0 < transparent < len(wide)
    im = compressed_picture(data)
    assert im.mode == "L"
    assert mean_difference(im, expected) <= 6  # ignoring the tRNS grey gives about 35


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("pillow-other/hopper.ppm", "PPM"),
        ("pillow-other/hopper.bmp", "BMP"),
        ("pillow-other/hopper.gif", "GIF"),
        ("pillow-other/hopper.ico", "ICO"),
        ("pillow-other/hopper.tif", "TIFF"),
        ("pillow-other/hopper.webp", "WebP"),
    ],
)
def test_other_image_types_are_unsupported_not_non_images(name: str, label: str) -> None:
    error = failure(corpus_file(name))
    assert error.code == ErrorCode.UNSUPPORTED_TYPE
    assert error.message.startswith(f"{label} images are not allowed; ")


def on_white(im: Image.Image) -> Image.Image:
    background = Image.new("RGBA", im.size, (255, 255, 255, 255))
    background.alpha_composite(im.convert("RGBA"))
    return background.convert("RGB")


@pytest.mark.parametrize("name", ["libpng/palette-1-tRNS.png", "libpng/palette-1-sRGB-tRNS.png"])
def test_avif_keeps_a_transparent_pixels_hidden_colour_out_of_its_neighbours(name: str) -> None:
    """With 4:2:0 chroma, a red fully transparent pixel turned its white neighbour pink."""
    data = corpus_file(name)
    result = compress_image(data, DEFAULTS, output=OutputSettings(format="avif"))
    shown = on_white(Image.open(io.BytesIO(result.data)))
    expected = on_white(Image.open(io.BytesIO(data)))
    difference = ImageStat.Stat(ImageChops.difference(shown, expected)).mean
    assert max(difference) < 6, difference  # 14 with the colour bleeding
