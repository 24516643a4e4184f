"""The headless command line, run as a real process against a real server."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests import images
from tests.httpservers import Gate, HttpTestServer, delayed, gated, respond

JPEG = images.make_jpeg(160, 120, "photo", 90)


def imgdesk(*args: str, data_dir: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the real ``imgdesk`` command."""
    return subprocess.run(
        [sys.executable, "-m", "imgdesk", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def write_csv(path: Path, rows: list[tuple[str, str, list[str]]], extra: bool = True) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["S. No.", "Product Name", "Input Image Urls"] + (["Price"] if extra else [])
        )
        for serial, name, urls in rows:
            writer.writerow([serial, name, ",".join(urls)] + (["=1+2"] if extra else []))
    return path


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def file_of(url: str) -> Path:
    assert url.startswith("file://"), url
    return Path(unquote(urlsplit(url).path))


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_process_writes_the_output_csv_and_exits_0(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    b = http_server.route("/b.jpg", respond(JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [a, b]), ("2", "Mug", [b])])
    out = tmp_path / "out.csv"

    done = imgdesk("process", str(source), "-o", str(out), "--json", data_dir=tmp_path / "d")

    assert done.returncode == 0, done.stderr
    events = json_lines(done.stdout)
    assert events[0]["event"] == "request.created"
    assert events[0]["total_images"] == 3
    request_id = events[0]["request_id"]
    finished = [e for e in events if e["event"] == "image.finished"]
    assert len(finished) == 3
    assert set(finished[0]) == {
        "event",
        "request_id",
        "serial",
        "position",
        "url",
        "status",
        "error_code",
        "error",
        "output_url",
        "output_format",
        "note",
    }
    assert {(e["output_format"], e["note"]) for e in finished} == {("jpeg", None)}
    assert events[-1] == {
        "event": "request.finished",
        "request_id": request_id,
        "status": "completed",
        "succeeded": 3,
        "failed": 0,
        "output_csv": out.absolute().as_uri(),
    }
    rows = read_csv(out)
    assert rows[0] == ["S. No.", "Product Name", "Input Image Urls", "Price", "Output Image Urls"]
    assert rows[1][3] == "'=1+2"  # formula neutralised
    outputs = rows[1][4].split(",")
    assert len(outputs) == 2
    for url in outputs + [rows[2][4]]:
        assert url.startswith("file://")
        assert file_of(url).is_file()
    assert http_server.hits("/b.jpg") == 1  # the same URL in one request is fetched once


def test_a_failed_image_exits_1_and_leaves_its_slot_empty(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    gone = http_server.url("/gone.jpg")
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [gone, a])])
    out = tmp_path / "out.csv"

    done = imgdesk("process", str(source), "-o", str(out), data_dir=tmp_path / "d")

    assert done.returncode == 1
    assert "404" in done.stderr
    cell = read_csv(out)[1][4]
    empty, stored = cell.split(",")
    assert empty == "" and stored.startswith("file://")


def test_rejected_file_exits_2_with_the_problem_named(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("Name,Urls\nShirt,http://x/a.jpg\n")
    done = imgdesk("process", str(source), data_dir=tmp_path / "d")
    assert done.returncode == 2
    assert "S. No." in done.stderr
    assert "rejected" in done.stderr


def test_invalid_rows_exit_2_unless_skipped(tmp_path: Path, http_server: HttpTestServer) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    source = write_csv(
        tmp_path / "in.csv",
        [("1", "Shirt", [a]), ("2", "", [a]), ("3", "Hat", ["ftp://x/y.jpg"])],
    )
    out = tmp_path / "out.csv"
    refused = imgdesk("process", str(source), "-o", str(out), data_dir=tmp_path / "d")
    assert refused.returncode == 2
    assert "line 3" in refused.stderr and "line 4" in refused.stderr
    assert not out.exists()

    done = imgdesk(
        "process", str(source), "-o", str(out), "--skip-invalid", data_dir=tmp_path / "d"
    )
    assert done.returncode == 0, done.stderr
    rows = read_csv(out)
    assert [row[0] for row in rows[1:]] == ["1", "2", "3"]  # every input row, in order
    assert rows[1][4].startswith("file://")
    assert rows[2][4] == "" and rows[3][4] == ""


def test_status_export_and_retry_share_the_windows_operations(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    flaky_path = "/later.jpg"
    flaky = http_server.url(flaky_path)
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [a, flaky])])
    data = tmp_path / "d"
    first = imgdesk("process", str(source), "--json", data_dir=data)
    assert first.returncode == 1
    request_id = json_lines(first.stdout)[0]["request_id"]
    assert (tmp_path / "in-output.csv").is_file()  # default output next to the input

    listing = imgdesk("status", data_dir=data)
    assert request_id in listing.stdout and "failed" in listing.stdout
    detail = json_lines(imgdesk("status", request_id[:8], "--json", data_dir=data).stdout)[0]
    assert [(i["status"], i["error_code"]) for i in detail["images"]] == [
        ("done", None),
        ("failed", "http_404"),
    ]

    http_server.route(flaky_path, respond(JPEG))
    http_server.reset_counters()
    again = imgdesk("retry", request_id, "--json", data_dir=data)
    assert again.returncode == 0, again.stderr
    assert http_server.hits("/a.jpg") == 0 and http_server.hits(flaky_path) == 1
    assert json_lines(again.stdout)[-1]["status"] == "completed"

    exported = tmp_path / "exported.csv"
    done = imgdesk("export", request_id, "-o", str(exported), data_dir=data)
    assert done.returncode == 0
    assert all(u.startswith("file://") for u in read_csv(exported)[1][4].split(","))


