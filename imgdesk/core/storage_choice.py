"""Where a request's outputs go, as a value recorded with the request (never a secret).

``--storage DEST`` and the window's Settings > Storage make a :class:`StorageChoice`; the
request keeps it, so its retries, exports and a cluster's workers write to the same place.
:func:`open_storage` turns it into a :class:`~imgdesk.core.storage.Storage`, taking the
credentials from the standard AWS sources or from the caller (the window's keyring).
"""

from __future__ import annotations

import dataclasses
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from imgdesk.core.errors import SettingsError
from imgdesk.core.storage import LocalStorage, Storage, check_folder_writable

DEFAULT_CACHE_CONTROL = "public, max-age=31536000, immutable"
MAX_PRESIGN_EXPIRY_S = 7 * 24 * 3600  # what S3 allows for a presigned URL
CONNECTION_TEST_ID = "imgdesk-connection-test"  # the "request" a storage test probes in
# S3's bucket name rules: 3 to 63 of a-z 0-9 . -, a letter or digit at both ends.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d{1,3}(\.\d{1,3}){3}")


def check_bucket_name(bucket: str) -> None:
    """Refuse a bucket name S3 would refuse, before any request is made.

    Raises:
        SettingsError: the name breaks S3's rules; the sentence says which.
    """
    if not bucket:
        raise SettingsError("The S3 bucket name is empty: write s3://BUCKET[/PREFIX].")
    if bucket != bucket.lower():
        raise SettingsError(f"{bucket!r} is not a bucket name: S3 bucket names are lowercase.")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IP_ADDRESS.fullmatch(bucket):
        raise SettingsError(
            f"{bucket!r} is not a bucket name: S3 bucket names are 3 to 63 lowercase letters, "
            "digits, dots and dashes, start and end with a letter or digit, and are not an "
            "IP address."
        )


def check_key_prefix(prefix: str) -> None:
    """Refuse a key prefix with empty, ``.`` or ``..`` folder names.

    Raises:
        SettingsError: the prefix cannot be used; the sentence says why.
    """
    parts = prefix.split("/") if prefix else []
    if any(part in ("", ".", "..") for part in parts):
        raise SettingsError(
            f"{prefix!r} is not a usable key prefix: write folder names separated "
            "by single slashes, without '.' or '..'."
        )


