"""Running measured work in fresh processes, and telling how busy the machine was meanwhile.

Two kinds of run: a workload of :mod:`benchmarks.workloads` (``python -m benchmarks.workloads
NAME PARAMS``, which times its own measured part), and the real ``imgdesk process`` command,
timed from the image server's side (:meth:`benchmarks.server.ImageServer.watch`).

Each run also gets ``foreign_load``: the CPU that other processes of the machine used during
it, as a share of all cores. On a shared machine that tells a disturbed run from a clean one.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.server import ImageServer
from benchmarks.workloads import catalogue_csv, image_urls

REPO_ROOT = Path(__file__).resolve().parent.parent

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_QUIET_BUSY = 0.15  # the machine counts as quiet below 15 % of its cores busy
DISTURBED = 0.10  # a run is redone when others took more than 10 % of the cores


def _busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # up to steal; guest time is already counted in user
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


def wait_for_quiet(limit_s: float) -> float:
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


@dataclass
class _Usage:
    """What the machine, this process and its waited-for children had used at one moment."""

    at: float
    machine_busy: float
    machine_total: float
    children_cpu: float
    own_cpu: float

    @classmethod
    def now(cls) -> _Usage:
        busy, total = _busy_seconds()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            at=time.perf_counter(),
            machine_busy=busy,
            machine_total=total,
            children_cpu=children.ru_utime + children.ru_stime,
            own_cpu=time.process_time(),  # the image server's threads live in this process
        )


def _foreign_load(before: _Usage, after: _Usage) -> tuple[float, float]:
    """(share of all cores other processes used, this process's own CPU seconds) in between."""
    elapsed = max(after.at - before.at, 1e-9)
    own = after.own_cpu - before.own_cpu
    children = after.children_cpu - before.children_cpu
    foreign = (after.machine_busy - before.machine_busy) - children - own
    cores = max(after.machine_total - before.machine_total, 1e-9) / elapsed
    return max(0.0, foreign) / (elapsed * cores), own


def least_disturbed(run: Callable[[], dict[str, Any]], tries: int) -> dict[str, Any]:
    """Call ``run`` again (up to ``tries`` times) while other processes disturbed it.

    Returns the least disturbed run's figures, with ``tries`` set to the runs it took.
    """
    best: dict[str, Any] | None = None
    for attempt in range(1, tries + 1):
        figures = run()
        if best is None or figures["foreign_load"] < best["foreign_load"]:
            best = figures
        best["tries"] = attempt
        if figures["foreign_load"] <= DISTURBED:
            break
    assert best is not None
    return best


def _environment() -> dict[str, str]:
    env = dict(os.environ, QT_API="pyside6")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def run_workload(
    name: str, params: dict[str, Any], quiet_wait_s: float, tries: int = 1
) -> dict[str, Any]:
    """Run a workload in a fresh subprocess (redone while disturbed, see least_disturbed)."""
    return least_disturbed(lambda: _run_workload_once(name, params, quiet_wait_s), tries)


def _run_workload_once(name: str, params: dict[str, Any], quiet_wait_s: float) -> dict[str, Any]:
    """Run one workload in a fresh subprocess; its figures plus the foreign load meanwhile."""
    wait_for_quiet(quiet_wait_s)
    params = dict(params, spawned_at=time.time())
    before = _Usage.now()
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.workloads", name, json.dumps(params)],
        cwd=REPO_ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    after = _Usage.now()
    if completed.returncode != 0:
        raise RuntimeError(f"workload {name} failed:\n{completed.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    figures["foreign_load"], figures["server_cpu_s"] = _foreign_load(before, after)
    return figures


# -- the real command -----------------------------------------------------------------------


def imgdesk_command(imgdesk_path: str | None) -> tuple[list[str], dict[str, str]]:
    """How to start ``imgdesk``: this environment's executable, or another checkout's package."""
    env = _environment()
    if imgdesk_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (imgdesk_path, env.get("PYTHONPATH"))))
        return [sys.executable, "-m", "imgdesk"], env
    script = Path(sys.executable).with_name("imgdesk")
    return ([str(script)] if script.exists() else [sys.executable, "-m", "imgdesk"]), env


