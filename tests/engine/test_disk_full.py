"""A full disk holds the request with a clear message, and it carries on once there is room."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(90)
def test_disk_full_pauses_the_request_and_resumes_when_space_is_back(tmp_path: Path) -> None:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        pytest.skip("needs Linux and unshare(1) to mount a private tmpfs")
    data_dir = tmp_path / "data"
    (data_dir / "images").mkdir(parents=True)
    isolate = (
        ["unshare", "--mount"]
        if os.geteuid() == 0
        else ["unshare", "--user", "--map-root-user", "--mount"]
    )
    shell = 'mount -t tmpfs -o size=1m imgdesk-test "$1" || exit 99; shift; exec "$@"'
    command = [*isolate, "sh", "-c", shell, "sh", str(data_dir / "images")]
    command += [sys.executable, "-m", "tests.engine.disk_full_scenario", str(data_dir), "60000"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=80, env=env, cwd=REPO_ROOT
    )
    if done.returncode == 99 or (done.returncode != 0 and "unshare" in done.stderr):
        pytest.skip(f"cannot mount a private tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])

    assert len(seen["held"]) == 1
    held = seen["held"][0]
    assert held["message"].startswith("Paused: The disk is full")
    assert "carries on by itself" in held["message"]
    assert held["request_error"] == held["message"]
    # One image failed with `storage`; the ones after it were held, not failed.
    assert held["storage_failed"] == 1
    assert held["other_failed"] == 0
    assert 0 < held["done"] < 24
    assert not [name for name in held["files"] if name.endswith(".part")]
    assert len(held["files"]) == held["done"]  # no file without its done row

    assert seen["status"] == "completed"
    assert seen["done"] == 24
    assert seen["files"] == 24
