"""A second cluster run of an unchanged CSV reuses the outputs of the first (SPEC 3's cache)."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.cluster.test_cluster import (
    BOTH_DATABASES,
    PNG,
    Cluster,
    output_rows,
    query,
    write_csv,
)
from tests.httpservers import Exchange, HttpTestServer, RouteHandler

DATE = "Tue, 01 Sep 2026 10:00:00 GMT"


class Validated:
    """Serves a PNG with an ETag or a Last-Modified, 304 to a matching conditional GET.

    Attributes:
        answers: the status of every answer, in order (200 sends the image, 304 nothing).
    """

    def __init__(self) -> None:
        self.answers: list[int] = []
        self._lock = threading.Lock()

    def route(self, etag: str | None = None, modified: str | None = None) -> RouteHandler:
        """A handler answering with these validators."""

        def handler(exchange: Exchange) -> None:
            headers = {"Content-Type": "image/png"}
            if etag:
                headers["ETag"] = etag
            if modified:
                headers["Last-Modified"] = modified
            unchanged = (etag and exchange.headers.get("If-None-Match") == etag) or (
                modified and exchange.headers.get("If-Modified-Since") == modified
            )
            with self._lock:
                self.answers.append(304 if unchanged else 200)
            exchange.reply(304 if unchanged else 200, b"" if unchanged else PNG, headers)

        return handler


@BOTH_DATABASES
def test_a_second_run_of_an_unchanged_csv_downloads_nothing_again(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    server = Validated()
    tagged = [http_server.route(f"/img/{n}.png", server.route(etag=f'"v{n}"')) for n in (1, 2)]
    dated = http_server.route("/img/dated.png", server.route(modified=DATE))
    changing = http_server.route("/img/changing.png", server.route(etag='"a"'))
    urls = [*tagged, dated, changing]
    cluster.start_worker(threads=2)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    first_csv, second_csv = cluster.tmp_path / "first.csv", cluster.tmp_path / "second.csv"
    first = cluster.process(csv_path, "-o", str(first_csv))
    assert first.returncode == 0, first.stderr + cluster.worker_log()
    assert server.answers == [200] * 4
    http_server.route("/img/changing.png", server.route(etag='"b"'))  # a new version
    http_server.reset_counters()
    server.answers.clear()

    second = cluster.process(csv_path, "-o", str(second_csv))

    assert second.returncode == 0, second.stderr + cluster.worker_log()
    # Each URL asked once, "changed since?": only the changed image came again.
    assert sorted(server.answers) == [200, 304, 304, 304], server.answers
    assert http_server.total_hits == 4
    conditional = {request.path: request.headers for request in http_server.requests}
    assert conditional["/img/1.png"].get("If-None-Match") == '"v1"'
    assert conditional["/img/dated.png"].get("If-Modified-Since") == DATE
    # Every output of the second request is its own file, with the first one's bytes.
    before = {row["Input Image Urls"]: row["Output Image Urls"] for row in output_rows(first_csv)}
    after = {row["Input Image Urls"]: row["Output Image Urls"] for row in output_rows(second_csv)}
    for url in urls:
        old, new = (Path(link.removeprefix("file://")) for link in (before[url], after[url]))
        assert old != new and new.read_bytes() == old.read_bytes()
    rows = query(
        cluster.database_url, "SELECT url, http_status, compress_ms FROM image ORDER BY id"
    )
    reused = {url: (status, ms) for url, status, ms in rows[len(urls) :]}  # the second request
    assert all(reused[url] == (304, 0) for url in (*tagged, dated)), reused
    assert reused[changing][0] == 200 and reused[changing][1] is not None
    counters = query(
        cluster.database_url, "SELECT status, done_images FROM request ORDER BY created_at"
    )
    assert counters == [("completed", 4), ("completed", 4)]


def test_a_cached_output_that_vanished_is_made_again(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    server = Validated()
    url = http_server.route("/img/1.png", server.route(etag='"v1"'))
    cluster.start_worker(threads=1)
    csv_path = write_csv(cluster.tmp_path / "products.csv", [url])
    output_csv = cluster.tmp_path / "out.csv"
    assert cluster.process(csv_path, "-o", str(output_csv)).returncode == 0
    (row,) = output_rows(output_csv)
    Path(row["Output Image Urls"].removeprefix("file://")).unlink()  # deleted by someone

    again = cluster.process(csv_path, "-o", str(output_csv))

    assert again.returncode == 0, again.stderr + cluster.worker_log()
    assert server.answers == [200, 200]  # no "changed since?" for a file that is gone
    (row,) = output_rows(output_csv)
    assert Path(row["Output Image Urls"].removeprefix("file://")).is_file()
