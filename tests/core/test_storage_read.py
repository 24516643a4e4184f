"""Reading an output back through its storage (the window's preview): a folder and a bucket.

The bucket is moto's real S3 server on 127.0.0.1, with the misbehaving proxy in front of it
where a test needs failures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imgdesk.core.errors import ErrorCode, ImageError
from imgdesk.core.storage import LocalStorage, Storage, storage_key
from tests.core.test_s3_storage import _no_aws_environment, make_storage  # noqa: F401
from tests.s3server import S3Bucket, S3Proxy

REQUEST = "req-1"
IMAGE = b"\xff\xd8\xff" + bytes(range(256)) * 40  # 10 kB that start like a JPEG


def local_storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "images")


def test_a_stored_output_reads_back_whole_from_a_folder(tmp_path: Path) -> None:
    storage: Storage = local_storage(tmp_path)
    key = storage_key(REQUEST, "0001_mug_1.jpg")
    storage.put_bytes(key, IMAGE)
    assert storage.read(key) == IMAGE
    assert storage.read(key, max_bytes=len(IMAGE)) == IMAGE  # the limit itself is allowed


def test_a_missing_file_is_a_clear_storage_error(tmp_path: Path) -> None:
    storage = local_storage(tmp_path)
    with pytest.raises(ImageError) as caught:
        storage.read(storage_key(REQUEST, "0001_gone_1.jpg"))
    assert caught.value.code == ErrorCode.STORAGE
    assert caught.value.message == (
        f"0001_gone_1.jpg is not in {tmp_path / 'images' / REQUEST} "
        "(deleted or moved since it was stored)."
    )


def test_a_file_too_large_to_hold_is_refused(tmp_path: Path) -> None:
    storage = local_storage(tmp_path)
    key = storage_key(REQUEST, "0001_huge_1.jpg")
    storage.put_bytes(key, IMAGE)
    with pytest.raises(ImageError) as caught:
        storage.read(key, max_bytes=1000)
    assert caught.value.code == ErrorCode.STORAGE
    assert caught.value.message == (
        "0001_huge_1.jpg is 10,243 bytes, more than the 1,000 bytes imgdesk reads back into memory."
    )


def test_a_stored_object_reads_back_whole_from_a_bucket(s3_bucket: S3Bucket) -> None:
    storage: Storage = make_storage(s3_bucket)
    key = storage_key(REQUEST, "0001_mug_1.jpg")
    storage.put_bytes(key, IMAGE)
    assert storage.read(key) == IMAGE
    assert storage.read(key, max_bytes=len(IMAGE)) == IMAGE


def test_a_missing_object_is_a_clear_storage_error(s3_bucket: S3Bucket) -> None:
    storage = make_storage(s3_bucket)
    with pytest.raises(ImageError) as caught:
        storage.read(storage_key(REQUEST, "0001_gone_1.jpg"))
    assert caught.value.code == ErrorCode.STORAGE and not caught.value.transient
    assert caught.value.message == (
        f"catalogue/{REQUEST}/0001_gone_1.jpg is not in the bucket {s3_bucket.name} "
        "(deleted or moved since it was stored)."
    )


def test_an_object_too_large_to_hold_is_refused_before_its_body_is_read(
    s3_bucket: S3Bucket, s3_proxy: S3Proxy
) -> None:
    storage = make_storage(s3_bucket, endpoint=s3_proxy.endpoint)
    key = storage_key(REQUEST, "0001_huge_1.jpg")
    storage.put_bytes(key, IMAGE)
    with pytest.raises(ImageError) as caught:
        storage.read(key, max_bytes=1000)
    assert caught.value.code == ErrorCode.STORAGE and not caught.value.transient
    assert caught.value.message == (
        "0001_huge_1.jpg is 10,243 bytes, more than the 1,000 bytes imgdesk reads back into memory."
    )
    assert len(s3_proxy.outcomes("GET", "forwarded")) == 1  # one GET, not retried


def test_an_unreachable_bucket_is_a_transient_storage_error(
    s3_bucket: S3Bucket, s3_proxy: S3Proxy
) -> None:
    storage = make_storage(s3_bucket, endpoint=s3_proxy.endpoint)
    key = storage_key(REQUEST, "0001_mug_1.jpg")
    storage.put_bytes(key, IMAGE)
    s3_proxy.fail_next(100, status=503)
    with pytest.raises(ImageError) as caught:
        storage.read(key)
    assert caught.value.code == ErrorCode.STORAGE and caught.value.transient
    assert caught.value.message == (
        f"The storage server at {s3_proxy.endpoint} kept answering 503 (5 tries) when imgdesk "
        "tried to read 0001_mug_1.jpg; try again later."
    )
    assert s3_bucket.writer.secret_key not in caught.value.message
