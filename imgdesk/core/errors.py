"""Typed, expected failures: each carries a short code and a sentence a shop owner understands.

Anything that is not one of these is a bug and is logged with its traceback.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The per-image error codes of the spec (``http_<status>`` is built by :func:`http_code`)."""

    INVALID_URL = "invalid_url"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    TOO_LARGE = "too_large"
    EMPTY = "empty"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_TYPE = "unsupported_type"
    DECOMPRESSION_BOMB = "decompression_bomb"
    BAD_IMAGE = "bad_image"
    STORAGE = "storage"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


# HTTP statuses worth another try: the server may answer differently later.
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))


def http_code(status: int) -> str:
    """The error code for an HTTP status, e.g. ``http_404``."""
    return f"http_{status}"


# What an image the user cancelled says, on this computer and in the cluster alike.
CANCELLED_MESSAGE = "Cancelled by the user."


class ImdeskError(Exception):
    """Base of every expected imgdesk failure."""


class ImageError(ImdeskError):
    """One image could not be fetched, decoded or stored.

    Attributes:
        code: the short error code (an :class:`ErrorCode` value or ``http_<status>``).
        message: a human sentence.
        transient: True when trying again later may succeed.
        http_status: the HTTP status the server answered, if any.
        retry_after: seconds the server asked us to wait before trying again, if any.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        transient: bool = False,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.transient = transient
        self.http_status = http_status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"ImageError({self.code!r}, {self.message!r}, transient={self.transient})"


class CsvFileError(ImdeskError):
    """The whole CSV file is rejected (missing column, not a CSV, empty, unreadable).

    Attributes:
        message: what is wrong, in words.
        line: the 1-based line number of the problem, when there is one.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


class SettingsError(ImdeskError):
    """A setting has a value that cannot be used; the message names the setting."""


class DataFolderError(ImdeskError):
    """The data folder or its database cannot be used; the message names the file and the fix.

    Raised before anything is touched (a read-only folder, a file that is not imgdesk's
    database, a newer schema) and when the database vanishes while imgdesk runs.
    """

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class DatabaseError(ImdeskError):
    """The database refused a read or write."""


class RequestGoneError(ImdeskError):
    """The request is no longer in the database: deleted meanwhile (another window, a cleanup)."""


class DatabaseBusyError(DatabaseError):
    """Another program holds the database's write lock; the same call may succeed later."""


# The one busy-database policy: whoever meets DatabaseBusyError keeps what it wanted to
# write (or read) and tries again after this long, without telling the user anything yet.
BUSY_RETRY_MS = 500
