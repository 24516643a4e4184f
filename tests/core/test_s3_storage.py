"""S3Storage against a real S3 server (moto's) on 127.0.0.1, with faults from a real proxy."""

from __future__ import annotations

import hashlib
import hmac
import urllib.request
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from imgdesk.core.errors import ErrorCode, ImageError, SettingsError
from imgdesk.core.s3storage import MULTIPART_PART_BYTES, S3Location, S3Settings, S3Storage
from imgdesk.core.storage import storage_key
from imgdesk.core.storage_choice import (
    DEFAULT_CACHE_CONTROL,
    MAX_PRESIGN_EXPIRY_S,
    open_storage,
    parse_destination,
)
from tests.s3server import (
    S3Bucket,
    S3Keys,
    S3Proxy,
    free_port,
    incomplete_uploads,
    object_keys,
)

REQUEST = "req-1"
# Every AWS_* variable a developer's shell may hold; tests start without them.
_AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)


@pytest.fixture(autouse=True)
def _no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # No instance metadata service off loopback (obstore asks it when it has no keys).
    monkeypatch.setenv("AWS_METADATA_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    # Never the developer's own ~/.aws files.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))


@pytest.fixture
def temp_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


def make_storage(
    bucket: S3Bucket,
    *,
    keys: S3Keys | None = None,
    endpoint: str = "",
    prefix: str = "catalogue",
    temp_dir: Path | None = None,
    **settings: object,
) -> S3Storage:
    keys = keys or bucket.writer
    return S3Storage(
        S3Settings(
            S3Location(bucket.name, prefix),
            endpoint=endpoint or bucket.endpoint,
            region=bucket.region,
            access_key=keys.access_key,
            secret_key=keys.secret_key,
            **settings,  # type: ignore[arg-type]
        ),
        temp_dir=temp_dir,
    )


def fetch(url: str) -> tuple[bytes, dict[str, str]]:
    """A plain HTTP GET, as a browser or a web shop would do it."""
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.read(), {name.lower(): value for name, value in answer.headers.items()}


def verify_presigned(url: str, keys: S3Keys, region: str) -> None:
    """Check a presigned GET URL's SigV4 signature with the secret (moto does not check it)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature = query.pop("X-Amz-Signature")
    amz_date = query["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    assert query["X-Amz-Credential"] == f"{keys.access_key}/{scope}"
    canonical_query = "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
        for name, value in sorted(query.items())
    )
    canonical_request = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{keys.secret_key}".encode()
    for part in (amz_date[:8], region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    assert hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest() == signature


# -- objects, headers, keys -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected_type"),
    [
        ("0001_shirt_0.jpg", "image/jpeg"),
        ("0002_shirt_0.webp", "image/webp"),
        ("0003_shirt_0.avif", "image/avif"),
        ("products-output.csv", "text/csv; charset=utf-8"),
    ],
)
def test_output_is_stored_with_its_content_type_and_cache_control(
    s3_bucket: S3Bucket, temp_dir: Path, name: str, expected_type: str
) -> None:
    storage = make_storage(s3_bucket, temp_dir=temp_dir)
    key = storage_key(REQUEST, name)
    with storage.open_output(key) as handle:
        handle.write(b"encoded bytes")

    body, headers = fetch(storage.url(key))
    assert body == b"encoded bytes"
    assert headers["content-type"] == expected_type
    assert headers["cache-control"] == DEFAULT_CACHE_CONTROL
    assert list(temp_dir.iterdir()) == []


def test_cache_control_is_settable(s3_bucket: S3Bucket) -> None:
    storage = make_storage(s3_bucket, cache_control="no-cache")
    storage.put_bytes(storage_key(REQUEST, "a.jpg"), b"x")
    _, headers = fetch(storage.url(storage_key(REQUEST, "a.jpg")))
    assert headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("catalogue", "catalogue/req-1/a.jpg"),
        ("shop/2024", "shop/2024/req-1/a.jpg"),
        ("", "req-1/a.jpg"),
    ],
)
def test_object_keys_are_prefix_request_and_name(
    s3_bucket: S3Bucket, prefix: str, expected: str
) -> None:
    storage = make_storage(s3_bucket, prefix=prefix)
    storage.put_bytes(storage_key(REQUEST, "a.jpg"), b"x")
    assert object_keys(s3_bucket) == [expected]
    assert storage.names(REQUEST) == {"a.jpg"}
    assert storage.local_path(storage_key(REQUEST, "a.jpg")) is None


def test_presigned_url_is_signed_and_expires_as_set(s3_bucket: S3Bucket) -> None:
    storage = make_storage(s3_bucket)
    key = storage_key(REQUEST, "a.jpg")
    storage.put_bytes(key, b"image")

    default_url = storage.url(key)
    assert dict(parse_qsl(urlsplit(default_url).query))["X-Amz-Expires"] == "604800"
    verify_presigned(default_url, s3_bucket.writer, s3_bucket.region)
    assert fetch(default_url)[0] == b"image"

    hourly = make_storage(s3_bucket, presign_expiry_s=3600).url(key)
    assert dict(parse_qsl(urlsplit(hourly).query))["X-Amz-Expires"] == "3600"
    assert fetch(hourly)[0] == b"image"


def test_public_base_url_gives_plain_urls(s3_bucket: S3Bucket) -> None:
    storage = make_storage(s3_bucket, public_base_url="https://cdn.example.com/catalogue/")
    key = storage_key(REQUEST, "0001_shirt_0.jpg")
    assert storage.url(key) == "https://cdn.example.com/catalogue/req-1/0001_shirt_0.jpg"
    assert (
        storage.url(key, "https://img.shop.test") == "https://img.shop.test/req-1/0001_shirt_0.jpg"
    )


# -- put, copy, exists, names, delete -----------------------------------------------------------


def test_put_copy_exists_names_delete(s3_bucket: S3Bucket) -> None:
    storage = make_storage(s3_bucket)
    first, second = storage_key(REQUEST, "a.jpg"), storage_key("req-2", "b.jpg")
    assert not storage.exists(first)
    assert storage.names(REQUEST) == set()

    storage.put_bytes(first, b"first")
    storage.copy(first, second)
    assert storage.exists(first) and storage.exists(second)
    body, headers = fetch(storage.url(second))
    assert body == b"first"
    assert headers["content-type"] == "image/jpeg"  # the copy keeps the headers
    assert headers["cache-control"] == DEFAULT_CACHE_CONTROL

    storage.delete(first)
    storage.delete(first)  # not there any more: nothing happens
    assert not storage.exists(first)
    assert storage.names("req-2") == {"b.jpg"}


def test_copy_of_a_missing_object_fails_clearly(s3_bucket: S3Bucket) -> None:
    storage = make_storage(s3_bucket)
    with pytest.raises(ImageError) as caught:
        storage.copy(storage_key(REQUEST, "gone.jpg"), storage_key("req-2", "gone.jpg"))
    assert caught.value.code == ErrorCode.STORAGE
    assert "catalogue/req-1/gone.jpg is not in the bucket" in caught.value.message


def test_delete_request_removes_only_that_requests_objects(s3_bucket: S3Bucket) -> None:
    storage = make_storage(s3_bucket)
    for name in ("a.jpg", "b.jpg", ".leftover.part"):
        storage.put_bytes(storage_key("r1", name), b"x")
    storage.put_bytes(storage_key("r10", "a.jpg"), b"x")  # r1 is a prefix of r10's name
    assert storage.names("r1") == {"a.jpg", "b.jpg"}  # hidden names left out

    storage.delete_request("r1")

    assert object_keys(s3_bucket) == ["catalogue/r10/a.jpg"]
    storage.delete_request("r1")  # nothing left: nothing happens
    assert storage.clean_partial("r1") == 0


def test_large_output_goes_up_in_parts(
    s3_bucket: S3Bucket, s3_proxy: S3Proxy, temp_dir: Path
) -> None:
    storage = make_storage(s3_bucket, endpoint=s3_proxy.endpoint, temp_dir=temp_dir)
    data = bytes(range(256)) * (MULTIPART_PART_BYTES * 2 // 256 + 1000)
    key = storage_key(REQUEST, "huge.jpg")
    with storage.open_output(key) as handle:
        handle.write(data)

    assert len(s3_proxy.outcomes("PUT", "forwarded")) == 3  # three parts
    body, headers = fetch(storage.url(key))
    assert body == data
    assert headers["content-type"] == "image/jpeg"
    assert incomplete_uploads(s3_bucket) == []
    assert list(temp_dir.iterdir()) == []


def test_probe_leaves_nothing_behind(s3_bucket: S3Bucket) -> None:
    storage = make_storage(s3_bucket)
    storage.check_writable(REQUEST, probe_bytes=1000)
    assert object_keys(s3_bucket) == []


# -- the probe's clear failures ---------------------------------------------------------------


def _probe_failure(storage: S3Storage) -> ImageError:
    with pytest.raises(ImageError) as caught:
        storage.check_writable(REQUEST)
    assert caught.value.code == ErrorCode.STORAGE
    return caught.value


def test_probe_with_a_wrong_secret(s3_auth: S3Bucket) -> None:
    secret = "wrong-secret-1234"
    keys = S3Keys(s3_auth.writer.access_key, secret)
    error = _probe_failure(make_storage(s3_auth, keys=keys))
    assert "refused the credentials given in imgdesk's storage settings" in error.message
    assert "SignatureDoesNotMatch" in error.message
    assert s3_auth.name in error.message and s3_auth.endpoint in error.message
    assert secret not in error.message and not error.transient


def test_probe_with_an_unknown_access_key(s3_auth: S3Bucket) -> None:
    error = _probe_failure(make_storage(s3_auth, keys=S3Keys("AKIAUNKNOWN000000000", "x")))
    assert "refused the credentials" in error.message
    assert "InvalidAccessKeyId" in error.message


def test_probe_without_write_permission(s3_auth: S3Bucket) -> None:
    error = _probe_failure(make_storage(s3_auth, keys=s3_auth.reader))
    assert f"may not write objects in the bucket {s3_auth.name}" in error.message
    assert "access denied" in error.message
    assert s3_auth.reader.secret_key not in error.message


def test_probe_of_a_missing_bucket(s3_bucket: S3Bucket) -> None:
    missing = S3Bucket(
        "no-such-bucket", s3_bucket.endpoint, s3_bucket.region, s3_bucket.writer, s3_bucket.reader
    )
    error = _probe_failure(make_storage(missing))
    assert "The bucket no-such-bucket does not exist at" in error.message
    assert s3_bucket.writer.secret_key not in error.message and not error.transient


def test_probe_of_an_unreachable_endpoint(s3_bucket: S3Bucket) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    error = _probe_failure(make_storage(s3_bucket, endpoint=endpoint))
    assert f"Cannot reach the storage server at {endpoint}" in error.message
    assert "connection was refused" in error.message
    assert error.transient
    assert s3_bucket.writer.secret_key not in error.message


def test_bucket_in_another_region(s3_bucket: S3Bucket, s3_proxy: S3Proxy) -> None:
    s3_proxy.fail_next(
        1,
        status=400,
        code="AuthorizationHeaderMalformed",
        message="The authorization header is malformed; the region 'us-east-1' is wrong; "
        "expecting 'eu-west-1'",
    )
    error = _probe_failure(make_storage(s3_bucket, endpoint=s3_proxy.endpoint))
    assert "is in another region (eu-west-1) than us-east-1" in error.message
    assert "--s3-region" in error.message
    assert len(s3_proxy.requests) == 1  # a permanent error is not retried


# -- transient failures -----------------------------------------------------------------------


def test_a_server_that_answers_503_for_a_while_is_retried(
    s3_bucket: S3Bucket, s3_proxy: S3Proxy, temp_dir: Path
) -> None:
    storage = make_storage(s3_bucket, endpoint=s3_proxy.endpoint, temp_dir=temp_dir)
    s3_proxy.fail_next(3, status=503)
    key = storage_key(REQUEST, "a.jpg")
    with storage.open_output(key) as handle:
        handle.write(b"image")

    assert len(s3_proxy.outcomes("PUT", "failed")) == 3
    assert len(s3_proxy.outcomes("PUT", "forwarded")) == 1  # stored once
    assert object_keys(s3_bucket) == ["catalogue/req-1/a.jpg"]
    assert fetch(storage.url(key))[0] == b"image"
    assert list(temp_dir.iterdir()) == []


def test_a_server_that_keeps_failing_fails_the_image_transiently(
    s3_bucket: S3Bucket, s3_proxy: S3Proxy, temp_dir: Path
) -> None:
    storage = make_storage(s3_bucket, endpoint=s3_proxy.endpoint, temp_dir=temp_dir)
    s3_proxy.fail_next(100, status=500)
    with pytest.raises(ImageError) as caught:
        storage.put_bytes(storage_key(REQUEST, "a.jpg"), b"image")
    assert caught.value.code == ErrorCode.STORAGE and caught.value.transient
    assert "kept answering 500 (5 tries) when imgdesk tried to save a.jpg" in caught.value.message
    assert len(s3_proxy.requests) == 5  # bounded: the image does not hang
    assert object_keys(s3_bucket) == []


def test_a_connection_cut_during_a_multipart_upload_leaves_no_object(
    s3_bucket: S3Bucket, s3_proxy: S3Proxy, temp_dir: Path
) -> None:
    storage = make_storage(s3_bucket, endpoint=s3_proxy.endpoint, temp_dir=temp_dir)
    s3_proxy.cut_bodies_over(1024 * 1024)
    output = storage.open_output(storage_key(REQUEST, "huge.jpg"))
    with pytest.raises(ImageError) as caught, output as handle:  # the upload ends the block
        handle.write(bytes(MULTIPART_PART_BYTES * 2 + 1))

    assert caught.value.code == ErrorCode.STORAGE and caught.value.transient
    assert "Cannot reach the storage server" in caught.value.message
    assert s3_proxy.outcomes("POST", "forwarded")  # a multipart upload was started...
    assert s3_proxy.outcomes("PUT", "cut")  # ...its parts were cut...
    assert object_keys(s3_bucket) == []  # ...and nothing is visible
    assert incomplete_uploads(s3_bucket) == []  # obstore aborted the upload
    assert list(temp_dir.iterdir()) == []


def test_a_failure_while_encoding_uploads_nothing(s3_bucket: S3Bucket, temp_dir: Path) -> None:
    storage = make_storage(s3_bucket, temp_dir=temp_dir)
    output = storage.open_output(storage_key(REQUEST, "a.jpg"))
    with pytest.raises(ValueError, match="encoder broke"), output as handle:
        handle.write(b"half an image")
        raise ValueError("encoder broke")
    assert object_keys(s3_bucket) == []
    assert list(temp_dir.iterdir()) == []


# -- credentials from the standard AWS sources ------------------------------------------------


def _storage_from_aws_sources(bucket: S3Bucket) -> S3Storage:
    location = S3Location(bucket.name, "catalogue")
    return S3Storage(S3Settings(location, endpoint=bucket.endpoint, region=bucket.region))


def test_keys_from_the_environment(s3_auth: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_auth.writer.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_auth.writer.secret_key)
    _storage_from_aws_sources(s3_auth).check_writable(REQUEST)

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    error = _probe_failure(_storage_from_aws_sources(s3_auth))
    assert "from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in error.message


def test_given_keys_do_not_mix_with_a_stray_session_token(
    s3_auth: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "left-over-from-another-shell")
    make_storage(s3_auth).check_writable(REQUEST)


def test_keys_and_region_from_an_aws_profile(
    s3_auth: S3Bucket, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n"
        f"[shop]\naws_access_key_id = {s3_auth.writer.access_key}\n"
        f"aws_secret_access_key = {s3_auth.writer.secret_key}\n",
        encoding="utf-8",
    )
    config = tmp_path / "config"
    config.write_text("[profile shop]\nregion = eu-west-3\n", encoding="utf-8")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "shop")
    location = S3Location(s3_auth.name)
    storage = S3Storage(S3Settings(location, endpoint=s3_auth.endpoint))  # no region given

    storage.check_writable(REQUEST)
    signed = storage.url(storage_key(REQUEST, "a.jpg"))
    assert "%2Feu-west-3%2Fs3%2F" in signed  # the profile's region


def test_a_profile_without_keys_is_named(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nowhere")
    with pytest.raises(ImageError) as caught:
        _storage_from_aws_sources(s3_bucket)
    assert "AWS_PROFILE is 'nowhere'" in caught.value.message
    assert caught.value.code == ErrorCode.STORAGE


def test_no_credentials_anywhere(s3_bucket: S3Bucket) -> None:
    error = _probe_failure(_storage_from_aws_sources(s3_bucket))
    assert f"No credentials for the bucket {s3_bucket.name}" in error.message
    assert "AWS_ACCESS_KEY_ID" in error.message and "AWS_PROFILE" in error.message


def test_a_recorded_storage_choice_opens_the_bucket_with_the_keyrings_keys(
    s3_auth: S3Bucket, tmp_path: Path
) -> None:
    choice = parse_destination("s3://" + s3_auth.name + "/shop", s3_auth.endpoint, s3_auth.region)
    keys = s3_auth.writer
    storage = open_storage(choice, tmp_path, secret_key=keys.secret_key, access_key=keys.access_key)
    storage.check_writable(REQUEST)
    key = storage_key(REQUEST, "a.jpg")
    storage.put_bytes(key, b"x")
    assert isinstance(storage, S3Storage) and storage.object_key(key) == "shop/req-1/a.jpg"
    assert storage.names(REQUEST) == {"a.jpg"}


def test_settings_repr_hides_the_secret() -> None:
    settings = S3Settings(
        S3Location("bucket"), access_key="AKIAEXAMPLE", secret_key="s3cr3t", session_token="t0k"
    )
    assert "s3cr3t" not in repr(settings) and "t0k" not in repr(settings)
    assert "s3cr3t" not in repr(S3Storage(settings))


# -- settings and destinations ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"presign_expiry_s": MAX_PRESIGN_EXPIRY_S + 1}, "7 days"),
        ({"presign_expiry_s": 0}, "7 days"),
        ({"endpoint": "localhost:9000"}, "http:// or https://"),
        ({"public_base_url": "cdn.example.com"}, "http:// or https://"),
        ({"cache_control": "public\r\nX-Evil: 1"}, "one line"),
        ({"access_key": "AKIAEXAMPLE"}, "needs its secret key"),
    ],
)
def test_unusable_settings(changes: dict[str, object], words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        S3Settings(S3Location("bucket"), **changes)  # type: ignore[arg-type]