def test_unknown_request_id_is_a_clear_error(tmp_path: Path) -> None:
    done = imgdesk("status", "no-such-id", data_dir=tmp_path / "d")
    assert done.returncode == 2
    assert "no request with id" in done.stderr


def test_data_dir_comes_from_the_environment_too(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [a])])
    env = {**os.environ, "IMGDESK_DATA_DIR": str(tmp_path / "env-data")}
    done = subprocess.run(
        [sys.executable, "-m", "imgdesk", "process", str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "env-data" / "imgdesk.sqlite3").is_file()
    assert (tmp_path / "env-data" / "logs" / "imgdesk.log").read_text().count("done") >= 1


@pytest.mark.timeout(180)
def test_kill_9_mid_request_then_retry_fetches_no_finished_image_again(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    count = 300
    urls = [http_server.route(f"/p{i}.jpg", delayed(0.02, respond(JPEG))) for i in range(count)]
    source = write_csv(
        tmp_path / "big.csv", [(str(i + 1), f"P{i}", [u]) for i, u in enumerate(urls)]
    )
    data = tmp_path / "d"
    out = tmp_path / "out.csv"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imgdesk",
            "--data-dir",
            str(data),
            "process",
            str(source),
            "-o",
            str(out),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    created = json.loads(process.stdout.readline())
    request_id = created["request_id"]
    database = data / "imgdesk.sqlite3"

    def done_urls() -> set[str]:
        with sqlite3.connect(database, timeout=10) as connection:
            rows = connection.execute(
                "SELECT url FROM image WHERE request_id = ? AND status = 'done'", (request_id,)
            )
            return {row[0] for row in rows}

    deadline = time.monotonic() + 60
    while len(done_urls()) < count // 3:
        assert time.monotonic() < deadline, "the first run made no progress"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    process.stdout.close()

    finished_before = done_urls()
    assert count // 3 <= len(finished_before) < count
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    http_server.reset_counters()

    again = imgdesk("retry", request_id, "-o", str(out), data_dir=data)

    assert again.returncode == 0, again.stderr
    for i in range(count):
        path = f"/p{i}.jpg"
        was_done = urls[i] in finished_before
        assert http_server.hits(path) == (0 if was_done else 1), path
    rows = read_csv(out)
    assert len(rows) == count + 1
    assert all(file_of(row[4]).is_file() for row in rows[1:])


def test_process_delivers_the_signed_webhook_before_exiting(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    hook = http_server.route("/hook", respond(b"thanks", 200))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [a])])
    secret = "plain-secret"

    done = imgdesk(
        "process",
        str(source),
        "--json",
        "--webhook",
        hook,
        "--webhook-secret",
        secret,
        data_dir=tmp_path / "d",
    )

    assert done.returncode == 0, done.stderr
    events = json_lines(done.stdout)
    last = events[-1]
    assert (last["event"], last["status_code"], last["error"]) == ("webhook.attempt", 200, None)
    posts = [r for r in http_server.requests if r.path == "/hook"]
    assert len(posts) == 1
    post = posts[0]
    body = post.body.decode()
    payload = json.loads(body)
    assert payload["event"] == "request.completed"
    assert payload["request_id"] == events[0]["request_id"]
    assert (payload["total_images"], payload["succeeded"], payload["failed"]) == (1, 1, 0)
    assert payload["output_csv"] == (tmp_path / "in-output.csv").absolute().as_uri()
    headers = {k.lower(): v for k, v in post.headers.items()}
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    assert headers["webhook-signature"] == "v1," + expected.decode()

    status = json_lines(
        imgdesk("status", payload["request_id"], "--json", data_dir=tmp_path / "d").stdout
    )[0]
    [delivery] = status["webhook_deliveries"]
    assert (delivery["webhook_id"], delivery["status"]) == (headers["webhook-id"], "delivered")
    assert [a["status_code"] for a in delivery["attempts"]] == [200]
    text = imgdesk("status", payload["request_id"], data_dir=tmp_path / "d").stdout
    assert "webhook   request.completed delivered" in text


def test_a_bad_webhook_url_is_rejected_before_any_work(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", ["http://127.0.0.1:9/a.jpg"])])
    done = imgdesk("process", str(source), "--webhook", "ftp://x/hook", data_dir=tmp_path / "d")
    assert done.returncode == 2
    assert "--webhook" in done.stderr


def test_a_second_processing_run_on_the_same_data_dir_is_refused_clearly(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    # The first run is held in the middle until the second one has been refused.
    gate = Gate()
    urls = [http_server.route(f"/p{i}.jpg", gated(gate, respond(JPEG))) for i in range(10)]
    source = write_csv(tmp_path / "in.csv", [(str(i), f"P{i}", [u]) for i, u in enumerate(urls)])
    data = tmp_path / "d"
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imgdesk",
            "--data-dir",
            str(data),
            "process",
            str(source),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert first.stdout is not None
    request_id = json.loads(first.stdout.readline())["request_id"]

    second = imgdesk("process", str(source), data_dir=data)
    assert second.returncode == 2
    assert "is already processing" in second.stderr
    # Reading works beside the running one.
    status = imgdesk("status", request_id, data_dir=data)
    assert status.returncode == 0 and request_id in status.stdout
    exported = imgdesk("export", request_id, "-o", str(tmp_path / "partial.csv"), data_dir=data)
    assert exported.returncode == 0

    gate.open()
    first.stdout.read()
    first.stdout.close()
    assert first.wait(60) == 0
