"""The preview of outputs stored in an S3 bucket: real engine, real widgets, real S3 server.

The engine processes a request into moto's S3 server (through the test proxy, which can fail
on demand); the images pane then shows the after-image read back through the request's own
storage, off the GUI thread, or one sentence when the bucket does not answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QSize
from pytestqt.qtbot import QtBot

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.records import ImageInfo
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings
from imgdesk.core.storage_choice import StorageChoice, StorageShelf
from imgdesk.engine.engine import Engine
from imgdesk.gui.compare import CompareDialog, Side
from imgdesk.gui.image_loading import ImageCache, OriginalFetcher
from imgdesk.gui.images_model import ImagesTableModel
from imgdesk.gui.images_pane import ImagesPane
from imgdesk.gui.output_reader import object_url
from tests.gui.conftest import _delete_on_this_thread, serve_jpeg
from tests.httpservers import HttpTestServer
from tests.s3server import S3Bucket, S3Proxy, free_port

pytestmark = pytest.mark.timeout(120)

WAIT_MS = 60_000  # generous: five tries with backoff against a failing server fit easily
PREFIX = "shop"


@pytest.fixture(autouse=True)
def _no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the keys the test gives: nothing from the developer's shell or ~/.aws."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_METADATA_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))


@pytest.fixture
def bucket_engine(
    qapp: object,
    repository: Repository,
    settings: Settings,
    data_dir: Path,
    s3_bucket: S3Bucket,
) -> Iterator[Engine]:
    """The real engine, opening storages with the bucket's keys (as the window's keyring)."""
    keys = s3_bucket.writer
    shelf = StorageShelf(data_dir, keys.access_key, keys.secret_key)
    engine = Engine(repository, settings, data_dir, storages=shelf)
    yield engine
    engine.shutdown(timeout_ms=5000)
    _delete_on_this_thread(engine)


@pytest.fixture
def pane(
    qtbot: QtBot, repository: Repository, bucket_engine: Engine, tmp_path: Path
) -> Iterator[ImagesPane]:
    """The window's images pane, its cache reading outputs through the engine's storages."""
    model = ImagesTableModel(repository, download_progress=bucket_engine.download_progress)
    cache = ImageCache(storage_of=bucket_engine.storage_of)
    fetcher = OriginalFetcher()
    qsettings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    widget = ImagesPane(model, cache, fetcher, lambda: bucket_engine.settings, qsettings, [], [])
    widget.preview.set_compare_original(False)  # the "after" pane is what is tested here
    qtbot.addWidget(widget)
    widget.resize(1400, 700)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    for dialog in widget.findChildren(CompareDialog):
        dialog.close()
    fetcher.stop()
    cache.shutdown()
    widget.close()
    _delete_on_this_thread(widget, cache, fetcher, model)


def process_into_bucket(
    qtbot: QtBot,
    repository: Repository,
    engine: Engine,
    server: HttpTestServer,
    bucket: S3Bucket,
    proxy: S3Proxy,
) -> str:
    """Process one 640 × 480 JPEG into the bucket (through the proxy); the request's id."""
    url = serve_jpeg(server, "shirt.jpg", 640, 480)
    csv = f"S. No.,Product Name,Input Image Urls\n1,Shirt,{url}\n".encode()
    choice = StorageChoice(
        kind="s3", bucket=bucket.name, prefix=PREFIX, endpoint=proxy.endpoint, region=bucket.region
    )
    request_id = repository.create_request(parse_catalogue(csv, "shirts.csv"), storage=choice)
    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS):
        engine.start_request(request_id)
    [image] = repository.list_images(request_id)
    assert image.status == "done", image.error
    return request_id


def show_first_image(
    qtbot: QtBot, pane: ImagesPane, repository: Repository, request_id: str
) -> ImageInfo:
    pane.show_request(repository.get_request(request_id))
    qtbot.waitUntil(lambda: pane.view.model().rowCount() == 1, timeout=WAIT_MS)
    pane.view.selectRow(0)
    image = pane.preview.image
    assert image is not None
    return image


