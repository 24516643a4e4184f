"""Generate the app icon: ``imgdesk.png`` (256 px) and ``imgdesk.ico`` (16 to 256 px).

A picture (sun over mountains) on a blue rounded square, with a download arrow badge: "images,
fetched". Drawn at 4x and scaled down for smooth edges; rerunning gives the same files.

Run from anywhere: ``python imgdesk/resources/generate_icon.py``.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
SIZE = 256
SCALE = 4
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]


def _rounded_mask(size: int, box: tuple[int, int, int, int], radius: int) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).rounded_rectangle(box, radius=radius, fill=255)
    return mask


def render() -> Image.Image:
    """The icon at its full size, RGBA."""
    n = SIZE * SCALE

    def s(value: float) -> int:
        return round(value * SCALE)

    # Tile: a diagonal blue gradient with a little room around it for the drop shadow.
    tile_box = (s(12), s(10), s(244), s(242))
    tile_mask = _rounded_mask(n, tile_box, s(52))
    vertical = Image.linear_gradient("L").resize((n, n))
    gradient = ImageChops.add(vertical, vertical.rotate(90), scale=2)
    tile = Image.composite(
        Image.new("RGB", (n, n), (14, 165, 233)), Image.new("RGB", (n, n), (67, 56, 202)), gradient
    )
    shadow = Image.new("L", (n, n), 0)
    ImageDraw.Draw(shadow).rounded_rectangle((s(14), s(16), s(242), s(248)), radius=s(52), fill=90)
    shadow = shadow.filter(ImageFilter.GaussianBlur(s(5)))
    icon = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    icon.paste((15, 23, 42, 255), mask=shadow)
    icon.paste(tile, mask=tile_mask)

    # The picture: a white frame, a pale sky, a sun and two mountains.
    draw = ImageDraw.Draw(icon)
    frame = (s(48), s(58), s(208), s(178))
    draw.rounded_rectangle(frame, radius=s(16), fill=(255, 255, 255, 255))
    inner = (s(60), s(70), s(196), s(166))
    sky = _rounded_mask(n, inner, s(8))
    icon.paste((224, 242, 254, 255), mask=sky)
    land = Image.new("L", (n, n), 0)
    land_draw = ImageDraw.Draw(land)
    land_draw.polygon([(s(56), s(170)), (s(108), s(102)), (s(160), s(170))], fill=255)
    land_draw.polygon([(s(118), s(170)), (s(154), s(122)), (s(200), s(170))], fill=200)
    land = ImageChops.multiply(land, sky)
    icon.paste((37, 99, 235, 255), mask=land)
    draw.ellipse((s(158), s(80), s(182), s(104)), fill=(251, 191, 36, 255))

    # The badge: a green circle with a white down arrow, bottom right.
    badge = (s(150), s(150), s(226), s(226))
    draw.ellipse(
        (badge[0] - s(5), badge[1] - s(5), badge[2] + s(5), badge[3] + s(5)),
        fill=(255, 255, 255, 255),
    )
    draw.ellipse(badge, fill=(22, 163, 74, 255))
    cx = (badge[0] + badge[2]) // 2
    draw.rectangle((cx - s(7), s(166), cx + s(7), s(192)), fill=(255, 255, 255, 255))
    draw.polygon(
        [(cx - s(20), s(186)), (cx + s(20), s(186)), (cx, s(210))], fill=(255, 255, 255, 255)
    )

    return icon.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def main() -> None:
    """Write the PNG and the Windows icon next to this script."""
    icon = render()
    icon.save(HERE / "imgdesk.png", optimize=True)
    icon.save(HERE / "imgdesk.ico", sizes=ICO_SIZES)
    print("wrote imgdesk.png and imgdesk.ico")


if __name__ == "__main__":
    main()
