"""The throughput benchmark's measuring parts, on small real inputs (no figures checked).

The benchmark itself is run by hand (``python -m benchmarks.run --throughput-only``); these
tests keep the parts it relies on honest: the corpus has the stated mix, the server times a
watched process, the ceiling does its work into files, and ``imgdesk process`` runs end to
end as a real subprocess with every image done.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
import requests
from PIL import Image

from benchmarks import corpus, profile, throughput, workloads
from benchmarks.runner import run_imgdesk_process
from benchmarks.server import ImageServer
from tests.images import encode, photo

MIB = 1024 * 1024


def _small_corpus(folder: Path) -> dict[str, bytes]:
    """Four small files of the corpus's kinds, written into ``folder``."""
    rgba = photo(96, 64).convert("RGBA")
    rgba.putalpha(128)
    files = {
        "0000_jpeg.jpg": encode(photo(120, 80), "JPEG", quality=92),
        "0001_jpeg-progressive.jpg": encode(photo(100, 100), "JPEG", progressive=True),
        "0002_png.png": encode(photo(64, 64), "PNG"),
        "0003_png-rgba.png": encode(rgba, "PNG"),
    }
    for name, body in files.items():
        (folder / name).write_bytes(body)
    return files


def test_the_corpus_pattern_gives_the_stated_mix() -> None:
    plan = [corpus._PATTERN[index % corpus.PATTERN_LENGTH] for index in range(200)]
    kinds = Counter(kind for _, _, kind in plan)
    assert kinds == {"jpeg": 150, "jpeg-progressive": 20, "png": 20, "png-rgba": 10}
    sizes = Counter((width, height) for width, height, _ in plan)
    assert sizes == {(4000, 3000): 30, (2000, 2000): 40, (1200, 1200): 80, (800, 800): 50}


def test_generated_images_are_what_their_names_say(tmp_path: Path) -> None:
    generated = corpus.ensure_corpus(corpus.PATTERN_LENGTH, tmp_path)
    assert len(generated.items) == corpus.PATTERN_LENGTH
    for item in generated.items:
        path = tmp_path / item.name
        assert path.stat().st_size == item.size < 10 * MIB
        with Image.open(path) as im:
            assert im.size == (item.width, item.height)
            assert im.format == ("PNG" if item.kind.startswith("png") else "JPEG")
            assert im.mode == ("RGBA" if item.kind == "png-rgba" else "RGB")
            assert bool(im.info.get("progressive")) == (item.kind == "jpeg-progressive")
            if item.kind.startswith("jpeg"):
                assert item.quality in (90, 92, 95)


def test_image_urls_cycle_the_corpus_with_a_query_string_per_pass() -> None:
    urls = workloads.image_urls("http://host", ["a.jpg", "b.png"], 5)
    assert urls == [
        "http://host/img/a.jpg?copy=0",
        "http://host/img/b.png?copy=0",
        "http://host/img/a.jpg?copy=1",
        "http://host/img/b.png?copy=1",
        "http://host/img/a.jpg?copy=2",
    ]


def test_the_server_times_image_requests_of_a_watched_process(tmp_path: Path) -> None:
    files = _small_corpus(tmp_path)
    with ImageServer(files) as server, requests.Session() as session:
        session.get(f"{server.base_url}/__stats", timeout=10)  # not an image: not timed
        timeline = server.watch(os.getpid())
        assert timeline.first_request is None
        session.get(f"{server.base_url}/__stats", timeout=10)
        assert timeline.first_request is None
        for copy in range(3):
            response = session.get(f"{server.base_url}/img/0000_jpeg.jpg?copy={copy}", timeout=10)
            assert response.content == files["0000_jpeg.jpg"]
    assert timeline.responses == 3
    assert timeline.first_request is not None and timeline.last_response is not None
    assert timeline.first_request < timeline.last_response
    assert timeline.cpu_at_first is not None and timeline.cpu_at_last is not None
    assert timeline.cpu_at_first <= timeline.cpu_at_last


def test_the_ceiling_encodes_every_image_into_a_file(tmp_path: Path) -> None:
    files = _small_corpus(tmp_path)
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    params = {
        "corpus_folder": str(tmp_path),
        "names": list(files),
        "count": 10,
        "work_dir": str(work_dir),
    }
    figures = workloads.codec_ceiling(params)
    assert figures["images"] == 10
    assert figures["output_bytes"] > 0
    assert figures["wall_s"] > 0
    assert list(work_dir.iterdir()) == []  # its output folder is removed after the run


