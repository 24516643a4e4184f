"""``imgdesk cancel REQUEST_ID`` (SPEC 6): whether a ``process`` or nothing runs the request.

Real ``imgdesk`` subprocesses against a real server on 127.0.0.1; runs are held in the middle
with a :class:`~tests.httpservers.Gate`, so the machine's speed decides nothing. The 2 s the
SPEC promises is measured and printed, not asserted: a busy machine must not fail the test.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imgdesk.core import handover
from tests.cli.test_cli import JPEG, imgdesk, json_lines, write_csv
from tests.cli.test_cli_faults import held_catalogue, image_states, start_held_run, status_json
from tests.httpservers import HttpTestServer, respond


def assert_no_cancel_note_left(data: Path) -> None:
    assert not list(data.glob("cancel-*")), list(data.iterdir())


@pytest.mark.timeout(240)
def test_cancel_stops_a_running_process_which_ends_cancelled_with_its_webhook(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data = tmp_path / "d"
    hook = http_server.route("/hook", respond(b"thanks", 200))
    run, gate = start_held_run(tmp_path, http_server, "--webhook", hook)
    request_id = run.request_id
    asked = time.monotonic()

    cancel = imgdesk("cancel", request_id[:8], data_dir=data)
    code = run.finish(timeout=20)
    print(f"process exited {time.monotonic() - asked:.2f} s after imgdesk cancel started")

    assert cancel.returncode == 0, cancel.stderr
    assert f"cancelled request {request_id}" in cancel.stderr
    assert code == 1, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    said = [line for line in run.stderr.splitlines() if "cancelled from another terminal" in line]
    assert len(said) == 1, run.stderr
    [finished] = [event for event in run.events if event["event"] == "request.finished"]
    assert (finished["status"], finished["succeeded"], finished["failed"]) == ("failed", 3, 12)
    assert image_states(data) == ["done"] * 3 + ["failed"] * 12
    shown = status_json(request_id, data)
    assert shown["status"] == "failed"
    assert {image["error_code"] for image in shown["images"][3:]} == {"cancelled"}
    [post] = [r for r in http_server.requests if r.path == "/hook"]
    payload = json.loads(post.body.decode())
    assert (payload["event"], payload["request_id"]) == ("request.failed", request_id)
    assert_no_cancel_note_left(data)
    gate.open()


@pytest.mark.timeout(240)
def test_cancel_with_nothing_running_cancels_in_the_database_and_retry_resumes(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data = tmp_path / "d"
    run, gate = start_held_run(tmp_path, http_server)
    request_id = run.request_id
    run.process.send_signal(signal.SIGTERM)
    assert run.finish() == 143
    assert status_json(request_id, data)["status"] == "pending"

    cancel = imgdesk("cancel", request_id, data_dir=data)

    assert cancel.returncode == 0, cancel.stderr
    assert "Traceback" not in cancel.stderr, cancel.stderr
    assert f"cancelled request {request_id}" in cancel.stderr
    assert "12 unfinished images cancelled" in cancel.stderr
    assert image_states(data) == ["done"] * 3 + ["failed"] * 12
    shown = status_json(request_id, data)
    assert (shown["status"], shown["succeeded"], shown["failed"]) == ("failed", 3, 12)
    assert {image["error_code"] for image in shown["images"][3:]} == {"cancelled"}
    text = imgdesk("status", request_id, data_dir=data).stdout
    assert "status    failed" in text
    assert text.count("cancelled: ") == 12, text
    assert_no_cancel_note_left(data)

    # Cancelled, not lost: retry fetches what was cancelled and nothing else.
    gate.open()
    http_server.reset_counters()
    again = imgdesk("retry", request_id, data_dir=data)
    assert again.returncode == 0, again.stderr
    assert image_states(data) == ["done"] * 15
    assert all(http_server.hits(f"/fast{i}.jpg") == 0 for i in range(3))


def test_cancel_of_a_finished_request_says_so_and_changes_nothing(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data = tmp_path / "d"
    a = http_server.route("/a.jpg", respond(JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [a])])
    done = imgdesk("process", str(source), "--json", data_dir=data)
    assert done.returncode == 0, done.stderr
    request_id = json_lines(done.stdout)[0]["request_id"]

    cancel = imgdesk("cancel", request_id, data_dir=data)

    assert cancel.returncode == 0, cancel.stderr
    assert cancel.stderr.strip() == (
        f"imgdesk: request {request_id} has already finished (completed); nothing to do."
    )
    assert status_json(request_id, data)["status"] == "completed"
    assert image_states(data) == ["done"]


def test_cancel_of_an_unknown_id_exits_2_as_status_does(tmp_path: Path) -> None:
    data = tmp_path / "d"
    cancel = imgdesk("cancel", "no-such-id", data_dir=data)
    status = imgdesk("status", "no-such-id", data_dir=data)

    assert cancel.returncode == 2
    assert cancel.stderr == status.stderr
    assert "no request with id 'no-such-id'" in cancel.stderr


@pytest.mark.timeout(240)
@pytest.mark.skipif(sys.platform == "win32", reason="the hand-over socket: Linux and macOS")
def test_cancel_asks_the_window_running_the_request(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data = tmp_path / "d"
    source, gate = held_catalogue(tmp_path, http_server)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # the window's QSettings: the test's own
    window = subprocess.Popen(
        [sys.executable, "-m", "imgdesk", "--data-dir", str(data), str(source)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (handover.socket_path(data).exists() and http_server.in_flight > 0):
            assert window.poll() is None, window.communicate()[1]
            assert time.monotonic() < deadline, "the window never got to work"
            time.sleep(0.05)
        with sqlite3.connect(data / "imgdesk.sqlite3", timeout=10) as connection:
            [(request_id,)] = connection.execute("SELECT id FROM request").fetchall()

        cancel = imgdesk("cancel", request_id[:8], data_dir=data, env=env)

        assert cancel.returncode == 0, cancel.stderr
        assert (
            cancel.stderr.strip() == f"imgdesk: the imgdesk window cancelled request {request_id}."
        )
        shown = status_json(request_id, data)
        assert shown["status"] == "failed"
        assert {image["status"] for image in shown["images"]} <= {"done", "failed"}
        assert "cancelled" in {image["error_code"] for image in shown["images"]}
        assert_no_cancel_note_left(data)
    finally:
        gate.open()
        window.send_signal(signal.SIGTERM)
        window.communicate(timeout=60)
