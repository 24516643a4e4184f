"""Reading a CSV, its rows handed over as they are parsed: big files in a child process.

Parsing is pure Python. In a thread of the window's process it holds the GIL, and every
paint of the window (thousands of calls from Qt into Python) then waits for it, one
switch interval per call: the window stalled for half a second at a time while a
100,000-row file was read. A child process has a GIL of its own. Starting one costs about
0.3 s, more than parsing a small file takes, so small files are parsed in the caller's
thread.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from imgdesk.core.csvio import Catalogue, CatalogueSummary, read_catalogue, summarize
from imgdesk.core.errors import CsvFileError
from imgdesk.core.repository import PreparedRows, prepare_rows

RowsReport = Callable[[Catalogue, PreparedRows], None]
POLL_S = 0.05  # how often a waiting reader looks whether it was cancelled
# Below this size (about 5,000 rows, ~60 ms of parsing) a file is read in the caller's thread.
CHILD_MIN_BYTES = 256 * 1024


class ReadCancelledError(Exception):
    """The file was dropped (window closed, request cancelled) while it was read."""


def read_in_chunks(
    path: Path,
    on_rows: RowsReport,
    chunk_rows: int,
    cancel: threading.Event | None = None,
) -> CatalogueSummary:
    """Read and validate ``path``; ``on_rows`` gets each chunk of rows, encoded, as parsed.

    Raises CsvFileError as :func:`~imgdesk.core.csvio.read_catalogue` does, and
    ReadCancelledError once ``cancel`` is set (a child is stopped).
    """
    try:
        small = path.is_file() and path.stat().st_size < CHILD_MIN_BYTES
    except OSError:
        small = True  # read_catalogue says what is wrong with it
    if not small:
        return _read_in_child(path, on_rows, chunk_rows, cancel)

    def encode(head: Catalogue, rows: Any) -> None:
        if cancel is not None and cancel.is_set():
            raise ReadCancelledError(path.name)
        on_rows(head, prepare_rows(rows))

    return summarize(read_catalogue(path, encode, chunk_rows))


def _read_in_child(
    path: Path, on_rows: RowsReport, chunk_rows: int, cancel: threading.Event | None
) -> CatalogueSummary:
    """Read and validate ``path`` in a child process; ``on_rows`` gets each chunk here."""
    context = multiprocessing.get_context("spawn")  # no fork of a process running Qt
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_read_and_send, args=(str(path), sender, chunk_rows), daemon=True
    )
    child.start()
    sender.close()  # the child holds the only sending end: its exit ends the pipe
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise ReadCancelledError(path.name)
            if not receiver.poll(POLL_S):
                continue
            try:
                message = receiver.recv()
            except EOFError:
                raise CsvFileError(
                    f"imgdesk could not read {path.name}: the reading process stopped "
                    f"unexpectedly (exit code {child.exitcode})."
                ) from None
            kind, payload = message
            if kind == "rows":
                on_rows(*payload)
            elif kind == "done":
                summary: CatalogueSummary = payload
                return summary
            elif kind == "refused":
                raise CsvFileError(*payload)
            else:
                raise CsvFileError(f"imgdesk could not read {path.name}: {payload}")
    finally:
        receiver.close()
        if child.is_alive():
            child.terminate()
        child.join(5)


def _read_and_send(path: str, sender: Connection, chunk_rows: int) -> None:
    """The child: parse the file, sending ("rows", ...) per chunk, then how it ended."""

    def send_rows(head: Catalogue, rows: Any) -> None:
        sender.send(("rows", (head, prepare_rows(rows))))

    try:
        catalogue = read_catalogue(Path(path), send_rows, chunk_rows)
        sender.send(("done", summarize(catalogue)))
    except CsvFileError as error:
        sender.send(("refused", (error.message, error.line)))
    except Exception as error:  # noqa: BLE001 - the parent turns it into a message
        sender.send(("failed", repr(error)))
    finally:
        sender.close()
