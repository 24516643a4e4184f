"""Run the imgdesk benchmark suite and print its figures against the issue 5 targets.

Usage::

    python -m benchmarks.run                    # full, ~15 min
    python -m benchmarks.run --quick            # ~6 min
    python -m benchmarks.run --throughput-only  # ~3-4 min: imgdesk process vs the ceiling
    python -m benchmarks.run --profile-engine profile.txt   # one profiled imgdesk process

It measures; it does not gate: the exit status is 0 whatever the figures (1 when a run
failed, with why). Every variant runs in its own subprocess (see :mod:`benchmarks.workloads`
and :mod:`benchmarks.runner`), so CPU time and peak RSS are its own; the throughput variants
alternate (see :mod:`benchmarks.throughput`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import throughput
from benchmarks.corpus import PATTERN_LENGTH, Corpus, ensure_corpus
from benchmarks.profile import summarise
from benchmarks.runner import run_imgdesk_process, run_workload
from benchmarks.server import ImageServer

# The core stages of the scale workload, timed one by one (the window's figure is separate).
_SCALE_STAGES = ("read_catalogue", "create_request", "list_requests", "list_images")
WINDOW_IMAGES = 10_000  # the request the window shows while its heartbeat is measured

# The targets of issue 5 (throughput: of the codec ceiling).
TARGET_THROUGHPUT = 0.90
TARGET_LATE_MAX_MS = 50.0
TARGET_LATE_P99_MS = 20.0
TARGET_IMPORT_S = 3.0
TARGET_RSS_MB = 300.0
TARGET_SECOND_RUN = 10.0
TARGET_COLD_START_S = 1.5

CORPUS_IMAGES = 200
_TRIES = 2  # a disturbed throughput run is redone once


@dataclass(frozen=True)
class Mode:
    """How much work one run does."""

    repetitions: int
    variants: tuple[str, ...]
    rss_images: int
    rows: int
    window_seconds: float
    second_runs: int  # repetitions of the second-run workload (the target is their median)
    window_runs: int  # repetitions of the window heartbeat (the target is their median)


FULL = Mode(
    repetitions=3,
    variants=(*throughput.PAIR, *throughput.EXTRAS),
    rss_images=10_000,
    rows=100_000,
    window_seconds=20,
    second_runs=5,
    window_runs=5,
)
QUICK = Mode(
    repetitions=3,
    variants=throughput.PAIR,
    rss_images=1_000,
    rows=100_000,
    window_seconds=8,
    second_runs=5,
    window_runs=3,
)


# -- the suite ------------------------------------------------------------------------------


def _prepare(args: argparse.Namespace) -> tuple[Corpus, dict[str, Any]]:
    """The corpus (generated once) and the parameters every workload gets."""
    started = time.perf_counter()
    count = max(PATTERN_LENGTH, args.images // PATTERN_LENGTH * PATTERN_LENGTH)
    corpus = ensure_corpus(count)
    _progress(f"corpus ready: {len(corpus.items)} images in {time.perf_counter() - started:.1f} s")
    common: dict[str, Any] = {
        "names": [item.name for item in corpus.items],
        "corpus_folder": str(corpus.folder),
        "imgdesk_path": args.imgdesk,
        "work_dir": args.work_dir,
    }
    return corpus, common


def _throughput(
    server: ImageServer, common: dict[str, Any], mode: Mode, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The images per run (calibrated unless given) and the alternating throughput runs."""
    calibration: dict[str, Any] = {}
    count = args.images_per_run
    if not count:
        count, calibration = throughput.images_per_run(common, args.quiet_wait)
        _progress(
            f"calibrated: ceiling {throughput.rate(calibration):.1f} img/s over one pass; "
            f"{count:,} images per run"
        )
    runs = throughput.measure_throughput(
        server,
        dict(common, count=count),
        mode.variants,
        mode.repetitions,
        args.engine_settings,
        args.quiet_wait,
        _TRIES,
        _progress,
    )
    return calibration, runs


