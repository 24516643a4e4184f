"""A webhook owed when ``imgdesk process`` is killed is sent by the next command, once.

The real ``imgdesk`` runs in subprocesses against a real receiver on 127.0.0.1: the receiver
answers the first attempt 503 with a huge Retry-After, the process is killed with SIGKILL
while it waits, and ``imgdesk retry`` must then deliver that same event (same webhook-id,
same bytes) and queue no second one, since its images fail just as before.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests import images
from tests.core.test_webhook import WHSEC_UNPADDED, signature_of
from tests.httpservers import HttpTestServer, respond, sequence

pytestmark = pytest.mark.timeout(180)

REPO_ROOT = Path(__file__).resolve().parents[2]
JPEG = images.make_jpeg(64, 48, "photo", 90)


def imgdesk_command(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "imgdesk", "--data-dir", str(data_dir), *args]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def hook_posts(server: HttpTestServer) -> list[tuple[dict[str, str], bytes]]:
    return [
        ({k.lower(): v for k, v in r.headers.items()}, r.body)
        for r in server.requests
        if r.path == "/hook"
    ]


def test_an_event_owed_by_a_killed_process_is_sent_once_by_retry_under_its_id(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    good = http_server.route("/good.jpg", respond(JPEG))
    gone = http_server.route("/gone.jpg", respond(b"no such image", 404))
    hook = http_server.route(
        "/hook",
        sequence(respond(b"busy", 503, {"Retry-After": "100000"}), respond(b"thanks", 200)),
    )
    source = tmp_path / "in.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["S. No.", "Product Name", "Input Image Urls"])
        writer.writerow(["1", "Mug", good])
        writer.writerow(["2", "Cap", gone])
    data = tmp_path / "data"
    process_args = ["process", str(source), "--json", "--webhook", hook]
    process_args += ["--webhook-secret", WHSEC_UNPADDED]

    with (
        (tmp_path / "process.err").open("w") as errors,
        subprocess.Popen(
            imgdesk_command(data, *process_args),
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        ) as child,
    ):
        assert child.stdout is not None
        seen: list[dict[str, Any]] = []
        for line in child.stdout:
            seen.append(json.loads(line))
            if seen[-1]["event"] == "webhook.attempt":
                break
        # It now waits 60 s (the cap) before its retry: kill it in that wait.
        child.kill()
    first_attempt = seen[-1]
    assert first_attempt["event"] == "webhook.attempt", (tmp_path / "process.err").read_text()
    request_id = seen[0]["request_id"]
    webhook_id = first_attempt["webhook_id"]
    assert first_attempt == {
        "event": "webhook.attempt",
        "webhook_id": webhook_id,
        "attempt": 1,
        "status_code": 503,
        "error": "HTTP 503 Service Unavailable; asked to wait 100000 s; waiting 60 s, the cap",
        "next_delay_s": 60.0,
    }
    assert len(hook_posts(http_server)) == 1

    # A minute later, the user retries the request.
    with sqlite3.connect(data / "imgdesk.sqlite3") as database:
        database.execute(
            "UPDATE webhook_delivery SET next_attempt_at = ? WHERE id = ?",
            (time.time(), webhook_id),
        )
    database.close()
    retried = subprocess.run(
        imgdesk_command(data, "retry", request_id, "--json"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert retried.returncode == 1, retried.stderr  # the 404 image failed again
    webhook_lines = [e for e in json_lines(retried.stdout) if e["event"].startswith("webhook.")]
    assert webhook_lines == [
        {
            "event": "webhook.attempt",
            "webhook_id": webhook_id,
            "attempt": 2,
            "status_code": 200,
            "error": None,
            "next_delay_s": None,
        }
    ]
    posts = hook_posts(http_server)
    assert len(posts) == 2, "the owed event once more, and no second event"
    assert {headers["webhook-id"] for headers, _ in posts} == {webhook_id}
    assert posts[0][1] == posts[1][1], "the same bytes on every attempt"
    for headers, body in posts:
        assert headers["webhook-signature"] == signature_of(
            WHSEC_UNPADDED, headers["webhook-id"], headers["webhook-timestamp"], body
        )
    event = json.loads(posts[1][1])
    assert (event["event"], event["succeeded"], event["failed"]) == ("request.failed", 1, 1)

    # Nothing is left for the window to send, and status shows the whole story.
    status = subprocess.run(
        imgdesk_command(data, "status", request_id, "--json"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    [delivery] = json.loads(status.stdout)["webhook_deliveries"]
    assert (delivery["webhook_id"], delivery["status"]) == (webhook_id, "delivered")
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 200]
    assert "waiting 60 s, the cap" in delivery["attempts"][0]["error"]
    with sqlite3.connect(data / "imgdesk.sqlite3") as database:
        [(owed,)] = database.execute(
            "SELECT COUNT(*) FROM webhook_delivery WHERE status = 'pending'"
        ).fetchall()
    database.close()
    assert owed == 0
