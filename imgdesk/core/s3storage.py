"""Outputs in an S3-compatible bucket: AWS S3, Cloudflare R2, MinIO, Backblaze B2, ...

Objects are keyed ``PREFIX/<request_id>/<file name>``, the same names as on disk. obstore
(bindings to the Rust ``object_store`` crate) does the talking. An object is visible whole or
not at all: a small file is one PUT, a large one a multipart upload that obstore aborts when
it fails. 5xx answers and dropped connections are retried inside obstore with a bounded
backoff, so an image never hangs on a dead server.

Credentials are the caller's (the window's, from the keyring) or the standard AWS sources,
resolved here and handed to obstore as a credential provider: obstore would otherwise mix
in stray ``AWS_*`` variables (a session token left in the shell) with the keys it is given.
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import quote

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.exceptions import NotFoundError, PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from imgdesk.core.errors import ErrorCode, ImageError, SettingsError
from imgdesk.core.redact import redact_text
from imgdesk.core.storage import (
    MAX_READ_BYTES,
    PART_SUFFIX,
    output_too_large,
    split_key,
    storage_key,
)
from imgdesk.core.storage_choice import (
    DEFAULT_CACHE_CONTROL,
    MAX_PRESIGN_EXPIRY_S,
    check_bucket_name,
    check_key_prefix,
)

if TYPE_CHECKING:
    from obstore import Attributes
    from obstore.store import ClientConfig, RetryConfig, S3Config, S3Credential

logger = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
# Larger files go up as a multipart upload in parts of this size (S3's smallest part).
MULTIPART_PART_BYTES = 5 * 1024 * 1024
_PART_CONCURRENCY = 4  # parts of one file in flight at once; many images upload in parallel

_CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".csv": "text/csv; charset=utf-8",
}
_PROBE_PREFIX = ".imgdesk-write-test-"

# Five tries with at most about 8 s of (jittered) backoff between them, never past a minute:
# a dead server fails the image (transient, so the engine retries it later), never hangs it.
_RETRY: RetryConfig = {
    "max_retries": 4,
    "backoff": {
        "init_backoff": timedelta(milliseconds=250),
        "max_backoff": timedelta(seconds=4),
        "base": 2,
    },
    "retry_timeout": timedelta(seconds=60),
}
# One request (one part of a multipart upload) may take 2 minutes: 5 MB on a slow uplink.
_CLIENT: ClientConfig = {"connect_timeout": timedelta(seconds=5), "timeout": timedelta(seconds=120)}

# What S3 servers answer, by meaning (the <Code> of their XML error body).
_WRONG_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidSecurity",
}
_WRONG_REGION = {"AuthorizationHeaderMalformed", "PermanentRedirect", "IncorrectEndpoint"}
_TRANSIENT_STATUS = re.compile(r"status code: (429|5\d\d)\b")
_STATUS = re.compile(r"status code: (\d{3})\b")
_ERROR_CODE = re.compile(r"<Code>([^<]+)</Code>")
_ERROR_MESSAGE = re.compile(r"<Message>([^<]+)</Message>")
_EXPECTED_REGION = re.compile(r"expecting '([^']+)'")
_ATTEMPTS = re.compile(r"after (\d+) retries")
_INSTANCE_METADATA = re.compile(r"169\.254\.169\.254|/latest/(api/token|meta-data/)")


@dataclass(frozen=True)
class S3Location:
    """A bucket and the prefix of imgdesk's keys in it.

    Attributes:
        bucket: the bucket's name.
        prefix: folders before ``<request_id>/`` (``catalogue/2024``), without slashes at the
            ends; "" puts requests at the top of the bucket.
    """

    bucket: str
    prefix: str = ""

    def __post_init__(self) -> None:
        check_bucket_name(self.bucket)
        check_key_prefix(self.prefix)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True)
class S3Settings:
    """How to reach a bucket and what to store objects with.

    Attributes:
        location: the bucket and key prefix.
        endpoint: the S3 server's URL (R2, MinIO, B2, ...); "" for AWS, or the standard
            ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` when set.
        region: the bucket's region; "" for ``AWS_REGION``, the profile's, or us-east-1.
        public_base_url: where ``PREFIX/`` is published (a CDN, the bucket's public
            address with the prefix); output URLs are then ``<base>/<request_id>/<name>``
            instead of presigned ones.
        presign_expiry_s: how long presigned URLs stay valid (at most 7 days).
        cache_control: the ``Cache-Control`` every object is stored with ("" for none).
        access_key: an explicit access key id (the window's); "" for the AWS sources.
        secret_key: its secret; never shown by ``repr``.
        session_token: a temporary credential's token, if any; never shown by ``repr``.
    """

    location: S3Location
    endpoint: str = ""
    region: str = ""
    public_base_url: str = ""
    presign_expiry_s: int = MAX_PRESIGN_EXPIRY_S
    cache_control: str = DEFAULT_CACHE_CONTROL
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        for name, url in (
            ("S3 endpoint", self.endpoint),
            ("public base URL", self.public_base_url),
        ):
            if url and not re.match(r"https?://[^/\s]", url):
                raise SettingsError(f"The {name} must be an http:// or https:// URL, not {url!r}.")
        if not 1 <= self.presign_expiry_s <= MAX_PRESIGN_EXPIRY_S:
            raise SettingsError(
                "The presigned URLs' expiry must be between 1 second and 7 days "
                f"({MAX_PRESIGN_EXPIRY_S} s), the most S3 allows; not {self.presign_expiry_s}."
            )
        if any(character in self.cache_control for character in "\r\n"):
            raise SettingsError("The Cache-Control value must be one line.")
        if bool(self.access_key) != bool(self.secret_key):
            raise SettingsError("An S3 access key needs its secret key, and the other way round.")


@dataclass(frozen=True)
class AwsCredentials:
    """Keys to sign requests with, and where they were found (for messages).

    Attributes:
        access_key: the access key id.
        secret_key: its secret; never shown by ``repr``.
        session_token: a temporary credential's token, or "".
        source: where they came from, as a phrase ("from AWS_ACCESS_KEY_ID and ...").
    """

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str = field(default="", repr=False)
    source: str = ""


def find_credentials(
    settings: S3Settings, environ: Mapping[str, str] | None = None
) -> AwsCredentials | None:
    """The keys to use: the settings', the environment's, then the AWS profile's.

    None leaves the rest of the AWS chain (web identity, ECS/EKS container credentials, the
    EC2 instance's role) to obstore.

    Raises:
        ImageError: ``storage``, when ``AWS_PROFILE`` names a profile without keys or the
            shared files cannot be read.
    """
    env = os.environ if environ is None else environ
    if settings.access_key:
        return AwsCredentials(
            settings.access_key,
            settings.secret_key,
            settings.session_token,
            "given in imgdesk's storage settings",
        )
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return AwsCredentials(
            env["AWS_ACCESS_KEY_ID"],
            env["AWS_SECRET_ACCESS_KEY"],
            env.get("AWS_SESSION_TOKEN", ""),
            "from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )
    profile = _read_profile(env)
    if profile.keys:
        return profile.keys
    if env.get("AWS_PROFILE"):
        raise ImageError(
            ErrorCode.STORAGE,
            f"AWS_PROFILE is {profile.name!r}, but neither {profile.credentials_file} nor "
            f"{profile.config_file} has an aws_access_key_id and aws_secret_access_key for "
            "it. Add them there (imgdesk reads access keys, not SSO or role profiles), or "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
        )
    return None


@dataclass(frozen=True)
class _Profile:
    name: str
    credentials_file: Path
    config_file: Path
    keys: AwsCredentials | None
    region: str


def _read_profile(env: Mapping[str, str]) -> _Profile:
    """The AWS profile's keys and region from the shared credentials and config files."""
    name = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    credentials_file = Path(
        env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    ).expanduser()
    config_file = Path(env.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()
    # The config file names its sections "profile NAME", except for the default profile.
    config_section = name if name == "default" else f"profile {name}"
    values = {
        **_ini_section(config_file, config_section),
        **_ini_section(credentials_file, name),
    }
    keys = None
    if values.get("aws_access_key_id") and values.get("aws_secret_access_key"):
        keys = AwsCredentials(
            values["aws_access_key_id"],
            values["aws_secret_access_key"],
            values.get("aws_session_token", ""),
            f"of the AWS profile {name!r}",
        )
    return _Profile(name, credentials_file, config_file, keys, values.get("region", ""))


def _ini_section(path: Path, section: str) -> dict[str, str]:
    """One section of an AWS shared file; empty when the file or the section is missing."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ImageError(
            ErrorCode.STORAGE,
            f"Could not read the AWS file {path}: {exc}. Fix or remove it, or set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
        ) from exc
    return dict(parser[section]) if parser.has_section(section) else {}


class _StaticCredentials:
    """obstore's credential provider for keys found by :func:`find_credentials`."""

    def __init__(self, credentials: AwsCredentials) -> None:
        self._credentials = credentials

    def __call__(self) -> S3Credential:
        return {
            "access_key_id": self._credentials.access_key,
            "secret_access_key": self._credentials.secret_key,
            "token": self._credentials.session_token or None,
            "expires_at": None,
        }


def content_type(file_name: str) -> str:
    """The ``Content-Type`` an output is served with, from its extension."""
    return _CONTENT_TYPES.get(Path(file_name).suffix.lower(), "application/octet-stream")


class _StorageChoiceLike(Protocol):
    """What :meth:`S3Storage.from_choice` reads of a recorded storage choice."""

    @property
    def bucket(self) -> str: ...  # noqa: D102
    @property
    def prefix(self) -> str: ...  # noqa: D102
    @property
    def endpoint(self) -> str: ...  # noqa: D102
    @property
    def region(self) -> str: ...  # noqa: D102
    @property
    def presign_expiry_s(self) -> int: ...  # noqa: D102
    @property
    def cache_control(self) -> str: ...  # noqa: D102


class S3Storage:
    """Outputs in a bucket: ``PREFIX/<request_id>/<file name>``; see the module docstring.

    Args:
        settings: the bucket and how to reach it.
        temp_dir: where :meth:`open_output` writes before uploading; the system's temp
            folder by default.

    Raises:
        ImageError: ``storage``, when the AWS profile or its files are unusable.
    """

    def __init__(
        self,
        settings: S3Settings,
        *,
        temp_dir: Path | None = None,
    ) -> None:
        env = os.environ
        self.settings = settings
        self._temp_dir = temp_dir
        self._bucket = settings.location.bucket
        self._prefix = settings.location.prefix
        self._credentials = find_credentials(settings, env)
        self._endpoint = (
            settings.endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or ""
        ).rstrip("/")
        self._region = (
            settings.region
            or env.get("AWS_REGION")
            or env.get("AWS_DEFAULT_REGION")
            or _read_profile(env).region
            or DEFAULT_REGION
        )
        config: S3Config = {"region": self._region}
        if self._endpoint:
            config["endpoint"] = self._endpoint
        else:
            # AWS prefers https://BUCKET.s3.REGION.amazonaws.com; a dotted bucket name would
            # break that host's TLS certificate, so those keep the path style.
            config["virtual_hosted_style_request"] = "." not in self._bucket
        client: ClientConfig = {**_CLIENT, "allow_http": self._endpoint.startswith("http://")}
        provider = _StaticCredentials(self._credentials) if self._credentials else None
        self._store = S3Store(
            self._bucket,
            config=config,
            client_options=client,
            retry_config=_RETRY,
            credential_provider=provider,
        )

    @classmethod
    def from_choice(
        cls,
        choice: _StorageChoiceLike,
        *,
        access_key: str = "",
        secret_key: str | None = None,
        temp_dir: Path | None = None,
    ) -> S3Storage:
        """The storage of a request's recorded choice; keys given here (the keyring's) win."""
        keys = (access_key, secret_key) if access_key and secret_key else ("", "")
        settings = S3Settings(
            S3Location(choice.bucket, choice.prefix),
            endpoint=choice.endpoint,
            region=choice.region,
            presign_expiry_s=choice.presign_expiry_s,
            cache_control=choice.cache_control,
            access_key=keys[0],
            secret_key=keys[1],
        )
        return cls(settings, temp_dir=temp_dir)

    def __repr__(self) -> str:
        return f"S3Storage({self.settings.location}, endpoint={self._where!r})"

    @property
    def _where(self) -> str:
        return self._endpoint or "AWS S3"

    # -- keys --------------------------------------------------------------------------------

    def object_key(self, key: str) -> str:
        """The object's key in the bucket: ``PREFIX/<request_id>/<file name>``."""
        request_id, file_name = split_key(key)
        return self._under_prefix(storage_key(request_id, file_name))

    def _request_prefix(self, request_id: str) -> str:
        """``PREFIX/<request_id>``: what every key of the request starts with (then a /)."""
        # storage_key checks the request id is one path component.
        return self._under_prefix(split_key(storage_key(request_id, "-"))[0])

    def _under_prefix(self, path: str) -> str:
        return f"{self._prefix}/{path}" if self._prefix else path

    # -- the Storage protocol ---------------------------------------------------------------

    def check_writable(self, request_id: str, probe_bytes: int = 0) -> None:
        """Write, read, list and delete a probe object: every permission imgdesk needs."""
        probe = storage_key(request_id, f"{_PROBE_PREFIX}{secrets.token_hex(4)}{PART_SUFFIX}")
        self.put_bytes(probe, b"imgdesk" + bytes(probe_bytes))
        try:
            with self._failures("read", "read a test file"):
                obstore.head(self._store, self.object_key(probe))
            self.names(request_id)
        except ImageError:
            with contextlib.suppress(ImageError):  # the first failure is the one to tell
                self.delete(probe)
            raise
        self.delete(probe)

    def open_output(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A local temp file, uploaded under ``key`` when the block ends, then removed."""
        return self._upload_on_close(key)

    @contextlib.contextmanager
    def _upload_on_close(self, key: str) -> Iterator[BinaryIO]:
        object_key = self.object_key(key)
        file_name = split_key(key)[1]
        try:
            descriptor, temp_name = tempfile.mkstemp(
                prefix=f".imgdesk-{file_name}.", suffix=PART_SUFFIX, dir=self._temp_dir
            )
        except OSError as exc:
            raise self._temp_file_error(exc, file_name) from exc
        temp = Path(temp_name)
        try:
            try:
                with open(descriptor, "wb") as handle:
                    yield handle
            except OSError as exc:
                raise self._temp_file_error(exc, file_name) from exc
            self._put(object_key, temp, file_name)
        finally:
            with contextlib.suppress(OSError):
                temp.unlink()

    def put_bytes(self, key: str, data: bytes) -> None:
        """Upload ``data`` under ``key``."""
        file_name = split_key(key)[1]
        self._put(self.object_key(key), data, file_name)

    def copy(self, source_key: str, key: str) -> None:
        """A server-side copy: no bytes travel, headers come along."""
        source, target = self.object_key(source_key), self.object_key(key)
        if source == target:
            return
        with self._failures("write", f"copy {source} to {target}", missing=source):
            obstore.copy(self._store, source, target)

    def exists(self, key: str) -> bool:
        """True when the object is there (one HEAD request)."""
        object_key = self.object_key(key)
        try:
            obstore.head(self._store, object_key)
        except FileNotFoundError:
            return False
        except ObstoreError as exc:
            raise self._storage_error(exc, "read", f"look for {object_key}", "") from exc
        return True

    def read(self, key: str, max_bytes: int = MAX_READ_BYTES) -> bytes:
        """The object's bytes (one GET), refused above ``max_bytes`` before the body is read.

        Raises:
            ImageError: ``storage``, when the object is missing or too large, or the server
                cannot be reached (transient) or refuses.
        """
        object_key = self.object_key(key)
        file_name = split_key(key)[1]
        with self._failures("read", f"read {file_name}"):
            try:
                result = obstore.get(self._store, object_key)
            except (FileNotFoundError, NotFoundError) as exc:
                raise ImageError(
                    ErrorCode.STORAGE,
                    f"{object_key} is not in the bucket {self._bucket} (deleted or moved "
                    "since it was stored).",
                ) from exc
            size = result.meta["size"]
            if size > max_bytes:
                raise output_too_large(file_name, size, max_bytes)
            data = bytes(result.bytes())
        if len(data) > max_bytes:  # a server that announced less than it sent
            raise output_too_large(file_name, len(data), max_bytes)
        return data

    def names(self, request_id: str) -> set[str]:
        """The request's file names (probes and other hidden names left out)."""
        folder = self._request_prefix(request_id)
        found: set[str] = set()
        with self._failures("list", f"list the objects under {folder}/"):
            for chunk in obstore.list(self._store, folder):
                for meta in chunk:
                    name = meta["path"][len(folder) + 1 :]
                    if name and "/" not in name and not name.startswith("."):
                        found.add(name)
        return found

    def delete(self, key: str) -> None:
        """Remove one object; nothing happens when it is not there."""
        object_key = self.object_key(key)
        with self._failures("delete", f"delete {object_key}"):
            obstore.delete(self._store, object_key)

    def delete_request(self, request_id: str) -> None:
        """Remove every object under the request's prefix (batches of 1,000 per request)."""
        folder = self._request_prefix(request_id)
        with self._failures("delete", f"delete the objects under {folder}/"):
            paths = [meta["path"] for chunk in obstore.list(self._store, folder) for meta in chunk]
            if paths:
                obstore.delete(self._store, paths)
        logger.info("Deleted %d object(s) under s3://%s/%s/", len(paths), self._bucket, folder)

    def clean_partial(self, request_id: str) -> int:
        """Nothing to do here; returns 0.

        A failed upload is aborted by obstore itself, and a single PUT leaves nothing. Only
        a crash in the middle of a multipart upload (files over 5 MB) leaves its parts,
        invisible but billed; obstore cannot list multipart uploads, so a bucket lifecycle
        rule (AbortIncompleteMultipartUpload) is what removes those.
        """
        return 0

    def url(self, key: str, public_base_url: str = "") -> str:
        """``<public base>/<request_id>/<file name>``, or a presigned GET URL."""
        base = public_base_url or self.settings.public_base_url
        request_id, file_name = split_key(key)
        if base:
            return f"{base.rstrip('/')}/{quote(request_id, safe='')}/{quote(file_name, safe='')}"
        object_key = self.object_key(key)
        expiry = timedelta(seconds=self.settings.presign_expiry_s)
        with self._failures("read", f"sign a URL for {object_key}"):
            return obstore.sign(self._store, "GET", object_key, expiry)

    def local_path(self, key: str) -> Path | None:
        """None: objects are not files on this computer."""
        return None

    # -- uploads and failures ---------------------------------------------------------------

    def _put(self, object_key: str, data: Path | bytes, file_name: str) -> None:
        attributes: Attributes = {"Content-Type": content_type(file_name)}
        if self.settings.cache_control:
            attributes["Cache-Control"] = self.settings.cache_control
        with self._failures("write", f"save {file_name}"):
            obstore.put(
                self._store,
                object_key,
                data,
                attributes=attributes,
                chunk_size=MULTIPART_PART_BYTES,
                max_concurrency=_PART_CONCURRENCY,
            )

    def _temp_file_error(self, exc: OSError, file_name: str) -> ImageError:
        folder = self._temp_dir or Path(tempfile.gettempdir())
        return ImageError(
            ErrorCode.STORAGE,
            f"Could not write {file_name} to the temp folder {folder} before uploading it: "
            f"{exc.strerror or exc}.",
        )

    @contextlib.contextmanager
    def _failures(self, action: str, doing: str, *, missing: str = "") -> Iterator[None]:
        """Turn obstore's failures into ``storage`` errors that say what to do.

        ``action`` (write, read, list, delete) names the permission a refusal is about,
        ``doing`` what was being done; ``missing`` the object a 404 is about, if any.
        """
        try:
            yield
        except (ObstoreError, OSError) as exc:
            raise self._storage_error(exc, action, doing, missing) from exc

    def _storage_error(
        self, exc: BaseException, action: str, doing: str, missing: str
    ) -> ImageError:
        # obstore says what went wrong in words (and the server's XML error), not in fields;
        # what follows "Debug source" repeats it as a Rust structure.
        text = str(exc)
        summary = text.split("\n\nDebug source", 1)[0]
        code = _first(_ERROR_CODE, text)
        status = _first(_STATUS, summary)
        bucket, where = self._bucket, self._where

        def error(message: str, *, transient: bool = False) -> ImageError:
            return ImageError(ErrorCode.STORAGE, message, transient=transient)

        if code in _WRONG_REGION:
            expected = _first(_EXPECTED_REGION, text)
            found = f" ({expected})" if expected else ""
            return error(
                f"The bucket {bucket} is in another region{found} than {self._region}: set "
                "its region with --s3-region or in Settings > Storage."
            )
        if code in _WRONG_CREDENTIALS or isinstance(exc, UnauthenticatedError):
            source = f" {self._credentials.source}" if self._credentials else ""
            return error(
                f"The storage server at {where} refused the credentials{source} for the "
                f"bucket {bucket} ({code or 'unauthenticated'}). Check the access key and "
                "the secret key."
            )
        if code == "AccessDenied" or isinstance(exc, PermissionDeniedError):
            return error(
                f"The credentials may not {action} objects in the bucket {bucket} at {where} "
                "(access denied). Allow s3:PutObject, s3:GetObject, s3:ListBucket and "
                "s3:DeleteObject, or use other credentials."
            )
        if code == "NoSuchBucket":
            return error(
                f"The bucket {bucket} does not exist at {where}. Create it, or check the "
                "bucket name, the endpoint and the region."
            )
        if isinstance(exc, FileNotFoundError):
            what = missing or "the object"
            return error(f"Could not {doing}: {what} is not in the bucket {bucket}.")
        if _INSTANCE_METADATA.search(text) or "credential" in summary.lower():
            # Without keys obstore asks the EC2 instance metadata service, absent off AWS.
            return error(
                f"No credentials for the bucket {bucket}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws/credentials, "
                "or enter the keys in Settings > Storage."
            )
        attempts = int(_first(_ATTEMPTS, summary) or "0") + 1
        tries = f" ({attempts} tries)" if attempts > 1 else ""
        if _TRANSIENT_STATUS.search(summary):
            return error(
                f"The storage server at {where} kept answering {status}{tries} when imgdesk "
                f"tried to {doing}; try again later.",
                transient=True,
            )
        reason = _connection_problem(text)
        if reason:
            return error(
                f"Cannot reach the storage server at {where}: {reason}{tries}. Check the "
                "endpoint (--s3-endpoint or Settings > Storage) and the network.",
                transient=True,
            )
        detail = _first(_ERROR_MESSAGE, text) or redact_text(summary.splitlines()[0][:200])
        logger.debug("S3 failure while trying to %s: %s", doing, redact_text(summary))
        return error(f"The storage server at {where} refused to {doing}: {detail}")


def _first(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    return match.group(1) if match else ""


def _connection_problem(text: str) -> str:
    """Why a request got no answer, in words; "" when it did get one."""
    lowered = text.lower()
    if "status code:" in lowered:
        return ""
    if "connection refused" in lowered:
        return "the connection was refused"
    if "dns error" in lowered or "failed to lookup address" in lowered:
        return "the host name is unknown"
    if "certificate" in lowered:
        return "its TLS certificate is not trusted"
    if "timed out" in lowered or "timeout" in lowered:
        return "it did not answer in time"
    if "error sending request" in lowered or "connection" in lowered:
        return "the connection failed"
    return ""
