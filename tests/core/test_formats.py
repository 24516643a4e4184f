"""Output formats and sizes (SPEC 9): OutputSettings, WebP/AVIF, resizing, target size, originals.

Every test checks real output files: the format by magic bytes and by Pillow, the pixel size
recorded, the pixels against the source, the metadata gone and the ICC profile kept.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from PIL import Image, ImageChops, ImageStat, JpegImagePlugin

from imgdesk.core import compress
from imgdesk.core import output as output_module
from imgdesk.core.compress import Compressed, compress_image, fit_target_size
from imgdesk.core.errors import SettingsError
from imgdesk.core.output import (
    ENCODERS,
    Encoder,
    OutputSettings,
    encoder_for,
    strip_jpeg_metadata,
    strip_webp_metadata,
)
from imgdesk.core.settings import KNOWN_INPUT_TYPES, Settings
from tests import images
from tests.images import BLUE, GREEN, RED, WHITE

ALLOW_ALL = Settings(allowed_types=KNOWN_INPUT_TYPES)
FORMATS = ["jpeg", "webp", "avif"]
PILLOW_NAMES = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">XMP-SECRET</x:xmpmeta>'
COMMENT = b"COMMENT-SECRET"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "external-corpus"


def magic_format(data: bytes) -> str:
    """The format named by the file's first bytes."""
    if data.startswith(b"\xff\xd8\xff") and data.endswith(b"\xff\xd9"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:12] == b"ftypavif":
        return "avif"
    return "unknown"


def reopen(result: Compressed, output_format: str) -> Image.Image:
    """The output decoded, checked to be a complete file of the format and the recorded size."""
    assert result.output_format == output_format
    assert magic_format(result.data) == output_format
    assert result.size == len(result.data)
    im = Image.open(io.BytesIO(result.data), formats=[PILLOW_NAMES[output_format]])
    assert im.size == (result.width, result.height)
    im.load()
    return im


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """The mean absolute difference of two pictures of the same size, 0-255, over RGB."""
    assert a.size == b.size
    stat = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB")))
    return sum(stat.mean) / 3


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def assert_no_metadata_but_icc(data: bytes, im: Image.Image, icc: bytes | None) -> None:
    """No EXIF, GPS, XMP or comment survives, in Pillow's view and in the raw bytes."""
    assert len(im.getexif()) == 0
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop"):
        assert key not in im.info
    for secret in (b"TestCam", b"XMP-SECRET", COMMENT, b"Jane Secret", b"Exif\x00\x00"):
        assert secret not in data
    assert im.info.get("icc_profile") == icc


class CountingEncoder:
    """A real encoder that counts its encodes and the qualities asked for."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.qualities: list[int] = []
        for name in ("name", "label", "extension", "content_type", "keeps_alpha"):
            setattr(self, name, getattr(inner, name))
        for name in ("keeps_grayscale", "max_side", "pillow_feature"):
            setattr(self, name, getattr(inner, name))

    def encode(
        self, image: Image.Image, output_file: BinaryIO, quality: int, icc: bytes | None
    ) -> None:
        self.qualities.append(quality)
        self.inner.encode(image, output_file, quality, icc)

    def strip_metadata(self, data: bytes) -> bytes | None:
        return self.inner.strip_metadata(data)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> CountingEncoder:
    """The encoder of the format named by the test's ``output_format`` parameter, counting."""
    name = request.node.callspec.params.get("output_format", "jpeg")
    encoder = CountingEncoder(ENCODERS[name])
    monkeypatch.setitem(output_module.ENCODERS, name, encoder)
    return encoder


# --- OutputSettings --------------------------------------------------------------------------


def test_output_settings_defaults_are_jpeg_q50_keeping_originals() -> None:
    output = OutputSettings()
    assert output.to_dict() == {
        "format": "jpeg",
        "quality": 50,
        "max_width": None,
        "max_height": None,
        "target_size_kb": None,
        "keep_original": True,
        "flatten": False,
    }
    assert (output.extension, output.content_type) == (".jpg", "image/jpeg")
    assert output.describe() == "JPEG q50, keep originals"
    assert output.key == "out1;jpeg;q=50;fit=-x-;target=-;keep=1;flatten=1"