def gets_of(proxy: S3Proxy, file_name: str) -> int:
    return sum(1 for r in proxy.outcomes("GET", "forwarded") if r.path.endswith(file_name))


def test_the_preview_shows_the_after_image_read_from_the_bucket(
    qtbot: QtBot,
    pane: ImagesPane,
    repository: Repository,
    bucket_engine: Engine,
    server: HttpTestServer,
    s3_bucket: S3Bucket,
    s3_proxy: S3Proxy,
) -> None:
    request_id = process_into_bucket(qtbot, repository, bucket_engine, server, s3_bucket, s3_proxy)
    image = show_first_image(qtbot, pane, repository, request_id)
    # A bucket's output is recorded by its key: there is no file on this computer.
    assert image.output_path == f"{request_id}/0001_shirt_1.jpg"
    assert not Path(image.output_path).exists()

    after = pane.preview.output_box()
    qtbot.waitUntil(after.has_image, timeout=WAIT_MS)
    assert "Could not read" not in after.message

    # The comparison at 100 % shows it at full size, from the bytes already read: one GET
    # for the preview, the thumbnail and the comparison together.
    dialog = pane.preview.open_comparison()
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.image(Side.AFTER) is not None, timeout=WAIT_MS)
    full_size = dialog.image(Side.AFTER)
    assert full_size is not None and full_size.size() == QSize(640, 480)
    assert gets_of(s3_proxy, "0001_shirt_1.jpg") == 1

    # "Open output" opens a freshly signed URL of the object, which a browser can load.
    url = object_url(bucket_engine.storage_of, image)
    assert url is not None and "X-Amz-Signature=" in url
    assert f"/{s3_bucket.name}/{PREFIX}/{request_id}/0001_shirt_1.jpg?" in url
    public = object_url(bucket_engine.storage_of, image, "https://cdn.example/shop")
    assert public == f"https://cdn.example/shop/{request_id}/0001_shirt_1.jpg"


def test_a_bucket_that_does_not_answer_is_one_sentence_in_the_pane(
    qtbot: QtBot,
    pane: ImagesPane,
    repository: Repository,
    bucket_engine: Engine,
    server: HttpTestServer,
    s3_bucket: S3Bucket,
    s3_proxy: S3Proxy,
) -> None:
    request_id = process_into_bucket(qtbot, repository, bucket_engine, server, s3_bucket, s3_proxy)
    s3_proxy.fail_next(1000, status=503)
    show_first_image(qtbot, pane, repository, request_id)

    after = pane.preview.output_box()
    expected = (
        "Could not read the output from the bucket: the storage server at "
        f"{s3_proxy.endpoint} kept answering 503 (5 tries) when imgdesk tried to read "
        "0001_shirt_1.jpg; try again later."
    )
    qtbot.waitUntil(lambda: after.message == expected, timeout=WAIT_MS)
    assert not after.has_image()
    assert "Traceback" not in after.message


def test_an_output_deleted_from_the_bucket_is_named_in_the_pane(
    qtbot: QtBot,
    pane: ImagesPane,
    repository: Repository,
    bucket_engine: Engine,
    server: HttpTestServer,
    s3_bucket: S3Bucket,
    s3_proxy: S3Proxy,
) -> None:
    request_id = process_into_bucket(qtbot, repository, bucket_engine, server, s3_bucket, s3_proxy)
    key = f"{request_id}/0001_shirt_1.jpg"
    bucket_engine.storage_of(request_id).delete(key)
    show_first_image(qtbot, pane, repository, request_id)

    after = pane.preview.output_box()
    expected = (
        f"Could not read the output from the bucket: {PREFIX}/{key} is not in the bucket "
        f"{s3_bucket.name} (deleted or moved since it was stored)."
    )
    qtbot.waitUntil(lambda: after.message == expected, timeout=WAIT_MS)
    assert gets_of(s3_proxy, "0001_shirt_1.jpg") == 1  # not retried: it is gone
