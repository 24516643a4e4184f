"""Generate the demo catalogue: product-like pictures and the CSV template that lists them.

The pictures are drawn, not photographed, so they carry no rights and no personal data,
and rerunning this script gives byte-identical files (all randomness is seeded). They look
enough like catalogue shots (a product on a soft, slightly noisy studio background, JPEG at
quality 90) that compressing them to quality 50 shows realistic savings. A few PNGs are
cut-outs on a transparent background, as shops upload them.

Run from anywhere: ``python imgdesk/resources/demo/generate.py``. It reads the products from
``products.toml`` and rewrites ``images/`` and ``catalogue.csv``, all next to itself.
"""

from __future__ import annotations

import csv
import random
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"
CATALOGUE = HERE / "catalogue.csv"
PRODUCTS_FILE = HERE / "products.toml"
HEADER = ["S. No.", "Product Name", "Input Image Urls", "Price", "Category"]

Color = tuple[int, int, int]
Point = tuple[float, float]
# Maps a point of the unit square (the product's design space) to canvas pixels.
Mapper = Callable[[float, float], Point]


@dataclass(frozen=True)
class Layers:
    """Where a shape draws: body in the product colour, accent in a second one, ink darkens."""

    body: ImageDraw.ImageDraw
    accent: ImageDraw.ImageDraw
    ink: ImageDraw.ImageDraw
    p: Mapper
    scale: float  # pixels per unit, for line widths


def _poly(draw: ImageDraw.ImageDraw, p: Mapper, points: list[Point], fill: int = 255) -> None:
    draw.polygon([p(x, y) for x, y in points], fill=fill)


def _box(p: Mapper, x0: float, y0: float, x1: float, y1: float) -> list[float]:
    # A mirrored mapper swaps left and right; Pillow wants x0 <= x1.
    (ax, ay), (bx, by) = p(x0, y0), p(x1, y1)
    return [min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)]


def tshirt(lay: Layers) -> None:
    """A crew-neck t-shirt, front view."""
    _poly(
        lay.body,
        lay.p,
        [
            (0.40, 0.20),
            (0.27, 0.24),
            (0.13, 0.38),
            (0.22, 0.48),
            (0.30, 0.42),
            (0.31, 0.82),
            (0.69, 0.82),
            (0.70, 0.42),
            (0.78, 0.48),
            (0.87, 0.38),
            (0.73, 0.24),
            (0.60, 0.20),
        ],
    )
    lay.body.ellipse(_box(lay.p, 0.41, 0.13, 0.59, 0.28), fill=0)
    width = max(2, round(0.012 * lay.scale))
    lay.ink.arc(_box(lay.p, 0.41, 0.13, 0.59, 0.28), 0, 180, fill=90, width=width)
    lay.ink.line([lay.p(0.30, 0.42), lay.p(0.27, 0.25)], fill=40, width=width)
    lay.ink.line([lay.p(0.70, 0.42), lay.p(0.73, 0.25)], fill=40, width=width)


def mug(lay: Layers) -> None:
    """A coffee mug with a handle."""
    lay.body.ellipse(_box(lay.p, 0.54, 0.38, 0.80, 0.68), fill=255)
    lay.body.ellipse(_box(lay.p, 0.60, 0.45, 0.73, 0.61), fill=0)
    radius = round(0.05 * lay.scale)
    lay.body.rounded_rectangle(_box(lay.p, 0.26, 0.28, 0.64, 0.80), radius=radius, fill=255)
    lay.accent.ellipse(_box(lay.p, 0.26, 0.25, 0.64, 0.32), fill=255)
    lay.ink.ellipse(_box(lay.p, 0.28, 0.26, 0.62, 0.31), fill=120)
    lay.accent.rectangle(_box(lay.p, 0.26, 0.48, 0.64, 0.56), fill=255)


