"""The demo's product list (products.toml) and what generate.py made from it agree.

generate.py is a script beside the demo files, not a module of the package, so it is loaded
from its path. The pictures are not redrawn here (5 s of CPU); the committed ones are checked
against the list: every shot is a file of its size and kind, every file is a shot, and the
committed catalogue.csv is what the generator writes for the list.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

import imgdesk

DEMO = Path(imgdesk.__file__).resolve().parent / "resources" / "demo"


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_generate", DEMO / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_the_committed_catalogue_is_what_the_generator_writes_for_the_list(
    generate: ModuleType,
) -> None:
    products = generate.load_products(DEMO / "products.toml")
    expected = [generate.HEADER] + [
        generate.catalogue_row(serial, product) for serial, product in enumerate(products, 1)
    ]
    with (DEMO / "catalogue.csv").open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == expected


def test_every_shot_of_the_list_is_a_committed_picture_of_its_size_and_kind(
    generate: ModuleType,
) -> None:
    products = generate.load_products(DEMO / "products.toml")
    shots = [shot for product in products for shot in product.shots]
    assert {path.name for path in (DEMO / "images").iterdir()} == {shot.file for shot in shots}
    for shot in shots:
        assert shot.view in ("front", "mirrored", "far"), shot.file
        with Image.open(DEMO / "images" / shot.file) as picture:
            assert picture.size == (shot.width, shot.height), shot.file
            assert (picture.format, picture.mode) == (
                ("PNG", "RGBA") if shot.cutout else ("JPEG", "RGB")
            ), shot.file


def test_each_product_has_a_drawing_and_between_one_and_three_pictures(
    generate: ModuleType,
) -> None:
    products = generate.load_products(DEMO / "products.toml")  # a background it names, too
    assert len(products) == 20
    for product in products:
        assert product.shape in generate.SHAPES, product.name
        assert 1 <= len(product.shots) <= 3, product.name
