"""A deterministic corpus of product-photo-like images, generated once into a cache folder.

Pictures are mosaics of crops of the photographs bundled with scikit-image (astronaut,
coffee, chelsea, ...), scaled to the target size, with a fixed film-grain layer so that large
images carry the detail (and the JPEG entropy) of a real photo rather than an upscaled blur.
Without scikit-image a synthetic photo-like generator stands in (gradients, soft shapes and
grain); the table says which one was used.

The mix repeats every 20 images, so any multiple-of-20 prefix has the same mix; the default
200 images hold 170 JPEGs (20 of them progressive) and 30 PNGs (10 of them RGBA cut-outs),
like a product-photo export from a shop or a DAM:

====================  =====  ==============================================
size                  count  formats
====================  =====  ==============================================
4000 x 3000           3      JPEG
2000 x 2000           4      3 JPEG, 1 progressive JPEG
1200 x 1200           8      5 JPEG, 1 progressive JPEG, 1 PNG RGB, 1 PNG RGBA (a cut-out)
800 x 800             5      4 JPEG, 1 PNG RGB
====================  =====  ==============================================

JPEGs use quality 90, 92 or 95 (95 with 4:4:4 chroma up to 1200 px, as photo editors save
"maximum"); progressive ones are saved the way web "optimised" exports are. Every file stays
under imgdesk's default 10 MiB download limit.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

logger = logging.getLogger(__name__)

# Bump when the pictures change, so cached corpora are regenerated.
CORPUS_VERSION = 4
DEFAULT_FOLDER = Path(__file__).resolve().parent / ".corpus"

# scikit-image's bundled photographs (no download needed); other data files are charts,
# microscopy or text, which are not what a product catalogue holds.
_SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "retina.jpg",
    "rocket.jpg",
)

# (width, height, kind) for each slot of the repeating 20-image pattern.
_PATTERN: tuple[tuple[int, int, str], ...] = (
    (4000, 3000, "jpeg"),
    (1200, 1200, "jpeg"),
    (800, 800, "jpeg"),
    (2000, 2000, "jpeg-progressive"),
    (1200, 1200, "png"),
    (800, 800, "jpeg"),
    (1200, 1200, "jpeg"),
    (1200, 1200, "png-rgba"),
    (2000, 2000, "jpeg"),
    (800, 800, "jpeg"),
    (1200, 1200, "jpeg-progressive"),
    (4000, 3000, "jpeg"),
    (800, 800, "png"),
    (1200, 1200, "jpeg"),
    (2000, 2000, "jpeg"),
    (800, 800, "jpeg"),
    (1200, 1200, "jpeg"),
    (2000, 2000, "jpeg"),
    (4000, 3000, "jpeg"),
    (1200, 1200, "jpeg"),
)
PATTERN_LENGTH = len(_PATTERN)

_GRAIN_SIZE = 512
_GRAIN_STRENGTH = 0.075  # blend factor of the uniform grain: about +-10 grey levels


@dataclass(frozen=True)
class CorpusItem:
    """One generated image file.

    Attributes:
        name: the file name (also the last segment of its URL).
        kind: ``jpeg``, ``jpeg-progressive``, ``png`` or ``png-rgba``.
        width: pixels.
        height: pixels.
        size: file size in bytes.
        quality: the JPEG quality (0 for PNG).
    """

    name: str
    kind: str
    width: int
    height: int
    size: int
    quality: int

    @property
    def megapixels(self) -> float:
        """Pixels in millions."""
        return self.width * self.height / 1e6


@dataclass(frozen=True)
class Corpus:
    """The generated images on disk, in plan order."""

    folder: Path
    source: str
    items: tuple[CorpusItem, ...]

    def load(self) -> dict[str, bytes]:
        """Every file's bytes by name."""
        return {item.name: (self.folder / item.name).read_bytes() for item in self.items}

    def prefix(self, count: int) -> Corpus:
        """The first ``count`` images (same mix when ``count`` is a multiple of 20)."""
        return Corpus(self.folder, self.source, self.items[:count])


