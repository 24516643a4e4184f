"""``--storage DEST`` on process and retry: the outputs go there, and the request keeps it."""

from __future__ import annotations

import json
from pathlib import Path

from tests import images
from tests.cli.test_cli import file_of, imgdesk, json_lines, read_csv, write_csv
from tests.httpservers import HttpTestServer, respond, sequence

JPEG = images.make_jpeg(160, 120, "photo", 90)


def test_process_stores_into_the_folder_given_and_retry_keeps_it(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    fine = http_server.route("/fine.jpg", respond(JPEG))
    flaky = http_server.route("/flaky.jpg", sequence(respond(b"", 404), respond(JPEG)))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [fine]), ("2", "Mug", [flaky])])
    outputs = tmp_path / "published"
    data_dir = tmp_path / "d"

    first = imgdesk("process", str(source), "--storage", str(outputs), "--json", data_dir=data_dir)

    assert first.returncode == 1, first.stderr  # the 404 fails for good
    request_id = json_lines(first.stdout)[0]["request_id"]
    stored = sorted(path.name for path in (outputs / request_id).iterdir())
    assert stored == ["0001_shirt_1.jpg", "in-output.csv"]
    assert not (data_dir / "images" / request_id).exists()
    status = imgdesk("status", request_id, "--json", data_dir=data_dir)
    assert json.loads(status.stdout)["storage"]["folder"] == str(outputs)

    second = imgdesk("retry", request_id, "--json", data_dir=data_dir)

    assert second.returncode == 0, second.stderr
    stored = sorted(path.name for path in (outputs / request_id).iterdir())
    assert stored == ["0001_shirt_1.jpg", "0002_mug_1.jpg", "in-output.csv"]
    rows = read_csv(tmp_path / "in-output.csv")
    assert all(file_of(row[-1]).parent == outputs / request_id for row in rows[1:])


def test_retry_into_another_folder_redoes_what_is_not_there(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    url = http_server.route("/a.jpg", respond(JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [url])])
    data_dir = tmp_path / "d"
    first = imgdesk("process", str(source), "--json", data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    request_id = json_lines(first.stdout)[0]["request_id"]

    moved = tmp_path / "moved"
    second = imgdesk("retry", request_id, "--storage", str(moved), data_dir=data_dir)

    assert second.returncode == 0, second.stderr
    assert (moved / request_id / "0001_shirt_1.jpg").is_file()
    assert http_server.hits("/a.jpg") == 2  # not in the new folder: fetched again
    rows = read_csv(tmp_path / "in-output.csv")
    assert file_of(rows[1][-1]) == moved / request_id / "0001_shirt_1.jpg"


def test_a_storage_that_cannot_be_used_is_one_sentence_before_any_download(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    url = http_server.route("/a.jpg", respond(JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [url])])
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    bad_bucket = imgdesk("process", str(source), "--storage", "s3://Bad_Bucket", data_dir=tmp_path)
    lone_endpoint = imgdesk(
        "process", str(source), "--s3-endpoint", "http://127.0.0.1:9", data_dir=tmp_path
    )
    blocked = imgdesk("process", str(source), "--storage", str(blocker), data_dir=tmp_path / "d")

    assert bad_bucket.returncode == 2 and "not a bucket name" in bad_bucket.stderr
    assert lone_endpoint.returncode == 2 and "go with --storage" in lone_endpoint.stderr
    assert blocked.returncode == 1
    assert "is a file, not a folder" in blocked.stderr
    assert "Traceback" not in blocked.stderr + bad_bucket.stderr + lone_endpoint.stderr
    assert http_server.hits("/a.jpg") == 0
