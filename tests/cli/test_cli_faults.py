"""Faults at the command line (SPEC 6): signals, output places, inputs, data folder, secrets.

Every test runs the real ``imgdesk`` in a subprocess against a real server on 127.0.0.1.
Runs are held in the middle with a :class:`~tests.httpservers.Gate`, never with a delay,
so the machine's speed decides nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import JPEG, file_of, imgdesk, json_lines, read_csv, write_csv
from tests.httpservers import Gate, HttpTestServer, gated, respond

IN_FLIGHT = ("downloading", "compressing")


class Running:
    """``imgdesk`` running in the background, its JSON lines collected as they come."""

    def __init__(self, *args: str, data_dir: Path, cwd: Path | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "imgdesk", "--data-dir", str(data_dir), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self.events: list[dict[str, Any]] = []
        self.stderr = ""
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_events, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_events(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.events.append(json.loads(line))
                self._changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
        """Wait until ``condition()`` holds (checked on every event and every 50 ms)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.process.kill()
                    raise AssertionError(f"gave up waiting for {what}: {self.stderr}")
                self._changed.wait(0.05)

    def finished_images(self) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == "image.finished"]

    @property
    def request_id(self) -> str:
        self.wait_for(lambda: bool(self.events), "request.created")
        return str(self.events[0]["request_id"])

    def finish(self, timeout: float = 60) -> int:
        """The exit code; the process is killed (and the test fails) if it does not end."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"imgdesk did not exit within {timeout} s") from None
        for reader in self._readers:
            reader.join(10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        return code


def image_states(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "imgdesk.sqlite3", timeout=10) as connection:
        return [row[0] for row in connection.execute("SELECT status FROM image ORDER BY id")]


def status_json(request_id: str, data_dir: Path) -> dict[str, Any]:
    done = imgdesk("status", request_id, "--json", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    [payload] = json_lines(done.stdout)
    return payload


def held_catalogue(
    tmp_path: Path, server: HttpTestServer, fast: int = 3, held: int = 12
) -> tuple[Path, Gate]:
    """A CSV whose first ``fast`` images answer at once and the rest wait for the gate."""
    gate = Gate()
    urls = [server.route(f"/fast{i}.jpg", respond(JPEG)) for i in range(fast)]
    urls += [server.route(f"/held{i}.jpg", gated(gate, respond(JPEG))) for i in range(held)]
    rows = [(str(n + 1), f"P{n + 1}", [url]) for n, url in enumerate(urls)]
    return write_csv(tmp_path / "in.csv", rows), gate


def start_held_run(
    tmp_path: Path, server: HttpTestServer, *extra: str, cwd: Path | None = None
) -> tuple[Running, Gate]:
    """``process --json`` with its fast images finished and held ones on the wire."""
    source, gate = held_catalogue(tmp_path, server)
    run = Running("process", str(source), "--json", *extra, data_dir=tmp_path / "d", cwd=cwd)
    run.wait_for(
        lambda: len(run.finished_images()) == 3 and server.in_flight > 0,
        "the fast images to finish while held ones are in flight",
    )
    return run, gate


def assert_one_clean_line(stderr: str, *words: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for word in words:
        assert word in lines[0], stderr


# --- Ctrl-C and SIGTERM ----------------------------------------------------------------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("signum", "code", "name"),
    [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")],
)
def test_a_signal_mid_run_stops_cleanly_and_retry_completes(
    tmp_path: Path, http_server: HttpTestServer, signum: int, code: int, name: str
) -> None:
    data = tmp_path / "d"
    run, gate = start_held_run(tmp_path, http_server)
    request_id = run.request_id

    run.process.send_signal(signum)

    assert run.finish() == code
    assert_one_clean_line(run.stderr, f"interrupted by {name}", f"imgdesk retry {request_id}")
    states = image_states(data)
    assert not set(states) & set(IN_FLIGHT), states
    assert states.count("done") == 3
    shown = status_json(request_id, data)
    assert shown["status"] == "pending"
    assert shown["error"] == f"Interrupted by {name}; imgdesk retry {request_id} resumes it."
    text = imgdesk("status", request_id, data_dir=data).stdout
    assert f"pending (Interrupted by {name};" in text

    gate.open()
    http_server.reset_counters()
    again = imgdesk("retry", request_id, "--json", data_dir=data)

    assert again.returncode == 0, again.stderr
    assert image_states(data) == ["done"] * 15
    assert all(http_server.hits(f"/fast{i}.jpg") == 0 for i in range(3))
    assert all(http_server.hits(f"/held{i}.jpg") == 1 for i in range(12))
    assert status_json(request_id, data)["error"] is None


@pytest.mark.timeout(240)
def test_ctrl_c_again_while_stopping_exits_at_once(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data = tmp_path / "d"
    run, gate = start_held_run(tmp_path, http_server)
    request_id = run.request_id

    for _ in range(3):
        run.process.send_signal(signal.SIGINT)

    assert run.finish() == 130
    assert "Traceback" not in run.stderr, run.stderr
    gate.open()
    again = imgdesk("retry", request_id, data_dir=data)
    assert again.returncode == 0, again.stderr
    assert image_states(data) == ["done"] * 15


@pytest.mark.timeout(240)
def test_ctrl_c_while_the_webhook_receiver_hangs_keeps_the_event_owed(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data = tmp_path / "d"
    never = Gate()
    hook = http_server.route("/hook", gated(never, respond(b"thanks")))
    image = http_server.route("/a.jpg", respond(JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [image])])
    run = Running("process", str(source), "--json", "--webhook", hook, data_dir=data)
    run.wait_for(lambda: http_server.hits("/hook") == 1, "the webhook POST", timeout=90)

    run.process.send_signal(signal.SIGINT)

    # The receiver would hold each attempt for its whole deadline; the stop waits for none.
    assert run.finish(timeout=60) == 130
    assert_one_clean_line(run.stderr, "interrupted by Ctrl-C", "webhook")
    shown = status_json(run.request_id, data)
    assert shown["status"] == "completed"
    [delivery] = shown["webhook_deliveries"]
    assert delivery["status"] == "pending"  # still owed, for the next run


# --- the output CSV's place, checked before any download ----------------------------------


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("no/such/dir/out.csv", "does not exist"),
        (".", "is a folder"),
        ("in.csv", "is the input file itself"),
        ("./in.csv", "is the input file itself"),
        ("link.csv", "is the input file itself"),
    ],
)
def test_an_unusable_output_is_refused_before_any_download(
    tmp_path: Path, http_server: HttpTestServer, output: str, words: str
) -> None:
    image = http_server.route("/a.jpg", respond(JPEG))
    hook = http_server.route("/hook", respond(b"thanks"))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [image])])
    (tmp_path / "link.csv").symlink_to(source)
    before = source.read_bytes()

    done = imgdesk(
        "process", "in.csv", "-o", output, "--webhook", hook, data_dir=tmp_path / "d", cwd=tmp_path
    )

    assert done.returncode == 2
    assert_one_clean_line(done.stderr, words)
    assert http_server.total_hits == 0
    assert source.read_bytes() == before
    assert "No requests yet" in imgdesk("status", data_dir=tmp_path / "d").stdout


def run_with_read_only_folder(
    folder: Path, *args: str, data_dir: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``imgdesk ARGS`` with ``folder`` a read-only tmpfs in a private mount namespace."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        pytest.skip("needs Linux and unshare(1) to mount a private read-only tmpfs")
    folder.mkdir(exist_ok=True)
    isolate = (
        ["unshare", "--mount"]
        if os.geteuid() == 0
        else ["unshare", "--user", "--map-root-user", "--mount"]
    )
    shell = 'mount -t tmpfs -o ro imgdesk-test "$1" || exit 99; shift; exec "$@"'
    command = [*isolate, "sh", "-c", shell, "sh", str(folder), sys.executable, "-m", "imgdesk"]
    done = subprocess.run(
        [*command, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=120
    )
    if done.returncode == 99 or (done.returncode != 0 and "unshare" in done.stderr):
        pytest.skip(f"cannot mount a private tmpfs here: {done.stderr.strip()}")
    return done


def test_a_read_only_output_place_is_refused_for_process_and_export(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data = tmp_path / "d"
    image = http_server.route("/a.jpg", respond(JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [image])])
    read_only = tmp_path / "ro"

    refused = run_with_read_only_folder(
        read_only, "process", str(source), "-o", str(read_only / "out.csv"), data_dir=data
    )

    assert refused.returncode == 2
    assert_one_clean_line(refused.stderr, "read-only file system", str(read_only))
    assert http_server.total_hits == 0
    first = imgdesk("process", str(source), "--json", data_dir=data)
    assert first.returncode == 0, first.stderr
    request_id = json_lines(first.stdout)[0]["request_id"]
    exported = run_with_read_only_folder(
        read_only, "export", request_id, "-o", str(read_only / "out.csv"), data_dir=data
    )
    assert exported.returncode == 2
    assert_one_clean_line(exported.stderr, "read-only file system")


@pytest.mark.timeout(240)
def test_an_output_that_fails_late_is_said_and_the_webhook_still_goes(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    hook = http_server.route("/hook", respond(b"thanks"))
    folder = tmp_path / "out"
    folder.mkdir()
    run, gate = start_held_run(
        tmp_path, http_server, "-o", str(folder / "out.csv"), "--webhook", hook
    )
    # The folder replaced by a file while images download: nothing can be written there.
    shutil.rmtree(folder)
    folder.write_bytes(b"in the way")

    gate.open()

    assert run.finish() == 1
    assert "Traceback" not in run.stderr, run.stderr
    assert "the output CSV could not be written" in run.stderr
    assert f"imgdesk export {run.request_id}" in run.stderr
    assert run.events[-1]["event"] == "webhook.attempt"
    [finished] = [event for event in run.events if event["event"] == "request.finished"]
    assert (finished["status"], finished["output_csv"]) == ("completed", None)
    assert http_server.hits("/hook") == 1
    posted = json.loads(http_server.requests[-1].body)
    assert posted["event"] == "request.completed"


# --- inputs that are not plain files ---------------------------------------------------------


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_input_is_read_up_to_the_limit_and_refused(tmp_path: Path) -> None:
    done = imgdesk("process", "/dev/zero", "-o", str(tmp_path / "out.csv"), data_dir=tmp_path)
    assert done.returncode == 2
    assert_one_clean_line(done.stderr, "larger than 200 MB")


def test_a_pipe_without_o_is_asked_where_the_output_goes(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    image = http_server.route("/a.jpg", respond(JPEG))
    csv_text = write_csv(tmp_path / "in.csv", [("1", "Shirt", [image])]).read_text()
    done = subprocess.run(
        [sys.executable, "-m", "imgdesk", "--data-dir", str(tmp_path / "d")]
        + ["process", "/dev/stdin"],
        input=csv_text,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert_one_clean_line(done.stderr, "not a regular file", "-o")
    assert http_server.total_hits == 0


# --- where retry writes without -o -------------------------------------------------------


@pytest.mark.timeout(240)
def test_retry_without_o_writes_next_to_the_input_not_into_the_current_folder(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data = tmp_path / "d"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run, gate = start_held_run(tmp_path, http_server)
    request_id = run.request_id
    run.process.kill()  # a crash: no output CSV was ever written
    run.finish()
    gate.open()

    again = imgdesk("retry", request_id, data_dir=data, cwd=elsewhere)

    assert again.returncode == 0, again.stderr
    output = tmp_path / "in-output.csv"
    assert str(output) in again.stderr
    assert list(elsewhere.iterdir()) == []
    rows = read_csv(output)
    assert len(rows) == 16 and all(file_of(row[4]).is_file() for row in rows[1:])


@pytest.mark.timeout(240)
def test_retry_without_o_writes_into_the_request_folder_when_the_input_is_gone(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data = tmp_path / "d"
    run, gate = start_held_run(tmp_path, http_server, cwd=tmp_path)
    request_id = run.request_id
    run.process.send_signal(signal.SIGINT)
    assert run.finish() == 130
    (tmp_path / "in.csv").unlink()
    gate.open()

    again = imgdesk("retry", request_id, data_dir=data, cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    output = data / "images" / request_id / "in-output.csv"
    assert str(output) in again.stderr
    assert len(read_csv(output)) == 16
    assert sorted(path.name for path in tmp_path.iterdir()) == ["d"]


# --- the data folder -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "process", "export", "retry"])
def test_a_database_that_is_not_imgdesks_is_one_sentence_and_left_untouched(
    tmp_path: Path, command: str
) -> None:
    data = tmp_path / "d"
    data.mkdir()
    database = data / "imgdesk.sqlite3"
    database.write_bytes(b"these are not the rows you are looking for\n" * 100)
    before = database.read_bytes()
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", ["http://127.0.0.1:9/a.jpg"])])
    args = {
        "status": ["status"],
        "process": ["process", str(source)],
        "export": ["export", "abc", "-o", str(tmp_path / "out.csv")],
        "retry": ["retry", "abc"],
    }[command]

    done = imgdesk(*args, data_dir=data)

    assert done.returncode == 2
    assert_one_clean_line(done.stderr, str(database))
    assert database.read_bytes() == before


def test_a_data_folder_that_is_a_file_is_one_sentence(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.write_text("not a folder")
    done = imgdesk("status", data_dir=data)
    assert done.returncode == 2
    assert_one_clean_line(done.stderr, str(data))


@pytest.mark.timeout(240)
def test_the_database_vanishing_mid_run_stops_with_its_message_and_exit_1(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data = tmp_path / "d"
    run, gate = start_held_run(tmp_path, http_server)
    for suffix in ("", "-wal", "-shm"):
        (data / f"imgdesk.sqlite3{suffix}").unlink(missing_ok=True)

    gate.open()

    assert run.finish() == 1
    assert_one_clean_line(run.stderr, "was deleted or replaced")


# --- secrets ---------------------------------------------------------------------------------


def test_passwords_in_urls_never_reach_status_or_json_lines(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data = tmp_path / "d"
    http_server.route("/a.jpg", respond(JPEG))
    host = http_server.base_url.removeprefix("http://")
    good = f"http://shop:s3cret-img@{host}/a.jpg?size=big"
    gone = f"http://shop:s3cret-img@{host}/gone.jpg"
    http_server.route("/hook", respond(b"thanks"))
    hook = f"http://hooks:s3cret-hook@{host}/hook"
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [good, gone])], extra=False)

    done = imgdesk("process", str(source), "--json", "--webhook", hook, data_dir=data)

    assert done.returncode == 1, done.stderr
    request_id = json_lines(done.stdout)[0]["request_id"]
    shown = [done.stdout, done.stderr]
    for args in (["status"], ["status", "--json"], ["status", request_id]):
        shown.append(imgdesk(*args, data_dir=data).stdout)
    detail = imgdesk("status", request_id, "--json", data_dir=data).stdout
    shown.append(detail)
    for text in shown:
        assert "s3cret" not in text, text
    urls = [image["url"] for image in json_lines(detail)[0]["images"]]
    assert urls == [f"http://***@{host}/a.jpg?size=big", f"http://***@{host}/gone.jpg"]
    finished = [e["url"] for e in json_lines(done.stdout) if e["event"] == "image.finished"]
    assert sorted(finished) == sorted(urls)
    # The output CSV is the user's own spreadsheet: its URLs stay exactly as given.
    assert read_csv(tmp_path / "in-output.csv")[1][2] == f"{good},{gone}"
    assert http_server.hits("/hook") == 1