def test_output_settings_round_trip_through_a_dict() -> None:
    output = OutputSettings("webp", 60, 1200, 800, 150, False, True)
    assert OutputSettings.from_dict(output.to_dict()) == output
    stored = {"format": "avif", "quality": 40, "a_setting_from_the_future": 1}
    assert OutputSettings.from_dict(stored) == OutputSettings(format="avif", quality=40)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("format", "gif", "format must be one of jpeg, webp, avif, not 'gif'"),
        ("format", "JPEG", "format must be one of jpeg, webp, avif, not 'JPEG'"),
        ("quality", 0, "quality must be a whole number from 1 to 100, not 0"),
        ("quality", 101, "quality must be a whole number from 1 to 100, not 101"),
        ("quality", 50.5, "quality must be a whole number from 1 to 100, not 50.5"),
        ("quality", True, "quality must be a whole number from 1 to 100, not True"),
        ("quality", "50", "quality must be a whole number from 1 to 100, not '50'"),
        ("max_width", 0, "max_width must be a whole number from 1 to 65535 or none, not 0"),
        ("max_height", -5, "max_height must be a whole number from 1 to 65535 or none, not -5"),
        ("target_size_kb", 0, "target_size_kb must be a whole number from 1 to 1048576 or none"),
        ("keep_original", 1, "keep_original must be true or false, not 1"),
        ("flatten", "yes", "flatten must be true or false, not 'yes'"),
    ],
)
def test_bad_output_settings_name_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(SettingsError, match="^" + message.replace("(", r"\(")):
        OutputSettings(**{field: value})


def test_the_key_changes_with_everything_that_shapes_the_output() -> None:
    base = OutputSettings()
    variants = [
        base.replace(format="webp"),
        base.replace(format="avif"),
        base.replace(quality=51),
        base.replace(max_width=1200),
        base.replace(max_height=1200),
        base.replace(target_size_kb=150),
        base.replace(keep_original=False),
        base.replace(format="webp", flatten=True),
    ]
    keys = [base.key] + [variant.key for variant in variants]
    assert len(set(keys)) == len(keys)
    assert OutputSettings().key == base.key  # stable across instances
    # JPEG always flattens: the flag makes no different bytes, so no different key.
    assert base.replace(flatten=True).key == base.key


@pytest.mark.parametrize(
    ("output", "text"),
    [
        (
            OutputSettings("webp", 60, 1200, 1200, 150),
            "WebP q60, fit 1200×1200, ≤ 150 KiB, keep originals",
        ),
        (
            OutputSettings("avif", 40, max_width=800, flatten=True),
            "AVIF q40, fit 800 wide, flatten transparency, keep originals",
        ),
        (
            OutputSettings(max_height=600, keep_original=False),
            "JPEG q50, fit 600 high, always re-encode",
        ),
    ],
)
def test_describe_says_it_in_a_few_words(output: OutputSettings, text: str) -> None:
    assert output.describe() == text


@pytest.mark.parametrize(
    ("output_format", "extension", "content_type"),
    [
        ("jpeg", ".jpg", "image/jpeg"),
        ("webp", ".webp", "image/webp"),
        ("avif", ".avif", "image/avif"),
    ],
)
def test_each_format_has_its_extension_and_type(
    output_format: str, extension: str, content_type: str
) -> None:
    output = OutputSettings(format=output_format)
    assert (output.extension, output.content_type) == (extension, content_type)
    assert output.encoder is encoder_for(output_format)


def test_a_pillow_without_avif_gives_a_clear_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The only way to get a Pillow built without libavif here is to make it say so.
    monkeypatch.setattr(output_module.features, "check", lambda feature: feature != "avif")
    output = OutputSettings(format="avif")  # a stored request still loads and describes
    assert output.describe() == "AVIF q50, keep originals"
    with pytest.raises(SettingsError, match="cannot write AVIF: its Pillow was built without"):
        compress_image(images.make_png(), ALLOW_ALL, output=output)
    assert encoder_for("webp") is ENCODERS["webp"]


# --- every format ------------------------------------------------------------------------


