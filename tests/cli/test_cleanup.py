"""``imgdesk cleanup``, run as a real process on a data folder filled by real runs.

Requests are made "old" by setting ``finished_at`` in the SQLite file: no test waits days.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imgdesk.core.instance import DataDirLock
from tests.cli.test_cli import JPEG, file_of, imgdesk, json_lines, read_csv, write_csv
from tests.httpservers import HttpTestServer, respond

REPO_ROOT = Path(__file__).resolve().parents[2]
DAY_S = 24 * 3600


def processed(
    tmp_path: Path, http_server: HttpTestServer, data_dir: Path, name: str, *extra: str
) -> str:
    """Run ``imgdesk process`` on a small CSV named ``name``; returns the request id."""
    a = http_server.route("/a.jpg", respond(JPEG))
    b = http_server.route(f"/{name}-b.jpg", respond(JPEG))
    source = write_csv(tmp_path / f"{name}.csv", [("1", "Shirt", [a, b]), ("2", "Mug", [b])])
    output = tmp_path / f"{name}-out.csv"
    done = imgdesk("process", str(source), "-o", str(output), "--json", *extra, data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    return str(json_lines(done.stdout)[0]["request_id"])


def set_request(data_dir: Path, request_id: str, sql: str, *params: object) -> None:
    """Change the request's row directly in the database file (``sql`` is the SET part)."""
    with sqlite3.connect(data_dir / "imgdesk.sqlite3") as conn:
        conn.execute(f"UPDATE request SET {sql} WHERE id = ?", (*params, request_id))
    conn.close()


def finished_days_ago(data_dir: Path, request_id: str, days: float) -> None:
    set_request(data_dir, request_id, "finished_at = ?", time.time() - days * DAY_S)


def files_of(folder: Path) -> dict[str, int]:
    """The files in a request's storage folder and their sizes."""
    return {p.name: p.stat().st_size for p in folder.iterdir()} if folder.is_dir() else {}


