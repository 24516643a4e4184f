"""Talking to the window already open on a data folder: a second launch, ``imgdesk cancel``.

Only one imgdesk processes a data folder at a time (:mod:`imgdesk.core.instance`). When that
one is the window, a second ``imgdesk more.csv`` hands its files to it instead of being
refused, and ``imgdesk cancel REQUEST_ID`` asks it to cancel (SPEC 6 and 7). The window
listens on a local socket named after the data folder (``imgdesk.gui.single_instance``); this
module is the plain-Python client, so the command line needs no Qt to use it.

The protocol is one JSON object a line, UTF-8, one question per connection::

    {"open": ["/abs/path/a.csv", ...]}   ->  {"ok": true, "opened": 1}
    {"cancel": "<request id or prefix>"} ->  {"ok": true, "request_id": "...", "status": "failed"}
                                         or  {"ok": false, "error": "<one sentence>"}

On Linux and macOS the socket is an ``AF_UNIX`` socket in the user's runtime folder (its
name must stay under the 104-byte limit of socket paths, which a data folder's own path can
exceed). On Windows Qt's local socket is a named pipe, which plain Python does not speak:
there the functions here answer as if no window were open, and a Qt caller uses
``imgdesk.gui.single_instance.ask_window_qt`` instead.

When the one processing is ``imgdesk process`` or ``retry``, which listens on no socket,
``imgdesk cancel`` leaves a note instead: a file ``cancel-<request id>`` in the data folder,
which the running command looks for twice a second (:func:`leave_cancel_note`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imgdesk.core.instance import unusable_data_folder

logger = logging.getLogger(__name__)

TIMEOUT_S = 10.0  # a window busy with a big file still answers within this
MAX_ANSWER_BYTES = 64 * 1024
OPEN = "open"
CANCEL = "cancel"
CANCEL_NOTE_PREFIX = "cancel-"


def socket_name(data_dir: Path) -> str:
    """The window's socket name for a data folder: the same for every path that names it."""
    digest = hashlib.sha256(str(Path(data_dir).expanduser().resolve()).encode("utf-8"))
    return f"imgdesk-{digest.hexdigest()[:16]}"


def socket_path(data_dir: Path) -> Path:
    """Where the window's socket for a data folder lives on Linux and macOS.

    The runtime folder (``$XDG_RUNTIME_DIR``) is the user's own; the temporary folder, the
    fallback, is shared, so the name carries the user id and the client checks the owner.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(runtime) if runtime and Path(runtime).is_dir() else Path(tempfile.gettempdir())
    user = os.getuid() if hasattr(os, "getuid") else 0
    return folder / f"{socket_name(data_dir)}-{user}.sock"


def ask_window(data_dir: Path, question: dict[str, Any]) -> dict[str, Any] | None:
    """Send one question to the window open on ``data_dir`` and return its answer.

    Returns:
        The window's answer (a dict with ``ok``), ``{"ok": False, "error": ...}`` when a
        window was reached but did not answer in time or sensibly, or None when no window
        listens (none open, a socket left by a crash, or Windows: see the module's note).
    """
    if sys.platform == "win32" or not hasattr(socket, "AF_UNIX"):
        return None
    path = socket_path(data_dir)
    try:
        owner = path.stat().st_uid
    except OSError:
        return None
    if hasattr(os, "getuid") and owner != os.getuid():
        logger.warning("%s belongs to another user; not talking to it", path)
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(TIMEOUT_S)
        try:
            connection.connect(str(path))
        except OSError as error:  # refused or gone: the window that made it is not running
            logger.debug("no window listens on %s: %s", path, error)
            return None
        try:
            connection.sendall(json.dumps(question).encode("utf-8") + b"\n")
            line = _read_line(connection)
        except OSError as error:
            return {"ok": False, "error": f"The imgdesk window did not answer ({error})."}
    try:
        answer = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        return {"ok": False, "error": "The imgdesk window gave an answer imgdesk cannot read."}
    return answer


def send_files(data_dir: Path, paths: Iterable[Path]) -> bool:
    """Hand CSV files to the window open on ``data_dir`` and bring it forward.

    With no files, only brings the window forward. Returns True once the window took them;
    False when no window is open there (or it refused), so the caller says why it cannot go
    on. Relative paths are made absolute here: the window's working folder is another.
    """
    files = [str(Path(path).expanduser().absolute()) for path in paths]
    answer = ask_window(data_dir, {OPEN: files})
    return answer is not None and answer["ok"] is True


def request_cancel(data_dir: Path, request_id: str) -> bool | None:
    """Ask the window open on ``data_dir`` to cancel a request (an id or its first characters).

    Returns:
        True once the window cancelled it; False when the window refused (no such request,
        or it has already finished: :func:`ask_window` gives the window's sentence); None
        when no window is open there, so the caller cancels in the database itself.
    """
    answer = ask_window(data_dir, {CANCEL: request_id})
    if answer is None:
        return None
    return answer["ok"] is True


def _read_line(connection: socket.socket) -> bytes:
    """Bytes up to the first newline (or the end), at most ``MAX_ANSWER_BYTES``."""
    received = b""
    while b"\n" not in received and len(received) < MAX_ANSWER_BYTES:
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
    return received.partition(b"\n")[0]


def leave_cancel_note(data_dir: Path, request_id: str) -> None:
    """Ask the ``process`` or ``retry`` running on ``data_dir`` to cancel a request.

    The note is written under another name and renamed, so the running command never reads
    half a note. It sees the note within half a second, cancels, and removes it.

    Raises:
        DataFolderError: the data folder cannot be written.
    """
    note = data_dir / f"{CANCEL_NOTE_PREFIX}{request_id}"
    partial = data_dir / f".{note.name}.partial"
    try:
        partial.write_text(f"{request_id}\n", encoding="utf-8")
        os.replace(partial, note)
    except OSError as error:
        raise unusable_data_folder(data_dir, error) from None


def cancel_notes(data_dir: Path) -> list[str]:
    """The ids of the requests whose cancelling was asked for by a note, oldest name first."""
    try:
        names = sorted(path.name for path in data_dir.glob(f"{CANCEL_NOTE_PREFIX}*"))
    except OSError as error:
        logger.warning("cannot look for cancel notes in %s: %s", data_dir, error)
        return []
    return [name.removeprefix(CANCEL_NOTE_PREFIX) for name in names]


def remove_cancel_note(data_dir: Path, request_id: str) -> bool:
    """Remove the note asking to cancel a request; False when there was none (or it stays)."""
    try:
        (data_dir / f"{CANCEL_NOTE_PREFIX}{request_id}").unlink()
    except FileNotFoundError:
        return False
    except OSError as error:
        logger.warning("cannot remove the cancel note of %s: %s", request_id, error)
        return False
    return True