@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize("source", ["png", "jpeg"])
def test_each_format_writes_a_valid_file_of_the_same_picture(
    output_format: str, source: str, tmp_path: Path
) -> None:
    if source == "png":
        data = images.make_png(120, 80, "RGB", "photo")
    else:
        data = images.make_jpeg(120, 80, "photo", quality=95)
    # keep_original off: a q95 original may come out smaller than q80 here; it is tested apart.
    output = OutputSettings(format=output_format, quality=80, keep_original=False)
    path = tmp_path / f"out{output.extension}"
    with path.open("wb") as handle:
        result = compress_image(data, ALLOW_ALL, handle, output)
    written = path.read_bytes()
    assert result.data == b"" and result.size == len(written)
    assert (result.quality, result.kept_original, result.over_target) == (80, False, False)
    in_memory = compress_image(data, ALLOW_ALL, output=output)
    assert in_memory.data == written
    im = reopen(in_memory, output_format)
    assert im.size == (120, 80)
    # A grained 120x80 photo at q80: about 6 levels out of 255 in JPEG, less in WebP/AVIF.
    assert mean_difference(im, decoded(data)) < 9


@pytest.mark.parametrize("output_format", FORMATS)
def test_no_metadata_but_the_icc_profile_in_any_format(output_format: str) -> None:
    data = images.jpeg_with_segments(
        images.make_jpeg(64, 48, "photo", 95, 1, gps=True, icc=True, comment=COMMENT, xmp=XMP),
        [(0xED, images.iptc_app13())],
    )
    # keep_original off: this test is about what each encoder writes.
    output = OutputSettings(format=output_format, keep_original=False)
    result = compress_image(data, ALLOW_ALL, output=output)
    im = reopen(result, output_format)
    assert_no_metadata_but_icc(result.data, im, images.srgb_icc())


@pytest.mark.parametrize("output_format", FORMATS)
def test_exif_orientation_is_applied_in_any_format(output_format: str) -> None:
    # Stored 64 x 48 with orientation 6 (turn right): shown 48 x 64, top-left is bottom-left.
    data = images.make_jpeg(64, 48, "quadrants", 95, exif_orientation=6)
    result = compress_image(data, ALLOW_ALL, output=OutputSettings(format=output_format))
    im = reopen(result, output_format).convert("RGB")
    assert im.size == (48, 64)
    for point, colour in {(8, 8): BLUE, (40, 8): RED, (8, 56): WHITE, (40, 56): GREEN}.items():
        assert all(abs(a - b) <= 40 for a, b in zip(im.getpixel(point), colour, strict=True))


@pytest.mark.parametrize("output_format", ["webp", "avif"])
@pytest.mark.parametrize("source_mode", ["RGBA", "P", "LA"])
def test_webp_and_avif_keep_transparency(output_format: str, source_mode: str) -> None:
    data = images.make_png(64, 48, source_mode, RED)
    result = compress_image(data, ALLOW_ALL, output=OutputSettings(format=output_format))
    im = reopen(result, output_format)
    assert im.mode == "RGBA"
    assert im.getpixel((5, 24))[3] == 0
    right = im.getpixel((58, 24))
    assert right[3] == 255
    expected = (90, 90, 90) if source_mode == "LA" else RED
    assert all(abs(a - b) <= 12 for a, b in zip(right[:3], expected, strict=True))


@pytest.mark.parametrize("output_format", FORMATS)
def test_flatten_puts_transparency_onto_white(output_format: str) -> None:
    data = images.make_png(64, 48, "RGBA", RED)
    output = OutputSettings(format=output_format, flatten=True)
    im = reopen(compress_image(data, ALLOW_ALL, output=output), output_format)
    assert im.mode == "RGB"
    assert all(value >= 245 for value in im.getpixel((5, 24)))  # was transparent black
    assert all(abs(a - b) <= 12 for a, b in zip(im.getpixel((58, 24)), RED, strict=True))


def test_jpeg_flattens_even_without_the_flag() -> None:
    data = images.make_png(64, 48, "RGBA", RED)
    im = reopen(compress_image(data, ALLOW_ALL, output=OutputSettings()), "jpeg")
    assert im.mode == "RGB" and all(value >= 245 for value in im.getpixel((5, 24)))