@dataclass(frozen=True)
class StorageChoice:
    """A local folder (``folder``; "" is the data folder's ``images``) or an S3 bucket.

    Attributes:
        kind: ``local`` or ``s3``.
        folder: the local folder, absolute; "" for ``<data dir>/images``.
        bucket: the S3 bucket.
        prefix: the keys' prefix inside the bucket, without slashes at either end.
        endpoint: the S3 server's URL; "" for AWS.
        region: the bucket's region; "" lets the client decide (``us-east-1`` for AWS).
        presign_expiry_s: how long the output CSV's presigned URLs stay valid.
        cache_control: the ``Cache-Control`` every object is stored with.
    """

    kind: Literal["local", "s3"] = "local"
    folder: str = ""
    bucket: str = ""
    prefix: str = ""
    endpoint: str = ""
    region: str = ""
    presign_expiry_s: int = MAX_PRESIGN_EXPIRY_S
    cache_control: str = DEFAULT_CACHE_CONTROL

    def __post_init__(self) -> None:
        if self.kind not in ("local", "s3"):
            raise SettingsError(f"unknown storage kind {self.kind!r}")
        if self.kind == "s3":
            check_bucket_name(self.bucket)
            check_key_prefix(self.prefix)
            if not 1 <= self.presign_expiry_s <= MAX_PRESIGN_EXPIRY_S:
                raise SettingsError(
                    "the presigned URLs' expiry must be between 1 second and 7 days "
                    f"({MAX_PRESIGN_EXPIRY_S} s), the most S3 allows"
                )
            if self.endpoint and not re.match(r"https?://[^/]", self.endpoint):
                raise SettingsError(
                    f"the S3 endpoint must be an http:// or https:// URL, not {self.endpoint!r}"
                )

    @property
    def is_default(self) -> bool:
        """True for the data folder's ``images`` (what requests without a choice use)."""
        return self.kind == "local" and not self.folder

    def describe(self) -> str:
        """How the choice is shown in status and the window: a folder or ``s3://…``."""
        if self.kind == "local":
            return self.folder or "the data folder's images"
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {self.endpoint}" if self.endpoint else where

    def s3_address(self, request_id: str) -> str:
        """Where a request's objects are in a bucket, as a person writes it (``s3://…/<id>``)."""
        return "/".join(part for part in (f"s3://{self.bucket}", self.prefix, request_id) if part)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (what the request records)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StorageChoice:
        """The inverse of :meth:`to_dict`; unknown keys (a newer imgdesk's) are ignored."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def replace(self, **changes: Any) -> StorageChoice:
        """A copy with some fields changed (checked like a new one)."""
        return dataclasses.replace(self, **changes)


def parse_destination(
    destination: str,
    endpoint: str = "",
    region: str = "",
    presign_expiry_s: int = MAX_PRESIGN_EXPIRY_S,
) -> StorageChoice:
    """The choice ``--storage DEST`` names: a folder path, or ``s3://BUCKET[/PREFIX]``.

    Raises:
        SettingsError: the destination cannot be used; the sentence says why.
    """
    text = destination.strip()
    if not text:
        raise SettingsError("--storage needs a folder or s3://BUCKET[/PREFIX]")
    if text.lower().startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        if not bucket:
            raise SettingsError(f"{destination!r} names no bucket: write s3://BUCKET[/PREFIX]")
        return StorageChoice(
            kind="s3",
            bucket=bucket,
            # "s3://b/a//b/" means the prefix "a/b": empty folder names are slips, not intent.
            prefix="/".join(part for part in prefix.split("/") if part),
            endpoint=endpoint.rstrip("/"),
            region=region,
            presign_expiry_s=presign_expiry_s,
        )
    if "://" in text:
        raise SettingsError(
            f"{destination!r} is neither a folder nor an s3:// address; imgdesk stores "
            "into a local folder or an S3-compatible bucket"
        )
    if endpoint or region:
        raise SettingsError("--s3-endpoint and --s3-region go with --storage s3://BUCKET")
    return StorageChoice(folder=str(Path(text).expanduser().absolute()))


def open_storage(
    choice: StorageChoice, data_dir: Path, secret_key: str | None = None, access_key: str = ""
) -> Storage:
    """The storage a choice names.

    S3 credentials are ``access_key`` and ``secret_key`` when given (the window's keyring),
    else the standard AWS sources (environment, ``AWS_PROFILE`` and the shared files).
    """
    if choice.kind == "local":
        return LocalStorage(Path(choice.folder) if choice.folder else data_dir / "images")
    from imgdesk.core.s3storage import S3Storage  # only a bucket needs the S3 client

    storage: Storage = S3Storage.from_choice(choice, access_key=access_key, secret_key=secret_key)
    return storage


class StorageShelf:
    """The storages of the choices in use, each opened once so its client is reused.

    The engine and the workers of this computer share one; ``open`` is safe from any thread.
    """

    def __init__(self, data_dir: Path, access_key: str = "", secret_key: str | None = None) -> None:
        self._data_dir = data_dir
        self._access_key = access_key
        self._secret_key = secret_key
        self._opened: dict[StorageChoice, Storage] = {}
        self._lock = threading.Lock()

    @property
    def access_key(self) -> str:
        """The S3 access key storages are opened with ("" for the standard AWS sources)."""
        return self._access_key

    def set_credentials(self, access_key: str, secret_key: str | None) -> None:
        """Use these S3 keys from now on (the window's settings changed)."""
        with self._lock:
            self._access_key, self._secret_key = access_key, secret_key
            self._opened.clear()

    def open(self, choice: StorageChoice) -> Storage:
        """The storage of ``choice`` (opened on first use)."""
        with self._lock:
            storage = self._opened.get(choice)
            if storage is None:
                storage = open_storage(choice, self._data_dir, self._secret_key, self._access_key)
                self._opened[choice] = storage
            return storage


def check_storage(
    choice: StorageChoice, data_dir: Path, access_key: str = "", secret_key: str | None = None
) -> None:
    """Prove outputs can be stored where ``choice`` says (the window's "Test connection").

    A folder is created if needed and a probe file written and removed; a bucket gets a
    probe object written, read, listed and removed, which names a missing permission.

    Raises:
        ImageError: ``storage``, with a sentence saying what is wrong.
        SettingsError: the choice itself cannot be used.
    """
    if choice.kind == "local":
        check_folder_writable(Path(choice.folder) if choice.folder else data_dir / "images")
        return
    storage = open_storage(choice, data_dir, secret_key, access_key)
    storage.check_writable(CONNECTION_TEST_ID)
