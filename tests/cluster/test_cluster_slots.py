"""A worker killed with ``kill -9`` mid-download gives its per-host slot back, end to end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

from tests.cluster.test_cluster import (
    PNG,
    WAIT_S,
    Cluster,
    assert_every_output_valid,
    imgdesk_args,
    save_cluster_settings,
    wait_for,
    write_csv,
)
from tests.httpservers import Gate, HttpTestServer, gated, respond

# What a worker says (with -v) for each image it sends back because the host is at its limit.
HOST_BUSY = "is at its limit"


def test_a_killed_workers_host_slot_comes_back_and_the_limit_still_holds(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    save_cluster_settings(cluster, per_host_concurrency=1)
    count = 3
    gate = Gate()
    handler = gated(gate, respond(PNG, content_type="image/png"))
    urls = [http_server.route(f"/img/{n}.png", handler) for n in range(1, count + 1)]
    victim = cluster.start_worker(threads=2)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    output_csv = cluster.tmp_path / "products-output.csv"
    submitter = subprocess.Popen(
        imgdesk_args(
            cluster.tmp_path / "submitter",
            "process", str(csv_path), *cluster.cluster_args(), "-o", str(output_csv),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        # The victim holds the host's one slot in a download; kill -9 leaves it in Redis.
        wait_for(lambda: http_server.in_flight == 1, "the victim to start a download")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        wait_for(lambda: http_server.in_flight == 0, "the server to see the victim gone")
        survivor = cluster.start_worker(2, 1, "-v")

        # Before, the dead worker's slot stayed taken for 3 minutes: nothing was fetched.
        wait_for(lambda: http_server.in_flight == 1, "the survivor to get the slot", WAIT_S)
        survivor_log = cluster.tmp_path / "worker2.log"
        refused = survivor_log.read_text(errors="replace").count(HOST_BUSY)
        # Its second thread is sent away while the first one's download is held: one
        # download at a time still, though the slot outlived its dead holder.
        wait_for(
            lambda: survivor_log.read_text(errors="replace").count(HOST_BUSY) > refused,
            "the survivor to send an image away",
        )
        assert http_server.in_flight == 1
        gate.open()
        _, stderr = submitter.communicate(timeout=WAIT_S * 2)
    finally:
        gate.open()
        with contextlib.suppress(ProcessLookupError):
            submitter.kill()
        submitter.communicate()
    assert submitter.returncode == 0, stderr + cluster.worker_log()
    assert survivor.poll() is None
    assert_every_output_valid(cluster, output_csv, count)
    assert http_server.max_in_flight == 1
    hits = sorted(http_server.hits(f"/img/{n}.png") for n in range(1, count + 1))
    assert hits == [1, 1, 2], hits  # the one cut off by the kill was fetched again