def test_imgdesk_process_runs_end_to_end_as_the_real_command(tmp_path: Path) -> None:
    files = _small_corpus(tmp_path)
    with ImageServer(files) as server:
        params = {"names": list(files), "count": 9, "work_dir": str(tmp_path), "settings": {}}
        figures = run_imgdesk_process(server, params, quiet_wait_s=0)
        assert server.stats()["200"] == 9
    assert figures["images"] == figures["total"] == figures["image_responses"] == 9
    assert figures["failed"] == 0
    assert figures["wall_s"] > 0
    assert figures["cpu_s"] >= 0
    assert figures["startup_s"] > 0  # the interpreter started before the first request
    assert figures["process_wall_s"] > figures["wall_s"]
    assert figures["peak_rss_mb"] > 0
    assert [path.name for path in tmp_path.iterdir() if path.is_dir()] == []


def test_imgdesk_process_with_failed_images_is_an_error_not_a_figure(tmp_path: Path) -> None:
    files = _small_corpus(tmp_path)
    with ImageServer(files) as server:
        params = {"names": [*files, "missing.jpg"], "count": 5, "work_dir": str(tmp_path)}
        with pytest.raises(RuntimeError, match="imgdesk process"):
            run_imgdesk_process(server, params, quiet_wait_s=0)


def test_the_profile_summary_splits_codec_waits_and_the_rest() -> None:
    raw = "\n".join(
        [
            "thread (11): MainThread;run (cli.py:1);_QEventLoop.run_forever (qasync/x.py:4) 30",
            "thread (12);run (executor.py:1);process_image (core/process.py:9);"
            "ImageFile.load (PIL/ImageFile.py:425) 50",
            "thread (12);run (executor.py:1);process_image (core/process.py:9);"
            "_save (PIL/JpegImagePlugin.py:1);_encode_tile (PIL/ImageFile.py:706) 20",
            "thread (12);run (executor.py:1);process_image (imgdesk/core/process.py:12);"
            "sha256 (hashlib.py:3) 15",
            "thread (13);run (executor.py:1);Semaphore.acquire (threading.py:1);"
            "Condition.wait (threading.py:327) 40",
            "thread (14): Thread-1 (_monitor);QueueListener.dequeue (logging/handlers.py:1) 5",
            "thread (15) 7",
        ]
    )
    samples = profile.parse(raw)
    kinds: Counter[tuple[str, str]] = Counter()
    for sample in samples:
        kinds[(sample.group, sample.kind)] += sample.count
    assert kinds == {
        ("main", "waiting"): 30,
        ("workers", "decode"): 50,
        ("workers", "encode"): 20,
        ("workers", "other"): 15,
        ("workers", "waiting"): 47,
        ("other threads", "waiting"): 5,
    }
    summary = profile.summarise(raw)
    assert "sha256 (hashlib.py)" in summary
    assert "process_image (core/process.py)" in summary


def _run(images: int, wall_s: float, midpoint_s: float) -> dict[str, float]:
    return {"images": images, "wall_s": wall_s, "midpoint_s": midpoint_s}


def test_a_run_is_compared_with_the_ceiling_interpolated_to_when_it_ran() -> None:
    """The machine slowed from 60 to 40 img/s: a run in between meets a ceiling of 50."""
    ceilings = [_run(600, 10.0, 100.0), _run(400, 10.0, 200.0), _run(500, 10.0, 300.0)]
    runs = {
        throughput.CEILING: ceilings,
        throughput.ENGINE: [_run(450, 10.0, 150.0), _run(360, 10.0, 225.0)],
    }
    assert throughput.ceiling_rate_at(ceilings, 150.0) == pytest.approx(50.0)
    assert throughput.ratios(runs, throughput.ENGINE) == pytest.approx([0.9, 360 / 425])
    # Outside the ceiling runs the nearest one stands.
    assert throughput.ceiling_rate_at(ceilings, 50.0) == pytest.approx(60.0)
    assert throughput.ceiling_rate_at(ceilings, 400.0) == pytest.approx(50.0)
