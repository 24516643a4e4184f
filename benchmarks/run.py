"""Run the imgdesk benchmark suite and print its figures against the issue 5 targets.

Usage::

    python -m benchmarks.run            # full, ~10 min: 240 images x 5, a 10,000-image run
    python -m benchmarks.run --quick    # ~2 min: 60 images x 3, a 1,000-image run

It measures; it does not gate: the exit status is 0 whatever the figures. Every variant runs
in its own subprocess (see :mod:`benchmarks.workloads`), so CPU time and peak RSS are its own;
the throughput variants alternate, and the table shows medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.corpus import PATTERN_LENGTH, Corpus, ensure_corpus
from benchmarks.server import ImageServer

REPO_ROOT = Path(__file__).resolve().parent.parent
THROUGHPUT_VARIANTS = ("codec_limit", "codec_ceiling", "naive", "engine")
LABELS = {
    "codec_limit": "codec limit (threads = cores, memory)",
    "codec_ceiling": "codec ceiling (GIL-free arrangement)",
    "naive": "naive (1 thread, requests + Pillow)",
    "engine": "imgdesk engine over HTTP",
}

# The core stages of the scale workload, timed one by one (the window's figure is separate).
_SCALE_STAGES = ("read_catalogue", "create_request", "list_requests", "list_images")
WINDOW_IMAGES = 10_000  # the request the window shows while its heartbeat is measured

# The targets of issue 5.
TARGET_THROUGHPUT = 0.90
TARGET_LATE_MAX_MS = 50.0
TARGET_LATE_P99_MS = 20.0
TARGET_IMPORT_S = 3.0
TARGET_RSS_MB = 300.0
TARGET_SECOND_RUN = 10.0
TARGET_COLD_START_S = 1.5

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_QUIET_BUSY = 0.15  # the machine counts as quiet below 15 % of its cores busy
_DISTURBED = 0.10  # a throughput run is redone when others took more than 10 % of the cores
_TRIES = 3


@dataclass(frozen=True)
class Mode:
    """How much work one run does."""

    images: int
    repetitions: int
    rss_images: int
    rows: int
    window_seconds: float


FULL = Mode(images=240, repetitions=5, rss_images=10_000, rows=100_000, window_seconds=20)
QUICK = Mode(images=60, repetitions=3, rss_images=1_000, rows=100_000, window_seconds=8)


# -- running workloads ----------------------------------------------------------------------


def _busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # up to steal; guest time is already counted in user
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


def _wait_for_quiet(limit_s: float) -> float:
    """Wait (up to ``limit_s``) until other processes leave the cores idle; returns their load.

    Other people's test runs on a 2-core machine would otherwise land in a random variant.
    """
    deadline = time.monotonic() + limit_s
    while True:
        busy0, total0 = _busy_seconds()
        time.sleep(0.5)
        busy1, total1 = _busy_seconds()
        load = (busy1 - busy0) / max(total1 - total0, 1e-9)
        if load < _QUIET_BUSY or time.monotonic() >= deadline:
            return load


def run_workload(
    name: str, params: dict[str, Any], quiet_wait_s: float, tries: int = 1
) -> dict[str, Any]:
    """Run a workload, again (up to ``tries`` times) while other processes disturbed it.

    Returns the least disturbed run's figures, with ``tries`` set to the runs it took.
    """
    best: dict[str, Any] | None = None
    for attempt in range(1, tries + 1):
        figures = _run_once(name, params, quiet_wait_s)
        if best is None or figures["foreign_load"] < best["foreign_load"]:
            best = figures
        best["tries"] = attempt
        if figures["foreign_load"] <= _DISTURBED:
            break
    assert best is not None
    return best


def _run_once(name: str, params: dict[str, Any], quiet_wait_s: float) -> dict[str, Any]:
    """Run one workload in a fresh subprocess; its figures plus the foreign load meanwhile."""
    _wait_for_quiet(quiet_wait_s)
    env = dict(os.environ, QT_API="pyside6")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    params = dict(params, spawned_at=time.time())
    own_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    parent_before = time.process_time()
    busy_before, total_before = _busy_seconds()
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.workloads", name, json.dumps(params)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    busy_after, total_after = _busy_seconds()
    own_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(f"workload {name} failed:\n{completed.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    child_cpu = (own_after.ru_utime - own_before.ru_utime) + (
        own_after.ru_stime - own_before.ru_stime
    )
    server_cpu = time.process_time() - parent_before  # the server threads live here
    foreign = (busy_after - busy_before) - child_cpu - server_cpu
    cores = max(total_after - total_before, 1e-9) / max(elapsed, 1e-9)
    figures["foreign_load"] = max(0.0, foreign) / max(elapsed * cores, 1e-9)
    figures["server_cpu_s"] = server_cpu
    return figures


# -- the suite ------------------------------------------------------------------------------


def measure(mode: Mode, args: argparse.Namespace) -> dict[str, Any]:
    """Run every benchmark of the suite; returns all raw figures."""
    started = time.perf_counter()
    count = max(PATTERN_LENGTH, mode.images // PATTERN_LENGTH * PATTERN_LENGTH)
    corpus = ensure_corpus(count)
    _progress(f"corpus ready: {len(corpus.items)} images in {time.perf_counter() - started:.1f} s")
    names = [item.name for item in corpus.items]
    common: dict[str, Any] = {
        "names": names,
        "corpus_folder": str(corpus.folder),
        "imgdesk_path": args.imgdesk,
        "work_dir": args.work_dir,
    }
    results: dict[str, Any] = {"corpus": _describe(corpus), "mode": mode.__dict__}
    with ImageServer(corpus.load()) as server:
        common["base_url"] = server.base_url
        wait = args.quiet_wait
        results["serve_only"] = run_workload("serve_only", common, wait)
        _progress("server throughput measured")

        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in THROUGHPUT_VARIANTS}
        engine_params = dict(common, settings=args.engine_settings, probe=True)
        for repetition in range(mode.repetitions):
            # Rotate the order so no variant always runs first (or right after another).
            shift = repetition % len(THROUGHPUT_VARIANTS)
            for name in THROUGHPUT_VARIANTS[shift:] + THROUGHPUT_VARIANTS[:shift]:
                params = engine_params if name == "engine" else common
                runs[name].append(run_workload(name, params, wait, _TRIES))
            _progress(f"repetition {repetition + 1}/{mode.repetitions} done")
        results["throughput"] = runs

        if "second" not in args.skip:
            results["second_run"] = run_workload(
                "second_run", dict(common, settings=args.engine_settings), wait
            )
            _progress("second run measured")
        if "rss" not in args.skip:
            results["rss_run"] = run_workload(
                "engine", dict(engine_params, count=mode.rss_images), wait
            )
            _progress(f"{mode.rss_images:,}-image run measured")
        if "window" not in args.skip:
            results["window"] = _run_window(
                "window_heartbeat",
                dict(common, count=WINDOW_IMAGES, seconds=mode.window_seconds),
                wait,
            )
            _progress("window heartbeat measured")
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
        "png": sum(1 for item in items if item.kind != "jpeg"),
    }


def _progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


# -- the report -----------------------------------------------------------------------------


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(run[key]) for run in runs)


def _rate(runs: list[dict[str, Any]]) -> float:
    return statistics.median(run["images"] / run["wall_s"] for run in runs)


def report(results: dict[str, Any]) -> str:
    """The table of figures, then the targets with PASS / MISS."""
    lines: list[str] = []
    corpus, mode = results["corpus"], results["mode"]
    runs = results["throughput"]
    reps = mode["repetitions"]
    lines.append(
        f"imgdesk benchmark: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Pillow {_pillow_version()}; {reps} repetitions alternating, medians"
    )
    lines.append(
        f"corpus: {corpus['images']} images ({corpus['source']}), {corpus['png']} PNG, "
        f"{corpus['megapixels']:.0f} MP, {corpus['mb']:.0f} MB; JPEG q50 out"
    )
    lines.append("")
    header = (
        f"{'variant':<40}{'images/s':>9}{'% limit':>9}{'CPU ms/img':>11}"
        f"{'peak RSS MB':>12}{'wall s':>8}{'others':>8}"
    )
    lines.append(header)
    lines.append("-" * len(header))
    limit = _rate(runs["codec_limit"])
    for name in THROUGHPUT_VARIANTS:
        variant = runs[name]
        rate = _rate(variant)
        cpu_ms = statistics.median(run["cpu_s"] / run["images"] * 1000 for run in variant)
        label = LABELS[name]
        if name == "engine":
            label += f" (concurrency {variant[0]['settings']['concurrency']})"
        lines.append(
            f"{label:<40}{rate:>9.1f}{rate / limit:>9.0%}{cpu_ms:>11.1f}"
            f"{_median(variant, 'peak_rss_mb'):>12.0f}{_median(variant, 'wall_s'):>8.2f}"
            f"{_median(variant, 'foreign_load'):>8.0%}"
        )
    ratios = [
        e["images"] / e["wall_s"] / (c["images"] / c["wall_s"])
        for e, c in zip(runs["engine"], runs["codec_limit"], strict=True)
    ]
    lines.append(
        "engine / codec limit per repetition: " + ", ".join(f"{ratio:.0%}" for ratio in ratios)
    )
    lines.append(
        "('others' = CPU used by other processes on the machine meanwhile, in % of all cores;"
        " 'ceiling' = the same codec work decoded in one call and encoded into a file, which"
        " Pillow does without holding the GIL)"
    )
    engine_runs = runs["engine"]
    main_cpu = statistics.median(
        run["main_thread_cpu_s"] / run["images"] * 1000 for run in engine_runs
    )
    lines.append(
        f"engine: {main_cpu:.1f} ms/img CPU on the engine thread; "
        f"{_median(engine_runs, 'max_threads'):.0f} threads at most; "
        f"start_request {_median(engine_runs, 'start_request_s') * 1000:.0f} ms; "
        f"engine-thread heartbeat (headless) worst {_median(engine_runs, 'late_max_ms'):.0f} ms,"
        f" p99 {_median(engine_runs, 'late_p99_ms'):.0f} ms"
    )
    serve = results["serve_only"]
    served = results["server_stats"]
    requests_served = served.get("200", 0) + served.get("304", 0)
    server_cpu = sum(run["server_cpu_s"] for name in ("naive", "engine") for run in runs[name])
    server_cpu += results.get("second_run", {}).get("server_cpu_s", 0)
    server_cpu += results.get("rss_run", {}).get("server_cpu_s", 0)
    lines.append(
        f"server alone (4 keep-alive clients): {serve['images'] / serve['wall_s']:.0f} images/s, "
        f"{serve['bytes'] / serve['wall_s'] / 1e6:.0f} MB/s; "
        f"{server_cpu / max(requests_served, 1) * 1000:.2f} ms server CPU per request"
    )
    lines.append("")

    verdicts: list[tuple[str, str, str, str]] = []
    engine_share = _rate(runs["engine"]) / limit
    verdicts.append(
        (
            "engine throughput vs codec limit",
            f"{engine_share:.0%} ({_rate(runs['engine']):.1f} vs {limit:.1f} img/s)",
            f">= {TARGET_THROUGHPUT:.0%}",
            _verdict(engine_share >= TARGET_THROUGHPUT, engine_share, TARGET_THROUGHPUT),
        )
    )
    window = results.get("window")
    goal = f"worst <= {TARGET_LATE_MAX_MS:.0f} ms, p99 <= {TARGET_LATE_P99_MS:.0f} ms"
    if window is None or "error" in window:
        reason = "skipped" if window is None else f"not measured: {window['error'][:60]}"
        verdicts.append(("GUI heartbeat at full speed", reason, goal, "PENDING"))
    else:
        worst, p99 = window["late_max_ms"], window["late_p99_ms"]
        met = worst <= TARGET_LATE_MAX_MS and p99 <= TARGET_LATE_P99_MS
        off = max(worst / TARGET_LATE_MAX_MS, p99 / TARGET_LATE_P99_MS)
        verdicts.append(
            (
                "GUI heartbeat at full speed",
                f"worst {worst:.0f} ms, p99 {p99:.0f} ms",
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
    if "second_run" in results:
        second = results["second_run"]
        verdicts.append(
            (
                "second run of an unchanged CSV",
                f"{second['speedup']:.1f}x faster",
                f">= {TARGET_SECOND_RUN:.0f}x",
                _verdict(
                    second["speedup"] >= TARGET_SECOND_RUN, second["speedup"], TARGET_SECOND_RUN
                ),
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
    widths = [max(len(row[column]) for row in verdicts) + 2 for column in range(3)]
    rows = [("target", "measured", "goal", "verdict"), *verdicts]
    for index, (what, measured, goal, verdict) in enumerate(rows):
        lines.append(
            f"{what:<{widths[0]}}{measured:<{widths[1]}}{goal:<{widths[2]}}{verdict}".rstrip()
        )
        if index == 0:
            lines.append("-" * (sum(widths) + 24))
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
        lines.append(
            f"second run: first {first_run['wall_s']:.2f} s, unchanged {second_run['wall_s']:.2f} s"
            f" (server answers: {second_run['server'].get('200', 0)} x 200, "
            f"{second_run['server'].get('304', 0)} x 304, "
            f"{second_run['server'].get('conditional', 0)} conditional requests); after one "
            f"image changed at the server {changed_run['wall_s']:.2f} s, changed image redone: "
            f"{'yes' if second['changed_redone'] else 'NO'}"
        )
    window = results.get("window")
    if window and "error" not in window:
        lines.append(
            f"window: {window['shown_request_images']:,}-image request shown, "
            f"{window['images_per_s']:.1f} img/s while measured ({window['images']} images, "
            f"{window['heartbeats']} heartbeats); CSV dropped to request created "
            f"{window.get('created_s', 0):.2f} s; peak RSS {window['peak_rss_mb']:.0f} MB"
        )
    for name, variant in results["throughput"].items():
        errors = [run.get("errors") for run in variant if run.get("errors")]
        if errors:
            lines.append(f"{name}: failures {errors[0]}")
    return lines


def _pillow_version() -> str:
    import PIL

    return str(PIL.__version__)


# -- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Parse options, measure, print the table; always exits 0 (it measures, not gates)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a ~2 minute run")
    parser.add_argument("--images", type=int, help="corpus size (a multiple of 20)")
    parser.add_argument("--repetitions", type=int, help="repetitions of the throughput runs")
    parser.add_argument("--rss-images", type=int, help="images in the memory run")
    parser.add_argument("--rows", type=int, help="rows of the scale CSV")
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to skip: second, rss, scale, window"
    )
    parser.add_argument(
        "--engine-settings",
        type=json.loads,
        default={},
        help="JSON settings for the engine, e.g. '{\"concurrency\": 2}'",
    )
    parser.add_argument(
        "--imgdesk", help="benchmark the imgdesk package found in this folder (a checkout)"
    )
    parser.add_argument("--work-dir", help="where temporary data folders go (a real disk)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=20.0,
        help="seconds to wait for other processes to leave the CPU before each variant",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    mode = Mode(
        images=args.images or base.images,
        repetitions=args.repetitions or base.repetitions,
        rss_images=args.rss_images or base.rss_images,
        rows=args.rows or base.rows,
        window_seconds=base.window_seconds,
    )
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    results = measure(mode, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
