"""Output formats and sizes at the command line (SPEC 9): the flags of ``process``, end to end.

Every test runs the real ``imgdesk`` in a subprocess against a real server on 127.0.0.1 and
opens the output files it wrote.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imgdesk.core.db import close_database, open_database
from imgdesk.core.output import OutputSettings
from imgdesk.core.repository import Repository
from tests import images
from tests.cli.test_cli import file_of, imgdesk, json_lines, read_csv, write_csv
from tests.cli.test_cli_faults import assert_one_clean_line
from tests.httpservers import HttpTestServer, respond

PILLOW_NAMES = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}
# A big product photo with a GPS position, a transparent PNG, a small JPEG already compact.
BIG_PHOTO = images.make_jpeg(2400, 1600, "photo", 95, gps=True, icc=True)
TRANSPARENT_PNG = images.make_png(300, 200, "RGBA")
SMALL_JPEG = images.make_jpeg(160, 120, "photo", 20, gps=True)


def magic_format(data: bytes) -> str:
    """The format named by a file's first bytes."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:12] == b"ftypavif":
        return "avif"
    return "unknown"


def opened(url: str, output_format: str) -> tuple[Image.Image, bytes]:
    """The output behind a file:// URL, checked to be its format by its bytes, decoded."""
    data = file_of(url).read_bytes()
    assert magic_format(data) == output_format, url
    im = Image.open(io.BytesIO(data), formats=[PILLOW_NAMES[output_format]])
    im.load()
    return im, data


def finished_images(stdout: str) -> dict[tuple[str, int], dict[str, Any]]:
    """The ``image.finished`` JSON lines by (serial, position)."""
    return {
        (e["serial"], e["position"]): e
        for e in json_lines(stdout)
        if e["event"] == "image.finished"
    }


