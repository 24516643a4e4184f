"""Reading a CSV in chunks, in the caller's thread or a child process: same rows, same refusals."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

from imgdesk.core import reader
from imgdesk.core.csvio import Catalogue, read_catalogue
from imgdesk.core.errors import CsvFileError
from imgdesk.core.reader import ReadCancelledError, read_in_chunks
from imgdesk.core.repository import PreparedRows


@pytest.fixture(params=["thread", "child"])
def where(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with the file read in the caller's thread, then in a child process."""
    if request.param == "child":
        monkeypatch.setattr(reader, "CHILD_MIN_BYTES", 0)
    else:
        monkeypatch.setattr(reader, "CHILD_MIN_BYTES", 1 << 40)
    return str(request.param)


def write_rows(path: Path, count: int, tail: str = "") -> Path:
    lines = ["S. No.,Product Name,Input Image Urls"]
    for n in range(1, count + 1):
        lines.append(f'{n},Shirt {n},"http://h/{n}-a.jpg, http://h/{n}-b.jpg"')
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    return path


def test_every_row_is_handed_over_in_chunks_then_a_summary(tmp_path: Path, where: str) -> None:
    path = write_rows(tmp_path / "p.csv", 25, tail="26,No URL here,\n")
    chunks: list[tuple[Catalogue, PreparedRows]] = []

    summary = read_in_chunks(path, lambda head, rows: chunks.append((head, rows)), 10)

    expected = read_catalogue(path)
    assert [rows.row_count for _head, rows in chunks] == [10, 10, 6]
    assert chunks[0][0].header == expected.header and chunks[0][0].rows == ()
    products = [product for _head, rows in chunks for product in json.loads(rows.products)]
    assert [product[2] for product in products] == [row.serial for row in expected.rows]
    assert sum(rows.image_count for _head, rows in chunks) == 50
    assert (summary.name, summary.row_count, summary.valid_count) == ("p.csv", 26, 25)
    assert [row.line for row in summary.invalid_rows] == [27]
    assert summary.valid_image_count == 50


def test_a_refused_file_raises_the_same_error_as_in_process(tmp_path: Path, where: str) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("S. No.,Product Name,Price\n1,Shirt,10\n", encoding="utf-8")
    with pytest.raises(CsvFileError) as in_process:
        read_catalogue(path)

    with pytest.raises(CsvFileError) as in_child:
        read_in_chunks(path, lambda head, rows: None, 10)

    assert (in_child.value.message, in_child.value.line) == (
        in_process.value.message,
        in_process.value.line,
    )


def test_a_cancelled_read_stops(tmp_path: Path, where: str) -> None:
    path = write_rows(tmp_path / "big.csv", 100_000)
    cancel = threading.Event()
    chunks: list[int] = []

    def on_rows(_head: Catalogue, rows: PreparedRows) -> None:
        chunks.append(rows.row_count)
        cancel.set()  # the user cancels as soon as the first rows are in

    with pytest.raises(ReadCancelledError):
        read_in_chunks(path, on_rows, 100, cancel)

    assert chunks and sum(chunks) < 100_000
    assert multiprocessing.active_children() == []


def test_big_files_go_to_a_child_and_small_ones_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = write_rows(tmp_path / "small.csv", 10)
    big = write_rows(tmp_path / "big.csv", 6000)
    assert small.stat().st_size < reader.CHILD_MIN_BYTES <= big.stat().st_size
    in_child: list[str] = []
    real = reader._read_in_child

    def spy(path: Path, *args: Any) -> Any:
        in_child.append(path.name)
        return real(path, *args)

    monkeypatch.setattr(reader, "_read_in_child", spy)
    for path in (small, big):
        summary = read_in_chunks(path, lambda head, rows: None, 1000)
        assert summary.valid_count == summary.row_count
    assert in_child == ["big.csv"]
