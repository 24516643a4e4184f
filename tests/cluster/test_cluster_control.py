"""Cancel, retry and pause of cluster requests from another process (SPEC 11), end to end."""

from __future__ import annotations

import contextlib
import json
import subprocess
from typing import Any

import redis

from tests.cluster.test_cluster import (
    BOTH_DATABASES,
    PNG,
    WAIT_S,
    Cluster,
    imgdesk_args,
    output_rows,
    query,
    serve_images,
    stored_images,
    wait_for,
    write_csv,
)
from tests.httpservers import Gate, HttpTestServer, gated, respond, sequence

EXIT_FAILED = 1  # what a local `imgdesk process` of a cancelled request exits with


def run_imgdesk(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    """A short ``imgdesk`` command on the cluster's database, from its own data folder."""
    return subprocess.run(
        imgdesk_args(cluster.tmp_path / "other-machine", *args),
        capture_output=True,
        text=True,
        timeout=WAIT_S * 2,
    )


def submit(cluster: Cluster, *args: str) -> tuple[subprocess.Popen[str], str]:
    """``imgdesk process --json`` started in the background; the process and the request id."""
    submitter = subprocess.Popen(
        imgdesk_args(
            cluster.tmp_path / "submitter", "process", *args, *cluster.cluster_args(), "--json"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert submitter.stdout is not None
    created = json.loads(submitter.stdout.readline())
    assert created["event"] == "request.created"
    return submitter, str(created["request_id"])


def finish(submitter: subprocess.Popen[str]) -> tuple[str, str]:
    """Wait for the submitter to exit; its stdout and stderr."""
    try:
        return submitter.communicate(timeout=WAIT_S * 2)
    finally:
        stop(submitter)


def stop(submitter: subprocess.Popen[str]) -> None:
    """Kill the submitter if it still runs (a failing test), and reap it."""
    if submitter.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            submitter.kill()
        submitter.communicate()


def hook_payloads(server: HttpTestServer) -> list[dict[str, Any]]:
    """The webhook events received so far, in order."""
    return [json.loads(request.body) for request in server.requests if request.path == "/hook"]


@BOTH_DATABASES
def test_cancel_from_another_process_stops_the_workers_remaining_images(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    count = 10
    gate = Gate()
    handler = gated(gate, respond(PNG, content_type="image/png"))
    urls = [http_server.route(f"/img/{n}.png", handler) for n in range(1, count + 1)]
    hook = http_server.route("/hook", respond(b"ok"))
    for _ in range(2):
        cluster.start_worker(threads=2)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    output_csv = cluster.tmp_path / "products-output.csv"
    submitter, request_id = submit(cluster, str(csv_path), "-o", str(output_csv), "--webhook", hook)
    try:
        # Two images stored, then four downloads held at the gate, four images still queued.
        gate.allow(2)
        wait_for(lambda: stored_images(cluster) == 2, "two images stored")
        wait_for(lambda: http_server.in_flight == 4, "the workers to hold four downloads")

        cancelled = run_imgdesk(cluster, "cancel", request_id, *cluster.cluster_args())

        assert cancelled.returncode == 0, cancelled.stderr + cluster.worker_log()
        # Said at once, whether a worker finished the request yet or is still in a download.
        assert "imgdesk: cancelled" in cancelled.stderr and request_id in cancelled.stderr
        # The held downloads end now; their results must not undo the cancel.
        gate.open()
        _, stderr = finish(submitter)
    finally:
        gate.open()
        stop(submitter)
    assert submitter.returncode == EXIT_FAILED, stderr + cluster.worker_log()
    assert "Traceback" not in stderr + cluster.worker_log()
    hits = sorted(http_server.hits(f"/img/{n}.png") for n in range(1, count + 1))
    assert hits == [0] * 4 + [1] * 6, hits  # the four queued ones were never fetched
    images = query(
        cluster.database_url,
        "SELECT status, error_code, COUNT(*) FROM image GROUP BY status, error_code "
        "ORDER BY status",
    )
    assert images == [("done", None, 2), ("failed", "cancelled", 8)]
    counters = query(
        cluster.database_url,
        "SELECT status, done_images, failed_images, in_flight_images FROM request",
    )
    assert counters == [("failed", 2, 8, 0)]
    assert [bool(row["Output Image Urls"]) for row in output_rows(output_csv)].count(True) == 2
    (payload,) = hook_payloads(http_server)  # finished once, its webhook once
    assert (payload["event"], payload["succeeded"], payload["failed"]) == ("request.failed", 2, 8)


def test_retry_from_another_process_completes_a_failed_request(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    urls = serve_images(http_server, 2, delay_s=0.0)
    missing = respond(b"not here", 404, content_type="text/plain")
    urls.append(
        http_server.route(
            "/img/late.png", sequence(missing, respond(PNG, content_type="image/png"))
        )
    )
    hook = http_server.route("/hook", respond(b"ok"))
    cluster.start_worker(threads=2)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    output_csv = cluster.tmp_path / "products-output.csv"
    submitter, request_id = submit(cluster, str(csv_path), "-o", str(output_csv), "--webhook", hook)
    _, stderr = finish(submitter)
    assert submitter.returncode == EXIT_FAILED, stderr + cluster.worker_log()
    assert [row["Output Image Urls"] != "" for row in output_rows(output_csv)] == [
        True,
        True,
        False,
    ]

    retried = run_imgdesk(cluster, "retry", request_id, *cluster.cluster_args(), "--json")

    assert retried.returncode == 0, retried.stderr + cluster.worker_log()
    events = [json.loads(line) for line in retried.stdout.splitlines()]
    finished = [event for event in events if event["event"] == "image.finished"]
    # Only the retried image is news; the two done before are not reported again.
    assert [(event["serial"], event["status"]) for event in finished] == [("3", "done")]
    assert events[-1]["event"] == "webhook.attempt" and events[-1]["status_code"] == 200
    # Written where the first run wrote it, every row with its output now.
    assert all(row["Output Image Urls"] for row in output_rows(output_csv))
    assert http_server.hits("/img/late.png") == 2
    assert [http_server.hits(f"/img/{n}.png") for n in (1, 2)] == [1, 1]
    assert query(
        cluster.database_url, "SELECT status, done_images, failed_images FROM request"
    ) == [("completed", 3, 0)]
    # The retry changed the result: a second event (SPEC 5).
    events_sent = [(payload["event"], payload["failed"]) for payload in hook_payloads(http_server)]
    assert events_sent == [("request.failed", 1), ("request.completed", 0)]


def test_retry_of_a_completed_request_sends_nothing_and_exits_0(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    urls = serve_images(http_server, 2, delay_s=0.0)
    hook = http_server.route("/hook", respond(b"ok"))
    cluster.start_worker(threads=2)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    submitter, request_id = submit(cluster, str(csv_path), "--webhook", hook)
    _, stderr = finish(submitter)
    assert submitter.returncode == 0, stderr + cluster.worker_log()

    retried = run_imgdesk(cluster, "retry", request_id, *cluster.cluster_args(), "--json")

    assert retried.returncode == 0, retried.stderr
    events = [json.loads(line)["event"] for line in retried.stdout.splitlines()]
    assert "image.finished" not in events and "webhook.attempt" not in events, events
    assert len(hook_payloads(http_server)) == 1  # no change, no new event
    assert [http_server.hits(f"/img/{n}.png") for n in (1, 2)] == [1, 1]


def test_a_paused_cluster_starts_no_image_until_resumed(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    count = 3
    urls = serve_images(http_server, count, delay_s=0.0)
    # Pausing before any worker ran creates the shared database's tables too.
    paused = run_imgdesk(cluster, "pause", "--database", cluster.database_url)
    assert paused.returncode == 0, paused.stderr
    assert "the cluster is paused" in paused.stderr
    cluster.start_worker(threads=2)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    output_csv = cluster.tmp_path / "products-output.csv"
    submitter, request_id = submit(cluster, str(csv_path), "-o", str(output_csv))
    try:
        wait_for(lambda: "the cluster is paused" in cluster.worker_log(), "a worker to see it")
        # Held back before it starts: nothing fetched, no attempt counted.
        assert http_server.total_hits == 0
        assert (
            query(cluster.database_url, "SELECT status, attempts FROM image")
            == [("pending", 0)] * count
        )
        resumed = run_imgdesk(cluster, "resume", "--database", cluster.database_url)
        assert resumed.returncode == 0, resumed.stderr
        _, stderr = finish(submitter)
    finally:
        stop(submitter)
    assert submitter.returncode == 0, stderr + cluster.worker_log()
    assert (
        query(cluster.database_url, "SELECT status, attempts FROM image") == [("done", 1)] * count
    )
    assert all(http_server.hits(f"/img/{n}.png") == 1 for n in range(1, count + 1))
    assert "the cluster is resumed" in cluster.worker_log()


def test_pause_without_a_database_says_it_is_for_the_cluster(cluster: Cluster) -> None:
    done = run_imgdesk(cluster, "pause")
    assert done.returncode == 2
    assert "works on the cluster: give --database URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_high_priority_request_is_served_before_a_low_one(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    gate = Gate()
    held = gated(gate, respond(PNG, content_type="image/png"))
    low_urls = [http_server.route(f"/low/{n}.png", held) for n in range(1, 7)]
    image = respond(PNG, content_type="image/png")
    high_urls = [http_server.route(f"/high/{n}.png", image) for n in (1, 2)]
    cluster.start_worker(threads=1)
    low, _ = submit(
        cluster, str(write_csv(cluster.tmp_path / "low.csv", low_urls)), "--priority", "low"
    )
    high = None
    try:
        # The worker's one thread holds the low request's first image at the gate.
        wait_for(lambda: http_server.in_flight == 1, "the worker to start a low image")
        high, _ = submit(
            cluster, str(write_csv(cluster.tmp_path / "high.csv", high_urls)), "--priority", "high"
        )
        broker = redis.Redis.from_url(cluster.broker_url)
        queue = "dramatiq:imgdesk-images-high"
        wait_for(
            lambda: broker.hlen(f"{queue}.msgs") == 2 and broker.llen(queue) == 0,
            "the worker to fetch the high request's two messages",
        )
        broker.close()
        gate.open()
        _, high_stderr = finish(high)
        _, low_stderr = finish(low)
    finally:
        gate.open()
        stop(low)
        if high is not None:
            stop(high)
    assert (high.returncode, low.returncode) == (0, 0), high_stderr + low_stderr
    fetched = [request.path.split("/")[1] for request in http_server.requests]
    # The low request's other images waited (fetched already by the worker) behind both.
    assert fetched == ["low", "high", "high"] + ["low"] * 5, fetched
    rows = query(cluster.database_url, "SELECT csv_name, priority FROM request ORDER BY csv_name")
    assert rows == [("high.csv", "high"), ("low.csv", "low")]


def test_a_wrong_priority_is_one_sentence(cluster: Cluster, http_server: HttpTestServer) -> None:
    csv_path = write_csv(cluster.tmp_path / "products.csv", serve_images(http_server, 1, 0.0))
    done = run_imgdesk(cluster, "process", str(csv_path), "--priority", "urgent")
    assert done.returncode == 2
    assert "--priority must be high, normal or low." in done.stderr
    assert "Traceback" not in done.stderr and http_server.total_hits == 0
