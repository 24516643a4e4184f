"""The throughput comparison: ``imgdesk process`` end to end against the machine's codec ceiling.

Each repetition is one run of the ceiling, then one run of the real command (and of any
other variant) on the same images, each in a fresh process; one more ceiling run closes the
last repetition. A run is compared with the ceiling as it was at that moment: the rate of
the ceiling runs just before and after it, interpolated to its midpoint. The machine's speed
drifts (the same ceiling run took 33.8 to 37.9 ms of CPU per image within ten minutes), and
a ceiling measured on one side only counts that drift as the engine's. The figure is that
ratio of each repetition (min, median, max). Every run handles the same number of images,
chosen so that a ceiling run lasts at least ``MIN_RUN_S``: shorter runs on a shared 2-core
machine move by tens of percent between repetitions.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

from benchmarks.runner import run_imgdesk_process, run_workload
from benchmarks.server import ImageServer

MIN_RUN_S = 15.0
# Chosen from one calibration run; the margin keeps later runs above MIN_RUN_S when the
# machine gets quieter (faster) than it was then.
_CALIBRATION_MARGIN = 1.1

CEILING = "codec_ceiling"
ENGINE = "imgdesk_process"
PAIR = (CEILING, ENGINE)
# Rows that explain the gap between the two, in the full run.
EXTRAS = ("compress_files", "compress_atomic", "bytesio_limit")
OPTIONAL = ("naive",)
VARIANTS = (*PAIR, *EXTRAS, *OPTIONAL)

LABELS = {
    CEILING: "codec ceiling (decode + encode to files)",
    ENGINE: "imgdesk process, end to end",
    "compress_files": "compress_image into plain files",
    "compress_atomic": "compress_image via atomic_file",
    "bytesio_limit": "GIL-bound: encode into a BytesIO",
    "naive": "naive: 1 thread, requests + Pillow",
}

# Workload and extra parameters of each variant but the real command.
_WORKLOADS: dict[str, tuple[str, dict[str, Any]]] = {
    CEILING: ("codec_ceiling", {}),
    "compress_files": ("core_compress", {"atomic": False}),
    "compress_atomic": ("core_compress", {"atomic": True}),
    "bytesio_limit": ("bytesio_limit", {}),
    "naive": ("naive", {}),
}


def images_per_run(common: dict[str, Any], quiet_wait_s: float) -> tuple[int, dict[str, Any]]:
    """How many images make a ceiling run last ``MIN_RUN_S``: whole passes over the corpus.

    One ceiling run over the corpus measures the rate (and warms the page cache); returns
    the count and that run's figures.
    """
    corpus_size = len(common["names"])
    calibration = run_workload(CEILING, dict(common, count=corpus_size), quiet_wait_s)
    rate = calibration["images"] / calibration["wall_s"]
    passes = max(1, math.ceil(MIN_RUN_S * _CALIBRATION_MARGIN * rate / corpus_size))
    return passes * corpus_size, calibration


def run_variant(
    name: str,
    server: ImageServer,
    common: dict[str, Any],
    settings: dict[str, Any],
    quiet_wait_s: float,
    tries: int,
) -> dict[str, Any]:
    """One run of a variant on ``common["count"]`` images, in a fresh process."""
    if name == ENGINE:
        return run_imgdesk_process(server, dict(common, settings=settings), quiet_wait_s, tries)
    workload, extra = _WORKLOADS[name]
    params = dict(common, **extra)
    if workload == "core_compress":
        params["settings"] = settings
    return run_workload(workload, params, quiet_wait_s, tries)


def measure_throughput(
    server: ImageServer,
    common: dict[str, Any],
    variants: tuple[str, ...],
    repetitions: int,
    settings: dict[str, Any],
    quiet_wait_s: float,
    tries: int,
    progress: Any,
) -> dict[str, list[dict[str, Any]]]:
    """Every variant ``repetitions`` times, each repetition between two ceiling runs.

    Returns the runs of each variant in order (the ceiling has one more); each run holds
    ``midpoint_s``, when it ran.
    """
    others = tuple(name for name in variants if name != CEILING)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in (CEILING, *others)}

    def run(name: str) -> None:
        started = time.monotonic()
        figures = run_variant(name, server, common, settings, quiet_wait_s, tries)
        figures["midpoint_s"] = (started + time.monotonic()) / 2
        runs[name].append(figures)

    run(CEILING)
    for repetition in range(repetitions):
        # Rotate the order so no variant always runs right after the ceiling.
        shift = repetition % max(len(others), 1)
        for name in others[shift:] + others[:shift]:
            run(name)
        run(CEILING)  # closes this repetition, opens the next
        ratio = ratios(runs, ENGINE)[repetition]
        progress(f"repetition {repetition + 1} done: engine / ceiling {ratio:.0%}")
    return runs


def rate(run: dict[str, Any]) -> float:
    """Images per second of one run."""
    return float(run["images"]) / float(run["wall_s"])


def ceiling_rate_at(ceilings: list[dict[str, Any]], moment: float) -> float:
    """The ceiling's rate at ``moment``: between the runs around it, linearly; else the nearest."""
    before = [run for run in ceilings if run["midpoint_s"] <= moment]
    after = [run for run in ceilings if run["midpoint_s"] > moment]
    if not before:
        return rate(after[0])
    if not after:
        return rate(before[-1])
    low, high = before[-1], after[0]
    share = (moment - low["midpoint_s"]) / (high["midpoint_s"] - low["midpoint_s"])
    return rate(low) + share * (rate(high) - rate(low))


