"""The demo catalogue: a CSV that parses cleanly, real pictures, and the planned failures."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from imgdesk.core.csvio import Catalogue, read_catalogue
from imgdesk.core.paths import resource_path
from imgdesk.core.repository import ImageInfo
from imgdesk.demo import (
    FLAKY_FAILURES,
    PLANNED_FAILURES,
    DemoServer,
    unplanned_outcomes,
    write_demo_csv,
)

pytestmark = pytest.mark.timeout(30)

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def server() -> Iterator[DemoServer]:
    demo = DemoServer(latency_s=0)
    demo.start()
    yield demo
    demo.stop()


@pytest.fixture
def catalogue(server: DemoServer, tmp_path: Path) -> Catalogue:
    return read_catalogue(write_demo_csv(tmp_path / "demo", server.base_url))


def _urls(catalogue: Catalogue) -> list[str]:
    return [url for row in catalogue.rows for url in row.urls]


def test_the_csv_parses_without_invalid_rows_and_keeps_extra_columns(
    catalogue: Catalogue, server: DemoServer
) -> None:
    assert catalogue.invalid_rows == ()
    assert catalogue.header == ("S. No.", "Product Name", "Input Image Urls", "Price", "Category")
    assert 15 <= len(catalogue.rows) <= 25
    assert all(1 <= len(row.urls) <= 3 for row in catalogue.rows)
    assert 30 <= len(_urls(catalogue)) <= 60
    assert all(url.startswith(server.base_url + "/") for url in _urls(catalogue))
    assert "{base}" not in "".join(cell for row in catalogue.rows for cell in row.cells)


def test_every_picture_url_serves_a_real_image(catalogue: Catalogue) -> None:
    formats = set()
    with requests.Session() as session:
        for url in _urls(catalogue):
            if "/images/" not in url or url.endswith("sneaker-black-2.jpg"):
                continue
            response = session.get(url, timeout=5)
            assert response.status_code == 200, url
            body = response.content
            if response.headers["Content-Type"] == "image/jpeg":
                assert body.startswith(JPEG_MAGIC), url
            else:
                assert response.headers["Content-Type"] == "image/png"
                assert body.startswith(PNG_MAGIC), url
            with Image.open(io.BytesIO(body)) as picture:
                picture.load()
                formats.add((picture.format, picture.mode))
                assert 600 <= max(picture.size) <= 1600, url
    assert ("JPEG", "RGB") in formats
    assert ("PNG", "RGBA") in formats  # cut-outs with transparency


def test_the_bundled_pictures_are_jpeg_or_png_and_small_enough_to_ship() -> None:
    pictures = sorted(resource_path("demo/images").iterdir())
    assert len(pictures) >= 30
    for path in pictures:
        magic = JPEG_MAGIC if path.suffix == ".jpg" else PNG_MAGIC
        assert path.read_bytes().startswith(magic), path.name
    assert sum(path.stat().st_size for path in pictures) < 4_500_000


def test_a_picture_that_is_not_bundled_is_a_404(catalogue: Catalogue) -> None:
    missing = [url for url in _urls(catalogue) if url.endswith("/images/sneaker-black-2.jpg")]
    assert len(missing) == 1
    assert requests.get(missing[0], timeout=5).status_code == 404


def test_paths_outside_the_pictures_are_404(server: DemoServer) -> None:
    for path in ("/", "/images/", "/images/../catalogue.csv", "/other/tshirt-red-1.jpg"):
        assert requests.get(server.base_url + path, timeout=5).status_code == 404, path


def test_the_html_route_serves_a_web_page(catalogue: Catalogue) -> None:
    pages = [url for url in _urls(catalogue) if "/html/" in url]
    assert len(pages) == 1
    response = requests.get(pages[0], timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.content.startswith(b"<!DOCTYPE html>")


def test_the_flaky_route_fails_twice_then_serves_the_picture(catalogue: Catalogue) -> None:
    flaky = [url for url in _urls(catalogue) if "/flaky/" in url]
    assert len(flaky) == 1
    statuses = [requests.get(flaky[0], timeout=5).status_code for _ in range(FLAKY_FAILURES)]
    assert statuses == [503] * FLAKY_FAILURES
    response = requests.get(flaky[0], timeout=5)
    assert response.status_code == 200
    assert response.content.startswith(JPEG_MAGIC)


def test_stop_closes_the_port() -> None:
    demo = DemoServer(latency_s=0)
    with pytest.raises(RuntimeError):
        _ = demo.base_url
    demo.start()
    url = demo.base_url + "/images/mug-teal-1.jpg"
    assert requests.get(url, timeout=5).status_code == 200
    demo.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    demo.stop()  # a second stop is harmless


def test_the_planned_failures_are_urls_of_the_catalogue(catalogue: Catalogue) -> None:
    paths = [urlsplit(url).path for url in _urls(catalogue)]
    for path in PLANNED_FAILURES:
        assert paths.count(path) == 1, path


def _image(url: str, status: str, error_code: str | None = None) -> ImageInfo:
    blank = ImageInfo(*[None] * len(ImageInfo._fields))
    return blank._replace(url=url, status=status, error_code=error_code)


def test_unplanned_outcomes_names_what_differs_from_the_design() -> None:
    base = "http://127.0.0.1:1234"
    as_designed = [
        _image(f"{base}/images/mug-teal-1.jpg", "done"),
        _image(f"{base}/flaky/lamp-mustard-1.jpg", "done", "http_503"),  # retried, then done
        *(_image(f"{base}{path}", "failed", code) for path, code in PLANNED_FAILURES.items()),
    ]
    assert unplanned_outcomes(as_designed) == []

    timed_out = _image(f"{base}/images/mug-teal-1.jpg", "failed", "timeout")
    not_failed = _image(f"{base}/html/tote-black-2.jpg", "done")
    problems = unplanned_outcomes([timed_out, not_failed, *as_designed[1:3]])
    assert problems == [
        f"{base}/images/mug-teal-1.jpg ended failed (timeout), not done",
        f"{base}/html/tote-black-2.jpg ended done, not failed (not_an_image)",
    ]
