"""OutputReader: outputs read back through their storage, kept in memory, and failing fast.

Real storages only: a folder on disk, and moto's S3 server behind the test proxy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imgdesk.core.errors import ErrorCode, ImageError
from imgdesk.core.storage import LocalStorage, Storage, storage_key
from imgdesk.gui.output_reader import OutputReader, bucket_failure, is_storage_key
from tests.core.test_s3_storage import _no_aws_environment, make_storage  # noqa: F401
from tests.s3server import S3Bucket, S3Proxy

REQUEST = "req-1"
IMAGE = b"\xff\xd8\xff" + bytes(range(256)) * 4


def test_a_key_is_told_from_a_file(tmp_path: Path) -> None:
    assert is_storage_key(f"{REQUEST}/0001_mug_1.jpg")
    assert not is_storage_key(str(tmp_path / "images" / REQUEST / "0001_mug_1.jpg"))
    assert not is_storage_key("")
    assert not is_storage_key(None)
    assert not is_storage_key("a/b/c.jpg")  # not a key imgdesk makes
    assert not is_storage_key("0001_mug_1.jpg")


def test_a_failure_is_one_sentence() -> None:
    error = ImageError(
        ErrorCode.STORAGE,
        "Cannot reach the storage server at http://127.0.0.1:9: the connection was refused "
        "(5 tries). Check the endpoint (--s3-endpoint or Settings > Storage) and the network.",
    )
    assert bucket_failure(error) == (
        "Could not read the output from the bucket: cannot reach the storage server at "
        "http://127.0.0.1:9: the connection was refused (5 tries); check the endpoint "
        "(--s3-endpoint or Settings > Storage) and the network."
    )
    name = ImageError(ErrorCode.STORAGE, "AWS_PROFILE is 'shop', but no keys are there.")
    assert bucket_failure(name) == (
        "Could not read the output from the bucket: AWS_PROFILE is 'shop', but no keys are there."
    )


def test_bytes_read_once_are_served_again_from_memory(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "images")
    key = storage_key(REQUEST, "0001_mug_1.jpg")
    storage.put_bytes(key, IMAGE)
    reader = OutputReader(lambda _request_id: storage)
    read = reader.reader_of(key, len(IMAGE))
    assert read is not None
    assert read() == IMAGE
    storage.delete(key)
    assert read() == IMAGE  # kept: not read again
    with pytest.raises(ImageError, match="is not in"):
        reader.read(storage, key, "stored again")  # another stamp is another output


def test_kept_bytes_are_bounded(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "images")
    first, second = storage_key(REQUEST, "a.jpg"), storage_key(REQUEST, "b.jpg")
    storage.put_bytes(first, IMAGE)
    storage.put_bytes(second, IMAGE)
    reader = OutputReader(lambda _request_id: storage, kept_bytes=len(IMAGE) + 10)
    reader.read(storage, first, 1)
    reader.read(storage, second, 1)  # the first is dropped to make room
    storage.delete(first)
    storage.delete(second)
    assert reader.read(storage, second, 1) == IMAGE
    with pytest.raises(ImageError, match="is not in"):
        reader.read(storage, first, 1)


def test_a_file_needs_no_reader_and_a_key_needs_a_storage(tmp_path: Path) -> None:
    reader = OutputReader(None)
    assert reader.reader_of(str(tmp_path / "a.jpg"), 1) is None
    with pytest.raises(ImageError, match="does not know where the request stores"):
        reader.reader_of(f"{REQUEST}/a.jpg", 1)


def test_an_unreachable_bucket_fails_the_next_reads_at_once(
    s3_bucket: S3Bucket, s3_proxy: S3Proxy
) -> None:
    storage: Storage = make_storage(s3_bucket, endpoint=s3_proxy.endpoint)
    first, second = storage_key(REQUEST, "a.jpg"), storage_key(REQUEST, "b.jpg")
    storage.put_bytes(first, IMAGE)
    storage.put_bytes(second, IMAGE)
    reader = OutputReader(lambda _request_id: storage, unreachable_memory_s=3600)
    s3_proxy.fail_next(5, status=503)  # exactly the client's five tries

    with pytest.raises(ImageError) as caught:
        reader.read(storage, first, 1)
    assert caught.value.transient and "kept answering 503 (5 tries)" in caught.value.message
    asked = len(s3_proxy.requests)
    with pytest.raises(ImageError) as again:
        reader.read(storage, second, 1)  # the server would answer now, but is not asked
    assert again.value.message == caught.value.message and again.value.transient
    assert len(s3_proxy.requests) == asked

    patient = OutputReader(lambda _request_id: storage, unreachable_memory_s=0)
    assert patient.read(storage, second, 1) == IMAGE  # with no memory, it asks again


def test_a_missing_object_is_asked_for_once(s3_bucket: S3Bucket, s3_proxy: S3Proxy) -> None:
    storage: Storage = make_storage(s3_bucket, endpoint=s3_proxy.endpoint)
    key = storage_key(REQUEST, "gone.jpg")
    reader = OutputReader(lambda _request_id: storage)
    for _ in range(2):  # the thumbnail, then the preview
        with pytest.raises(ImageError) as caught:
            reader.read(storage, key, 1)
        assert not caught.value.transient
        assert caught.value.message.startswith(f"catalogue/{key} is not in the bucket")
    assert len(s3_proxy.outcomes("GET", "forwarded")) == 1