def sneaker(lay: Layers) -> None:
    """A low-top sneaker, side view."""
    _poly(
        lay.body,
        lay.p,
        [
            (0.14, 0.66),
            (0.86, 0.66),
            (0.88, 0.58),
            (0.76, 0.53),
            (0.58, 0.43),
            (0.50, 0.39),
            (0.38, 0.42),
            (0.30, 0.35),
            (0.19, 0.37),
            (0.15, 0.50),
        ],
    )
    _poly(
        lay.accent,
        lay.p,
        [(0.12, 0.64), (0.89, 0.64), (0.90, 0.70), (0.86, 0.74), (0.15, 0.74), (0.12, 0.70)],
    )
    width = max(2, round(0.01 * lay.scale))
    for step in range(4):
        x = 0.40 + step * 0.05
        lay.ink.line([lay.p(x, 0.44 + step * 0.02), lay.p(x + 0.04, 0.50)], fill=150, width=width)
    _poly(lay.accent, lay.p, [(0.55, 0.62), (0.70, 0.50), (0.76, 0.53), (0.62, 0.62)])


def tote(lay: Layers) -> None:
    """A canvas tote bag with two handles."""
    width = round(0.035 * lay.scale)
    lay.body.arc(_box(lay.p, 0.33, 0.16, 0.57, 0.62), 180, 360, fill=255, width=width)
    lay.body.arc(_box(lay.p, 0.43, 0.16, 0.67, 0.62), 180, 360, fill=255, width=width)
    _poly(lay.body, lay.p, [(0.28, 0.40), (0.72, 0.40), (0.76, 0.84), (0.24, 0.84)])
    lay.ink.rectangle(_box(lay.p, 0.28, 0.40, 0.72, 0.43), fill=70)
    lay.accent.ellipse(_box(lay.p, 0.42, 0.54, 0.58, 0.70), fill=255)


def cap(lay: Layers) -> None:
    """A baseball cap, side view."""
    lay.body.chord(_box(lay.p, 0.22, 0.30, 0.70, 0.86), 180, 360, fill=255)
    lay.body.ellipse(_box(lay.p, 0.50, 0.53, 0.90, 0.65), fill=255)
    lay.accent.ellipse(_box(lay.p, 0.43, 0.27, 0.49, 0.32), fill=255)
    width = max(2, round(0.008 * lay.scale))
    lay.ink.arc(_box(lay.p, 0.34, 0.30, 0.58, 0.86), 180, 360, fill=60, width=width)
    lay.ink.line([lay.p(0.22, 0.58), lay.p(0.70, 0.58)], fill=110, width=width * 2)


def bottle(lay: Layers) -> None:
    """An insulated steel water bottle."""
    radius = round(0.06 * lay.scale)
    lay.body.rounded_rectangle(_box(lay.p, 0.39, 0.30, 0.61, 0.86), radius=radius, fill=255)
    lay.body.rectangle(_box(lay.p, 0.45, 0.20, 0.55, 0.32), fill=255)
    lay.accent.rounded_rectangle(
        _box(lay.p, 0.43, 0.12, 0.57, 0.21), radius=round(0.02 * lay.scale), fill=255
    )
    lay.accent.rectangle(_box(lay.p, 0.39, 0.50, 0.61, 0.64), fill=255)
    lay.ink.rectangle(_box(lay.p, 0.43, 0.30, 0.46, 0.84), fill=35)


def watch(lay: Layers) -> None:
    """A wristwatch, face on; the dial is left open so the light background shows through."""
    lay.accent.rounded_rectangle(
        _box(lay.p, 0.43, 0.08, 0.57, 0.92), radius=round(0.03 * lay.scale), fill=255
    )
    lay.body.ellipse(_box(lay.p, 0.32, 0.32, 0.68, 0.68), fill=255)
    for mask in (lay.body, lay.accent):
        mask.ellipse(_box(lay.p, 0.36, 0.36, 0.64, 0.64), fill=0)
    for hour in range(12):
        angle = hour * 30
        lay.ink.pieslice(_box(lay.p, 0.37, 0.37, 0.63, 0.63), angle - 1, angle + 1, fill=160)
    lay.ink.ellipse(_box(lay.p, 0.39, 0.39, 0.61, 0.61), fill=0)
    width = max(2, round(0.012 * lay.scale))
    lay.ink.line([lay.p(0.50, 0.50), lay.p(0.50, 0.40)], fill=230, width=width)
    lay.ink.line([lay.p(0.50, 0.50), lay.p(0.58, 0.54)], fill=230, width=width)


