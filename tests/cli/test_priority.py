"""``imgdesk process --priority`` on this computer, and ``imgdesk status`` showing it (SPEC 11).

The real ``imgdesk`` in subprocesses, against a real server on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imgdesk.core.db import close_database, open_database
from imgdesk.core.paths import database_path
from imgdesk.core.repository import Repository
from tests.cli.test_cli import JPEG, imgdesk, json_lines, write_csv
from tests.cli.test_cli_faults import assert_one_clean_line
from tests.httpservers import HttpTestServer, respond

pytestmark = pytest.mark.timeout(180)


def test_process_with_high_priority_records_it_and_status_shows_it(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    data = tmp_path / "data"
    shirt = http_server.route("/shirt.jpg", respond(JPEG))
    mug = http_server.route("/mug.jpg", respond(JPEG))
    urgent = write_csv(tmp_path / "urgent.csv", [("1", "Shirt", [shirt])])
    usual = write_csv(tmp_path / "usual.csv", [("1", "Mug", [mug])])

    done = imgdesk("process", str(urgent), "--priority", "HIGH", "--json", data_dir=data)
    assert done.returncode == 0, done.stderr
    high_id = json_lines(done.stdout)[0]["request_id"]
    done = imgdesk("process", str(usual), "--json", data_dir=data)
    assert done.returncode == 0, done.stderr
    normal_id = json_lines(done.stdout)[0]["request_id"]

    listed = imgdesk("status", data_dir=data)
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert lines[high_id].endswith("urgent.csv  (high priority)")
    assert lines[normal_id].endswith("usual.csv")  # normal is not worth a word

    detail = imgdesk("status", high_id[:8], data_dir=data)
    assert "\npriority  high\n" in detail.stdout
    assert "priority" not in imgdesk("status", normal_id, data_dir=data).stdout
    as_json = json_lines(imgdesk("status", "--json", data_dir=data).stdout)
    assert {entry["request_id"]: entry["priority"] for entry in as_json} == {
        high_id: "high",
        normal_id: "normal",
    }

    open_database(database_path(data))
    try:
        stored = Repository().get_request(high_id)
        assert stored is not None and stored.priority == "high"
    finally:
        close_database()


def test_an_unknown_priority_is_one_sentence_before_anything_is_recorded(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", ["http://127.0.0.1:9/a.jpg"])])
    done = imgdesk("process", str(source), "--priority", "urgent", data_dir=tmp_path / "data")
    assert done.returncode == 2
    assert_one_clean_line(done.stderr, "--priority must be high, normal or low.")
    assert "No requests yet" in imgdesk("status", data_dir=tmp_path / "data").stdout