@pytest.mark.parametrize("output_format", ["webp", "avif"])
def test_grayscale_cmyk_and_16_bit_sources_in_colour_formats(output_format: str) -> None:
    output = OutputSettings(format=output_format, quality=90)
    gray_png = images.make_png(64, 48, "L", "photo")
    gray = reopen(compress_image(gray_png, ALLOW_ALL, output=output), output_format)
    assert gray.mode == "RGB" and mean_difference(gray, decoded(gray_png)) < 4
    cyan_as = (0, 128, 255)
    cmyk = images.make_cmyk_jpeg(icc=images.make_cmyk_icc(cyan_as=cyan_as))
    im = reopen(compress_image(cmyk, ALLOW_ALL, output=output), output_format)
    assert im.info.get("icc_profile") is None  # the CMYK profile does not describe RGB
    assert all(abs(a - b) <= 16 for a, b in zip(im.getpixel((16, 16)), cyan_as, strict=True))
    wide = reopen(compress_image(images.make_png16(), ALLOW_ALL, output=output), output_format)
    assert all(abs(a - b) <= 12 for a, b in zip(wide.getpixel((8, 8)), (255, 128, 0), strict=True))


# --- resizing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "limits", "expected"),
    [
        ((400, 300), (200, 200), (200, 150)),
        ((300, 400), (200, 200), (150, 200)),
        ((400, 300), (None, 100), (133, 100)),
        ((400, 300), (100, None), (100, 75)),
        ((400, 300), (1000, 1000), (400, 300)),  # never enlarged
        ((400, 300), (400, 300), (400, 300)),
        ((1000, 10), (50, 50), (50, 1)),  # at least one pixel
    ],
)
@pytest.mark.parametrize("source", ["png", "jpeg"])
def test_resizing_fits_inside_keeping_the_aspect_ratio(
    size: tuple[int, int],
    limits: tuple[int | None, int | None],
    expected: tuple[int, int],
    source: str,
) -> None:
    picture = images.photo(*size)
    if source == "png":
        data = images.encode(picture, "PNG")
    else:
        data = images.encode(picture, "JPEG", quality=95)
        picture = decoded(data)
    output = OutputSettings(
        quality=90, max_width=limits[0], max_height=limits[1], keep_original=False
    )
    im = reopen(compress_image(data, ALLOW_ALL, output=output), "jpeg")
    assert im.size == expected
    reference = picture.resize(expected, Image.Resampling.LANCZOS)
    assert mean_difference(im, reference) < 8


@pytest.mark.parametrize("output_format", ["webp", "avif"])
def test_resizing_keeps_transparency_without_dark_fringes(output_format: str) -> None:
    data = images.make_png(200, 100, "RGBA", RED)
    output = OutputSettings(format=output_format, max_width=100, quality=90)
    im = reopen(compress_image(data, ALLOW_ALL, output=output), output_format)
    assert im.size == (100, 50) and im.mode == "RGBA"
    assert im.getpixel((10, 25))[3] == 0 and im.getpixel((90, 25))[3] == 255
    # Pixels at the edge are partly transparent but still red, not darkened by the
    # (transparent) black beside them: the resize works on premultiplied alpha.
    row = [im.getpixel((x, 25)) for x in range(100)]
    assert any(0 < pixel[3] < 255 for pixel in row)
    for red, green, _blue, alpha in row:
        if alpha >= 64:
            assert red >= 180 and green <= 70