def ensure_corpus(count: int, folder: Path = DEFAULT_FOLDER) -> Corpus:
    """The first ``count`` images of the plan, generating the missing ones into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    photos, source = _source_photos()
    manifest_path = folder / "manifest.json"
    known: dict[str, CorpusItem] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("version") == CORPUS_VERSION and manifest.get("source") == source:
            known = {entry["name"]: CorpusItem(**entry) for entry in manifest["items"]}

    def item_for(index: int) -> CorpusItem:
        name = _file_name(index)
        cached = known.get(name)
        path = folder / name
        if cached is not None and path.exists() and path.stat().st_size == cached.size:
            return cached
        return _generate(index, photos, folder)

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        items = tuple(pool.map(item_for, range(count)))
    everything = {**known, **{item.name: item for item in items}}
    manifest_path.write_text(
        json.dumps(
            {
                "version": CORPUS_VERSION,
                "source": source,
                "items": [asdict(everything[name]) for name in sorted(everything)],
            },
            indent=1,
        )
    )
    return Corpus(folder, source, items)


def _file_name(index: int) -> str:
    width, height, kind = _PATTERN[index % PATTERN_LENGTH]
    extension = "png" if kind.startswith("png") else "jpg"
    return f"{index:04d}_{width}x{height}_{kind}.{extension}"


def _generate(index: int, photos: list[Image.Image], folder: Path) -> CorpusItem:
    """Render image ``index`` of the plan and write it; the same index gives the same bytes."""
    width, height, kind = _PATTERN[index % PATTERN_LENGTH]
    rng = random.Random(f"imgdesk-bench-{index}")
    picture = _mosaic(width, height, photos, rng)
    picture = Image.blend(picture, _grain(width, height, rng), _GRAIN_STRENGTH)
    path = folder / _file_name(index)
    quality = 0
    if kind.startswith("jpeg"):
        quality = rng.choice((90, 92, 95))
        # Photo editors save "maximum" quality with full chroma; kept to the smaller sizes so
        # that no 12-megapixel file nears the 10 MiB download limit.
        subsampling = "4:4:4" if quality == 95 and width <= 1200 else "4:2:0"
        progressive = kind == "jpeg-progressive"
        picture.save(
            path,
            "JPEG",
            quality=quality,
            subsampling=subsampling,
            progressive=progressive,
            optimize=progressive,
        )
    elif kind == "png-rgba":
        cutout = Image.new("RGBA", picture.size, (0, 0, 0, 0))
        cutout.paste(picture, mask=_cutout_mask(width, height, rng))
        cutout.save(path, "PNG")
    else:
        picture.save(path, "PNG")
    return CorpusItem(path.name, kind, width, height, path.stat().st_size, quality)


def _mosaic(width: int, height: int, photos: list[Image.Image], rng: random.Random) -> Image.Image:
    """Tiles of random crops of the photos, each scaled to fill its cell."""
    canvas = Image.new("RGB", (width, height))
    columns = max(1, round(width / rng.uniform(700, 1100)))
    rows = max(1, round(height / rng.uniform(700, 1100)))
    for row in range(rows):
        for column in range(columns):
            left, right = width * column // columns, width * (column + 1) // columns
            top, bottom = height * row // rows, height * (row + 1) // rows
            tile_w, tile_h = right - left, bottom - top
            photo = rng.choice(photos)
            # The largest crop of the photo's aspect, then a random 55-100 % of it.
            scale = min(photo.width / tile_w, photo.height / tile_h) * rng.uniform(0.55, 1.0)
            crop_w, crop_h = max(8, int(tile_w * scale)), max(8, int(tile_h * scale))
            x = rng.randint(0, photo.width - crop_w)
            y = rng.randint(0, photo.height - crop_h)
            tile = photo.crop((x, y, x + crop_w, y + crop_h))
            if rng.random() < 0.5:
                tile = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            canvas.paste(tile.resize((tile_w, tile_h), Image.Resampling.BICUBIC), (left, top))
    return canvas


def _grain(width: int, height: int, rng: random.Random) -> Image.Image:
    """A film-grain layer: a fixed random tile repeated from a random offset."""
    tile = Image.frombytes("RGB", (_GRAIN_SIZE, _GRAIN_SIZE), rng.randbytes(_GRAIN_SIZE**2 * 3))
    layer = Image.new("RGB", (width, height))
    offset_x, offset_y = rng.randrange(_GRAIN_SIZE), rng.randrange(_GRAIN_SIZE)
    for y in range(-offset_y, height, _GRAIN_SIZE):
        for x in range(-offset_x, width, _GRAIN_SIZE):
            layer.paste(tile, (x, y))
    return layer


def _cutout_mask(width: int, height: int, rng: random.Random) -> Image.Image:
    """A soft-edged ellipse, like a product cut out of its background."""
    mask = Image.new("L", (width, height), 0)
    margin_x = int(width * rng.uniform(0.05, 0.2))
    margin_y = int(height * rng.uniform(0.05, 0.2))
    ImageDraw.Draw(mask).ellipse((margin_x, margin_y, width - margin_x, height - margin_y), 255)
    return mask.filter(ImageFilter.GaussianBlur(radius=max(2, width // 400)))


def _source_photos() -> tuple[list[Image.Image], str]:
    """scikit-image's bundled photos if the package is installed, else synthetic ones."""
    spec = importlib.util.find_spec("skimage")
    if spec is not None and spec.origin is not None:
        # Read the files directly: importing skimage would pull in scipy for nothing.
        data = Path(spec.origin).parent / "data"
        paths = [data / name for name in _SKIMAGE_PHOTOS if (data / name).exists()]
        if len(paths) >= 3:
            photos = []
            for path in paths:
                with Image.open(path) as im:
                    photos.append(im.convert("RGB"))
            return photos, "scikit-image photos"
    logger.warning("scikit-image is not installed: using synthetic photo-like pictures")
    return [_synthetic_photo(seed) for seed in range(6)], "synthetic"


def _synthetic_photo(seed: int) -> Image.Image:
    """A 640 x 480 photo-like picture: a lit gradient backdrop and soft overlapping shapes."""
    rng = random.Random(f"imgdesk-synthetic-{seed}")
    size = (640, 480)
    bands = [
        Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270))).resize(size)
        for _ in range(3)
    ]
    picture = Image.merge("RGB", bands)
    draw = ImageDraw.Draw(picture)
    for _ in range(14):
        x, y = rng.randrange(640), rng.randrange(480)
        radius = rng.randrange(20, 160)
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        box = (x - radius, y - radius, x + radius, y + radius)
        if rng.random() < 0.5:
            draw.ellipse(box, color)
        else:
            draw.rectangle(box, color)
    return picture.filter(ImageFilter.GaussianBlur(radius=3))
