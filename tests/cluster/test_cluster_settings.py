"""A worker keeps the cluster's settings for a few seconds, and then sees a change."""

from __future__ import annotations

import time

from imgdesk.cluster.actors import SETTINGS_TTL_S
from tests.cluster.test_cluster import (
    Cluster,
    output_rows,
    save_cluster_settings,
    serve_images,
    write_csv,
)
from tests.httpservers import HttpTestServer

BASE = "https://cdn.example.test/images"


def test_a_settings_change_reaches_a_running_worker(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    urls = serve_images(http_server, 2, delay_s=0.0)
    cluster.start_worker(threads=1)
    first_csv, second_csv = cluster.tmp_path / "first.csv", cluster.tmp_path / "second.csv"
    first = cluster.process(write_csv(cluster.tmp_path / "a.csv", urls[:1]), "-o", str(first_csv))
    assert first.returncode == 0, first.stderr + cluster.worker_log()
    (row,) = output_rows(first_csv)
    assert row["Output Image Urls"].startswith("file://")  # the worker has read its settings

    save_cluster_settings(cluster, public_base_url=BASE)
    time.sleep(SETTINGS_TTL_S + 0.5)  # the worker's copy is older than its TTL now
    second = cluster.process(write_csv(cluster.tmp_path / "b.csv", urls[1:]), "-o", str(second_csv))

    assert second.returncode == 0, second.stderr + cluster.worker_log()
    (row,) = output_rows(second_csv)
    assert row["Output Image Urls"].startswith(BASE + "/"), row
