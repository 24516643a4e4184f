"""The measured workloads, each run in a fresh subprocess so its CPU and RSS peak are its own.

``python -m benchmarks.workloads NAME '<json params>'`` runs one workload and prints its
figures as one JSON object on the last line of stdout. :mod:`benchmarks.run` starts these;
run one by hand to profile it (``py-spy record -- python -m benchmarks.workloads engine ...``).

Every workload times only its measured part (imports, corpus loading and database set-up
come before the clock starts) and reports:

- ``wall_s``: wall time of the measured part;
- ``cpu_s``: CPU time of the whole process (all threads) during the measured part;
- ``peak_rss_mb``: the process's peak resident memory (``VmHWM``), whole life.
"""

from __future__ import annotations

import gc
import io
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

JPEG_QUALITY = 50  # imgdesk's default, used by every variant
URLS_PER_ROW = 3  # catalogues list a few images per product


# -- shared helpers -------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB of 2**20 bytes (as ``ps`` counts).

    Linux's ``VmHWM`` first: ``ru_maxrss`` of a child started by a big parent counts the
    parent's pages at fork time (the benchmark's parent holds the whole corpus).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 1024 / 1024  # KiB or bytes


def current_rss_mb() -> float:
    """This process's resident set size now, in MB of 2**20 bytes as :func:`peak_rss_mb` (0
    where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def thread_count() -> int:
    """Threads of this process now (0 where /proc is missing)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


@contextmanager
def measured(figures: dict[str, Any]) -> Iterator[None]:
    """Time the block: wall and whole-process CPU seconds go into ``figures``."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    figures["wall_s"] = time.perf_counter() - wall
    figures["cpu_s"] = time.process_time() - cpu


def compress_into_bytesio(data: bytes) -> int:
    """Decode and encode a JPEG at imgdesk's quality into a BytesIO; returns the output bytes.

    Pillow holds the GIL for the whole encode into a BytesIO (and decodes in 64 KiB calls,
    taking the GIL back between them), so threads doing this run mostly one at a time: a
    GIL-bound figure, kept as an extra row, not the machine's limit.
    """
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        buffer = io.BytesIO()
        _as_rgb(im).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.tell()


def compress_into_file(data: bytes, path: Path) -> int:
    """The ceiling's work for one image: decode, flatten, encode a JPEG into a new file.

    The body is decoded in one decoder call (``decodermaxblock``) and the JPEG is encoded into
    a real file, the two ways Pillow works without holding the GIL. Nothing else: no checks,
    no fsync, no rename, no database. Returns the output bytes.
    """
    with Image.open(io.BytesIO(data)) as im:
        im.decodermaxblock = max(len(data), 65536)
        im.load()
        with open(path, "wb") as handle:
            _as_rgb(im).save(handle, "JPEG", quality=JPEG_QUALITY)
            return handle.tell()


def _as_rgb(im: Image.Image) -> Image.Image:
    """What a JPEG holds: RGB as it is, transparency flattened onto white (as imgdesk does)."""
    if im.mode == "RGB":
        return im
    if im.mode == "RGBA":
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(im, mask=im)
        return background
    return im.convert("RGB")


def image_urls(base_url: str, names: list[str], count: int) -> list[str]:
    """``count`` distinct URLs cycling over the corpus files, a query string per pass.

    ``/img/<name>?copy=<pass>``: the server ignores the query, imgdesk sees distinct URLs.
    """
    return [f"{base_url}/img/{names[i % len(names)]}?copy={i // len(names)}" for i in range(count)]


def catalogue_csv(urls: list[str]) -> bytes:
    """A catalogue CSV listing ``urls``, ``URLS_PER_ROW`` to a product."""
    lines = ["S. No.,Product Name,Input Image Urls"]
    for row, start in enumerate(range(0, len(urls), URLS_PER_ROW), start=1):
        cell = ",".join(urls[start : start + URLS_PER_ROW])
        lines.append(f'{row},Product {row} cotton shirt,"{cell}"')
    return ("\n".join(lines) + "\n").encode()


def _use_imgdesk(path: str | None) -> None:
    """Benchmark another copy of the package (a branch checkout) instead of the installed one."""
    if path:
        sys.path.insert(0, path)


def _server_stats(base_url: str) -> dict[str, int]:
    import requests

    return dict(requests.get(f"{base_url}/__stats", timeout=10).json())


# -- codec work from memory, and the naive baseline ----------------------------------------


def _bodies(params: dict[str, Any]) -> list[bytes]:
    """``count`` image bodies cycling over the corpus files (the same bytes, not copies)."""
    folder = Path(params["corpus_folder"])
    corpus = [(folder / name).read_bytes() for name in params["names"]]
    count = int(params.get("count") or len(corpus))
    return [corpus[i % len(corpus)] for i in range(count)]


def _output_folder(params: dict[str, Any]) -> Path:
    """A fresh folder for output files, where the engine's data folders go (a real disk)."""
    return Path(tempfile.mkdtemp(prefix="imgdesk-bench-out-", dir=params.get("work_dir")))