def status_json(data_dir: Path, request_id: str) -> dict[str, object]:
    done = imgdesk("status", request_id, "--json", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    payload: dict[str, object] = json.loads(done.stdout)
    return payload


def test_cleanup_removes_only_old_finished_requests_files_and_export_says_so(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data_dir = tmp_path / "data"
    old = processed(tmp_path, http_server, data_dir, "old")
    unfinished = processed(tmp_path, http_server, data_dir, "unfinished")
    recent = processed(tmp_path, http_server, data_dir, "recent")
    images = data_dir / "images"
    finished_days_ago(data_dir, old, 40)
    # Long ago, but not finished (e.g. a crash before its end): its files are still needed.
    set_request(data_dir, unfinished, "status = 'pending', finished_at = NULL")
    finished_days_ago(data_dir, recent, 2)
    old_files = files_of(images / old)
    # Two images (the URL in two slots is stored once) and the output CSV's copy.
    assert "old-output.csv" in old_files and len(old_files) == 3
    kept = {rid: files_of(images / rid) for rid in (unfinished, recent)}

    # Refused while something processes in the data folder.
    lock = DataDirLock(data_dir)
    assert lock.acquire("imgdesk process")
    try:
        busy = imgdesk("cleanup", "--older-than", "30", data_dir=data_dir)
    finally:
        lock.release()
    assert busy.returncode == 2
    assert "is already processing in" in busy.stderr
    assert files_of(images / old) == old_files

    dry = imgdesk("cleanup", "--older-than", "30", "--dry-run", data_dir=data_dir)
    assert dry.returncode == 0, dry.stderr
    size = f"{sum(old_files.values()):,} bytes"  # measured: the files are on this computer
    listed, total = dry.stdout.splitlines()
    assert listed.startswith(f"{old}  finished ")
    assert listed.split()[3:] == ["3", "files", *size.split(), "old.csv"]
    assert (
        total
        == f"Would remove the files of 1 request: 3 files, {size} (dry run: nothing was removed)."
    )
    assert files_of(images / old) == old_files
    dry_json = imgdesk("cleanup", "--older-than", "30", "--dry-run", "--json", data_dir=data_dir)
    assert json_lines(dry_json.stdout) == [
        {
            "event": "cleanup.request",
            "request_id": old,
            "csv_name": "old.csv",
            "finished_at": listed.split()[2],
            "files": 3,
            "bytes": sum(old_files.values()),
            "bytes_exact": True,
            "removed": False,
        },
        {
            "event": "cleanup.finished",
            "dry_run": True,
            "requests": 1,
            "files": 3,
            "bytes": sum(old_files.values()),
            "bytes_exact": True,
            "failed": 0,
        },
    ]
    assert status_json(data_dir, old)["files_removed_at"] is None

    real = imgdesk("cleanup", "--older-than", "30", data_dir=data_dir)
    assert real.returncode == 0, real.stderr
    assert real.stdout.splitlines() == [listed, f"Removed the files of 1 request: 3 files, {size}."]
    assert not (images / old).exists()
    assert {rid: files_of(images / rid) for rid in (unfinished, recent)} == kept
    removed_at = status_json(data_dir, old)["files_removed_at"]
    assert isinstance(removed_at, str) and removed_at.endswith("Z")
    assert status_json(data_dir, recent)["files_removed_at"] is None

    again = imgdesk("cleanup", "--older-than", "30", data_dir=data_dir)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "No request that finished more than 30 days ago has files left.\n"

    status = imgdesk("status", old, data_dir=data_dir)
    assert f"\nfiles     removed on {removed_at}\n" in status.stdout
    assert "files     removed" not in imgdesk("status", recent, data_dir=data_dir).stdout

    out = tmp_path / "export.csv"
    export = imgdesk("export", old, "-o", str(out), data_dir=data_dir)
    assert export.returncode == 0, export.stderr
    assert export.stderr.splitlines()[-1] == (
        f"imgdesk: The files of this request were removed on {removed_at[:10]} by cleanup; "
        "its output URLs are left empty."
    )
    rows = read_csv(out)
    assert rows[0][-1] == "Output Image Urls"
    assert [row[-1] for row in rows[1:]] == [",", ""]  # two slots, then one, all empty
    recent_out = tmp_path / "recent-export.csv"
    export = imgdesk("export", recent, "-o", str(recent_out), data_dir=data_dir)
    assert export.returncode == 0 and "removed" not in export.stderr
    for url in read_csv(recent_out)[1][-1].split(","):
        assert file_of(url).is_file()  # a shared file (hard link) survives the old one's removal


def _run_with_read_only(folder: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with ``folder`` bind-mounted read-only (a private mount namespace)."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        pytest.skip("needs Linux and unshare(1) for a private read-only mount")
    isolate = (
        ["unshare", "--mount"]
        if os.geteuid() == 0
        else ["unshare", "--user", "--map-root-user", "--mount"]
    )
    mount = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"'
    shell = f'{mount} || exit 99; shift; exec "$@"'
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [*isolate, "sh", "-c", shell, "sh", str(folder), *command],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if done.returncode == 99 or (done.returncode != 0 and "unshare" in done.stderr):
        pytest.skip(f"cannot mount read-only here: {done.stderr.strip()}")
    return done


def test_a_storage_that_keeps_its_files_is_one_sentence_and_the_others_are_cleaned(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data_dir = tmp_path / "data"
    shop = tmp_path / "shop"
    first = processed(tmp_path, http_server, data_dir, "first")
    stuck = processed(tmp_path, http_server, data_dir, "stuck", "--storage", str(shop))
    finished_days_ago(data_dir, first, 50)
    finished_days_ago(data_dir, stuck, 40)
    stuck_files = files_of(shop / stuck)
    assert len(stuck_files) == 3

    done = _run_with_read_only(
        shop,
        sys.executable,
        "-m",
        "imgdesk",
        "--data-dir",
        str(data_dir),
        "cleanup",
        "--older-than",
        "30",
    )

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"imgdesk: the files of request {stuck} (stuck.csv) could not be removed: 3 of its 3 "
        f"files are still in {shop} after removing them (is it read-only?)."
    ]
    assert done.stdout.splitlines()[0].startswith(f"{first}  finished ")
    assert done.stdout.splitlines()[-1].startswith("Removed the files of 1 request: 3 files, ")
    assert not (data_dir / "images" / first).exists()
    assert files_of(shop / stuck) == stuck_files
    assert status_json(data_dir, stuck)["files_removed_at"] is None

    # Once the folder can be written again, the next cleanup takes what was left.
    later = imgdesk("cleanup", "--older-than", "30", data_dir=data_dir)
    assert later.returncode == 0, later.stderr
    assert later.stdout.splitlines()[0].startswith(f"{stuck}  finished ")
    assert not (shop / stuck).exists()


@pytest.mark.parametrize("days", ["0", "abc", "-3", "36501"])
def test_a_wrong_older_than_is_one_sentence(tmp_path: Path, days: str) -> None:
    done = imgdesk("cleanup", "--older-than", days, data_dir=tmp_path / "data")

    assert done.returncode == 2
    assert done.stderr == (
        f"imgdesk: --older-than must be a whole number of days from 1 to 36500, not {days!r}.\n"
    )


def test_with_retention_on_process_cleans_up_first_and_a_retry_stores_the_files_again(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data_dir = tmp_path / "d"
    old = processed(tmp_path, http_server, data_dir, "old")
    finished_days_ago(data_dir, old, 40)
    with sqlite3.connect(data_dir / "imgdesk.sqlite3") as conn:
        conn.execute(
            "INSERT OR REPLACE INTO key_value VALUES ('settings', ?)",
            (json.dumps({"retention_days": 30}),),
        )
    conn.close()

    new = processed(tmp_path, http_server, data_dir, "new")

    assert files_of(data_dir / "images" / old) == {}
    assert files_of(data_dir / "images" / new) != {}
    assert status_json(data_dir, old)["files_removed_at"] is not None
    # A retry brings the files back (they vanished: fetched again), and the mark goes.
    again = imgdesk("retry", old, data_dir=data_dir)
    assert again.returncode == 0, again.stderr
    assert len(files_of(data_dir / "images" / old)) == 3  # two images and the CSV copy
    assert status_json(data_dir, old)["files_removed_at"] is None
    rows = read_csv(tmp_path / "old-out.csv")
    assert all(row[-1] for row in rows[1:])  # the URLs are back in the export