def _setting_flags(settings: dict[str, Any]) -> list[str]:
    """``imgdesk process`` options for the engine settings the benchmark was given."""
    flags = {"concurrency": "--concurrency", "jpeg_quality": "--quality"}
    unknown = sorted(set(settings) - set(flags))
    if unknown:
        raise ValueError(
            f"imgdesk process takes only {', '.join(flags)} as options, not {', '.join(unknown)}"
        )
    return [part for key, value in settings.items() for part in (flags[key], str(value))]


def _peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory (``VmHWM``) of process ``pid`` so far, in MB; None once gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds of each group of threads of process ``pid``: main, workers, other.

    ``workers`` are Qt's pool threads (named "Thread (pooled)"), where imgdesk downloads and
    compresses; ``main`` runs the event loop, the engine and the database writer; ``other``
    are Python's threads (log writer, SQLite checkpointer, ...). Empty once the process is gone.
    """
    groups = {"main": 0.0, "workers": 0.0, "other": 0.0}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for task in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        group = "main" if task == str(pid) else "workers" if name == "Thread (pooled)" else "other"
        groups[group] += cpu
    return groups


def run_imgdesk_process(
    server: ImageServer,
    params: dict[str, Any],
    quiet_wait_s: float,
    tries: int = 1,
    profile_to: Path | None = None,
    profile_idle: bool = False,
) -> dict[str, Any]:
    """``imgdesk --data-dir D process IN.csv -o OUT.csv`` end to end, in a fresh data folder.

    ``params`` has ``names`` and ``count`` (the URLs, cycling over the corpus with a query
    string per pass), ``work_dir``, ``imgdesk_path`` and ``settings``. The measured time runs
    from the first image request the server sees to the last image response it sends, and
    the CPU time is the command's (all its threads) over that span, read from /proc: the
    interpreter's start-up, imports, reading the CSV and recording the request come before,
    writing the output CSV and exiting after. Those are reported apart (``startup_s``,
    ``tail_s``, ``process_wall_s``, ``process_cpu_s``). With ``profile_to``, py-spy records
    the run into that file (raw format, every thread; idle samples too with
    ``profile_idle``).

    Raises:
        RuntimeError: the command failed or left images undone.
    """

    def once() -> dict[str, Any]:
        return _run_imgdesk_once(server, params, quiet_wait_s, profile_to, profile_idle)

    return least_disturbed(once, tries)


def _run_imgdesk_once(
    server: ImageServer,
    params: dict[str, Any],
    quiet_wait_s: float,
    profile_to: Path | None,
    profile_idle: bool,
) -> dict[str, Any]:
    count = int(params["count"])
    urls = image_urls(server.base_url, params["names"], count)
    command, env = imgdesk_command(params.get("imgdesk_path"))
    folder = Path(tempfile.mkdtemp(prefix="imgdesk-bench-process-", dir=params.get("work_dir")))
    try:
        data_dir, csv_path = folder / "data", folder / "catalogue.csv"
        csv_path.write_bytes(catalogue_csv(urls))
        process = [
            *command,
            "--data-dir",
            str(data_dir),
            "process",
            str(csv_path),
            "-o",
            str(folder / "output.csv"),
            *_setting_flags(params.get("settings") or {}),
        ]
        wait_for_quiet(quiet_wait_s)
        before = _Usage.now()
        with open(folder / "stderr.txt", "wb") as stderr:
            # cwd: a `python -m imgdesk` must find the package it was pointed at, not this one.
            child = subprocess.Popen(
                process, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=stderr
            )
            timeline = server.watch(child.pid)
            spy = _start_py_spy(child.pid, profile_to, profile_idle) if profile_to else None
            peak_rss, samples = _wait_sampling(child)
            exited = time.perf_counter()
            if spy is not None:
                spy.wait(timeout=60)
        after = _Usage.now()
        if child.returncode != 0:
            tail = (folder / "stderr.txt").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"imgdesk process exited with {child.returncode}:\n{tail}")
        first, last = timeline.first_request, timeline.last_response
        if first is None or last is None or first < before.at:
            raise RuntimeError("the server saw no image request from imgdesk process")
        if timeline.cpu_at_first is None or timeline.cpu_at_last is None:
            raise RuntimeError("could not read the CPU time of imgdesk process from /proc")
        status = _request_status(command, data_dir, env, folder)
        figures: dict[str, Any] = {
            "images": status["succeeded"],
            "failed": status["failed"],
            "total": status["total_images"],
            "status": status["status"],
            "wall_s": last - first,
            "cpu_s": timeline.cpu_at_last - timeline.cpu_at_first,
            "image_responses": timeline.responses,
            "startup_s": first - before.at,
            "tail_s": exited - last,
            "process_wall_s": exited - before.at,
            "process_cpu_s": after.children_cpu - before.children_cpu,
            "peak_rss_mb": peak_rss,
            "settings": params.get("settings") or {},
            "thread_cpu_share": _thread_shares(samples, first, last),
        }
        figures["foreign_load"], figures["server_cpu_s"] = _foreign_load(before, after)
        if figures["images"] != count:
            raise RuntimeError(
                f"imgdesk process did {figures['images']} of {count} images "
                f"({figures['failed']} failed): the figures would not compare"
            )
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _start_py_spy(pid: int, output: Path, idle: bool) -> subprocess.Popen[bytes]:
    """py-spy recording process ``pid`` until it exits (it attaches within a few ms)."""
    spy = Path(sys.executable).with_name("py-spy")
    executable = str(spy) if spy.exists() else "py-spy"
    command = [executable, "record", "--threads", "--format", "raw", "--rate", "100"]
    command += ["--output", str(output), "--pid", str(pid), *(["--idle"] if idle else [])]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_sampling(
    child: subprocess.Popen[bytes],
) -> tuple[float, list[tuple[float, dict[str, float]]]]:
    """Wait for ``child`` to exit, reading it every 0.2 s.

    Returns its peak RSS as last read (``VmHWM`` only grows) and the CPU time of its thread
    groups at each reading (see :func:`thread_cpu_s`).
    """
    peak = 0.0
    samples: list[tuple[float, dict[str, float]]] = []
    while True:
        rss = _peak_rss_mb(child.pid)
        if rss is not None:
            peak = max(peak, rss)
        threads = thread_cpu_s(child.pid)
        if threads:
            samples.append((time.perf_counter(), threads))
        try:
            child.wait(timeout=0.2)
            return peak, samples
        except subprocess.TimeoutExpired:
            continue


def _thread_shares(
    samples: list[tuple[float, dict[str, float]]], first: float, last: float
) -> dict[str, float]:
    """Each thread group's share of the CPU between the readings just inside [first, last]."""
    inside = [threads for at, threads in samples if first <= at <= last]
    if len(inside) < 2:
        return {}
    used = {group: inside[-1][group] - inside[0][group] for group in inside[-1]}
    total = sum(used.values())
    return {group: cpu / total for group, cpu in used.items()} if total > 0 else {}


def _request_status(
    command: list[str], data_dir: Path, env: dict[str, str], folder: Path
) -> dict[str, Any]:
    """The request's counts, from ``imgdesk status --json`` (after the measured run)."""
    completed = subprocess.run(
        [*command, "--data-dir", str(data_dir), "status", "--json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"imgdesk status failed:\n{completed.stderr[-2000:]}")
    status: dict[str, Any] = json.loads(lines[0])
    return status
