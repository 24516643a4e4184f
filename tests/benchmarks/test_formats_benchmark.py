"""The formats benchmark on a tiny corpus: every row measured, with sane figures, in seconds.

The benchmark itself is run by hand (``python -m benchmarks.formats``); these tests keep its
measuring parts honest: each format's outputs are real files of that format, the resize rows
really decode at two sizes, and the table holds the three formats and both resize rows.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import formats
from benchmarks.corpus import Corpus, CorpusItem
from tests.images import encode, photo

RESIZE_WIDTH = 300


def _tiny_corpus(folder: Path) -> Corpus:
    """A wide JPEG (scaled by 1/2 when drafted), a progressive one and an RGBA cut-out."""
    cutout = photo(160, 120).convert("RGBA")
    cutout.putalpha(Image.radial_gradient("L").resize(cutout.size))
    files = [
        ("0000_jpeg.jpg", "jpeg", encode(photo(800, 600), "JPEG", quality=92), 92),
        (
            "0001_jpeg-progressive.jpg",
            "jpeg-progressive",
            encode(photo(640, 640), "JPEG", quality=90, progressive=True),
            90,
        ),
        ("0002_png-rgba.png", "png-rgba", encode(cutout, "PNG"), 0),
    ]
    items = []
    for name, kind, body, quality in files:
        (folder / name).write_bytes(body)
        with Image.open(io.BytesIO(body)) as im:
            items.append(CorpusItem(name, kind, im.width, im.height, len(body), quality))
    return Corpus(folder, "test photos", tuple(items))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One benchmark run on the tiny corpus, like --quick but shorter."""
    corpus = _tiny_corpus(tmp_path_factory.mktemp("corpus"))
    plan = formats.Plan(
        images=3,
        min_run_s=0.0,
        repetitions=2,
        ssim_images=0,
        resize_width=RESIZE_WIDTH,
        quiet_wait_s=0.0,
    )
    work_dir = tmp_path_factory.mktemp("work")
    figures = formats.run_benchmark(corpus, plan, str(work_dir))
    assert list(work_dir.iterdir()) == []  # every run's outputs were removed
    return figures


def _rows(results: dict[str, object]) -> dict[str, dict[str, object]]:
    rows = results["rows"]
    assert isinstance(rows, list)
    return {row["label"]: row for row in rows}


def test_each_format_row_has_sane_figures(results: dict[str, object]) -> None:
    rows = _rows(results)
    for label, name in (("JPEG", "jpeg"), ("WebP", "webp"), ("AVIF", "avif")):
        row = rows[label]
        assert row["output"]["format"] == name
        assert row["output"]["quality"] == 50
        assert row["images"] == 3
        assert row["output_sizes"] == [(800, 600), (640, 640), (160, 120)]
        assert 0 < row["output_bytes"] < row["input_bytes"]
        assert len(row["runs"]) == 2
        for run in row["runs"]:
            assert run["images"] == 3
            assert run["wall_s"] > 0
            assert run["cpu_s"] > 0
            assert 0.0 <= run["foreign_load"] <= 1.0
        assert len(row["ssim"]) == 3
        assert all(0.5 < value <= 1.0 for value in row["ssim"])


def test_resize_rows_take_only_the_wide_jpegs(results: dict[str, object]) -> None:
    rows = _rows(results)
    for label in (formats.SCALED, formats.FULL_SIZE):
        row = rows[label]
        assert row["names"] == ["0000_jpeg.jpg", "0001_jpeg-progressive.jpg"]
        assert row["output"]["max_width"] == RESIZE_WIDTH
        assert row["output_sizes"] == [(300, 225), (300, 300)]
        assert all(0.5 < value <= 1.0 for value in row["ssim"])
        assert all(run["images"] == 2 for run in row["runs"])
    assert rows[formats.SCALED]["scaled_decoding"] is True
    assert rows[formats.FULL_SIZE]["scaled_decoding"] is False


def test_full_size_decoding_switches_draft_off_only_inside() -> None:
    body = encode(photo(800, 600), "JPEG")
    with formats.full_size_decoding(), Image.open(io.BytesIO(body)) as im:
        assert im.draft("RGB", (300, 225)) is None
        im.load()
        assert im.size == (800, 600)
    with Image.open(io.BytesIO(body)) as im:
        assert im.draft("RGB", (300, 225)) is not None
        im.load()
        assert im.size == (400, 300)


def test_the_table_lists_every_row_and_the_load(results: dict[str, object]) -> None:
    # Through JSON, as --json keeps the figures.
    table = formats.format_table(json.loads(json.dumps(results)))
    lines = table.splitlines()
    assert "load average (1 min)" in lines[0]
    for start in ("| JPEG q50 |", "| WebP q50 |", "| AVIF q50 |"):
        (line,) = [line for line in lines if line.startswith(start)]
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        low, median, high = (float(value) for value in cells[1].split(" / "))
        assert 0 < low <= median <= high
        assert float(cells[2]) >= 0
        assert cells[4].endswith("%") and 0 < int(cells[4][:-1]) < 100
        assert 0.5 < float(cells[5].split()[0]) <= 1.0
    assert any(line.startswith(f"| {formats.SCALED} (`draft`") for line in lines)
    assert any(line.startswith(f"| {formats.FULL_SIZE} |") for line in lines)
    assert "| `--max-width 300`, 2 JPEG sources wider than 300 px" in table


def test_runs_are_whole_passes_lasting_the_minimum_with_a_margin() -> None:
    assert formats._passes_for(15.0, 4.0) == 5  # 16.5 s wanted
    assert formats._passes_for(15.0, 60.0) == 1
    assert formats._passes_for(0.0, 0.0) == 1


def test_this_environment_has_what_the_benchmark_needs() -> None:
    assert formats.missing_requirement() is None