def ratios(runs: dict[str, list[dict[str, Any]]], name: str) -> list[float]:
    """Each run of ``name`` over the ceiling's rate when it ran (see :func:`ceiling_rate_at`)."""
    return [rate(run) / ceiling_rate_at(runs[CEILING], run["midpoint_s"]) for run in runs[name]]


def _spread(values: list[float], form: str) -> str:
    """``min / median / max`` of ``values``, each formatted with ``form``."""
    low, middle, high = min(values), statistics.median(values), max(values)
    return " / ".join(format(value, form) for value in (low, middle, high))


def report_lines(results: dict[str, Any]) -> list[str]:
    """The throughput table, the per-repetition ratios and what the engine row covers."""
    runs: dict[str, list[dict[str, Any]]] = results["throughput"]
    count = runs[CEILING][0]["images"]
    corpus_size = results["corpus"]["images"]
    reps = len(runs[ENGINE])
    passes = count // corpus_size
    lines = [
        f"throughput: {count:,} images per run ({passes} pass{'es' if passes != 1 else ''} "
        f"over the corpus, a query string per pass), {reps} repetition{'s' if reps != 1 else ''}"
        " in fresh processes, each between two ceiling runs; min / median / max over the runs",
    ]
    header = (
        f"{'variant':<42}{'images/s':>20}{'of ceiling':>20}{'CPU ms/img':>12}"
        f"{'peak RSS MB':>12}{'wall s':>7}{'others':>8}"
    )
    lines += [header, "-" * len(header)]
    for name, variant in runs.items():
        label = LABELS[name]
        if name == ENGINE and variant[0]["settings"]:
            label += " " + ",".join(f"{k}={v}" for k, v in variant[0]["settings"].items())
        cpu = statistics.median(run["cpu_s"] / run["images"] * 1000 for run in variant)
        shares = [100.0] if name == CEILING else [r * 100 for r in ratios(runs, name)]
        share = _spread(shares, ".0f") + " %"
        lines.append(
            f"{label:<42}{_spread([rate(run) for run in variant], '.1f'):>20}{share:>20}"
            f"{cpu:>12.1f}{statistics.median(run['peak_rss_mb'] for run in variant):>12.0f}"
            f"{statistics.median(run['wall_s'] for run in variant):>7.1f}"
            f"{statistics.median(run['foreign_load'] for run in variant):>8.0%}"
        )
    engine_ratios = ratios(runs, ENGINE)
    lines.append(
        "engine / ceiling per repetition: "
        + ", ".join(f"{ratio:.0%}" for ratio in engine_ratios)
        + f"  (min {min(engine_ratios):.0%}, median {statistics.median(engine_ratios):.0%}, "
        f"max {max(engine_ratios):.0%})"
    )
    short = [run["wall_s"] for run in runs[CEILING] if run["wall_s"] < MIN_RUN_S]
    if short:
        lines.append(
            f"WARNING: {len(short)} ceiling run(s) lasted under {MIN_RUN_S:.0f} s "
            f"({', '.join(f'{s:.1f} s' for s in short)}): pass --images-per-run to do more"
        )
    engine = runs[ENGINE]
    requests = sum(run["image_responses"] for run in engine)
    server_cpu = sum(run["server_cpu_s"] for run in engine)
    lines.append(
        f"imgdesk process is timed from its first image request to the last image response "
        f"the server sent; not counted: start-up to the first request (interpreter, imports, "
        f"CSV, request recorded) {statistics.median(r['startup_s'] for r in engine):.2f} s, "
        f"last response to exit {statistics.median(r['tail_s'] for r in engine):.2f} s; whole "
        f"process {statistics.median(r['process_wall_s'] for r in engine):.1f} s, "
        f"{statistics.median(r['process_cpu_s'] for r in engine):.1f} s CPU. The test server "
        f"(this process, same cores) used {server_cpu / max(requests, 1) * 1000:.2f} ms CPU "
        "per image request."
    )
    thread_shares = [run["thread_cpu_share"] for run in engine if run["thread_cpu_share"]]
    if thread_shares:
        cpu_ms = statistics.median(run["cpu_s"] / run["images"] * 1000 for run in engine)
        lines.append(
            "imgdesk process CPU by thread: "
            + ", ".join(
                f"{group} {statistics.median(share[group] for share in thread_shares) * cpu_ms:.1f}"
                for group in ("workers", "main", "other")
            )
            + " ms/img (workers: Qt's pool threads, download + compress + store; main: event "
            "loop, engine, database writer; other: Python threads such as the log writer)"
        )
    lines.append(
        "('of ceiling' = that run's images/s over the ceiling's, interpolated between the "
        "ceiling runs before and after it to its midpoint; "
        "CPU = all threads of the measuring process over the timed span; 'others' = CPU "
        "other processes used meanwhile, in % of all cores; the ceiling's RSS holds the "
        "whole corpus in memory)"
    )
    return lines