def test_avif_fit_and_target_size_give_real_files_within_the_limits(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    big = http_server.route("/big.jpg", respond(BIG_PHOTO))
    clear = http_server.route("/clear.png", respond(TRANSPARENT_PNG))
    small = http_server.route("/small.jpg", respond(SMALL_JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Big", [big]), ("2", "Clear", [clear, small])])
    out = tmp_path / "out.csv"
    flags = ["--format", "avif", "--max-width", "1200", "--target-size", "150"]

    done = imgdesk(
        "process", str(source), "-o", str(out), "--json", *flags, data_dir=tmp_path / "d"
    )

    assert done.returncode == 0, done.stderr
    events = finished_images(done.stdout)
    assert {e["output_format"] for e in events.values()} == {"avif"}
    rows = read_csv(out)
    urls = [url for row in rows[1:] for url in row[4].split(",")]
    assert len(urls) == 3 and all(url.endswith(".avif") for url in urls)
    notes = {e["output_url"]: e["note"] or "" for e in events.values()}
    assert set(notes) == set(urls)
    for url in urls:
        im, data = opened(url, "avif")
        assert im.width <= 1200
        assert not im.getexif() and "exif" not in im.info and "xmp" not in im.info
        assert len(data) <= 150 * 1024 or "over_target" in notes[url]
    big_image, _ = opened(rows[1][4], "avif")
    assert big_image.size == (1200, 800)  # scaled to fit, the aspect ratio kept
    assert big_image.info.get("icc_profile") == images.srgb_icc()  # the profile is kept
    clear_image, _ = opened(rows[2][4].split(",")[0], "avif")
    assert clear_image.mode == "RGBA"  # AVIF keeps transparency unless --flatten


def test_status_shows_the_output_settings_and_each_images_note(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    small = http_server.route("/small.jpg", respond(SMALL_JPEG))
    big = http_server.route("/big.jpg", respond(BIG_PHOTO))
    source = write_csv(tmp_path / "in.csv", [("1", "Small", [small]), ("2", "Big", [big])])
    data = tmp_path / "d"
    flags = ["--quality", "95", "--max-height", "400", "--target-size", "2"]

    done = imgdesk("process", str(source), "--json", *flags, data_dir=data)

    assert done.returncode == 0, done.stderr
    events = finished_images(done.stdout)
    # Already small and needing no scaling: the input itself, its metadata removed; the big
    # one does not fit in 2 KiB even at quality 10.
    assert (events["1", 1]["note"], events["2", 1]["note"]) == ("kept_original", "over_target")
    request_id = json_lines(done.stdout)[0]["request_id"]
    expected = OutputSettings(quality=95, max_height=400, target_size_kb=2)
    text = imgdesk("status", request_id, data_dir=data).stdout
    assert f"settings  {expected.describe()}\n" in text
    assert "JPEG q95, fit 400 high, ≤ 2 KiB, keep originals" in text
    assert f"{small}  (kept_original)" in text and f"{big}  (over_target)" in text
    [detail] = json_lines(imgdesk("status", request_id, "--json", data_dir=data).stdout)
    assert detail["output_settings"] == expected.to_dict()
    assert [(i["output_format"], i["note"]) for i in detail["images"]] == [
        ("jpeg", "kept_original"),
        ("jpeg", "over_target"),
    ]
    [listed] = json_lines(imgdesk("status", "--json", data_dir=data).stdout)
    assert listed["output_settings"] == expected.to_dict()


def test_a_retry_writes_with_the_settings_the_request_was_made_with(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    good = http_server.route("/good.jpg", respond(BIG_PHOTO))
    later_path = "/later.png"
    later = http_server.url(later_path)  # 404 on the first run
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [good, later])])
    data = tmp_path / "d"
    out = tmp_path / "out.csv"
    flags = ["--format", "webp", "--flatten", "--max-width", "600"]
    first = imgdesk("process", str(source), "-o", str(out), "--json", *flags, data_dir=data)
    assert first.returncode == 1
    request_id = json_lines(first.stdout)[0]["request_id"]
    http_server.route(later_path, respond(TRANSPARENT_PNG))

    again = imgdesk("retry", request_id, "--json", data_dir=data)

    assert again.returncode == 0, again.stderr
    [retried] = finished_images(again.stdout).values()
    assert retried["output_format"] == "webp"
    urls = read_csv(out)[1][4].split(",")
    assert all(url.endswith(".webp") for url in urls)
    im, _ = opened(urls[1], "webp")
    assert im.size == (300, 200) and im.mode == "RGB"  # flattened, as the request said


def test_unset_flags_take_the_windows_output_defaults(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    clear = http_server.route("/clear.png", respond(TRANSPARENT_PNG))
    small = http_server.route("/small.jpg", respond(SMALL_JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Clear", [clear]), ("2", "Small", [small])])
    data = tmp_path / "d"
    # What the window's Settings > Output saved: WebP at 70, always re-encoding.
    open_database(data / "imgdesk.sqlite3")
    repo = Repository()
    stored = OutputSettings(format="webp", quality=70, keep_original=False)
    repo.save_settings(repo.load_settings().replace(output=stored))
    close_database()

    done = imgdesk("process", str(source), "--json", data_dir=data)
    chosen = imgdesk(
        "process", str(source), "--json", "--format", "jpeg", "--keep-original", data_dir=data
    )

    assert done.returncode == 0 and chosen.returncode == 0, done.stderr + chosen.stderr
    defaults = finished_images(done.stdout)
    assert {e["output_format"] for e in defaults.values()} == {"webp"}
    assert defaults["2", 1]["note"] is None  # re-encoded, as stored
    overridden = finished_images(chosen.stdout)
    assert {e["output_format"] for e in overridden.values()} == {"jpeg"}
    assert overridden["2", 1]["note"] == "kept_original"
    requests = {
        r["request_id"]: r for r in json_lines(imgdesk("status", "--json", data_dir=data).stdout)
    }
    made = requests[json_lines(chosen.stdout)[0]["request_id"]]["output_settings"]
    assert made == stored.replace(format="jpeg", keep_original=True).to_dict()  # quality 70 kept


@pytest.mark.parametrize(
    ("flag", "value", "sentence"),
    [
        ("--quality", "0", "--quality must be a whole number from 1 to 100, not 0."),
        ("--quality", "101", "--quality must be a whole number from 1 to 100, not 101."),
        ("--quality", "high", "--quality must be a whole number from 1 to 100, not 'high'."),
        ("--format", "png", "--format must be one of jpeg, webp, avif, not 'png'."),
        ("--max-width", "0", "--max-width must be a whole number from 1 to 65535 or none"),
        ("--max-height", "-5", "--max-height must be a whole number from 1 to 65535 or none"),
        ("--target-size", "1.5", "--target-size must be a whole number from 1 to 1048576"),
    ],
)
def test_a_bad_flag_is_one_sentence_and_exit_2_before_anything_is_recorded(
    tmp_path: Path, http_server: HttpTestServer, flag: str, value: str, sentence: str
) -> None:
    url = http_server.route("/a.jpg", respond(SMALL_JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [url])])
    data = tmp_path / "d"

    done = imgdesk("process", str(source), f"{flag}={value}", data_dir=data)

    assert done.returncode == 2
    assert_one_clean_line(done.stderr, f"imgdesk: {sentence}")
    assert http_server.total_hits == 0
    assert imgdesk("status", "--json", data_dir=data).stdout == ""  # no request recorded
    assert not (tmp_path / "in-output.csv").exists()


def test_a_format_this_pillow_cannot_write_is_refused_before_any_work(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    url = http_server.route("/a.jpg", respond(SMALL_JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [url])])
    data = tmp_path / "d"
    # The real command, in a Python whose Pillow says it was built without AVIF.
    script = (
        "import sys\n"
        "from PIL import features\n"
        "checked = features.check\n"
        "features.check = lambda name: name != 'avif' and checked(name)\n"
        "from imgdesk.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["--data-dir", str(data), "process", str(source), "--format", "avif"]

    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 2
    assert_one_clean_line(done.stderr, "cannot write AVIF", "choose another format")
    assert http_server.total_hits == 0
    assert imgdesk("status", "--json", data_dir=data).stdout == ""


def test_the_help_says_what_each_output_flag_does(tmp_path: Path) -> None:
    shown = imgdesk("process", "--help", data_dir=tmp_path / "d").stdout
    flat = " ".join(shown.split())
    for words in (
        "--format FORMAT jpeg, webp or avif; the files end in .jpg, .webp or .avif",
        "--quality N 1-100 for the chosen format",
        "--max-width W scale down to at most W pixels wide, keeping the aspect ratio",
        "--max-height H scale down to at most H pixels high",
        "--target-size KB use the highest quality up to --quality whose file fits in KB KiB",
        "--keep-original, --no-keep-original store an input that already has the output format",
        "--flatten, --no-flatten put transparency onto white for WebP and AVIF too",
        "its retries use them",
    ):
        assert words in flat, words
