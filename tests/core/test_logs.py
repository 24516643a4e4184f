"""The log set-up: a clear error for an unusable folder, and no credentials in any line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.db import close_database, open_database
from imgdesk.core.errors import DataFolderError
from imgdesk.core.logs import setup_logging, stop_logging
from imgdesk.core.repository import Repository

PASSWORD = "hunter2pass"
TOKEN = "t0kenvalue"
SECRET = "whsec_c2VjcmV0a2V5Zm9ydGVzdHM="
HOOK_PASSWORD = "hookpassw0rd"


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    stop_logging()
    close_database()
    root.setLevel(level)


def test_a_file_in_the_way_of_the_log_folder_is_one_sentence(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "logs").write_text("a file, not a folder")
    with pytest.raises(DataFolderError) as info:
        setup_logging(data_dir)
    assert info.value.message == (
        f"imgdesk cannot write to its data folder {data_dir} ({data_dir / 'logs'}): a file "
        "stands where a folder should be. Choose another folder with --data-dir or "
        "IMGDESK_DATA_DIR."
    )


def test_credentials_and_tokens_never_reach_the_file_or_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    log_path = setup_logging(data_dir, verbose=True)
    url = f"http://shop:{PASSWORD}@cdn.example/a.jpg?token={TOKEN}&w=1"
    log = logging.getLogger("imgdesk.test")
    log.info("done %s (%s bytes)", url, 10)
    try:
        raise OSError(f"connection refused by {url}")
    except OSError:
        log.exception("failed")
    # The webhook secret and URL go through peewee's statements: never logged, even verbose.
    open_database(data_dir / "imgdesk.sqlite3")
    csv = f"S. No.,Product Name,Input Image Urls\n1,Mug,{url}\n".encode()
    Repository().create_request(
        parse_catalogue(csv, "products.csv"),
        webhook_url=f"https://hooks:{HOOK_PASSWORD}@hooks.example/in",
        webhook_secret=SECRET,
    )
    stop_logging()

    text = log_path.read_text(encoding="utf-8")
    stderr = capfd.readouterr().err
    assert "done http://***@cdn.example/a.jpg?token=***&w=***" in text
    assert "OSError: connection refused by http://***@cdn.example/" in text  # the traceback too
    assert "request" in text and "created from products.csv" in text
    for shown in (text, stderr):
        assert "cdn.example" in shown
        for secret in (PASSWORD, TOKEN, SECRET, HOOK_PASSWORD):
            assert secret not in shown


def test_setting_up_again_replaces_the_handler(tmp_path: Path) -> None:
    first = setup_logging(tmp_path / "one")
    second = setup_logging(tmp_path / "two")
    logging.getLogger("imgdesk.test").warning("only in the second")
    stop_logging()
    assert "only in the second" not in first.read_text(encoding="utf-8")
    assert "only in the second" in second.read_text(encoding="utf-8")
    assert not [h for h in logging.getLogger().handlers if getattr(h, "imgdesk", False)]