def codec_ceiling(params: dict[str, Any]) -> dict[str, Any]:
    """The machine's limit: as many threads as cores doing :func:`compress_into_file`."""
    bodies = _bodies(params)
    folder = _output_folder(params)
    paths = [folder / f"{index:06d}.jpg" for index in range(len(bodies))]
    figures: dict[str, Any] = {"images": len(bodies), "threads": os.cpu_count()}
    try:
        with measured(figures), ThreadPoolExecutor(os.cpu_count()) as pool:
            figures["output_bytes"] = sum(pool.map(compress_into_file, bodies, paths))
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bytesio_limit(params: dict[str, Any]) -> dict[str, Any]:
    """The GIL-bound figure: as many threads as cores doing :func:`compress_into_bytesio`."""
    bodies = _bodies(params)
    figures: dict[str, Any] = {"images": len(bodies), "threads": os.cpu_count()}
    with measured(figures), ThreadPoolExecutor(os.cpu_count()) as pool:
        figures["output_bytes"] = sum(pool.map(compress_into_bytesio, bodies))
    return figures


def core_compress(params: dict[str, Any]) -> dict[str, Any]:
    """imgdesk's own ``compress_image`` from memory, as many threads as cores, into files.

    With ``atomic`` each output goes through ``storage.atomic_file`` (temp file, fsync,
    rename) as the engine stores it; without, into a plain new file. Between the ceiling
    and the engine, these show what imgdesk's checks and its safe storing cost.
    """
    _use_imgdesk(params.get("imgdesk_path"))
    from imgdesk.core.compress import compress_image
    from imgdesk.core.settings import Settings
    from imgdesk.core.storage import atomic_file

    bodies = _bodies(params)
    settings = Settings().replace(**params.get("settings", {}))
    atomic = bool(params.get("atomic"))
    folder = _output_folder(params)
    paths = [folder / f"{index:06d}.jpg" for index in range(len(bodies))]

    # The output asked for; an imgdesk from before output formats takes it from the settings.
    output = getattr(settings, "output", None)

    def compress(data: bytes, path: Path) -> int:
        with atomic_file(path) if atomic else open(path, "xb") as handle:
            if output is None:
                return compress_image(data, settings, handle).size
            return compress_image(data, settings, handle, output).size

    figures: dict[str, Any] = {"images": len(bodies), "threads": os.cpu_count()}
    try:
        with measured(figures), ThreadPoolExecutor(os.cpu_count()) as pool:
            figures["output_bytes"] = sum(pool.map(compress, bodies, paths))
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def naive(params: dict[str, Any]) -> dict[str, Any]:
    """One thread: ``requests.get`` each URL in turn, then the ceiling's Pillow work."""
    import requests

    count = int(params.get("count") or len(params["names"]))
    urls = image_urls(params["base_url"], params["names"], count)
    folder = _output_folder(params)
    figures: dict[str, Any] = {"images": len(urls)}
    output = 0
    try:
        with measured(figures):
            for index, url in enumerate(urls):
                response = requests.get(url, timeout=30)
                response.raise_for_status()
                output += compress_into_file(response.content, folder / f"{index:06d}.jpg")
        figures["output_bytes"] = output
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def serve_only(params: dict[str, Any]) -> dict[str, Any]:
    """The server's throughput: several keep-alive clients downloading, nothing else."""
    import requests

    urls = image_urls(params["base_url"], params["names"], len(params["names"]))
    clients = int(params.get("clients", 4))
    local = threading.local()

    def fetch(url: str) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        return len(session.get(url, timeout=30).content)

    figures: dict[str, Any] = {"images": len(urls), "clients": clients}
    with measured(figures), ThreadPoolExecutor(clients) as pool:
        figures["bytes"] = sum(pool.map(fetch, urls))
    return figures


