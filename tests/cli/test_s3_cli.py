"""``imgdesk process --storage s3://…`` against a real S3 server (moto's) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests import images
from tests.cli.test_cli import imgdesk, json_lines, read_csv, write_csv
from tests.httpservers import Gate, HttpTestServer, gated, respond
from tests.s3server import S3Bucket, object_keys

JPEG = images.make_jpeg(320, 240, "photo", 92)


def s3_env(bucket: S3Bucket) -> dict[str, str]:
    """The environment of a user whose AWS credentials are the standard variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_ACCESS_KEY_ID"] = bucket.writer.access_key
    env["AWS_SECRET_ACCESS_KEY"] = bucket.writer.secret_key
    return env


def storage_flags(bucket: S3Bucket, prefix: str = "catalogue") -> list[str]:
    return [
        "--storage",
        f"s3://{bucket.name}/{prefix}",
        "--s3-endpoint",
        bucket.endpoint,
        "--s3-region",
        bucket.region,
    ]


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:
        data: bytes = answer.read()
    return data


def test_process_fills_the_bucket_and_the_csv_urls_load(
    tmp_path: Path, http_server: HttpTestServer, s3_bucket: S3Bucket
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    b = http_server.route("/b.jpg", respond(JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [a, b]), ("2", "Mug", [b])])

    done = imgdesk(
        "process",
        str(source),
        "--json",
        *storage_flags(s3_bucket),
        data_dir=tmp_path / "d",
        env=s3_env(s3_bucket),
    )

    assert done.returncode == 0, done.stderr
    request_id = json_lines(done.stdout)[0]["request_id"]
    prefix = f"catalogue/{request_id}/"
    assert sorted(object_keys(s3_bucket)) == [
        f"{prefix}0001_shirt_1.jpg",
        f"{prefix}0001_shirt_2.jpg",  # the mug's image is the same URL: stored once
        f"{prefix}in-output.csv",
    ]
    assert not (tmp_path / "d" / "images" / request_id).exists()  # nothing stored locally
    rows = read_csv(tmp_path / "in-output.csv")
    urls = [url for row in rows[1:] for url in row[-1].split(",")]
    assert len(urls) == 3 and all("X-Amz-Signature=" in url for url in urls)
    for url in urls:  # presigned: a plain GET, as a browser or a shop would do
        assert fetch(url)[:3] == b"\xff\xd8\xff"
    status = imgdesk("status", request_id, data_dir=tmp_path / "d")
    assert f"s3://{s3_bucket.name}/catalogue at {s3_bucket.endpoint}" in status.stdout


def test_a_public_base_url_gives_plain_urls(
    tmp_path: Path, http_server: HttpTestServer, s3_bucket: S3Bucket
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [a])])
    data_dir = tmp_path / "d"
    base = f"{s3_bucket.endpoint}/{s3_bucket.name}/shop"  # where the prefix is published
    configure = imgdesk("status", data_dir=data_dir)  # creates the database
    assert configure.returncode == 0
    with sqlite3.connect(data_dir / "imgdesk.sqlite3") as conn:
        conn.execute(
            "INSERT OR REPLACE INTO key_value VALUES ('settings', ?)",
            (json.dumps({"public_base_url": base}),),
        )
    conn.close()

    done = imgdesk(
        "process",
        str(source),
        "--json",
        *storage_flags(s3_bucket, "shop"),
        data_dir=data_dir,
        env=s3_env(s3_bucket),
    )

    assert done.returncode == 0, done.stderr
    request_id = json_lines(done.stdout)[0]["request_id"]
    [row] = read_csv(tmp_path / "in-output.csv")[1:]
    assert row[-1] == f"{base}/{request_id}/0001_shirt_1.jpg"
    assert f"shop/{request_id}/0001_shirt_1.jpg" in object_keys(s3_bucket)


def test_a_missing_bucket_is_one_sentence_before_any_download(
    tmp_path: Path, http_server: HttpTestServer, s3_bucket: S3Bucket
) -> None:
    a = http_server.route("/a.jpg", respond(JPEG))
    source = write_csv(tmp_path / "in.csv", [("1", "Shirt", [a])])
    flags = storage_flags(s3_bucket)
    flags[1] = "s3://no-such-bucket-here/catalogue"

    done = imgdesk("process", str(source), *flags, data_dir=tmp_path / "d", env=s3_env(s3_bucket))

    assert done.returncode == 1
    assert "no-such-bucket-here" in done.stderr
    assert s3_bucket.writer.secret_key not in done.stderr
    assert "Traceback" not in done.stderr
    assert http_server.hits("/a.jpg") == 0


def test_kill_9_during_uploads_then_retry_leaves_rows_and_objects_in_agreement(
    tmp_path: Path, http_server: HttpTestServer, s3_bucket: S3Bucket
) -> None:
    gate = Gate()
    urls = [http_server.route(f"/p{i}.jpg", gated(gate, respond(JPEG))) for i in range(12)]
    source = write_csv(tmp_path / "in.csv", [(str(i), f"P{i}", [u]) for i, u in enumerate(urls)])
    data_dir = tmp_path / "d"
    command = [sys.executable, "-m", "imgdesk", "--data-dir", str(data_dir), "process"]
    process = subprocess.Popen(  # noqa: S603 - our own command
        [*command, str(source), "--json", "--concurrency", "4", *storage_flags(s3_bucket)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=s3_env(s3_bucket),
    )
    try:
        gate.allow(5)
        deadline = time.monotonic() + 60
        while len(object_keys(s3_bucket)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        stdout, _ = process.communicate(timeout=30)
        gate.open()
    request_id = json_lines(stdout)[0]["request_id"]

    again = imgdesk("retry", request_id, "--json", data_dir=data_dir, env=s3_env(s3_bucket))

    assert again.returncode == 0, again.stderr
    keys = object_keys(s3_bucket)
    images_stored = sorted(k for k in keys if k.endswith(".jpg"))
    assert len(images_stored) == len(set(images_stored)) == 12
    rows = read_csv(tmp_path / "in-output.csv")[1:]
    assert len(rows) == 12
    for row in rows:
        assert fetch(row[-1])[:3] == b"\xff\xd8\xff"