def lamp(lay: Layers) -> None:
    """A desk lamp with a conical shade."""
    _poly(lay.body, lay.p, [(0.37, 0.16), (0.63, 0.16), (0.76, 0.42), (0.24, 0.42)])
    lay.accent.rectangle(_box(lay.p, 0.485, 0.42, 0.515, 0.78), fill=255)
    lay.accent.ellipse(_box(lay.p, 0.34, 0.74, 0.66, 0.84), fill=255)
    lay.ink.rectangle(_box(lay.p, 0.24, 0.40, 0.76, 0.42), fill=60)


SHAPES: dict[str, Callable[[Layers], None]] = {
    "tshirt": tshirt,
    "mug": mug,
    "sneaker": sneaker,
    "tote": tote,
    "cap": cap,
    "bottle": bottle,
    "watch": watch,
    "lamp": lamp,
}


@dataclass(frozen=True)
class Shot:
    """One picture of a product."""

    file: str
    width: int
    height: int
    view: str = "front"  # or "mirrored" (flipped and closer), or "far" (on a warmer background)
    cutout: bool = False  # a PNG on a transparent background


@dataclass(frozen=True)
class Product:
    """One catalogue row and its pictures."""

    name: str
    category: str
    price: str
    shape: str
    color: Color
    accent: Color
    background: tuple[Color, Color]
    shots: tuple[Shot, ...]
    # Extra URL paths with no picture behind them, to show failures in the demo.
    broken: tuple[str, ...] = ()


# The studio backgrounds products.toml names: the gradient's top and bottom colours.
BACKGROUNDS: dict[str, tuple[Color, Color]] = {
    "cool": ((236, 240, 245), (205, 213, 224)),
    "warm": ((246, 240, 232), (222, 209, 193)),
    "mint": ((235, 245, 240), (200, 222, 212)),
    "rose": ((247, 237, 239), (226, 203, 208)),
}


def _color(rgb: list[int]) -> Color:
    red, green, blue = rgb
    return (red, green, blue)


def load_products(path: Path) -> tuple[Product, ...]:
    """The products listed in ``path`` (products.toml): the catalogue is data, kept apart."""
    with path.open("rb") as handle:
        entries = tomllib.load(handle)["product"]
    return tuple(
        Product(
            name=entry["name"],
            category=entry["category"],
            price=entry["price"],
            shape=entry["shape"],
            color=_color(entry["color"]),
            accent=_color(entry["accent"]),
            background=BACKGROUNDS[entry["background"]],
            shots=tuple(Shot(**shot) for shot in entry["shots"]),
            broken=tuple(entry.get("broken", ())),
        )
        for entry in entries
    )


# The picture whose URL goes through the demo server's /flaky/ route.
FLAKY = "lamp-mustard-1.jpg"


