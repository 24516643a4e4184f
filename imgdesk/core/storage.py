"""Where compressed images live, what they are called, and how they get there safely.

Files are written to a hidden temp file in the same folder and renamed over the target, so
nobody (a viewer, the output CSV, a web server) ever sees half an image, and a crash leaves
only ``.*.part`` files that :func:`remove_partial_files` recognises.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote

from imgdesk.core.errors import ErrorCode, ImageError

logger = logging.getLogger(__name__)

PART_SUFFIX = ".part"
# An output read back (the window's preview) is held in memory whole: never more than this.
MAX_READ_BYTES = 128 * 1024 * 1024
_SLUG_MAX = 60
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_EXTENSION = re.compile(r"\.[a-z0-9]{1,8}")
_DISK_FULL = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}
_NOT_A_FOLDER = {errno.ENOTDIR, errno.EEXIST}
# O_BINARY exists (and matters) on Windows only.
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def request_folder(data_dir: Path, request_id: str) -> Path:
    """The folder holding one request's images: ``data_dir/images/<request_id>``."""
    return data_dir / "images" / _checked_name(request_id, "request id")


def _checked_name(name: str, what: str) -> str:
    """``name`` if it is one path component, so a path never escapes the images folder."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"not a usable {what}: {name!r}")
    return name


def output_file_name(row_number: int, product_name: str, position: int, extension: str) -> str:
    """A file name that is unique within a request and readable, e.g. ``0007_blue-shirt_2.jpg``.

    ``row_number`` (unique per request) and ``position`` make it unique; the slug only helps
    a person; ``extension`` (".jpg", ".webp", ".avif") is the output format's. The name is
    plain ``[0-9a-z_.-]`` and starts with digits, so it is never one of Windows' reserved
    names (CON, NUL, COM1...) nor ends with a dot or a space.
    """
    if row_number < 0 or position < 0:
        raise ValueError(f"row_number and position must not be negative: {row_number}, {position}")
    if not _EXTENSION.fullmatch(extension):
        raise ValueError(f"not a file extension: {extension!r}")
    return f"{row_number:04d}_{_slug(product_name)}_{position}{extension}"


def _slug(text: str) -> str:
    """Lowercase ASCII words joined by dashes; accents folded ("Crème" -> "creme")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    slug = slug[:_SLUG_MAX].rstrip("-")
    return slug or "product"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all at once or not at all.

    Creates missing parent folders, writes a temp file next to ``path``, flushes it to disk
    and renames it over ``path``. On failure the temp file is removed.

    Raises:
        ImageError: ``storage``, with a sentence saying what to do (disk full, no permission,
            a file in the way of a folder, ...).
    """
    with atomic_file(path) as handle:
        handle.write(data)


def link_atomic(source: Path, path: Path) -> None:
    """Make ``path`` hold the same bytes as ``source`` (an earlier output), atomically.

    A hard link costs nothing and survives the deletion of ``source``'s request; where links
    are impossible (another disk, some file systems) the bytes are copied.

    Raises:
        ImageError: ``storage``, with a sentence saying what is wrong.
    """
    if source == path:
        return
    temp = _temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, temp)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise _storage_error(exc, source.parent) from exc
        write_atomic(path, data)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file to write ``path`` through: it appears whole at ``path`` when the block ends.

    For writers that want a real file (Pillow encodes into one without holding the GIL);
    :func:`write_atomic` uses it for bytes in hand. If the block raises, the temp file is
    removed.

    Raises:
        ImageError: ``storage``, when the file cannot be created, written or renamed.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _storage_error(exc, folder, path.name) from exc
    temp = _temp_path(path)
    created = False
    try:
        # "xb" creates the file with 0o666 minus the umask, like any new file.
        with open(temp, "xb") as handle:
            created = True
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        if created:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        if isinstance(exc, OSError):
            raise _storage_error(exc, folder, path.name) from exc
        raise


def _temp_path(path: Path) -> Path:
    """A hidden ``.part`` name beside ``path``, easy to recognise and remove after a crash."""
    return path.parent / f".{path.name}.{secrets.token_hex(4)}{PART_SUFFIX}"


def check_folder_writable(folder: Path, probe_bytes: int = 0) -> None:
    """Make sure images can be stored in ``folder`` before any work starts.

    With ``probe_bytes`` the probe also proves there is room for that much (after a full disk).

    Raises:
        ImageError: ``storage``, with a sentence saying what is wrong.
    """
    probe = folder / f".imgdesk-write-test-{secrets.token_hex(4)}{PART_SUFFIX}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # The probe is named like a temp file, so a crash here leaves nothing unknown.
        fd = os.open(probe, _WRITE_FLAGS, 0o666)
        try:
            data = memoryview(b"imgdesk" + bytes(probe_bytes))
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(probe)
        raise _storage_error(exc, folder) from exc


def remove_partial_files(folder: Path) -> int:
    """Delete the ``.*.part`` temp files a crash left in ``folder``; returns how many.

    Call it only while nothing is writing to ``folder``: a write in progress uses such a file.
    """
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise _storage_error(exc, folder) from exc
    removed = 0
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(PART_SUFFIX)):
            continue
        if not entry.is_file(follow_symlinks=False):
            continue
        try:
            os.unlink(entry.path)
        except OSError as exc:
            logger.warning("Could not remove the leftover temp file %s: %s", entry.path, exc)
        else:
            removed += 1
    if removed:
        logger.info("Removed %d leftover temp file(s) from %s", removed, folder)
    return removed


def output_url(path: Path, request_id: str, public_base_url: str) -> str:
    """The URL written to the output CSV for a stored image.

    A ``file://`` URI by default; with a public base URL (where the user publishes the images
    folder) ``<base>/<request_id>/<file name>``.
    """
    if not public_base_url:
        # The folder is resolved once per request folder, not per image (a realpath is one
        # lstat per path component, on the GUI thread).
        return f"{_folder_uri(path.parent)}/{quote(path.name)}"
    return f"{public_base_url.rstrip('/')}/{quote(request_id, safe='')}/{quote(path.name, safe='')}"


@functools.lru_cache(maxsize=64)
def _folder_uri(folder: Path) -> str:
    return folder.resolve().as_uri()


def _storage_error(exc: OSError, folder: Path, file_name: str | None = None) -> ImageError:
    """Turn an OSError about writing in ``folder`` into a message that says what to do."""
    what = file_name or "images"
    code = exc.errno
    if code in _DISK_FULL:
        message = (
            f"The disk is full: could not save {what} in {folder}. "
            "Free some space, then retry the failed images."
        )
    elif code == errno.EFBIG:
        message = (
            f"The file is too large for this disk or a system file size limit: could not save "
            f"{what} in {folder}."
        )
    elif code in _NOT_ALLOWED:
        reason = "the disk is read-only" if code == errno.EROFS else "permission denied"
        message = (
            f"imgdesk is not allowed to write to {folder} ({reason}). Fix the folder's "
            "permissions or choose another data folder in Settings."
        )
    elif code in _NOT_A_FOLDER:
        blocker = _blocking_file(folder)
        message = (
            f"Cannot create the folder {folder}: {blocker} is a file, not a folder. "
            "Move or rename that file, or choose another data folder in Settings."
        )
    else:
        message = f"Could not save {what} in {folder}: {exc.strerror or exc}."
    return ImageError(ErrorCode.STORAGE, message)


def _blocking_file(folder: Path) -> Path:
    """The nearest existing ancestor of ``folder`` (or itself) that is not a folder."""
    for candidate in (folder, *folder.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate if not candidate.is_dir() else folder
    return folder


def output_too_large(file_name: str, size: int, max_bytes: int) -> ImageError:
    """The refusal to read back an output larger than ``max_bytes`` (it would be held whole)."""
    return ImageError(
        ErrorCode.STORAGE,
        f"{file_name} is {size:,} bytes, more than the {max_bytes:,} bytes imgdesk reads "
        "back into memory.",
    )


def storage_key(request_id: str, file_name: str) -> str:
    """The key of a stored output: ``<request_id>/<file name>``, the same in every storage."""
    return f"{_checked_name(request_id, 'request id')}/{_checked_name(file_name, 'file name')}"


def split_key(key: str) -> tuple[str, str]:
    """``(request_id, file name)`` of a key made by :func:`storage_key`."""
    request_id, _, file_name = key.partition("/")
    return request_id, file_name


class Storage(Protocol):
    """Where outputs are kept, addressed by key (``<request_id>/<file name>``).

    Every write is atomic: an output is visible whole or not at all. Failures are
    :class:`~imgdesk.core.errors.ImageError` with code ``storage`` and a sentence.
    """

    def check_writable(self, request_id: str, probe_bytes: int = 0) -> None:
        """Prove a request's outputs can be stored (with room for ``probe_bytes``)."""

    def open_output(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A file to write the output through; it is stored under ``key`` when the block ends."""

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``."""

    def copy(self, source_key: str, key: str) -> None:
        """Store under ``key`` the same bytes as ``source_key`` (second-run reuse)."""

    def exists(self, key: str) -> bool:
        """True when an output is stored under ``key``."""

    def read(self, key: str, max_bytes: int = MAX_READ_BYTES) -> bytes:
        """The bytes stored under ``key`` (the window's preview); refused above ``max_bytes``."""

    def names(self, request_id: str) -> set[str]:
        """The file names stored for a request (temp files excluded)."""

    def delete(self, key: str) -> None:
        """Remove one output, if it is there."""

    def delete_request(self, request_id: str) -> None:
        """Remove every output of a request."""

    def clean_partial(self, request_id: str) -> int:
        """Remove what an interrupted write left behind; returns how many."""

    def url(self, key: str, public_base_url: str = "") -> str:
        """The URL the output CSV gives for ``key``."""

    def local_path(self, key: str) -> Path | None:
        """The output as a file on this computer, when it is one (previews, Open Folder)."""


class LocalStorage:
    """Outputs in a folder: ``<root>/<request_id>/<file name>`` (by default ``images/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, request_id: str) -> Path:
        """The folder of one request's outputs."""
        return self.root / _checked_name(request_id, "request id")

    def path(self, key: str) -> Path:
        """The file of a key."""
        request_id, file_name = split_key(key)
        return self.folder(request_id) / file_name

    def key_of(self, path: Path) -> str:
        """The key of a file stored here (a path recorded by an older imgdesk)."""
        return storage_key(path.parent.name, path.name)

    def check_writable(self, request_id: str, probe_bytes: int = 0) -> None:
        """Create the request's folder and write a probe file there."""
        check_folder_writable(self.folder(request_id), probe_bytes)

    def open_output(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A temp file beside the target, renamed over it (fsynced) when the block ends."""
        return atomic_file(self.path(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` atomically."""
        write_atomic(self.path(key), data)

    def copy(self, source_key: str, key: str) -> None:
        """Hard-link (or copy) an earlier output."""
        link_atomic(self.path(source_key), self.path(key))

    def exists(self, key: str) -> bool:
        """True when the file is there."""
        return self.path(key).is_file()

    def read(self, key: str, max_bytes: int = MAX_READ_BYTES) -> bytes:
        """The file's bytes, refused above ``max_bytes`` before any is read.

        Raises:
            ImageError: ``storage``, when the file is missing, unreadable or too large.
        """
        path = self.path(key)
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > max_bytes:
                    raise output_too_large(path.name, size, max_bytes)
                data = handle.read(max_bytes + 1)  # bounded even if the file grows meanwhile
        except FileNotFoundError as exc:
            raise ImageError(
                ErrorCode.STORAGE,
                f"{path.name} is not in {path.parent} (deleted or moved since it was stored).",
            ) from exc
        except OSError as exc:
            raise ImageError(
                ErrorCode.STORAGE, f"Could not read {path}: {exc.strerror or exc}."
            ) from exc
        if len(data) > max_bytes:
            raise output_too_large(path.name, len(data), max_bytes)
        return data

    def names(self, request_id: str) -> set[str]:
        """One directory listing; hidden (temp) files left out."""
        try:
            with os.scandir(self.folder(request_id)) as entries:
                return {
                    entry.name
                    for entry in entries
                    if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False)
                }
        except FileNotFoundError:
            return set()
        except OSError as exc:
            raise _storage_error(exc, self.folder(request_id)) from exc

    def delete(self, key: str) -> None:
        """Unlink the file, if it is there."""
        self.path(key).unlink(missing_ok=True)

    def delete_request(self, request_id: str) -> None:
        """Remove the request's folder and everything in it."""
        shutil.rmtree(self.folder(request_id), ignore_errors=True)

    def clean_partial(self, request_id: str) -> int:
        """Remove the ``.*.part`` files a crash left in the request's folder."""
        return remove_partial_files(self.folder(request_id))

    def url(self, key: str, public_base_url: str = "") -> str:
        """A ``file://`` URI, or ``<base>/<request_id>/<file name>`` with a public base URL."""
        request_id, _ = split_key(key)
        return output_url(self.path(key), request_id, public_base_url)

    def local_path(self, key: str) -> Path | None:
        """The file itself."""
        return self.path(key)