# -- the engine -----------------------------------------------------------------------------


class _Probe:
    """On the engine's thread: a 10 ms heartbeat timer, RSS and thread-count samples."""

    def __init__(self, interval_ms: int = 10) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.lateness_ms: list[float] = []
        self.beat_times: list[float] = []  # perf_counter() of each beat
        self.rss_samples: list[tuple[float, float]] = []
        self.max_threads = 0
        self._interval = interval_ms / 1000
        self._started = self._last = time.perf_counter()
        self._last_sample = 0.0
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._beat)

    def start(self) -> None:
        self._started = self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _beat(self) -> None:
        now = time.perf_counter()
        self.lateness_ms.append(max(0.0, (now - self._last - self._interval) * 1000))
        self.beat_times.append(now)
        self._last = now
        if now - self._last_sample >= 0.25:
            self._last_sample = now
            self.rss_samples.append((round(now - self._started, 2), round(current_rss_mb(), 1)))
            self.max_threads = max(self.max_threads, thread_count())

    def figures(self) -> dict[str, Any]:
        late = sorted(self.lateness_ms) or [0.0]
        return {
            "heartbeats": len(self.lateness_ms),
            "late_max_ms": late[-1],
            "late_p99_ms": late[min(len(late) - 1, int(len(late) * 0.99))],
            "late_median_ms": statistics.median(late),
            "started_perf_counter": self._started,  # to match the beats with other traces
            # The five latest beats: (seconds after the start, ms late), to find their cause.
            "latest_beats": sorted(
                (
                    (round(at - self._started, 3), round(ms, 1))
                    for at, ms in zip(self.beat_times, self.lateness_ms, strict=True)
                ),
                key=lambda beat: -beat[1],
            )[:5],
            "rss_samples": self.rss_samples,
            "max_threads": self.max_threads,
        }


def _open_data_dir(params: dict[str, Any]) -> Path:
    """A fresh data folder on a real disk (the user's data folder is not a tmpfs either)."""
    from imgdesk.core.db import open_database
    from imgdesk.core.logs import setup_logging
    from imgdesk.core.paths import database_path

    data_dir = Path(tempfile.mkdtemp(prefix="imgdesk-bench-", dir=params.get("work_dir")))
    # Like the command line: INFO log lines to a rotating file, the database in WAL mode.
    setup_logging(data_dir)
    open_database(database_path(data_dir))
    return data_dir


def _run_request(
    repo: Any, settings: Any, data_dir: Path, request_id: str, with_probe: bool
) -> dict[str, Any]:
    """Run the engine on one request to its end, the way ``imgdesk process`` does."""
    import asyncio

    import qasync
    from PySide6.QtCore import QCoreApplication

    from imgdesk.engine.engine import Engine

    app = QCoreApplication.instance() or QCoreApplication([])
    probe = _Probe() if with_probe else None
    engine = Engine(repo, settings, data_dir)
    figures: dict[str, Any] = {}
    main_thread_cpu = time.thread_time()

    async def run() -> str:
        finished: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_finished(finished_id: str, status: str) -> None:
            if finished_id == request_id and not finished.done():
                finished.set_result(status)

        engine.request_finished.connect(on_finished)
        if probe is not None:
            probe.start()
        queued = time.perf_counter()
        engine.start_request(request_id)
        figures["start_request_s"] = time.perf_counter() - queued
        return await finished

    loop = qasync.QEventLoop(app)
    try:
        with loop, measured(figures):
            figures["status"] = loop.run_until_complete(run())
    finally:
        if probe is not None:
            probe.stop()
        engine.shutdown()
        engine.deleteLater()
    figures["main_thread_cpu_s"] = time.thread_time() - main_thread_cpu
    request = repo.get_request(request_id)
    figures["done"] = request.done
    figures["failed"] = request.failed
    figures["images"] = request.total
    figures["output_bytes"] = request.output_bytes
    if probe is not None:
        figures.update(probe.figures())
    return figures