def _gradient(size: tuple[int, int], top: Color, bottom: Color) -> Image.Image:
    """A vertical gradient from ``top`` to ``bottom``."""
    mask = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def _noise(size: tuple[int, int], amount: int, seed: int) -> Image.Image:
    """Seeded grey noise from 0 to ``2 * amount``, to add around a level (a sensor's grain)."""
    raw = Image.frombytes("L", size, random.Random(seed).randbytes(size[0] * size[1]))
    return raw.point(lambda v: v * (2 * amount) // 255).convert("RGB")


def _shading(size: tuple[int, int]) -> Image.Image:
    """Light from the top left: 1.0 there, about 0.65 at the bottom right."""
    diagonal = Image.linear_gradient("L").rotate(45, expand=True, fillcolor=128)
    diagonal = diagonal.resize(size, Image.Resampling.BILINEAR)
    return diagonal.point(lambda v: 255 - v * 90 // 255)


def render(product: Product, shot: Shot, seed: int) -> Image.Image:
    """Draw one picture: RGB for a photo, RGBA for a cut-out."""
    size = (shot.width, shot.height)
    # Shapes are drawn at twice the size and scaled down, for smooth edges.
    big = (shot.width * 2, shot.height * 2)
    zoom = {"front": 0.9, "mirrored": 1.05, "far": 0.75}[shot.view]
    side = min(big)

    def p(x: float, y: float) -> Point:
        if shot.view == "mirrored":
            x = 1 - x
        return (big[0] / 2 + (x - 0.5) * side * zoom, big[1] / 2 + (y - 0.5) * side * zoom)

    masks = {name: Image.new("L", big, 0) for name in ("body", "accent", "ink")}
    draws = {name: ImageDraw.Draw(mask) for name, mask in masks.items()}
    SHAPES[product.shape](Layers(**draws, p=p, scale=side * zoom))
    body, accent, ink = (m.resize(size, Image.Resampling.LANCZOS) for m in masks.values())
    silhouette = ImageChops.lighter(ImageChops.lighter(body, accent), ink)

    shade = _shading(size)
    color = ImageChops.multiply(Image.new("RGB", size, product.color), shade.convert("RGB"))
    accent_color = ImageChops.multiply(Image.new("RGB", size, product.accent), shade.convert("RGB"))
    product_layer = Image.composite(accent_color, color, accent)
    product_layer = Image.composite(Image.new("RGB", size, (20, 20, 24)), product_layer, ink)

    # A soft contact shadow under the product.
    shadow = Image.new("L", size, 0)
    box = silhouette.getbbox() or (0, 0, shot.width, shot.height)
    spread = (box[2] - box[0]) * 0.08
    ImageDraw.Draw(shadow).ellipse(
        [box[0] + spread, box[3] - spread * 0.6, box[2] - spread, box[3] + spread * 0.6],
        fill=110,
    )
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(4, shot.width // 60)))

    if shot.cutout:
        # Black under the shadow's alpha makes a soft shadow on any page colour.
        alpha = ImageChops.lighter(silhouette, shadow)
        black = Image.new("RGB", size, (0, 0, 0))
        picture = Image.composite(product_layer, black, silhouette).convert("RGBA")
        picture.putalpha(alpha)
        return picture

    top, bottom = product.background
    if shot.view == "far":
        top, bottom = _warmer(top), _warmer(bottom)
    scene = _gradient(size, top, bottom)
    scene = Image.composite(Image.new("RGB", size, (60, 60, 70)), scene, shadow)
    scene = Image.composite(product_layer, scene, silhouette)
    return ImageChops.add(scene, _noise(size, 3, seed), offset=-3)


def _warmer(color: Color) -> Color:
    r, g, b = color
    return (min(255, r + 6), g, max(0, b - 10))


def catalogue_row(serial: int, product: Product) -> list[str]:
    """The product's row of catalogue.csv; the demo puts its server's address for ``{base}``."""
    urls = []
    for shot in product.shots:
        route = "flaky" if shot.file == FLAKY else "images"
        urls.append(f"{{base}}/{route}/{shot.file}")
    urls.extend(f"{{base}}/{path}" for path in product.broken)
    return [str(serial), product.name, ", ".join(urls), product.price, product.category]


def main() -> None:
    """Rewrite every demo picture and the catalogue template."""
    IMAGES.mkdir(exist_ok=True)
    for old in IMAGES.iterdir():
        old.unlink()
    products = load_products(PRODUCTS_FILE)
    seed = 0
    for product in products:
        for shot in product.shots:
            seed += 1
            picture = render(product, shot, seed)
            if shot.cutout:
                picture.save(IMAGES / shot.file, "PNG", optimize=True)
            else:
                picture.save(IMAGES / shot.file, "JPEG", quality=90, optimize=True)
    rows = [catalogue_row(serial, product) for serial, product in enumerate(products, start=1)]
    with CATALOGUE.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    total = sum(path.stat().st_size for path in IMAGES.iterdir())
    count = len(list(IMAGES.iterdir()))
    print(f"{count} pictures, {total / 1e6:.2f} MB, {len(rows)} products -> {CATALOGUE.name}")


if __name__ == "__main__":
    main()