class DraftSpy:
    """Records what the real JpegImageFile.draft was asked for and what it decoded to."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = []
        real = JpegImagePlugin.JpegImageFile.draft
        spy = self

        def draft(im: Any, mode: str | None, size: tuple[int, int] | None) -> Any:
            before = im.size
            answer = real(im, mode, size)
            assert size is not None
            spy.calls.append((before, size, im.size))
            return answer

        monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", draft)


def test_a_big_jpeg_is_decoded_at_a_reduced_scale_never_below_the_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = DraftSpy(monkeypatch)
    data = images.make_jpeg(2000, 1500, "photo", quality=92)
    output = OutputSettings(max_width=600, max_height=600, keep_original=False)
    result = compress_image(data, ALLOW_ALL, output=output)
    assert (result.width, result.height) == (600, 450)
    [(before, asked, decoded_size)] = spy.calls
    assert before == (2000, 1500) and asked == (600, 450)
    assert decoded_size == (1000, 750)  # 1/2: 1/4 would give 500 x 375, below the target
    reference = decoded(data).resize((600, 450), Image.Resampling.LANCZOS)
    assert mean_difference(reopen(result, "jpeg"), reference) < 4


def test_a_rotated_jpeg_is_fitted_on_its_shown_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stored 800 x 400 with orientation 6: shown 400 x 800 (a portrait), to fit in 200 x 200.
    spy = DraftSpy(monkeypatch)
    stored = images.quadrants(800, 400)
    data = images.encode(stored, "JPEG", quality=95, exif=images.make_exif(6))
    output = OutputSettings(max_width=200, max_height=200)
    result = compress_image(data, ALLOW_ALL, output=output)
    assert (result.width, result.height) == (100, 200) and not result.kept_original
    [(before, asked, decoded_size)] = spy.calls
    assert asked == (200, 100)  # the fit, in the stored orientation
    assert decoded_size[0] >= 200 and decoded_size[1] >= 100
    im = reopen(result, "jpeg")
    for point, colour in {
        (25, 25): BLUE,
        (75, 25): RED,
        (25, 175): WHITE,
        (75, 175): GREEN,
    }.items():
        assert all(abs(a - b) <= 40 for a, b in zip(im.getpixel(point), colour, strict=True))


def test_no_scaled_decoding_when_nothing_shrinks(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = DraftSpy(monkeypatch)
    data = images.make_jpeg(200, 100, "photo")
    compress_image(data, ALLOW_ALL, output=OutputSettings(max_width=400, keep_original=False))
    compress_image(data, ALLOW_ALL)
    assert spy.calls == []


def test_an_image_wider_than_webp_allows_is_scaled_to_fit_it() -> None:
    data = images.make_png(16400, 8, "RGB", RED)
    result = compress_image(data, ALLOW_ALL, output=OutputSettings(format="webp"))
    assert (result.width, result.height) == (16383, 8)
    reopen(result, "webp")


# --- target size ------------------------------------------------------------------------------


@pytest.mark.parametrize("output_format", FORMATS)
def test_target_size_picks_the_highest_quality_that_fits(
    output_format: str, counting: CountingEncoder
) -> None:
    data = images.make_jpeg(320, 240, "photo", quality=95)
    sizes = {
        quality: compress_image(
            data, ALLOW_ALL, output=OutputSettings(output_format, quality, keep_original=False)
        ).size
        for quality in (20, 80)
    }
    counting.qualities.clear()
    target_kb = (sizes[20] + sizes[80]) // 2 // 1024
    output = OutputSettings(output_format, 80, target_size_kb=target_kb, keep_original=False)
    result = compress_image(data, ALLOW_ALL, output=output)
    assert result.quality is not None and 20 <= result.quality < 80
    assert result.size <= target_kb * 1024 and not result.over_target
    assert len(counting.qualities) <= 8 and counting.qualities[0] == 80
    above = compress_image(
        data, ALLOW_ALL, output=output.replace(quality=result.quality + 1, target_size_kb=None)
    )
    assert above.size > target_kb * 1024  # one step up would not fit
    reopen(result, output_format)


@pytest.mark.parametrize("output_format", FORMATS)
def test_an_unreachable_target_keeps_quality_10_and_says_so(
    output_format: str, counting: CountingEncoder
) -> None:
    # AVIF at quality 10 squeezes 640 x 480 under 1 KiB: give it four times the pixels.
    width, height = (1280, 960) if output_format == "avif" else (640, 480)
    data = images.make_jpeg(width, height, "photo", quality=95)
    output = OutputSettings(output_format, 90, target_size_kb=1, keep_original=False)
    result = compress_image(data, ALLOW_ALL, output=output)
    assert result.over_target and result.quality == 10
    assert len(counting.qualities) <= 8 and min(counting.qualities) == 10
    reopen(result, output_format)


@pytest.mark.parametrize("output_format", ["jpeg"])
def test_a_target_met_at_the_quality_asked_costs_one_encode(
    output_format: str, counting: CountingEncoder
) -> None:
    data = images.make_jpeg(64, 48, "photo")
    output = OutputSettings(quality=70, target_size_kb=500, keep_original=False)
    result = compress_image(data, ALLOW_ALL, output=output)
    assert (result.quality, result.over_target, counting.qualities) == (70, False, [70])


class WriteCountingFile(io.FileIO):
    """A real file that counts the writes made through it."""

    writes = 0

    def write(self, data: Any) -> int:
        self.writes += 1
        return super().write(data)


def test_only_the_chosen_candidate_is_written_into_the_destination(tmp_path: Path) -> None:
    data = images.make_jpeg(320, 240, "photo", quality=95)
    output = OutputSettings(quality=90, target_size_kb=8, keep_original=False)
    expected = compress_image(data, ALLOW_ALL, output=output)
    with WriteCountingFile(tmp_path / "out.jpg", "w") as handle:
        result = compress_image(data, ALLOW_ALL, handle, output)
        assert handle.writes == 1
    assert (tmp_path / "out.jpg").read_bytes() == expected.data
    assert result.size == expected.size and result.quality == expected.quality


def test_the_bisection_is_exact_within_8_encodes_for_every_quality() -> None:
    for quality, limit in itertools.product(range(1, 101), (0, 5, 10, 37, 64, 99, 100, 200)):
        calls: list[int] = []

        def encode_at(q: int, calls: list[int] = calls) -> bytes:
            calls.append(q)
            return bytes(q)  # the size grows with the quality

        data, chosen, over = fit_target_size(encode_at, quality, limit)
        assert len(calls) <= 8 and len(calls) == len(set(calls))
        fitting = [q for q in range(min(10, quality), quality + 1) if q <= limit]
        if fitting:
            assert (chosen, over, len(data)) == (max(fitting), False, max(fitting))
        else:
            assert (chosen, over) == (min(10, quality), True)


# --- keep_original -----------------------------------------------------------------------------


def metadata_heavy_jpeg(quality: int = 60) -> bytes:
    """A small JPEG with EXIF (orientation 1, GPS), XMP, a comment, IPTC, a JFIF thumbnail,
    an ICC profile and a trailer after its end marker."""
    data = images.make_jpeg(
        96, 64, "photo", quality, 1, gps=True, icc=True, comment=COMMENT, xmp=XMP
    )
    assert data[2:4] == b"\xff\xe0" and data[6:11] == b"JFIF\x00"
    data = data[:2] + data[2 + 18 :]  # Pillow's JFIF APP0 (no thumbnail) makes way for ours
    segments = [(0xE0, images.jfif_app0_with_thumbnail()), (0xED, images.iptc_app13())]
    return images.jpeg_with_segments(data, segments, trailer=b"MPF-SECOND-IMAGE" * 10)


def test_a_jpeg_that_would_grow_is_kept_without_its_metadata() -> None:
    data = metadata_heavy_jpeg(quality=60)
    result = compress_image(data, ALLOW_ALL, output=OutputSettings(quality=90))
    assert result.kept_original and result.quality is None and not result.over_target
    im = reopen(result, "jpeg")
    assert im.tobytes() == decoded(data).tobytes()  # bit-identical pixels: no re-encode
    assert_no_metadata_but_icc(result.data, im, images.srgb_icc())
    assert b"MPF-SECOND-IMAGE" not in result.data
    assert "jfif" in im.info and 0xE1 not in images.jpeg_markers(result.data)
    assert result.size < len(data)


def test_stripping_a_jpeg_keeps_every_table_and_scan_byte_for_byte() -> None:
    data = images.make_jpeg(96, 64, "photo", 80, icc=True)
    stripped = strip_jpeg_metadata(images.jpeg_with_segments(data, [(0xFE, COMMENT)]))
    assert stripped == data  # Pillow's own JPEG has nothing to drop


def test_a_jpeg_that_re_encoding_shrinks_is_re_encoded() -> None:
    data = metadata_heavy_jpeg(quality=95)
    result = compress_image(data, ALLOW_ALL, output=OutputSettings(quality=50))
    assert not result.kept_original and result.quality == 50
    assert_no_metadata_but_icc(result.data, reopen(result, "jpeg"), images.srgb_icc())


@pytest.mark.parametrize(
    ("data", "output"),
    [
        (images.make_jpeg(96, 64, "photo", 40, exif_orientation=6), OutputSettings(quality=90)),
        (images.make_jpeg(96, 64, "photo", 40), OutputSettings(quality=90, max_width=50)),
        (images.make_jpeg(96, 64, "photo", 40), OutputSettings(quality=90, keep_original=False)),
        (images.make_jpeg(96, 64, "photo", 40), OutputSettings("webp", 90)),
        (images.make_png(96, 64, "RGB", "photo"), OutputSettings(quality=90)),
        (images.make_cmyk_jpeg(quality=40), OutputSettings(quality=90)),
        (images.make_still_webp(mode="RGBA"), OutputSettings("webp", 90, flatten=True)),
        (images.make_webp(colors=(RED, BLUE)), OutputSettings("webp", 90)),  # animated
    ],
    ids=["rotated", "resized", "keep off", "other format", "png", "cmyk", "flatten", "animated"],
)
def test_originals_are_kept_only_when_faithful(data: bytes, output: OutputSettings) -> None:
    result = compress_image(data, ALLOW_ALL, output=output)
    assert not result.kept_original and result.quality == 90
    reopen(result, output.format)


def test_a_progressive_jpeg_is_kept_as_it_is() -> None:
    data = images.encode(
        images.photo(96, 64),
        "JPEG",
        quality=40,
        progressive=True,
        icc_profile=images.srgb_icc(),
        comment=COMMENT,
    )
    result = compress_image(data, ALLOW_ALL, output=OutputSettings(quality=95))
    assert result.kept_original
    im = reopen(result, "jpeg")
    assert im.tobytes() == decoded(data).tobytes()
    assert_no_metadata_but_icc(result.data, im, images.srgb_icc())


def test_a_kept_original_within_the_target_is_not_over_it() -> None:
    data = metadata_heavy_jpeg(quality=40)
    output = OutputSettings(quality=95, target_size_kb=64)
    result = compress_image(data, ALLOW_ALL, output=output)
    assert result.kept_original and not result.over_target
    over = compress_image(data, ALLOW_ALL, output=output.replace(target_size_kb=1))
    assert over.over_target and (over.kept_original or over.quality == 10)


def test_a_lossless_webp_is_kept_without_its_metadata() -> None:
    exif = images.make_exif(orientation=1, gps=True)
    data = images.make_still_webp(mode="RGBA", exif=exif, xmp=XMP, icc=images.srgb_icc())
    assert {b"EXIF", b"XMP ", b"ICCP"} <= set(images.webp_chunks(data))
    result = compress_image(data, ALLOW_ALL, output=OutputSettings("webp", 95))
    assert result.kept_original and result.quality is None
    im = reopen(result, "webp")
    assert im.tobytes() == decoded(data).tobytes()
    assert_no_metadata_but_icc(result.data, im, images.srgb_icc())
    assert images.webp_chunks(result.data) == [b"VP8X", b"ICCP", b"VP8L"]
    flags = result.data[20]
    assert flags & 0x08 == 0 and flags & 0x04 == 0 and flags & 0x20  # EXIF, XMP off; ICC on


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8",
        images.make_jpeg()[:-2],  # no end marker
        images.make_jpeg()[:300],
        b"\xff\xd8\xff\xe1\x00\x01",  # a length shorter than itself
    ],
)
def test_a_jpeg_the_walker_does_not_understand_is_not_stripped(data: bytes) -> None:
    assert strip_jpeg_metadata(data) is None


@pytest.mark.parametrize(
    "data",
    [
        b"RIFF\x00\x00\x00\x00WEBP",
        images.make_still_webp()[:-3],
        images.make_webp(colors=(RED, BLUE)),
        images.make_jpeg(),
    ],
)
def test_a_webp_the_walker_does_not_understand_is_not_stripped(data: bytes) -> None:
    assert strip_webp_metadata(data) is None


def test_avif_never_keeps_an_original() -> None:
    assert ENCODERS["avif"].strip_metadata(b"\x00\x00\x00\x1cftypavif") is None


# --- the shared external corpus ----------------------------------------------------------------


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no shared external corpus at {CORPUS}")
@pytest.mark.parametrize(
    "name",
    [
        "image-rs/jpg__exif-xmp-metadata.jpg",
        "image-rs/jpg__iptc.jpg",
        "image-rs/jpg__progressive__cat.jpg",
        "image-rs/jpg__progressive__test.jpg",
        "exif-orientation/Landscape_1.jpg",
    ],
)
def test_real_jpegs_lose_their_metadata_but_not_a_pixel(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    stripped = strip_jpeg_metadata(data)
    assert stripped is not None
    source, im = decoded(data), decoded(stripped)
    assert im.tobytes() == source.tobytes()
    assert len(im.getexif()) == 0
    assert not {"exif", "xmp", "comment", "photoshop"} & set(im.info)
    assert im.info.get("icc_profile") == source.info.get("icc_profile")
    assert all(marker not in images.jpeg_markers(stripped) for marker in (0xE1, 0xED, 0xFE))


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no shared external corpus at {CORPUS}")
@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize("orientation", range(1, 9))
def test_real_rotated_photos_come_out_upright_and_fitted(
    output_format: str, orientation: int
) -> None:
    data = (CORPUS / f"exif-orientation/Landscape_{orientation}.jpg").read_bytes()
    upright = decoded((CORPUS / "exif-orientation/Landscape_1.jpg").read_bytes())
    output = OutputSettings(format=output_format, quality=80, max_width=300, max_height=300)
    result = compress_image(data, ALLOW_ALL, output=output)
    expected = compress._fit_size(upright.size, output, ENCODERS[output_format])
    assert (result.width, result.height) == expected
    reference = upright.resize(expected, Image.Resampling.LANCZOS)
    assert mean_difference(reopen(result, output_format), reference) < 10


@pytest.mark.parametrize("progressive", [False, True])
def test_the_scan_size_check_never_hides_a_smaller_original(progressive: bool) -> None:
    """The shortcut that spares stripping a big original never hides a smaller one."""
    buffer = io.BytesIO()
    photo = Image.open(io.BytesIO(images.make_jpeg(640, 480, "photo", 92)))
    exif = Image.Exif()
    exif[0x010E] = "a long description " * 200  # metadata worth removing
    photo.save(buffer, "JPEG", quality=92, progressive=progressive, exif=exif.tobytes())
    data = buffer.getvalue()
    stripped = output_module.strip_jpeg_metadata(data)
    assert stripped is not None and len(stripped) < len(data) - 3000
    scan = len(data) - data.index(b"\xff\xda")  # the last marker is its end: no trailer here
    assert len(stripped) - 2000 < scan <= len(stripped)  # the headers are all that is left
    assert output_module.jpeg_scan_exceeds(data, scan - 1)
    assert not output_module.jpeg_scan_exceeds(data, scan)
    assert not output_module.jpeg_scan_exceeds(data, len(stripped))


def _adobe(transform: int) -> bytes:
    """An APP14 "Adobe" payload (version 100, no flags) with this colour transform."""
    return b"Adobe\x00\x64\x00\x00\x00\x00" + bytes((transform,))


def test_a_redundant_adobe_segment_goes_and_the_pixels_stay() -> None:
    """Transform 1 on a three-component frame is YCbCr, what decoders assume anyway."""
    data = images.jpeg_with_segments(images.make_jpeg(64, 48, "photo", 92), [(0xEE, _adobe(1))])
    stripped = strip_jpeg_metadata(data)
    assert stripped is not None
    assert 0xEE not in images.jpeg_markers(stripped)
    assert decoded(stripped).tobytes() == decoded(data).tobytes()


def test_an_adobe_segment_that_changes_the_colours_is_kept() -> None:
    """Transform 0 says the three components are RGB, not YCbCr: dropping it would tint them."""
    data = images.jpeg_with_segments(images.make_jpeg(64, 48, "photo", 92), [(0xEE, _adobe(0))])
    stripped = strip_jpeg_metadata(data)
    assert stripped is not None
    assert 0xEE in images.jpeg_markers(stripped)
    assert decoded(stripped).tobytes() == decoded(data).tobytes()


def test_a_cmyk_jpeg_keeps_its_adobe_segment() -> None:
    stripped = strip_jpeg_metadata(images.make_cmyk_jpeg())
    assert stripped is not None
    assert 0xEE in images.jpeg_markers(stripped)