def engine(params: dict[str, Any]) -> dict[str, Any]:
    """imgdesk's engine on a request listing the corpus (or ``count`` URLs cycling over it)."""
    _use_imgdesk(params.get("imgdesk_path"))
    from imgdesk.core.csvio import parse_catalogue
    from imgdesk.core.repository import Repository
    from imgdesk.core.settings import Settings

    names = params["names"]
    urls = image_urls(params["base_url"], names, int(params.get("count") or len(names)))
    data_dir = _open_data_dir(params)
    try:
        repo = Repository()
        settings = Settings().replace(**params.get("settings", {}))
        request_id = repo.create_request(parse_catalogue(catalogue_csv(urls), "bench.csv"))
        figures = _run_request(repo, settings, data_dir, request_id, bool(params.get("probe")))
        errors = repo.error_counts(request_id)
        if errors:
            figures["errors"] = errors
        figures["settings"] = {"concurrency": settings.concurrency}
        return figures
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def second_run(params: dict[str, Any]) -> dict[str, Any]:
    """The same CSV three times on one data folder.

    First run; second run with nothing changed at the server (the target: how much faster
    it is); third run after one image changed at the server (it must be redone).
    """
    _use_imgdesk(params.get("imgdesk_path"))
    import hashlib

    import requests

    from imgdesk.core.csvio import parse_catalogue
    from imgdesk.core.repository import Repository
    from imgdesk.core.settings import Settings

    base_url, names = params["base_url"], params["names"]
    csv = catalogue_csv(image_urls(base_url, names, len(names)))
    changed_url = image_urls(base_url, names, 2)[1]
    changed_name = names[1]
    data_dir = _open_data_dir(params)

    def output_digest(request_id: str) -> str | None:
        for image in repo.list_images(request_id):
            if image.url == changed_url and image.output_path:
                return hashlib.sha256(Path(image.output_path).read_bytes()).hexdigest()
        return None

    try:
        repo = Repository()
        settings = Settings().replace(**params.get("settings", {}))
        runs = []
        for run in ("first", "unchanged", "changed"):
            if run == "changed":
                requests.post(f"{base_url}/__change/{changed_name}", timeout=10)
            before = _server_stats(base_url)
            request_id = repo.create_request(parse_catalogue(csv, "bench.csv"))
            figures = _run_request(repo, settings, data_dir, request_id, False)
            after = _server_stats(base_url)
            figures["server"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            figures["changed_digest"] = output_digest(request_id)
            runs.append(figures)
        first, unchanged, changed = runs
        return {
            "first": first,
            "second": unchanged,
            "changed": changed,
            "speedup": first["wall_s"] / unchanged["wall_s"],
            "changed_redone": unchanged["changed_digest"] != changed["changed_digest"],
            "wall_s": first["wall_s"] + unchanged["wall_s"] + changed["wall_s"],
            "cpu_s": first["cpu_s"] + unchanged["cpu_s"] + changed["cpu_s"],
        }
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


# -- scale: a 100,000-row catalogue ---------------------------------------------------------


def scale(params: dict[str, Any]) -> dict[str, Any]:
    """Dropping a big CSV: read it, record the request, list it, list its images, queue it."""
    _use_imgdesk(params.get("imgdesk_path"))
    from PySide6.QtCore import QCoreApplication

    from imgdesk.core.csvio import read_catalogue
    from imgdesk.core.repository import Repository
    from imgdesk.core.settings import Settings
    from imgdesk.engine.engine import Engine

    rows = int(params["rows"])
    data_dir = _open_data_dir(params)
    try:
        csv_path = data_dir / "big.csv"
        csv_path.write_bytes(_big_csv(rows))
        repo = Repository()
        figures: dict[str, Any] = {"rows": rows, "csv_mb": csv_path.stat().st_size / 1e6}
        stages: list[tuple[str, Callable[[], Any]]] = []
        state: dict[str, Any] = {}
        stages.append(("read_catalogue", lambda: state.update(cat=read_catalogue(csv_path))))
        stages.append(
            ("create_request", lambda: state.update(rid=repo.create_request(state["cat"])))
        )
        stages.append(("list_requests", lambda: repo.list_requests()))
        stages.append(("list_images", lambda: state.update(images=repo.list_images(state["rid"]))))
        with measured(figures):
            for stage, action in stages:
                started = time.perf_counter()
                action()
                figures[f"{stage}_s"] = time.perf_counter() - started
        figures["images"] = len(state["images"])
        figures["rss_after_list_mb"] = current_rss_mb()
        # Not part of "listed and scrollable", but it runs on the same (GUI) thread next:
        # queueing the request's images when processing starts (paused, so nothing runs).
        app = QCoreApplication.instance() or QCoreApplication([])
        engine = Engine(repo, Settings(), data_dir)
        engine.pause()
        started = time.perf_counter()
        engine.start_request(state["rid"])
        figures["engine_start_request_s"] = time.perf_counter() - started
        engine.shutdown(0)
        del app
        return figures
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _big_csv(rows: int) -> bytes:
    """``rows`` products with three image URLs each, on a few CDN hosts."""
    lines = ["S. No.,Product Name,Input Image Urls"]
    for row in range(1, rows + 1):
        host = f"https://cdn{row % 4}.example.com/catalogue/{row // 1000:03d}"
        urls = ",".join(f"{host}/{row}-{position}.jpg" for position in (1, 2, 3))
        lines.append(f'{row},Product {row} cotton shirt,"{urls}"')
    return ("\n".join(lines) + "\n").encode()


def cold_start(params: dict[str, Any]) -> dict[str, Any]:
    """Imports and a QApplication, no window: a floor for "cold start to a window"."""
    started = params["spawned_at"]
    _use_imgdesk(params.get("imgdesk_path"))
    from PySide6.QtWidgets import QApplication

    import imgdesk.cli  # noqa: F401 - the import is what is measured
    from imgdesk.engine.engine import Engine  # noqa: F401

    app = QApplication.instance() or QApplication([])
    figures = {"wall_s": time.time() - started, "cpu_s": time.process_time()}
    del app
    return figures


# -- the window ---------------------------------------------------------------------------


def _window_parts(params: dict[str, Any]) -> tuple[Any, Any, Any, Any, Path]:
    """The application, repository, engine and window, composed as ``imgdesk`` does it."""
    from PySide6.QtCore import QSettings

    from imgdesk.core.repository import Repository
    from imgdesk.engine.engine import Engine
    from imgdesk.gui.app import application
    from imgdesk.gui.main_window import MainWindow

    app = application()
    data_dir = _open_data_dir(params)
    repo = Repository()
    engine = Engine(repo, repo.load_settings(), data_dir)
    engine.resume_interrupted()
    qsettings = QSettings(str(data_dir / "window.ini"), QSettings.Format.IniFormat)
    window = MainWindow(repo, engine, data_dir, qsettings)
    gc.freeze()  # as run_window does once the window is built
    return app, repo, engine, window, data_dir


def window_start(params: dict[str, Any]) -> dict[str, Any]:
    """Cold start: from the process's spawn to a shown window whose event loop runs."""
    started = params["spawned_at"]
    _use_imgdesk(params.get("imgdesk_path"))
    from PySide6.QtCore import QTimer

    app, _repo, engine, window, data_dir = _window_parts(params)
    figures: dict[str, Any] = {}
    try:
        window.show()
        # The first timer event runs once the loop has handled the show and paint events.
        QTimer.singleShot(0, app.quit)
        app.exec()
        figures["wall_s"] = time.time() - started
        figures["cpu_s"] = time.process_time()
        return figures
    finally:
        engine.shutdown(0)
        shutil.rmtree(data_dir, ignore_errors=True)


def window_heartbeat(params: dict[str, Any]) -> dict[str, Any]:
    """The window shows a big request being processed; a 10 ms timer measures its lateness.

    The CSV is dropped (``load_files``) as a user would; the heartbeat is measured from the
    first finished image for ``seconds``, while the window shows the request's images live.
    """
    _use_imgdesk(params.get("imgdesk_path"))
    import qasync
    from PySide6.QtCore import QTimer

    names = params["names"]
    urls = image_urls(params["base_url"], names, int(params["count"]))
    app, repo, engine, window, data_dir = _window_parts(params)
    figures: dict[str, Any] = {}
    try:
        csv_path = data_dir / "catalogue.csv"
        csv_path.write_bytes(catalogue_csv(urls))
        probe = _Probe()
        finished: list[float] = []
        dropped = time.perf_counter()

        def on_image_finished(_event: object) -> None:
            if not finished:
                probe.start()
            finished.append(time.perf_counter())

        def on_request_created(request_id: str) -> None:
            figures["created_s"] = time.perf_counter() - dropped

        engine.image_finished.connect(on_image_finished)
        window.importer.request_created.connect(on_request_created)
        window.show()
        window.load_files([csv_path])

        loop = qasync.QEventLoop(app)

        def stop() -> None:
            if finished and time.perf_counter() - finished[0] >= float(params["seconds"]):
                loop.stop()

        checker = QTimer()
        checker.timeout.connect(stop)
        checker.start(100)
        with loop, measured(figures):
            loop.run_forever()
        probe.stop()
        engine.pause()
        figures.update(probe.figures())
        span = finished[-1] - finished[0] if len(finished) > 1 else 0.0
        figures["images"] = len(finished)
        figures["images_per_s"] = (len(finished) - 1) / span if span else 0.0
        request = window.current_request()
        figures["shown_request_images"] = request.total if request else 0
        return figures
    finally:
        engine.shutdown()  # waits for running images, so none writes into a removed folder
        shutil.rmtree(data_dir, ignore_errors=True)


def window_scale(params: dict[str, Any]) -> dict[str, Any]:
    """A ``rows``-row CSV dropped on the real window, to its request listed and scrollable.

    The window is built as ``imgdesk`` builds it, with the engine paused (the figure is about
    the import, not downloads). From the drop (``load_files``, as a drop calls it) the Qt
    event loop runs until the new request has a row in the requests table and the images
    table shows rows of it; if the window does not select the new request by itself, it is
    selected the way a user would (a click on its row), inside the measured time. The loop
    then runs on until every image row is in the images table (and the model, where it
    says so, has finished loading) and at least ``tail_s`` past the first rows. A 10 ms
    heartbeat on the GUI thread runs from the drop to the end: its lateness shows whether
    the window froze. Gives up after ``timeout_s`` (``timed_out``).
    """
    _use_imgdesk(params.get("imgdesk_path"))
    import asyncio

    import qasync
    from PySide6.QtCore import QTimer

    rows = int(params["rows"])
    timeout_s = float(params.get("timeout_s", 60.0))
    tail_s = float(params.get("tail_s", 2.0))
    app, _repo, engine, window, data_dir = _window_parts(params)
    figures: dict[str, Any] = {"rows": rows, "timed_out": False}
    probe = _Probe()
    try:
        engine.pause()  # before the drop: no image starts, the URLs are not real anyway
        csv_path = data_dir / "big.csv"
        csv_path.write_bytes(_big_csv(rows))
        figures["csv_mb"] = csv_path.stat().st_size / 1e6
        requests_model, images_model = window.requests_model, window.images_model
        # Every row of _big_csv has three URLs; the request is listed before all are read.
        state: dict[str, Any] = {"request_id": None, "dropped": 0.0, "total": rows * 3}
        state["before"] = {request.id for request in requests_model.requests()}
        loop = qasync.QEventLoop(app)

        def since_drop() -> float:
            return time.perf_counter() - float(state["dropped"])

        def mark_responsive() -> None:
            figures.setdefault("responsive_s", since_drop())

        def find_request() -> str | None:
            if state["request_id"] is None:
                # The window may list the request before ``request_created`` reaches this
                # workload (its own slot comes first): a request not there before the drop.
                new = [r.id for r in requests_model.requests() if r.id not in state["before"]]
                if new:
                    state["request_id"] = new[0]
            request_id: str | None = state["request_id"]
            return request_id

        def check(may_select: bool = False) -> None:
            if not state["dropped"] or "stopped_s" in figures:
                return
            elapsed = since_drop()
            dialog = window.importer.active_dialog
            if dialog is not None and "error" not in figures:
                figures["error"] = f"the window asked about the CSV: {dialog.windowTitle()}"
            request_id = find_request()
            if request_id is not None:
                row = requests_model.row_of(request_id)
                if row is not None and "listed_s" not in figures:
                    figures["listed_s"] = elapsed
                if (
                    may_select
                    and row is not None
                    and images_model.request_id != request_id
                    and not figures.get("selected_by_benchmark")
                ):
                    # The window did not show it by itself: click its row as a user would.
                    figures["selected_by_benchmark"] = True
                    window.requests_view.selectRow(row)
                    elapsed = since_drop()
                shown = images_model.request_id == request_id
                count = images_model.rowCount() if shown else 0
                if count > 0 and "scrollable_s" not in figures:
                    figures["scrollable_s"] = elapsed
                    # The first timer event after that: the loop is free to scroll and paint.
                    QTimer.singleShot(0, mark_responsive)
                complete = count >= state["total"] and "created_s" in figures
                if complete and not images_model.is_loading and "all_rows_s" not in figures:
                    figures["all_rows_s"] = elapsed
                figures["rows_shown"] = count
            settled = "all_rows_s" in figures and elapsed >= (
                figures.get("scrollable_s", figures["all_rows_s"]) + tail_s
            )
            timed_out = elapsed >= timeout_s
            if settled or timed_out or "error" in figures:
                figures["timed_out"] = timed_out and not settled
                figures["stopped_s"] = elapsed
                loop.stop()

        def on_model_signal(*_args: object) -> None:
            # Inside the window's own reaction: note what is there, never click meanwhile.
            check(may_select=False)

        def on_request_created(request_id: str) -> None:
            # Connected after the window's own slot, so this runs once the window reacted.
            figures.setdefault("created_s", since_drop())
            if state["request_id"] is None:
                state["request_id"] = request_id
            elif state["request_id"] != request_id:
                figures["error"] = "another request than the dropped one appeared first"
            check(may_select=True)

        def on_file_rejected(name: str, message: str) -> None:
            figures["error"] = f"{name} rejected: {message}"
            check()

        window.importer.request_created.connect(on_request_created)
        window.importer.file_rejected.connect(on_file_rejected)
        requests_model.rowsInserted.connect(on_model_signal)
        requests_model.modelReset.connect(on_model_signal)
        images_model.modelReset.connect(on_model_signal)
        images_model.rowsInserted.connect(on_model_signal)
        images_model.loading_finished.connect(on_model_signal)
        checker = QTimer()
        checker.timeout.connect(lambda: check(may_select=True))

        with loop:
            # The user drops onto a window that is already on screen and idle.
            window.show()
            loop.run_until_complete(asyncio.sleep(0.5))
            with measured(figures):
                probe.start()
                checker.start(10)
                state["dropped"] = time.perf_counter()
                window.load_files([csv_path])
                loop.run_forever()
            checker.stop()
            probe.stop()
        figures.update(probe.figures())
        figures["images"] = state["total"] or 0
        request = window.current_request()
        figures["selected_request_images"] = request.total if request else 0
        return figures
    finally:
        probe.stop()
        window.importer.shutdown()  # waits for a CSV still being read (a timed-out run)
        engine.shutdown(0)
        shutil.rmtree(data_dir, ignore_errors=True)


WORKLOADS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "codec_ceiling": codec_ceiling,
    "bytesio_limit": bytesio_limit,
    "core_compress": core_compress,
    "naive": naive,
    "serve_only": serve_only,
    "engine": engine,
    "second_run": second_run,
    "scale": scale,
    "cold_start": cold_start,
    "window_start": window_start,
    "window_heartbeat": window_heartbeat,
    "window_scale": window_scale,
}


def main() -> None:
    """Run the workload named on the command line and print its figures as JSON."""
    name, params = sys.argv[1], json.loads(sys.argv[2])
    figures = WORKLOADS[name](params)
    figures["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write("\n" + json.dumps(figures) + "\n")
    sys.stdout.flush()
    # Skip interpreter teardown: Qt objects destroyed at exit can crash some PySide6
    # releases, and the figures are out already.
    os._exit(0)


if __name__ == "__main__":
    main()
