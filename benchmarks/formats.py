"""The output formats benchmark (issue 13): speed, size and quality of JPEG, WebP and AVIF.

Usage::

    python -m benchmarks.formats                 # full: the 200-image corpus, >= 15 s a run
    python -m benchmarks.formats --quick         # 20 images, >= 3 s a run
    python -m benchmarks.formats --json out.json # also keep the raw figures

Each row runs imgdesk's own ``compress_image`` with one output setting over the photo corpus
of :mod:`benchmarks.corpus`, as many threads as cores, each output into a new real file (how
Pillow encodes without the GIL), the way the engine's workers do minus the download and the
database. Rows:

- JPEG, WebP and AVIF at their defaults (``OutputSettings(format=...)``) on the whole corpus;
- ``--max-width 1200`` on the JPEG sources wider than that, once with Pillow's scaled JPEG
  decoding (``draft``, imgdesk's way) and once decoding at full size: the same
  ``compress_image`` with ``JpegImageFile.draft`` switched off for the run.

A row's first pass over its images writes the outputs the quality figures are computed from
and times how many passes a measured run needs to last ``min_run_s``; then the rows take
turns, one run each per repetition. Runs are in this process, so CPU time is its threads'
only; other processes' load is measured with :mod:`benchmarks.runner`'s helpers, a disturbed
run is redone once, and the table marks what stayed disturbed.

Quality is SSIM (scikit-image's ``structural_similarity``) of the luma channel, output
against the source: both flattened onto white (what a shop page shows), the source decoded
at full size and, for a resized output, scaled to the output's size with LANCZOS.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import PIL
from PIL import Image, ImageOps, JpegImagePlugin

from benchmarks.corpus import Corpus, ensure_corpus
from benchmarks.runner import DISTURBED, _foreign_load, _Usage, least_disturbed, wait_for_quiet
from imgdesk.core.compress import Compressed, compress_image
from imgdesk.core.errors import SettingsError
from imgdesk.core.output import AVIF_SPEED, ENCODERS, WEBP_METHOD, OutputSettings, encoder_for
from imgdesk.core.settings import Settings

FORMATS = ("jpeg", "webp", "avif")
RESIZE_WIDTH = 1200
SCALED = "scaled decoding"
FULL_SIZE = "full-size decoding"
_TRIES = 2  # a disturbed run is redone once, and the less disturbed one kept
_CALIBRATION_MARGIN = 1.1  # the calibration pass includes warm-up: aim 10 % over the minimum


@dataclass(frozen=True)
class Plan:
    """How much work one benchmark run does.

    Attributes:
        images: corpus images (the photo corpus's first ``images``).
        min_run_s: each measured run repeats whole passes over its images to last this long.
        repetitions: measured runs per row (min / median / max of images/s).
        ssim_images: images of each row whose SSIM is computed (0: all of them).
        resize_width: the ``max_width`` of the resize rows.
        quiet_wait_s: before each run, wait up to this long for other processes to go quiet.
    """

    images: int
    min_run_s: float
    repetitions: int
    ssim_images: int
    resize_width: int = RESIZE_WIDTH
    quiet_wait_s: float = 10.0


FULL = Plan(images=200, min_run_s=15.0, repetitions=3, ssim_images=40)
QUICK = Plan(images=20, min_run_s=3.0, repetitions=3, ssim_images=0, quiet_wait_s=3.0)


@dataclass
class Row:
    """One line of a table: an output setting, the images it runs on and what was measured."""

    label: str
    output: OutputSettings
    names: list[str]
    scaled_decoding: bool = True
    passes: int = 1
    input_bytes: int = 0
    output_bytes: int = 0
    kept_original: int = 0
    output_sizes: list[tuple[int, int]] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    calibration_s: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)


def plan_rows(corpus: Corpus, resize_width: int) -> list[Row]:
    """The three format rows on the whole corpus, then the two resize rows."""
    names = [item.name for item in corpus.items]
    rows = [Row(ENCODERS[name].label, OutputSettings(format=name), list(names)) for name in FORMATS]
    wide_jpegs = [
        item.name
        for item in corpus.items
        if item.kind.startswith("jpeg") and item.width > resize_width
    ]
    resized = OutputSettings(max_width=resize_width)
    rows.append(Row(SCALED, resized, list(wide_jpegs), scaled_decoding=True))
    rows.append(Row(FULL_SIZE, resized, list(wide_jpegs), scaled_decoding=False))
    return rows


@contextmanager
def full_size_decoding() -> Iterator[None]:
    """Switch Pillow's scaled JPEG decoding off: every JPEG is decoded at its full size.

    imgdesk has no setting for it, so ``JpegImageFile.draft`` answers "no scaling" (None) as
    it does for a JPEG it cannot scale; ``compress_image`` then resizes from the full-size
    picture with the same filter. For this process, while the block runs.
    """

    def no_draft(
        self: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None
    ) -> None:
        return None

    original = JpegImagePlugin.JpegImageFile.draft
    JpegImagePlugin.JpegImageFile.draft = no_draft  # type: ignore[method-assign]
    try:
        yield
    finally:
        JpegImagePlugin.JpegImageFile.draft = original  # type: ignore[method-assign]


@contextmanager
def _decoding(row: Row) -> Iterator[None]:
    if row.scaled_decoding:
        yield
    else:
        with full_size_decoding():
            yield


def _compress_into_files(
    bodies: list[bytes], folder: Path, output: OutputSettings
) -> list[Compressed]:
    """``compress_image`` on every body, as many threads as cores, each into a new file."""
    settings = Settings()

    def compress(index: int) -> Compressed:
        with open(folder / f"{index:06d}{output.extension}", "xb") as handle:
            return compress_image(bodies[index], settings, handle, output)

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        return list(pool.map(compress, range(len(bodies))))


def _timed_pass(
    row: Row, bodies: list[bytes], work_dir: str | None
) -> tuple[dict[str, Any], Path, list[Compressed]]:
    """One timed run over ``bodies``; its figures, its output folder (the caller removes it)."""
    folder = Path(tempfile.mkdtemp(prefix="imgdesk-bench-formats-", dir=work_dir))
    with _decoding(row):
        before = _Usage.now()
        results = _compress_into_files(bodies, folder, row.output)
        after = _Usage.now()
    foreign, cpu = _foreign_load(before, after)
    figures = {
        "images": len(bodies),
        "wall_s": after.at - before.at,
        "cpu_s": cpu,
        "foreign_load": foreign,
    }
    return figures, folder, results


def calibrate(
    row: Row,
    files: dict[str, bytes],
    plan: Plan,
    work_dir: str | None,
    progress: Callable[[str], None],
) -> None:
    """The row's first pass: sizes and SSIM from its outputs, and the passes a run needs."""
    bodies = [files[name] for name in row.names]
    _wait_for_quiet(plan)
    figures, folder, results = _timed_pass(row, bodies, work_dir)
    try:
        row.calibration_s = figures["wall_s"]
        row.passes = _passes_for(plan.min_run_s, figures["wall_s"])
        row.input_bytes = sum(len(body) for body in bodies)
        row.output_bytes = sum(result.size for result in results)
        row.kept_original = sum(result.kept_original for result in results)
        row.output_sizes = [(result.width, result.height) for result in results]
        count = plan.ssim_images or len(bodies)
        outputs = sorted(folder.iterdir())[:count]  # named by index: in the bodies' order
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            row.ssim = list(
                pool.map(lambda body, path: luma_ssim(body, path.read_bytes()), bodies, outputs)
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    progress(
        f"{row.label}: one pass {figures['wall_s']:.1f} s (others "
        f"{figures['foreign_load']:.0%}), {row.passes} pass(es) a run; "
        f"SSIM {statistics.fmean(row.ssim):.4f} over {len(row.ssim)} images"
    )


def measure_row(
    row: Row, files: dict[str, bytes], plan: Plan, work_dir: str | None
) -> dict[str, Any]:
    """One measured run of ``row``: whole passes, redone once when others disturbed it.

    A run shorter than ``plan.min_run_s`` (the row was calibrated while the machine was
    busier) makes the row's runs longer from then on, and is measured again.
    """

    def once() -> dict[str, Any]:
        _wait_for_quiet(plan)
        bodies = [files[name] for name in row.names] * row.passes
        figures, folder, _results = _timed_pass(row, bodies, work_dir)
        shutil.rmtree(folder, ignore_errors=True)
        figures["passes"] = row.passes
        return figures

    figures = least_disturbed(once, _TRIES)
    if figures["wall_s"] < plan.min_run_s:
        row.passes = _passes_for(plan.min_run_s, figures["wall_s"] / row.passes)
        figures = least_disturbed(once, _TRIES)
    row.runs.append(figures)
    return figures


def _passes_for(min_run_s: float, pass_s: float) -> int:
    """Whole passes of ``pass_s`` seconds that last ``min_run_s``, with a margin."""
    return max(1, math.ceil(min_run_s * _CALIBRATION_MARGIN / max(pass_s, 1e-9)))


def _wait_for_quiet(plan: Plan) -> None:
    if plan.quiet_wait_s > 0:
        wait_for_quiet(plan.quiet_wait_s)


def luma_ssim(source: bytes, output: bytes) -> float:
    """SSIM of the output's luma against the source's, at the output's size.

    Both are flattened onto white, as a page shows them; the source is decoded at full size
    (upright) and, if the output is smaller, scaled to its size with LANCZOS.
    """
    # Imported here: scikit-image (with numpy and scipy) is a benchmark extra, not a test one.
    import numpy as np
    from skimage.metrics import structural_similarity

    with Image.open(io.BytesIO(output)) as im:
        encoded = _on_white(im)
    with Image.open(io.BytesIO(source)) as im:
        reference = _on_white(ImageOps.exif_transpose(im))
    if reference.size != encoded.size:
        reference = reference.resize(encoded.size, Image.Resampling.LANCZOS)
    return float(
        structural_similarity(  # type: ignore[no-untyped-call]
            np.asarray(reference.convert("L")), np.asarray(encoded.convert("L")), data_range=255
        )
    )


def _on_white(im: Image.Image) -> Image.Image:
    """``im`` as RGB, its transparency put onto white."""
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def machine_load() -> dict[str, float]:
    """The load averages over 1, 5 and 15 minutes (0 where the system does not tell)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        one = five = fifteen = 0.0
    return {"1min": one, "5min": five, "15min": fifteen}


def run_benchmark(
    corpus: Corpus,
    plan: Plan,
    work_dir: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Every row calibrated, then ``plan.repetitions`` rounds of one run per row; the figures."""
    load_before = machine_load()
    rows = plan_rows(corpus, plan.resize_width)
    files = corpus.load()  # every run reads its inputs from memory, as the engine's workers do
    for row in rows:
        calibrate(row, files, plan, work_dir, progress)
    for repetition in range(1, plan.repetitions + 1):
        # Rows take turns, so a burst of someone else's work spreads over several rows.
        for row in rows:
            figures = measure_row(row, files, plan, work_dir)
            progress(
                f"repetition {repetition}, {row.label}: {_rate(figures):.2f} img/s "
                f"({figures['wall_s']:.1f} s, others {figures['foreign_load']:.0%})"
            )
    return {
        "plan": asdict(plan),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "pillow": PIL.__version__,
            "load_before": load_before,
            "load_after": machine_load(),
        },
        "corpus": {
            "source": corpus.source,
            "images": len(corpus.items),
            "mb": sum(item.size for item in corpus.items) / 1e6,
        },
        "rows": [_row_figures(row) for row in rows],
    }


def _row_figures(row: Row) -> dict[str, Any]:
    figures = asdict(row)
    figures["output"] = row.output.to_dict()
    figures["images"] = len(row.names)
    return figures


def _rate(run: dict[str, Any]) -> float:
    return float(run["images"]) / float(run["wall_s"])


def _spread(values: list[float], form: str) -> str:
    return " / ".join(
        format(value, form) for value in (min(values), statistics.median(values), max(values))
    )


def _others(runs: list[dict[str, Any]]) -> str:
    """Other processes' median load, and how many runs stayed disturbed even when redone."""
    median = statistics.median(run["foreign_load"] for run in runs)
    disturbed = sum(1 for run in runs if run["foreign_load"] > DISTURBED)
    return f"{median:.0%}" + (f" ({disturbed} of {len(runs)} disturbed)" if disturbed else "")


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


def _ssim(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f} ({min(values):.3f})"


def format_table(results: dict[str, Any]) -> str:
    """The README-ready markdown: the formats table, the resize table and how they were made."""
    rows: list[dict[str, Any]] = results["rows"]
    formats = [row for row in rows if row["label"] not in (SCALED, FULL_SIZE)]
    resize = [row for row in rows if row["label"] in (SCALED, FULL_SIZE)]
    machine, corpus, plan = results["machine"], results["corpus"], results["plan"]
    load = " → ".join(f"{machine[key]['1min']:.2f}" for key in ("load_before", "load_after"))
    lines = [
        f"{machine['cores']} cores, Python {machine['python']}, Pillow {machine['pillow']}; "
        f"load average (1 min) {load} over the benchmark; corpus: {corpus['images']} images "
        f"({corpus['source']}), {corpus['mb']:.0f} MB.",
        "",
        "| output (default settings) | images/s (min / median / max) | CPU ms per image "
        "| input → output | saved | SSIM mean (min) | others |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in formats:
        output = OutputSettings.from_dict(row["output"])
        saved = 1 - row["output_bytes"] / row["input_bytes"]
        kept = f", {row['kept_original']} kept as they were" if row["kept_original"] else ""
        rates = [_rate(run) for run in row["runs"]]
        lines.append(
            f"| {row['label']} q{output.quality} | {_spread(rates, '.2f')} "
            f"| {_cpu_ms(row):.0f} | {_megabytes(row['input_bytes'])} → "
            f"{_megabytes(row['output_bytes'])}{kept} | {saved:.0%} | {_ssim(row['ssim'])} "
            f"| {_others(row['runs'])} |"
        )
    if resize:
        width = plan["resize_width"]
        lines += [
            "",
            f"| `--max-width {width}`, {resize[0]['images']} JPEG sources wider than {width} px, "
            "JPEG q50 out | images/s (min / median / max) | CPU ms per image | output bytes "
            "| SSIM mean (min) | others |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for row in resize:
            label = row["label"] + (" (`draft`, imgdesk's way)" if row["scaled_decoding"] else "")
            lines.append(
                f"| {label} | {_spread([_rate(r) for r in row['runs']], '.2f')} "
                f"| {_cpu_ms(row):.0f} | {_megabytes(row['output_bytes'])} "
                f"| {_ssim(row['ssim'])} | {_others(row['runs'])} |"
            )
    ssim_counts = f"{len(formats[0]['ssim'])} images of each format row" + (
        f" and {len(resize[0]['ssim'])} of each resize row" if resize else ""
    )
    lines += [
        "",
        f"Each run: `compress_image` with {machine['cores']} threads, each output into a new "
        f"file; whole passes over the row's images to last at least {plan['min_run_s']:.0f} s; "
        f"{plan['repetitions']} repetitions, rows taking turns. CPU = all threads of the "
        "measuring process over the run. SSIM: scikit-image's `structural_similarity` of the "
        "luma, against the source flattened onto white (resized: decoded at full size and "
        f"scaled with LANCZOS), over the first {ssim_counts}. WebP method {WEBP_METHOD}, "
        f"AVIF speed {AVIF_SPEED}. 'others' = "
        "CPU other processes used during the run, in % of all cores (a run over "
        f"{DISTURBED:.0%} is redone once, the less disturbed kept).",
    ]
    short = [
        f"{row['label']} {run['wall_s']:.1f} s"
        for row in rows
        for run in row["runs"]
        if run["wall_s"] < plan["min_run_s"]
    ]
    if short:
        lines.append(f"Shorter than {plan['min_run_s']:.0f} s: {', '.join(short)}.")
    return "\n".join(lines)


def _cpu_ms(row: dict[str, Any]) -> float:
    return float(statistics.median(run["cpu_s"] / run["images"] * 1000 for run in row["runs"]))


def missing_requirement() -> str | None:
    """Why the benchmark cannot run here (no AVIF in Pillow, no scikit-image), or None."""
    try:
        for name in FORMATS:
            encoder_for(name)
    except SettingsError as error:
        return str(error)
    if importlib.util.find_spec("skimage") is None:
        return "scikit-image is missing: pip install -r benchmarks/requirements.txt"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the formats benchmark and print its tables."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.formats", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument("--quick", action="store_true", help="20 images, runs of >= 3 s")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures here")
    parser.add_argument("--images", type=int, help="corpus images (default 200, quick 20)")
    parser.add_argument("--min-run", type=float, metavar="S", help="seconds a run lasts at least")
    parser.add_argument("--repetitions", type=int, help="measured runs per row (default 3)")
    parser.add_argument("--ssim-images", type=int, help="images per row for SSIM (0: all)")
    parser.add_argument("--quiet-wait", type=float, metavar="S", help="wait for a quiet machine")
    parser.add_argument("--work-dir", help="where the output files go (a real disk)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    changes = {
        "images": args.images,
        "min_run_s": args.min_run,
        "repetitions": args.repetitions,
        "ssim_images": args.ssim_images,
        "quiet_wait_s": args.quiet_wait,
    }
    plan = Plan(**{**asdict(plan), **{k: v for k, v in changes.items() if v is not None}})
    problem = missing_requirement()
    if problem:
        print(f"benchmark stopped, nothing measured: {problem}", file=sys.stderr)
        return 1
    _progress(f"load average before: {machine_load()['1min']:.2f} (1 min)")
    corpus = ensure_corpus(plan.images)
    results = run_benchmark(corpus, plan, args.work_dir, _progress)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(format_table(results))
    return 0


def _progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