def measure(mode: Mode, args: argparse.Namespace) -> dict[str, Any]:
    """Run every benchmark of the suite (or only the throughput part); returns raw figures."""
    started = time.perf_counter()
    corpus, common = _prepare(args)
    results: dict[str, Any] = {"corpus": _describe(corpus), "mode": mode.__dict__}
    with ImageServer(corpus.load()) as server:
        common["base_url"] = server.base_url
        wait = args.quiet_wait
        if not args.throughput_only:
            results["serve_only"] = run_workload("serve_only", common, wait)
            _progress("server throughput measured")
        if "throughput" not in args.skip:
            results["calibration"], results["throughput"] = _throughput(server, common, mode, args)
        if args.throughput_only:
            results["elapsed_s"] = time.perf_counter() - started
            return results

        engine_params = dict(common, settings=args.engine_settings, probe=True)
        if "second" not in args.skip:
            second_params = dict(common, settings=args.engine_settings)
            second_runs = []
            for index in range(mode.second_runs):
                second_runs.append(run_workload("second_run", second_params, wait))
                speedup = second_runs[-1]["speedup"]
                _progress(f"second run {index + 1}/{mode.second_runs}: {speedup:.1f}x faster")
            results["second_runs"] = second_runs
            # The median repetition stands for all of them in the details.
            by_speedup = sorted(second_runs, key=lambda run: float(run["speedup"]))
            results["second_run"] = by_speedup[len(by_speedup) // 2]
        if "rss" not in args.skip:
            results["rss_run"] = run_workload(
                "engine", dict(engine_params, count=mode.rss_images), wait
            )
            _progress(f"{mode.rss_images:,}-image run measured")
        if "window" not in args.skip:
            window_runs = []
            for index in range(mode.window_runs):
                window_runs.append(
                    _run_window(
                        "window_heartbeat",
                        dict(common, count=WINDOW_IMAGES, seconds=mode.window_seconds),
                        wait,
                    )
                )
                _progress(f"window heartbeat {index + 1}/{mode.window_runs} measured")
            results["window_runs"] = window_runs
            measured = [run for run in window_runs if "error" not in run]
            # The run with the median worst lateness stands for them in the details.
            by_worst = sorted(measured, key=lambda run: float(run["late_max_ms"]))
            results["window"] = by_worst[len(by_worst) // 2] if by_worst else window_runs[0]
        results["server_stats"] = server.stats()
    if "scale" not in args.skip:
        results["scale"] = run_workload("scale", dict(common, rows=mode.rows), wait)
        _progress(f"{mode.rows:,}-row import measured (core stages)")
        results["window_scale"] = _run_window("window_scale", dict(common, rows=mode.rows), wait)
        _progress(f"{mode.rows:,}-row CSV dropped on the window measured")
    results["cold_start"] = [run_workload("cold_start", common, wait) for _ in range(3)]
    if "window" not in args.skip:
        starts = [_run_window("window_start", common, wait) for _ in range(3)]
        results["window_start"] = starts
    results["elapsed_s"] = time.perf_counter() - started
    return results


def profile_engine(args: argparse.Namespace) -> str:
    """One ``imgdesk process`` run recorded by py-spy into ``args.profile_engine``; a summary.

    The run is as long as a throughput run; its figures are not comparable (sampling slows
    the process down) and are only printed for orientation.
    """
    corpus, common = _prepare(args)
    with ImageServer(corpus.load()) as server:
        common["base_url"] = server.base_url
        count = args.images_per_run
        if not count:
            count, _ = throughput.images_per_run(common, args.quiet_wait)
        _progress(f"profiling imgdesk process on {count:,} images")
        params = dict(common, count=count, settings=args.engine_settings)
        run = run_imgdesk_process(
            server,
            params,
            args.quiet_wait,
            profile_to=Path(args.profile_engine),
            profile_idle=args.profile_idle,
        )
    return (
        f"profiled run (py-spy attached, slower than a measured run): "
        f"{throughput.rate(run):.1f} img/s, {run['cpu_s'] / run['images'] * 1000:.1f} CPU "
        f"ms/img; raw samples in {args.profile_engine}\n\n"
        + summarise(Path(args.profile_engine).read_text())
    )


def _run_window(name: str, params: dict[str, Any], quiet_wait_s: float) -> dict[str, Any]:
    """A window workload, or why it could not run (the window is young and may change)."""
    try:
        return run_workload(name, params, quiet_wait_s)
    except RuntimeError as error:
        last = str(error).strip().splitlines()[-1]
        return {"error": last}


def _describe(corpus: Corpus) -> dict[str, Any]:
    items = corpus.items
    return {
        "source": corpus.source,
        "images": len(items),
        "megapixels": sum(item.megapixels for item in items),
        "mb": sum(item.size for item in items) / 1e6,
        "png": sum(1 for item in items if item.kind.startswith("png")),
        "rgba": sum(1 for item in items if item.kind == "png-rgba"),
        "progressive": sum(1 for item in items if item.kind == "jpeg-progressive"),
        "largest": f"{max(items, key=lambda item: item.megapixels).width}x"
        f"{max(items, key=lambda item: item.megapixels).height}",
    }


def _progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


# -- the report -----------------------------------------------------------------------------


def _header(results: dict[str, Any]) -> list[str]:
    """The machine, the corpus and how busy the machine was."""
    corpus = results["corpus"]
    runs: dict[str, list[dict[str, Any]]] = results.get("throughput") or {
        "second run": results.get("second_runs", []),
        "memory run": [results["rss_run"]] if "rss_run" in results else [],
    }
    loads = [run["foreign_load"] for variant in runs.values() for run in variant]
    others = statistics.median(loads) if loads else 0.0
    busy = "busy" if others > 0.05 else "quiet"
    which = "throughput run" if "throughput" in results else "run"
    return [
        f"imgdesk benchmark: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Pillow {_pillow_version()}; the machine was {busy}: other processes used {others:.0%}"
        f" of the cores during the median {which}",
        f"corpus: {corpus['images']} images ({corpus['source']}, up to {corpus['largest']}): "
        f"{corpus['images'] - corpus['png']} JPEG ({corpus['progressive']} progressive), "
        f"{corpus['png']} PNG ({corpus['rgba']} RGBA); {corpus['megapixels']:.0f} MP, "
        f"{corpus['mb']:.0f} MB, {corpus['mb'] / corpus['images']:.2f} MB on average; "
        "JPEG q50 out",
    ]


def throughput_verdict(results: dict[str, Any]) -> tuple[str, str, str, str]:
    """The target row: the median engine / ceiling ratio of the repetitions."""
    runs = results["throughput"]
    share = statistics.median(throughput.ratios(runs, throughput.ENGINE))
    engine = statistics.median(throughput.rate(run) for run in runs[throughput.ENGINE])
    ceiling = statistics.median(throughput.rate(run) for run in runs[throughput.CEILING])
    return (
        "imgdesk process vs codec ceiling",
        f"{share:.0%} (median of the repetitions; {engine:.1f} vs {ceiling:.1f} img/s)",
        f">= {TARGET_THROUGHPUT:.0%}",
        _verdict(share >= TARGET_THROUGHPUT, share, TARGET_THROUGHPUT),
    )


def _verdict_table(verdicts: list[tuple[str, str, str, str]]) -> list[str]:
    widths = [max(len(row[column]) for row in verdicts) + 2 for column in range(3)]
    lines = []
    rows = [("target", "measured", "goal", "verdict"), *verdicts]
    for index, (what, measured, goal, verdict) in enumerate(rows):
        lines.append(
            f"{what:<{widths[0]}}{measured:<{widths[1]}}{goal:<{widths[2]}}{verdict}".rstrip()
        )
        if index == 0:
            lines.append("-" * (sum(widths) + 24))
    return lines


def throughput_report(results: dict[str, Any]) -> str:
    """The report of ``--throughput-only``."""
    lines = [*_header(results), "", *throughput.report_lines(results), ""]
    lines += _verdict_table([throughput_verdict(results)])
    lines.append(f"total benchmark time: {results['elapsed_s']:.0f} s")
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    """The table of figures, then the targets with PASS / MISS."""
    lines = [*_header(results), ""]
    if "throughput" in results:
        lines += throughput.report_lines(results)
    serve = results["serve_only"]
    served = results["server_stats"]
    requests_served = served.get("200", 0) + served.get("304", 0)
    server_cpu = sum(
        run["server_cpu_s"]
        for name in (throughput.ENGINE, "naive")
        for run in results.get("throughput", {}).get(name, [])
    )
    server_cpu += sum(run["server_cpu_s"] for run in results.get("second_runs", []))
    server_cpu += results.get("rss_run", {}).get("server_cpu_s", 0)
    lines.append(
        f"server alone (4 keep-alive clients): {serve['images'] / serve['wall_s']:.0f} images/s, "
        f"{serve['bytes'] / serve['wall_s'] / 1e6:.0f} MB/s; "
        f"{server_cpu / max(requests_served, 1) * 1000:.2f} ms server CPU per request overall"
    )
    lines.append("")

    verdicts: list[tuple[str, str, str, str]] = []
    if "throughput" in results:
        verdicts.append(throughput_verdict(results))
    window = results.get("window")
    goal = f"worst <= {TARGET_LATE_MAX_MS:.0f} ms, p99 <= {TARGET_LATE_P99_MS:.0f} ms"
    if window is None or "error" in window:
        reason = "skipped" if window is None else f"not measured: {window['error'][:60]}"
        verdicts.append(("GUI heartbeat at full speed", reason, goal, "PENDING"))
    else:
        runs = [run for run in results.get("window_runs", [window]) if "error" not in run]
        worsts = [float(run["late_max_ms"]) for run in runs]
        p99s = [float(run["late_p99_ms"]) for run in runs]
        worst, p99 = statistics.median(worsts), statistics.median(p99s)
        met = worst <= TARGET_LATE_MAX_MS and p99 <= TARGET_LATE_P99_MS
        off = max(worst / TARGET_LATE_MAX_MS, p99 / TARGET_LATE_P99_MS)
        verdicts.append(
            (
                "GUI heartbeat at full speed",
                f"worst {worst:.0f} ms, p99 {p99:.0f} ms (median of {len(runs)}; worst "
                f"{min(worsts):.0f}-{max(worsts):.0f}, p99 {min(p99s):.0f}-{max(p99s):.0f})",
                goal,
                "PASS" if met else f"MISS ({off:.1f}x over)",
            )
        )
    if "scale" in results:
        verdicts.extend(_import_verdicts(results["scale"], results.get("window_scale")))
    if "rss_run" in results:
        rss = results["rss_run"]
        verdicts.append(
            (
                f"peak RSS at {rss['images']:,} images",
                f"{rss['peak_rss_mb']:.0f} MB",
                f"<= {TARGET_RSS_MB:.0f} MB",
                _verdict(rss["peak_rss_mb"] <= TARGET_RSS_MB, TARGET_RSS_MB, rss["peak_rss_mb"]),
            )
        )
    if "second_runs" in results:
        speedups = [float(run["speedup"]) for run in results["second_runs"]]
        speedup = statistics.median(speedups)
        verdicts.append(
            (
                "second run of an unchanged CSV",
                f"{speedup:.1f}x faster (median of {len(speedups)}; "
                f"{min(speedups):.1f}-{max(speedups):.1f}x)",
                f">= {TARGET_SECOND_RUN:.0f}x",
                _verdict(speedup >= TARGET_SECOND_RUN, speedup, TARGET_SECOND_RUN),
            )
        )
    floor = statistics.median(run["wall_s"] for run in results["cold_start"])
    starts = [run for run in results.get("window_start", []) if "error" not in run]
    goal = f"<= {TARGET_COLD_START_S:.1f} s"
    if starts:
        cold = statistics.median(run["wall_s"] for run in starts)
        verdicts.append(
            (
                "cold start to an interactive window",
                f"{cold:.2f} s (imports + QApplication alone: {floor:.2f} s)",
                goal,
                _verdict(cold <= TARGET_COLD_START_S, TARGET_COLD_START_S, cold),
            )
        )
    else:
        verdicts.append(
            (
                "cold start to an interactive window",
                f"window not measured; imports + QApplication: {floor:.2f} s",
                goal,
                "PENDING",
            )
        )
    lines += _verdict_table(verdicts)
    lines.append("")
    lines.extend(_details(results))
    lines.append(f"total benchmark time: {results['elapsed_s']:.0f} s")
    return "\n".join(lines)


def _import_verdicts(
    scale: dict[str, Any], window: dict[str, Any] | None
) -> list[tuple[str, str, str, str]]:
    """The big CSV dropped on the window: to a listed, scrollable request; the heartbeat."""
    what = f"{scale['rows']:,}-row CSV to a listed, scrollable request"
    goal = f"<= {TARGET_IMPORT_S:.1f} s"
    beat_what = "GUI heartbeat during that import"
    beat_goal = f"worst <= {TARGET_LATE_MAX_MS:.0f} ms, p99 <= {TARGET_LATE_P99_MS:.0f} ms"
    if window is None or ("error" in window and "scrollable_s" not in window):
        stages = sum(scale[f"{stage}_s"] for stage in _SCALE_STAGES)
        reason = "skipped" if window is None else f"not measured: {window['error'][:60]}"
        return [
            (what, f"window {reason}; core stages alone {stages:.2f} s", goal, "PENDING"),
            (beat_what, "not measured", beat_goal, "PENDING"),
        ]
    worst, p99 = window["late_max_ms"], window["late_p99_ms"]
    beat = f"heartbeat worst {worst:.0f} ms, p99 {p99:.0f} ms"
    scrollable = window.get("scrollable_s")
    if scrollable is None:
        measured = f"not scrollable after {window['stopped_s']:.0f} s ({beat})"
        verdict = "MISS (timed out)" if window.get("timed_out") else "MISS"
    else:
        measured = f"{scrollable:.2f} s ({beat})"
        verdict = _verdict(scrollable <= TARGET_IMPORT_S, TARGET_IMPORT_S, scrollable)
    met = worst <= TARGET_LATE_MAX_MS and p99 <= TARGET_LATE_P99_MS
    off = max(worst / TARGET_LATE_MAX_MS, p99 / TARGET_LATE_P99_MS)
    return [
        (what, measured, goal, verdict),
        (
            beat_what,
            f"worst {worst:.0f} ms, p99 {p99:.0f} ms",
            beat_goal,
            "PASS" if met else f"MISS ({off:.1f}x over)",
        ),
    ]


def _window_scale_details(window: dict[str, Any]) -> str:
    """One line on the big CSV dropped on the window: when each step was visible."""
    if "heartbeats" not in window:
        return f"window scale: not measured: {window.get('error', '?')}"

    def at(key: str) -> str:
        return f"{window[key]:.2f} s" if key in window else "never"

    notes = []
    if window.get("selected_by_benchmark"):
        notes.append("the window did not select the new request; the benchmark clicked it")
    if window.get("timed_out"):
        notes.append(f"TIMED OUT after {window['stopped_s']:.0f} s")
    if window.get("error"):
        notes.append(f"error: {window['error']}")
    return (
        f"window scale ({window['rows']:,} rows, {window.get('images', 0):,} URLs dropped on "
        f"the window, engine paused): request row listed {at('listed_s')}, images table "
        f"scrollable {at('scrollable_s')} ({window.get('rows_shown', 0):,} rows at the end), "
        f"event loop free again {at('responsive_s')}, all rows {at('all_rows_s')}, "
        f"whole file read and recorded (request started) {at('created_s')}; GUI heartbeat "
        f"from the drop to {window['stopped_s']:.1f} s: worst {window['late_max_ms']:.0f} ms, p99 "
        f"{window['late_p99_ms']:.0f} ms, median {window['late_median_ms']:.1f} ms; "
        f"CPU {window['cpu_s']:.1f} s; peak RSS {window['peak_rss_mb']:.0f} MB"
        + "".join(f"; {note}" for note in notes)
    )


def _verdict(met: bool, value: float, goal: float) -> str:
    """PASS or MISS with how far off (a ratio; both numbers are "bigger is better")."""
    if met:
        return "PASS"
    return f"MISS ({value / goal:.0%} of target)"


def _details(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "scale" in results:
        scale = results["scale"]
        stages = _SCALE_STAGES
        lines.append(
            f"scale ({scale['rows']:,} rows, {scale['images']:,} URLs, {scale['csv_mb']:.0f} MB "
            "CSV): "
            + ", ".join(f"{stage} {scale[stage + '_s']:.2f} s" for stage in stages)
            + f"; then engine.start_request {scale['engine_start_request_s']:.2f} s; "
            f"peak RSS {scale['peak_rss_mb']:.0f} MB"
        )
        if "window_scale" in results:
            lines.append(_window_scale_details(results["window_scale"]))
    if "rss_run" in results:
        rss = results["rss_run"]
        samples = rss["rss_samples"]
        shape = ", ".join(f"{t:.0f}s:{mb:.0f}" for t, mb in samples[:: max(1, len(samples) // 8)])
        lines.append(
            f"{rss['images']:,}-image run: {rss['images'] / rss['wall_s']:.1f} img/s, "
            f"{rss['done']:,} done, {rss['failed']} failed, start_request "
            f"{rss['start_request_s'] * 1000:.0f} ms; engine-thread heartbeat (headless) worst "
            f"{rss['late_max_ms']:.0f} ms, p99 {rss['late_p99_ms']:.0f} ms; RSS MB over time: "
            f"{shape}"
        )
    if "second_run" in results:
        second = results["second_run"]
        first_run, second_run = second["first"], second["second"]
        changed_run = second["changed"]
        repetitions = results.get("second_runs", [second])
        redone = all(run["changed_redone"] for run in repetitions)
        lines.append(
            f"second run (the median of {len(repetitions)}): first {first_run['wall_s']:.2f} s, "
            f"unchanged {second_run['wall_s']:.2f} s"
            f" (server answers: {second_run['server'].get('200', 0)} x 200, "
            f"{second_run['server'].get('304', 0)} x 304, "
            f"{second_run['server'].get('conditional', 0)} conditional requests); after one "
            f"image changed at the server {changed_run['wall_s']:.2f} s, changed image redone "
            f"in every repetition: {'yes' if redone else 'NO'}"
        )
    window = results.get("window")
    if window and "error" not in window:
        lines.append(
            f"window: {window['shown_request_images']:,}-image request shown, "
            f"{window['images_per_s']:.1f} img/s while measured ({window['images']} images, "
            f"{window['heartbeats']} heartbeats); CSV dropped to request created "
            f"{window.get('created_s', 0):.2f} s; peak RSS {window['peak_rss_mb']:.0f} MB"
        )
    for name, variant in results.get("throughput", {}).items():
        errors = [run.get("errors") for run in variant if run.get("errors")]
        if errors:
            lines.append(f"{name}: failures {errors[0]}")
    return lines


def _pillow_version() -> str:
    import PIL

    return str(PIL.__version__)


# -- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Parse options, measure, print the table; exits 0 whatever the figures, 1 if a run failed."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a ~6 minute run")
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="only imgdesk process against the codec ceiling (~3-4 minutes on a quiet machine)",
    )
    parser.add_argument(
        "--profile-engine",
        metavar="FILE",
        help="record one imgdesk process run with py-spy into FILE and summarise it; no figures",
    )
    parser.add_argument(
        "--profile-idle",
        action="store_true",
        help="with --profile-engine: sample waiting threads too (py-spy --idle)",
    )
    parser.add_argument(
        "--images", type=int, default=CORPUS_IMAGES, help="corpus size (a multiple of 20)"
    )
    parser.add_argument(
        "--images-per-run",
        type=int,
        help="images in each throughput run (default: enough for a 15 s ceiling run)",
    )
    parser.add_argument("--repetitions", type=int, help="repetitions of the throughput runs")
    parser.add_argument(
        "--variants",
        type=lambda text: tuple(part.strip() for part in text.split(",") if part.strip()),
        help=f"throughput variants to run, from: {', '.join(throughput.VARIANTS)} (the "
        "ceiling and imgdesk_process always run)",
    )
    parser.add_argument("--rss-images", type=int, help="images in the memory run")
    parser.add_argument("--rows", type=int, help="rows of the scale CSV")
    parser.add_argument(
        "--second-runs", type=int, help="repetitions of the second-run measurement (default 5)"
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated parts to skip: throughput, second, rss, scale, window",
    )
    parser.add_argument(
        "--engine-settings",
        type=json.loads,
        default={},
        help="JSON settings for the engine, e.g. '{\"concurrency\": 2}' (imgdesk process "
        "takes concurrency and jpeg_quality)",
    )
    parser.add_argument(
        "--imgdesk", help="benchmark the imgdesk package found in this folder (a checkout)"
    )
    parser.add_argument("--work-dir", help="where temporary data folders go (a real disk)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        help="seconds to wait for other processes to leave the CPU before each run",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except (RuntimeError, ValueError) as error:
        # A run that failed (imgdesk exited with an error, images undone): no figures.
        print(f"benchmark stopped, nothing measured: {error}", file=sys.stderr)
        return 1


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.profile_engine:
        print(profile_engine(args))
        return 0
    base = QUICK if args.quick or args.throughput_only else FULL
    variants = base.variants
    if args.variants:
        unknown = set(args.variants) - set(throughput.VARIANTS)
        if unknown:
            parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
        extra = tuple(name for name in args.variants if name not in throughput.PAIR)
        variants = (*throughput.PAIR, *extra)
    mode = Mode(
        repetitions=args.repetitions or base.repetitions,
        variants=variants,
        rss_images=args.rss_images or base.rss_images,
        rows=args.rows or base.rows,
        window_seconds=base.window_seconds,
        second_runs=args.second_runs or base.second_runs,
        window_runs=base.window_runs,
    )
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    results = measure(mode, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(throughput_report(results) if args.throughput_only else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
